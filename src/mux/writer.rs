//! Matroska, WebM and MP4 files from coded frames.

use std::path::{Path, PathBuf};

use ffmpeg_next::format::context::Output;
use ffmpeg_next::util::mathematics::Rescale;
use ffmpeg_next::{Dictionary, Packet, Rational, codec};

use super::{MuxError, create_output, init, params};
use crate::rtp::MediaCodec;

/// Microseconds, the unit of every time given to a [`Writer`].
pub(super) const MICROS: (i32, i32) = (1, 1_000_000);

/// The kind of file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// `.mkv`: any of reel's codecs.
    Matroska,
    /// `.webm`: Opus, VP8, VP9, AV1.
    WebM,
    /// `.mp4`: H.264 (and Opus), written in fragments and given its index in front when
    /// finished.
    Mp4,
}

impl Container {
    pub(super) fn format(self) -> &'static str {
        match self {
            Self::Matroska => "matroska",
            Self::WebM => "webm",
            Self::Mp4 => "mp4",
        }
    }

    /// The extension of its files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Matroska => "mkv",
            Self::WebM => "webm",
            Self::Mp4 => "mp4",
        }
    }

    /// The container of a file named `path` (`.webm`, `.mp4`, else Matroska).
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("webm") => Self::WebM,
            Some("mp4") => Self::Mp4,
            _ => Self::Matroska,
        }
    }

    /// The container that keeps `streams` as they were sent: WebM for Opus, VP8, VP9 and
    /// AV1; MP4 once one is H.264.
    pub fn keeping(streams: &[StreamSpec]) -> Self {
        if streams.iter().any(|s| s.codec == MediaCodec::H264) {
            Self::Mp4
        } else {
            Self::WebM
        }
    }

    /// The options of a file written live: playable up to its last second or so if the
    /// process dies. Matroska and WebM: clusters of at most a second, flushed as soon as they
    /// are complete, without CRC-32 elements (neither reel's recovery nor common players
    /// check them, and computing them took 7% of `process-all`'s time). MP4: a fragment at
    /// each key frame and at least every second, each flushed.
    pub(super) fn live_options(self) -> Dictionary<'static> {
        let mut options = Dictionary::new();
        options.set("flush_packets", "1");
        match self {
            Self::Matroska | Self::WebM => {
                options.set("cluster_time_limit", "1000");
                options.set("write_crc32", "0");
            }
            Self::Mp4 => {
                options.set("movflags", "frag_keyframe+empty_moov+default_base_moof");
                options.set("frag_duration", "1000000");
            }
        }
        options
    }
}

/// What a stream of the file carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// The codec of its frames.
    pub codec: MediaCodec,
    /// Audio channels (audio only).
    pub channels: u8,
    /// Picture size (video only; 0 if unknown).
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// What the decoder needs first: H.264 SPS and PPS in Annex B, or AV1's sequence header.
    pub codec_private: Option<Vec<u8>>,
}

impl StreamSpec {
    /// An audio stream of `codec` with `channels`.
    pub fn audio(codec: MediaCodec, channels: u8) -> Self {
        Self {
            codec,
            channels,
            width: 0,
            height: 0,
            codec_private: None,
        }
    }
}

/// A file being written. Dropping it without [`Writer::finish`] leaves what was written
/// playable, without an index.
pub struct Writer {
    out: Output,
    path: PathBuf,
    container: Container,
    time_bases: Vec<Rational>,
    last_pts: Vec<i64>,
}

