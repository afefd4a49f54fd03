//! What a finished file holds, read from its packets without decoding them: container,
//! length, and per track its codec, average bit rate and picture or sound format.

use std::path::Path;

use ffmpeg_next::codec::{self, Id};
use ffmpeg_next::media::Type;
use ffmpeg_next::util::mathematics::Rescale;

use super::writer::{Container, MICROS};
use super::{MuxError, init, open_input};
use crate::domain::{MediaInfo, TrackInfo};

/// What each stream's packets add up to.
#[derive(Clone, Copy, Default)]
struct Tally {
    bytes: u64,
    packets: u64,
    /// The first packet's time and the last packet's end, µs.
    span: Option<(i64, i64)>,
}

impl Tally {
    fn seconds(&self) -> f64 {
        self.span.map_or(0.0, |(a, b)| (b - a).max(0) as f64 / 1e6)
    }
}

/// The codec's name as the broadcast dialect writes it.
fn codec_name(id: Id) -> String {
    match id {
        Id::VP8 => "VP8".into(),
        Id::VP9 => "VP9".into(),
        Id::AV1 => "AV1".into(),
        Id::H264 => "H264".into(),
        Id::OPUS => "Opus".into(),
        other => format!("{other:?}"),
    }
}

/// Whether `path` holds a frame that can be read (a file cut short before its first frame
/// may hold its header alone, or not even that).
pub fn holds_frames(path: &Path) -> bool {
    init();
    let context = format!("cannot read {}", path.display());
    open_input(path, &context).is_ok_and(|mut input| input.packets().next().is_some())
}

/// Reads what `path` holds.
pub fn media_info(path: &Path) -> Result<MediaInfo, MuxError> {
    init();
    let context = format!("cannot read {}", path.display());
    let mut input = open_input(path, &context)?;
    let streams: Vec<_> = input
        .streams()
        .map(|s| (s.parameters(), s.time_base()))
        .collect();
    let mut tallies = vec![Tally::default(); streams.len()];
    for (stream, packet) in input.packets() {
        let Some(t) = tallies.get_mut(stream.index()) else {
            continue;
        };
        let tb = stream.time_base();
        let start = packet.pts().unwrap_or(0).rescale(tb, MICROS);
        let end = start + packet.duration().rescale(tb, MICROS);
        t.bytes += packet.size() as u64;
        t.packets += 1;
        t.span = Some(
            t.span
                .map_or((start, end), |(a, b)| (a.min(start), b.max(end))),
        );
    }
    let mut tracks = Vec::new();
    for ((parameters, _), tally) in streams.into_iter().zip(&tallies) {
        let medium = parameters.medium();
        let id = parameters.id();
        let decoder = codec::context::Context::from_parameters(parameters)
            .map_err(MuxError::new(&context))?
            .decoder();
        let seconds = tally.seconds();
        let bitrate = if seconds > 0.0 {
            (tally.bytes as f64 * 8.0 / seconds) as u64
        } else {
            0
        };
        let mut track = TrackInfo {
            codec: codec_name(id),
            bitrate,
            ..TrackInfo::default()
        };
        match medium {
            Type::Video => {
                let video = decoder.video().map_err(MuxError::new(&context))?;
                track.kind = "video".into();
                track.width = video.width();
                track.height = video.height();
                track.framerate = if seconds > 0.0 {
                    (tally.packets as f64 / seconds * 100.0).round() / 100.0
                } else {
                    0.0
                };
            }
            Type::Audio => {
                let audio = decoder.audio().map_err(MuxError::new(&context))?;
                track.kind = "audio".into();
                track.channels = u32::from(audio.channels());
                track.samplerate = audio.rate();
            }
            _ => continue,
        }
        tracks.push(track);
    }
    let duration = match input.duration() {
        d if d > 0 => d as f64 / f64::from(ffmpeg_next::ffi::AV_TIME_BASE),
        _ => tallies.iter().map(Tally::seconds).fold(0.0, f64::max),
    };
    Ok(MediaInfo {
        format: match Container::of(path) {
            Container::WebM => "WEBM",
            Container::Mp4 => "MP4",
            Container::Matroska => "MATROSKA",
        }
        .into(),
        size: std::fs::metadata(path).map_or(0, |m| m.len()),
        duration: (duration * 1000.0).round() / 1000.0,
        tracks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::{StreamSpec, Writer};
    use crate::rtp::MediaCodec;

    #[test]
    fn tracks_rates_and_sizes_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.webm");
        let video = StreamSpec {
            codec: MediaCodec::Vp8,
            channels: 0,
            width: 640,
            height: 360,
            codec_private: None,
        };
        let mut w = Writer::create(
            &path,
            Container::WebM,
            &[StreamSpec::audio(MediaCodec::Opus, 2), video],
        )
        .unwrap();
        // 10 s: Opus frames of 100 bytes every 20 ms, pictures of 1000 bytes 25 times a second.
        for i in 0..500 {
            w.write(0, i * 20_000, 20_000, &[0xf8; 100], true).unwrap();
            if i % 2 == 0 {
                w.write(1, i * 20_000, 40_000, &[0x10; 1000], i == 0)
                    .unwrap();
            }
        }
        w.finish().unwrap();
        let info = media_info(&path).unwrap();
        assert_eq!(info.format, "WEBM");
        assert!((info.duration - 10.0).abs() < 0.05, "{info:?}");
        assert_eq!(info.size, std::fs::metadata(&path).unwrap().len());
        let [audio, video] = info.tracks.as_slice() else {
            panic!("{info:?}")
        };
        assert_eq!(
            (audio.kind.as_str(), audio.codec.as_str()),
            ("audio", "Opus")
        );
        assert_eq!((audio.channels, audio.samplerate), (2, 48_000));
        assert!(
            (audio.bitrate as f64 - 40_000.0).abs() < 1_000.0,
            "{audio:?}"
        );
        assert_eq!(
            (video.kind.as_str(), video.codec.as_str()),
            ("video", "VP8")
        );
        assert_eq!((video.width, video.height), (640, 360));
        assert!((video.framerate - 25.0).abs() < 0.5, "{video:?}");
        assert!(
            (video.bitrate as f64 - 200_000.0).abs() < 5_000.0,
            "{video:?}"
        );
        assert!(media_info(&dir.path().join("missing.webm")).is_err());
    }
}
