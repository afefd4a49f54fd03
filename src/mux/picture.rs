//! H.264 MP4 files from pictures a browser captured: PNG screenshots, each shown from the
//! moment it was taken until the next.

use std::path::Path;
use std::time::Duration;

use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use ffmpeg_next::util::color;
use ffmpeg_next::{Dictionary, Packet, Rational, codec, frame};

use super::{MuxError, create_output, init};

/// The x264 settings: fast enough to keep up on two cores, with good quality for the flat
/// pictures layouts are.
const X264: [(&str, &str); 2] = [("preset", "veryfast"), ("crf", "23")];

/// An MP4 being written from pictures.
pub struct PictureWriter {
    out: ffmpeg_next::format::context::Output,
    decoder: ffmpeg_next::decoder::Video,
    /// To 4:2:0 video range, made for the first picture's format.
    scaler: Option<(scaling::Context, Pixel)>,
    encoder: ffmpeg_next::encoder::Video,
    size: (u32, u32),
    rate: i32,
    /// The frame number of the last picture written.
    last: Option<i64>,
    /// The last picture, converted: held until the end.
    held: Option<frame::Video>,
    context: String,
}

impl PictureWriter {
    /// Creates `path` for `size` pictures at up to `rate` per second, and writes its header.
    pub fn create(path: &Path, size: (u32, u32), rate: u32) -> Result<Self, MuxError> {
        init();
        let context = format!("cannot write {}", path.display());
        // 4:2:0 needs even sizes.
        if size.0 % 2 + size.1 % 2 != 0 {
            return Err(MuxError::new(context)(ffmpeg_next::Error::InvalidData));
        }
        let rate = i32::try_from(rate.clamp(1, 120)).expect("clamped");
        let mut out = create_output(path, "mp4", &context)?;
        let png = ffmpeg_next::decoder::find(codec::Id::PNG)
            .ok_or(ffmpeg_next::Error::DecoderNotFound)
            .map_err(MuxError::new(&context))?;
        let decoder = codec::context::Context::new_with_codec(png)
            .decoder()
            .video()
            .map_err(MuxError::new(&context))?;
        let h264 = ffmpeg_next::encoder::find_by_name("libx264")
            .ok_or(ffmpeg_next::Error::EncoderNotFound)
            .map_err(MuxError::new(&context))?;
        let mut encoder = codec::context::Context::new_with_codec(h264)
            .encoder()
            .video()
            .map_err(MuxError::new(&context))?;
        encoder.set_width(size.0);
        encoder.set_height(size.1);
        encoder.set_format(Pixel::YUV420P);
        encoder.set_time_base((1, rate));
        encoder.set_frame_rate(Some((rate, 1)));
        encoder.set_gop(2 * rate.unsigned_abs());
        // The matrix and range the conversion from RGB uses.
        encoder.set_colorspace(color::Space::SMPTE170M);
        encoder.set_color_range(color::Range::MPEG);
        if out
            .format()
            .flags()
            .contains(ffmpeg_next::format::Flags::GLOBAL_HEADER)
        {
            encoder.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let options = Dictionary::from_iter(X264);
        let encoder = encoder
            .open_as_with(h264, options)
            .map_err(MuxError::new(&context))?;
        let mut stream = out.add_stream(h264).map_err(MuxError::new(&context))?;
        stream.set_parameters(&encoder);
        stream.set_time_base((1, rate));
        out.write_header().map_err(MuxError::new(&context))?;
        Ok(Self {
            out,
            decoder,
            scaler: None,
            encoder,
            size,
            rate,
            last: None,
            held: None,
            context,
        })
    }

    /// Adds the PNG picture `png` taken `at` after the start. A picture that lands on the
    /// same frame as the one before is dropped; one of another size is an error.
    pub fn push(&mut self, png: &[u8], at: Duration) -> Result<(), MuxError> {
        let pts = (at.as_secs_f64() * f64::from(self.rate)).round() as i64;
        if self.last.is_some_and(|last| pts <= last) {
            return Ok(());
        }
        let fail = |e| MuxError::new(&self.context)(e);
        // Each picture stands alone: without the key flag the decoder adds the one before to
        // it, as in PNG video streams.
        let mut packet = Packet::copy(png);
        packet.set_flags(ffmpeg_next::packet::Flags::KEY);
        self.decoder.send_packet(&packet).map_err(fail)?;
        let mut picture = frame::Video::empty();
        self.decoder.receive_frame(&mut picture).map_err(fail)?;
        if (picture.width(), picture.height()) != self.size {
            return Err(fail(ffmpeg_next::Error::InvalidData));
        }
        let format = picture.format();
        if self.scaler.as_ref().is_none_or(|(_, f)| *f != format) {
            let (w, h) = self.size;
            let scaler =
                scaling::Context::get(format, w, h, Pixel::YUV420P, w, h, scaling::Flags::BILINEAR)
                    .map_err(fail)?;
            self.scaler = Some((scaler, format));
        }
        let (scaler, _) = self.scaler.as_mut().expect("made above");
        let mut yuv = frame::Video::empty();
        scaler.run(&picture, &mut yuv).map_err(fail)?;
        yuv.set_pts(Some(pts));
        self.encoder.send_frame(&yuv).map_err(fail)?;
        self.last = Some(pts);
        self.held = Some(yuv);
        self.drain()
    }

    /// Shows the last picture until `end` (after the start), encodes what is left and
    /// finishes the file; its length: `end`, or one frame past the last picture if that is
    /// later. A capture that fell behind still makes a file as long as it ran.
    pub fn finish(mut self, end: Duration) -> Result<Duration, MuxError> {
        let last_frame = (end.as_secs_f64() * f64::from(self.rate)).round() as i64 - 1;
        if let (Some(mut held), Some(last)) = (self.held.take(), self.last)
            && last_frame > last
        {
            held.set_pts(Some(last_frame));
            self.encoder
                .send_frame(&held)
                .map_err(MuxError::new(&self.context))?;
            self.last = Some(last_frame);
        }
        self.encoder
            .send_eof()
            .map_err(MuxError::new(&self.context))?;
        self.drain()?;
        self.out
            .write_trailer()
            .map_err(MuxError::new(&self.context))?;
        let frames = self.last.map_or(0, |l| l + 1);
        Ok(Duration::from_secs_f64(
            frames as f64 / f64::from(self.rate),
        ))
    }

    /// Writes the packets the encoder has ready.
    fn drain(&mut self) -> Result<(), MuxError> {
        let out_base = self
            .out
            .stream(0)
            .map_or(Rational(1, self.rate), |s| s.time_base());
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            // The encoder leaves durations out; without one, the last picture would get none.
            if packet.duration() == 0 {
                packet.set_duration(1);
            }
            packet.rescale_ts((1, self.rate), out_base);
            packet
                .write_interleaved(&mut self.out)
                .map_err(|e| MuxError::new(&self.context)(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `size` in four coloured quarters.
    fn quarters(size: (u32, u32), colours: [[u8; 3]; 4]) -> Vec<u8> {
        let mut data = Vec::new();
        for y in 0..size.1 {
            for x in 0..size.0 {
                let q = usize::from(x >= size.0 / 2) + 2 * usize::from(y >= size.1 / 2);
                data.extend_from_slice(&colours[q]);
            }
        }
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, size.0, size.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(&data)
            .unwrap();
        png
    }

    /// Pictures that stopped coming before the end (a capture that fell behind): the last
    /// one is shown until the end, so the file lasts as long as the capture ran.
    #[test]
    fn the_last_picture_lasts_until_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.mp4");
        let picture = quarters(
            (64, 36),
            [[0, 0, 0], [255, 255, 255], [9, 9, 9], [90, 9, 9]],
        );
        let mut w = PictureWriter::create(&path, (64, 36), 30).unwrap();
        for i in 0..10 {
            w.push(&picture, Duration::from_millis(33 * i)).unwrap();
        }
        assert_eq!(
            w.finish(Duration::from_secs(2)).unwrap(),
            Duration::from_secs(2)
        );
        // Read back: the last frame ends at 2 s.
        let mut reader = crate::mux::FrameReader::open(&path).unwrap();
        let mut end = 0;
        while let Some(f) = reader.next_frame().unwrap() {
            end = end.max(f.pts_us + f.duration_us);
        }
        assert!((end - 2_000_000).abs() < 1000, "{end} µs");
    }

    #[test]
    fn pictures_come_out_in_their_colours_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.mp4");
        let colours = [[230, 25, 75], [60, 180, 75], [67, 99, 216], [255, 225, 25]];
        let picture = quarters((320, 180), colours);
        let mut w = PictureWriter::create(&path, (320, 180), 10).unwrap();
        for i in 0..10 {
            w.push(&picture, Duration::from_millis(100 * i)).unwrap();
        }
        // The same frame twice: dropped.
        w.push(&picture, Duration::from_millis(910)).unwrap();
        assert!(
            w.push(&quarters((160, 90), colours), Duration::from_secs(1))
                .is_err()
        );
        assert_eq!(
            w.finish(Duration::from_secs(1)).unwrap(),
            Duration::from_secs(1)
        );

        // Every frame, in the colours of the picture (the decoder keeps no picture between
        // two: each is whole).
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&path)
            .args([
                "-fps_mode",
                "passthrough",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let frames: Vec<&[u8]> = out.stdout.chunks(320 * 180 * 3).collect();
        assert_eq!(frames.len(), 10);
        for (n, frame) in frames.iter().enumerate() {
            for (q, (x, y)) in [(80, 45), (240, 45), (80, 135), (240, 135)]
                .into_iter()
                .enumerate()
            {
                let i = 3 * (y * 320 + x);
                let got = &frame[i..i + 3];
                let off = (0..3)
                    .map(|c| got[c].abs_diff(colours[q][c]))
                    .max()
                    .unwrap();
                assert!(
                    off <= 6,
                    "frame {n}, quarter {q}: {got:?}, not {:?}",
                    colours[q]
                );
            }
        }
    }
}