impl Writer {
    /// Creates `path` with `streams` (numbered in this order) and writes its header.
    pub fn create(
        path: &Path,
        container: Container,
        streams: &[StreamSpec],
    ) -> Result<Self, MuxError> {
        init();
        let context = format!("cannot create {}", path.display());
        let mut out = create_output(path, container.format(), &context)?;
        for spec in streams {
            let mut stream = out
                .add_stream(None::<ffmpeg_next::Codec>)
                .map_err(MuxError::new(&context))?;
            stream.set_time_base(MICROS);
            // SAFETY: the stream was just made and nothing else holds its parameters.
            unsafe { params::fill((*stream.as_mut_ptr()).codecpar, spec) };
        }
        out.write_header_with(container.live_options())
            .map_err(MuxError::new(&context))?;
        // The muxer picks its own time base (1/1000 for Matroska).
        let time_bases: Vec<Rational> = out.streams().map(|s| s.time_base()).collect();
        Ok(Self {
            last_pts: vec![i64::MIN; time_bases.len()],
            out,
            path: path.to_owned(),
            container,
            time_bases,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a frame of `stream` presented at `pts_us` for `duration_us` (0 if unknown).
    /// A time earlier than the stream's last is moved up to it. Frames are written as they
    /// come, not held back to interleave the streams (FFmpeg would hold every stream while
    /// one is silent), so the caller gives them in about the order of their times.
    pub fn write(
        &mut self,
        stream: usize,
        pts_us: i64,
        duration_us: i64,
        data: &[u8],
        keyframe: bool,
    ) -> Result<(), MuxError> {
        let time_base = self.time_bases[stream];
        let pts = pts_us.rescale(MICROS, time_base).max(self.last_pts[stream]);
        self.last_pts[stream] = pts;
        let mut packet = Packet::copy(data);
        packet.set_stream(stream);
        packet.set_pts(Some(pts));
        packet.set_dts(Some(pts));
        packet.set_duration(duration_us.rescale(MICROS, time_base));
        if keyframe {
            packet.set_flags(codec::packet::Flags::KEY);
        }
        packet
            .write(&mut self.out)
            .map(drop)
            .map_err(|e| MuxError::new(format!("cannot write {}", self.path.display()))(e))
    }

    /// Writes the index and the duration, and closes the file (an MP4 is rewritten with its
    /// index in front).
    pub fn finish(mut self) -> Result<(), MuxError> {
        self.out.write_trailer().map_err(MuxError::new(format!(
            "cannot finish {}",
            self.path.display()
        )))?;
        if self.container == Container::Mp4 {
            super::finalize(&self.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets per stream and the last packet's end time in ms, read back by FFmpeg.
    fn read_back(path: &Path) -> (Vec<usize>, i64) {
        let mut input = ffmpeg_next::format::input(path).unwrap();
        let mut counts = vec![0; input.streams().count()];
        let mut end = 0;
        for (stream, packet) in input.packets() {
            counts[stream.index()] += 1;
            let tb = stream.time_base();
            let pts = packet.pts().unwrap().rescale(tb, (1, 1000));
            end = end.max(pts + packet.duration().rescale(tb, (1, 1000)));
        }
        (counts, end)
    }

    fn opus_and_vp8(path: &Path) -> Writer {
        let video = StreamSpec {
            codec: MediaCodec::Vp8,
            channels: 0,
            width: 320,
            height: 240,
            codec_private: None,
        };
        let audio = StreamSpec::audio(MediaCodec::Opus, 2);
        Writer::create(path, Container::Matroska, &[audio, video]).unwrap()
    }

    #[test]
    fn a_finished_file_has_every_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mkv");
        let mut w = opus_and_vp8(&path);
        for i in 0..100 {
            w.write(0, i * 20_000, 20_000, &[0xf8], true).unwrap();
            if i % 4 == 0 {
                w.write(1, i * 20_000, 0, &[0x10, 0, 0], i == 0).unwrap();
            }
        }
        // A time going back is moved up, not refused.
        w.write(0, 0, 20_000, &[0xf8], true).unwrap();
        w.finish().unwrap();
        let (counts, end) = read_back(&path);
        assert_eq!(counts, [101, 25]);
        assert_eq!(end, 2000);
    }

    #[test]
    fn an_unwritable_path_is_an_error() {
        let err = Writer::create(
            Path::new("/nonexistent/dir/x.mkv"),
            Container::WebM,
            &[StreamSpec::audio(MediaCodec::Opus, 2)],
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .contains("cannot create /nonexistent/dir/x.mkv"),
            "{err}"
        );
    }
}
