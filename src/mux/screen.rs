//! Pictures of an X display, taken from the X server's shared memory (FFmpeg's `x11grab`)
//! and converted once, into the 4:2:0 pictures the encoder takes. The caller paces the
//! pictures; the grabber never waits.

use dcv_color_primitives as dcp;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::color;
use ffmpeg_next::{Dictionary, frame};

use super::{MuxError, init};

/// Room for the three planes of a 4:2:0 picture.
#[derive(Default)]
pub(super) struct Planes([Vec<u8>; 3]);

/// One picture of a screen, ready to encode.
pub struct Picture(pub(super) frame::Video);

/// A display being captured.
pub struct Screen {
    input: ffmpeg_next::format::context::Input,
    decoder: ffmpeg_next::decoder::Video,
    /// The planes of the picture being converted, kept from one picture to the next.
    planes: Planes,
    size: (u32, u32),
    context: String,
}

impl Screen {
    /// Opens the X display `display` (`:N`) for pictures of its top left `size`.
    pub fn open(display: &str, size: (u32, u32)) -> Result<Self, MuxError> {
        init();
        let context = format!("cannot capture the display {display}");
        let fail = |e| MuxError::new(&context)(e);
        if size.0 % 2 + size.1 % 2 != 0 || display.contains('\0') {
            return Err(fail(ffmpeg_next::Error::InvalidData));
        }
        ffmpeg_next::device::register_all();
        let x11grab = ffmpeg_next::device::input::video()
            .find(|f| f.name() == "x11grab")
            .ok_or_else(|| fail(ffmpeg_next::Error::DemuxerNotFound))?;
        let mut options = Dictionary::new();
        options.set("video_size", &format!("{}x{}", size.0, size.1));
        // Far above the rate asked for: the grabber takes a picture whenever asked.
        options.set("framerate", "1000");
        options.set("draw_mouse", "0");
        let input = ffmpeg_next::format::open_with(display, &x11grab, options)
            .map_err(fail)?
            .input();
        let stream = input
            .streams()
            .best(ffmpeg_next::media::Type::Video)
            .ok_or_else(|| fail(ffmpeg_next::Error::StreamNotFound))?;
        let decoder = ffmpeg_next::codec::context::Context::from_parameters(stream.parameters())
            .and_then(|c| c.decoder().video())
            .map_err(fail)?;
        Ok(Self {
            input,
            decoder,
            planes: Planes::default(),
            size,
            context,
        })
    }

    /// The screen as it is now.
    pub fn grab(&mut self) -> Result<Picture, MuxError> {
        let context = &self.context;
        let fail = |e| MuxError::new(context)(e);
        let mut packet = ffmpeg_next::Packet::empty();
        packet.read(&mut self.input).map_err(fail)?;
        // The raw decoder wraps the grabbed memory; the conversion is the one copy.
        self.decoder.send_packet(&packet).map_err(fail)?;
        let mut raw = frame::Video::empty();
        self.decoder.receive_frame(&mut raw).map_err(fail)?;
        if !matches!(raw.format(), Pixel::BGRZ | Pixel::BGRA) {
            // A display of another depth than the 24 bits reel's displays have.
            return Err(fail(ffmpeg_next::Error::InvalidData));
        }
        Picture::from_bgrx(self.size, raw.stride(0), raw.data(0), &mut self.planes).map_err(fail)
    }
}

impl Picture {
    /// The picture of `size` whose pixels are `data`, four bytes each (blue, green, red and
    /// one not read), `stride` bytes a row: in 4:2:0 video range with BT.601's matrix, each
    /// colour sample the average of the four pixels it covers. The planes are made in
    /// `planes` (the frame's lend themselves one at a time), then copied.
    pub(super) fn from_bgrx(
        size: (u32, u32),
        stride: usize,
        data: &[u8],
        planes: &mut Planes,
    ) -> Result<Self, ffmpeg_next::Error> {
        let (w, h) = size;
        let bgrx = dcp::ImageFormat {
            pixel_format: dcp::PixelFormat::Bgra,
            color_space: dcp::ColorSpace::Rgb,
            num_planes: 1,
        };
        let i420 = dcp::ImageFormat {
            pixel_format: dcp::PixelFormat::I420,
            color_space: dcp::ColorSpace::Bt601,
            num_planes: 3,
        };
        let mut yuv = frame::Video::new(Pixel::YUV420P, w, h);
        let strides = [yuv.stride(0), yuv.stride(1), yuv.stride(2)];
        for (i, plane) in planes.0.iter_mut().enumerate() {
            plane.resize(yuv.data(i).len(), 0);
        }
        let [y, u, v] = &mut planes.0;
        dcp::convert_image(
            w,
            h,
            &bgrx,
            Some(&[stride]),
            &[data],
            &i420,
            Some(&strides),
            &mut [y.as_mut_slice(), u, v],
        )
        .map_err(|_| ffmpeg_next::Error::InvalidData)?;
        for (i, plane) in planes.0.iter().enumerate() {
            yuv.data_mut(i).copy_from_slice(plane);
        }
        yuv.set_color_space(color::Space::SMPTE170M);
        yuv.set_color_range(color::Range::MPEG);
        Ok(Self(yuv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_come_out_in_video_range_and_each_colour_sample_averages_its_four_pixels() {
        // 4x2 pixels with rows 20 bytes apart: a red and blue square, then a white one.
        let (h, stride) = (2, 20);
        let mut bgrx = vec![0xEE; stride * h];
        for y in 0..h {
            for (x, [r, g, b]) in [[255, 0, 0], [0, 0, 255], [255; 3], [255; 3]]
                .into_iter()
                .enumerate()
            {
                bgrx[y * stride + 4 * x..][..3].copy_from_slice(&[b, g, r]);
            }
        }
        let Picture(yuv) =
            Picture::from_bgrx((4, 2), stride, &bgrx, &mut Planes::default()).unwrap();
        assert_eq!(
            (yuv.format(), yuv.width(), yuv.height()),
            (Pixel::YUV420P, 4, 2)
        );
        assert_eq!(&yuv.data(0)[..4], &[81, 41, 235, 235]);
        // Red and blue averaged: Cb and Cr of (127.5, 0, 127.5); white has none.
        assert_eq!((yuv.data(1)[0], yuv.data(2)[0]), (165, 175));
        assert_eq!((yuv.data(1)[1], yuv.data(2)[1]), (128, 128));
        assert!(Picture::from_bgrx((4, 2), stride, &bgrx[..30], &mut Planes::default()).is_err());
    }
}
