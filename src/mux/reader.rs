//! Coded frames read back from a file reel wrote.

use std::path::{Path, PathBuf};

use ffmpeg_next::format::context::Input;
use ffmpeg_next::util::mathematics::Rescale;
use ffmpeg_next::{Packet, Rational};

use super::writer::MICROS;
use super::{MuxError, init, open_input};

/// A frame as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFrame {
    /// When it is presented, µs from the file's start.
    pub pts_us: i64,
    /// How long it lasts, µs (0 if the file does not say).
    pub duration_us: i64,
    /// Whether it is a key frame.
    pub keyframe: bool,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The frames of a file's first stream, in stored order.
pub struct FrameReader {
    input: Input,
    time_base: Rational,
    path: PathBuf,
}

impl FrameReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, MuxError> {
        init();
        let context = format!("cannot read {}", path.display());
        let input = open_input(path, &context)?;
        let time_base = input
            .streams()
            .next()
            .map(|s| s.time_base())
            .ok_or_else(|| MuxError::new(&context)(ffmpeg_next::Error::StreamNotFound))?;
        Ok(Self {
            input,
            time_base,
            path: path.to_owned(),
        })
    }

    /// The next frame, or `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<StoredFrame>, MuxError> {
        loop {
            // A packet of its own each time: FFmpeg reads only into a blank one.
            let mut p = Packet::empty();
            match p.read(&mut self.input) {
                Ok(()) if p.stream() != 0 => continue,
                Ok(()) => {
                    return Ok(Some(StoredFrame {
                        pts_us: p.pts().unwrap_or(0).rescale(self.time_base, MICROS),
                        duration_us: p.duration().rescale(self.time_base, MICROS),
                        keyframe: p.is_key(),
                        data: p.data().unwrap_or_default().to_vec(),
                    }));
                }
                Err(ffmpeg_next::Error::Eof) => return Ok(None),
                Err(e) => {
                    return Err(MuxError::new(format!(
                        "cannot read {}",
                        self.path.display()
                    ))(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::{Container, StreamSpec, Writer};
    use crate::rtp::MediaCodec;

    #[test]
    fn frames_come_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mkv");
        let mut w = Writer::create(
            &path,
            Container::Matroska,
            &[StreamSpec::audio(MediaCodec::Opus, 1)],
        )
        .unwrap();
        for i in 0..10 {
            w.write(0, i * 20_000, 20_000, &[0xf8, i as u8], true)
                .unwrap();
        }
        w.finish().unwrap();
        let mut r = FrameReader::open(&path).unwrap();
        let mut read = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            read.push(f);
        }
        assert_eq!(read.len(), 10);
        assert_eq!(
            read[3],
            StoredFrame {
                pts_us: 60_000,
                duration_us: 20_000,
                keyframe: true,
                data: vec![0xf8, 3],
            }
        );
        assert!(FrameReader::open(&dir.path().join("missing.mkv")).is_err());
    }
}
