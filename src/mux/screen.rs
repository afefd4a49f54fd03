//! Pictures of an X display, taken from the X server's shared memory (FFmpeg's `x11grab`)
//! and converted once, into the 4:2:0 pictures the encoder takes. The caller paces the
//! pictures; the grabber never waits.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::color;
use ffmpeg_next::{Dictionary, frame};

use super::{MuxError, init};

/// One picture of a screen, ready to encode.
pub struct Picture(pub(super) frame::Video);

/// A display being captured.
pub struct Screen {
    input: ffmpeg_next::format::context::Input,
    decoder: ffmpeg_next::decoder::Video,
    /// From the screen's pixels to 4:2:0 video range, made for the first picture.
    scaler: Option<scaling::Context>,
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
            scaler: None,
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
        let (w, h) = self.size;
        if self.scaler.is_none() {
            let scaler = scaling::Context::get(
                raw.format(),
                raw.width(),
                raw.height(),
                Pixel::YUV420P,
                w,
                h,
                scaling::Flags::BILINEAR,
            )
            .map_err(fail)?;
            self.scaler = Some(scaler);
        }
        let scaler = self.scaler.as_mut().expect("made above");
        let mut yuv = frame::Video::new(Pixel::YUV420P, w, h);
        scaler.run(&raw, &mut yuv).map_err(fail)?;
        yuv.set_color_space(color::Space::SMPTE170M);
        yuv.set_color_range(color::Range::MPEG);
        Ok(Picture(yuv))
    }
}
