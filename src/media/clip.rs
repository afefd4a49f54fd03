//! Pre-encoded clips for `reel publish`: video from IVF (VP8, VP9, AV1) or an H.264 Annex B
//! stream, audio from Ogg Opus, read whole into memory and played in a loop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::rtp::opus_samples;

/// Why a clip cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a clip reel can play.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A codec a clip can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClipCodec {
    /// VP8 in IVF.
    Vp8,
    /// VP9 in IVF.
    Vp9,
    /// AV1 in IVF.
    Av1,
    /// H.264 as an Annex B byte stream.
    H264,
    /// Opus in Ogg.
    Opus,
}

/// One encoded frame and when it plays.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Offset from the start of the clip.
    pub at: Duration,
    /// The encoded frame (an access unit with start codes for H.264).
    pub data: Arc<[u8]>,
    /// True if it can be decoded on its own.
    pub keyframe: bool,
}

/// One stream of a clip.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Its codec.
    pub codec: ClipCodec,
    /// Its frames in play order; never empty.
    pub frames: Vec<Frame>,
    /// How long one loop lasts.
    pub length: Duration,
}

impl Stream {
    /// How long after frame `i` the next frame plays, wrapping at the end of the loop.
    pub fn gap_after(&self, i: usize) -> Duration {
        match self.frames.get(i + 1) {
            Some(next) => next.at.saturating_sub(self.frames[i].at),
            None => self.length.saturating_sub(self.frames[i].at),
        }
        .max(Duration::from_millis(1))
    }

    /// The index of the first key frame at or after `i`, wrapping; `i` if there is none.
    pub fn next_keyframe(&self, i: usize) -> usize {
        let n = self.frames.len();
        (0..n)
            .map(|k| (i + k) % n)
            .find(|&k| self.frames[k].keyframe)
            .unwrap_or(i)
    }
}

/// Reads a video clip: IVF (VP8, VP9, AV1), or H.264 Annex B played at `fps`.
pub fn read_video(path: &Path, fps: u32) -> Result<Stream, ClipError> {
    let data = read(path)?;
    let format = |reason: String| ClipError::Format {
        path: path.display().to_string(),
        reason,
    };
    if data.starts_with(b"DKIF") {
        ivf(&data).map_err(format)
    } else if data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1]) {
        annex_b(&data, fps).map_err(format)
    } else {
        Err(format(
            "not an IVF file or an H.264 Annex B stream (see `reel publish --help`)".into(),
        ))
    }
}

/// Reads an Ogg Opus clip.
pub fn read_audio(path: &Path) -> Result<Stream, ClipError> {
    let data = read(path)?;
    ogg_opus(&data).map_err(|reason| ClipError::Format {
        path: path.display().to_string(),
        reason,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, ClipError> {
    std::fs::read(path).map_err(|source| ClipError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn finish(codec: ClipCodec, frames: Vec<Frame>, length: Duration) -> Result<Stream, String> {
    if frames.is_empty() {
        return Err("the clip has no frames".into());
    }
    if !frames[0].keyframe {
        return Err("the clip does not start with a key frame".into());
    }
    Ok(Stream {
        codec,
        frames,
        length,
    })
}

/// IVF: a 32-byte header, then frames of a 12-byte header (size, 64-bit timestamp) and data.
fn ivf(data: &[u8]) -> Result<Stream, String> {
    let header = data.get(..32).ok_or("truncated IVF header")?;
    let codec = match &header[8..12] {
        b"VP80" => ClipCodec::Vp8,
        b"VP90" => ClipCodec::Vp9,
        b"AV01" => ClipCodec::Av1,
        other => {
            return Err(format!(
                "IVF codec {:?} is not VP8, VP9 or AV1",
                String::from_utf8_lossy(other)
            ));
        }
    };
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (rate, scale) = (u32_at(header, 16), u32_at(header, 20));
    if rate == 0 || scale == 0 {
        return Err("IVF time base is zero".into());
    }
    let header_len = usize::from(u16::from_le_bytes([header[6], header[7]])).max(32);
    let at = |pts: u64| {
        Duration::from_nanos(
            (u128::from(pts) * u128::from(scale) * 1_000_000_000 / u128::from(rate))
                .try_into()
                .unwrap_or(u64::MAX),
        )
    };
    let mut frames = Vec::new();
    let mut rest = data.get(header_len..).unwrap_or_default();
    while !rest.is_empty() {
        let head = rest.get(..12).ok_or("truncated IVF frame header")?;
        let size = u32_at(head, 0) as usize;
        let pts = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        let frame = rest
            .get(12..12 + size)
            .ok_or("IVF frame runs past the end of the file")?;
        frames.push(Frame {
            at: at(pts),
            keyframe: match codec {
                ClipCodec::Vp8 => frame.first().is_some_and(|b| b & 1 == 0),
                ClipCodec::Vp9 => vp9_keyframe(frame),
                _ => av1_keyframe(frame),
            },
            data: frame.into(),
        });
        rest = &rest[12 + size..];
    }
    let first = frames.first().map_or(Duration::ZERO, |f| f.at);
    for f in &mut frames {
        f.at -= first;
    }
    let step = average_step(&frames);
    let length = frames.last().map_or(Duration::ZERO, |f| f.at) + step;
    finish(codec, frames, length)
}

fn average_step(frames: &[Frame]) -> Duration {
    match frames {
        [first, .., last] => (last.at - first.at) / (frames.len() as u32 - 1),
        _ => Duration::from_millis(33),
    }
}

/// A VP9 frame's uncompressed header: frame marker, profile, `show_existing_frame`, frame type.
fn vp9_keyframe(frame: &[u8]) -> bool {
    let Some(&b) = frame.first() else {
        return false;
    };
    let profile = ((b >> 5) & 1) | ((b >> 3) & 2);
    // Bits after the profile: a reserved zero in profile 3, then show_existing_frame, frame_type.
    let shift = if profile == 3 { 2 } else { 3 };
    let show_existing = (b >> shift) & 1;
    let frame_type = (b >> (shift - 1)) & 1;
    b >> 6 == 0b10 && show_existing == 0 && frame_type == 0
}

/// An AV1 temporal unit is taken as a key frame when it carries a sequence header OBU.
fn av1_keyframe(mut tu: &[u8]) -> bool {
    while let Some(&header) = tu.first() {
        let kind = (header >> 3) & 0x0f;
        if kind == 1 {
            return true;
        }
        let has_size = header & 0x02 != 0;
        let extension = usize::from(header & 0x04 != 0);
        if !has_size {
            return false;
        }
        let mut i = 1 + extension;
        let mut size = 0usize;
        for shift in (0..56).step_by(7) {
            let Some(&b) = tu.get(i) else { return false };
            i += 1;
            size |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        let Some(next) = tu.get(i + size..) else {
            return false;
        };
        tu = next;
    }
    false
}

/// Splits an H.264 Annex B stream into access units. An access unit starts at an access unit
/// delimiter, SEI, SPS or PPS after a slice, or at a slice whose `first_mb_in_slice` is 0.
/// IDR access units get the latest SPS and PPS put in front if they lack them, so that every
/// key frame can start a decoder.
fn annex_b(data: &[u8], fps: u32) -> Result<Stream, String> {
    if fps == 0 {
        return Err("--fps must be above 0".into());
    }
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let mut current: Vec<&[u8]> = Vec::new();
    let mut has_slice = false;
    for nal in nal_units(data) {
        let kind = nal[0] & 0x1f;
        let slice = kind == 1 || kind == 5;
        let first_slice = slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_unit = matches!(kind, 6..=9) || first_slice;
        if has_slice && starts_unit {
            units.push(std::mem::take(&mut current));
            has_slice = false;
        }
        has_slice |= slice;
        current.push(nal);
    }
    if has_slice {
        units.push(current);
    }
    let step = Duration::from_secs(1) / fps;
    let (mut sps, mut pps): (Option<&[u8]>, Option<&[u8]>) = (None, None);
    let mut frames = Vec::with_capacity(units.len());
    for (i, unit) in units.iter().enumerate() {
        let kinds = || unit.iter().map(|n| n[0] & 0x1f);
        let idr = kinds().any(|k| k == 5);
        for nal in unit {
            match nal[0] & 0x1f {
                7 => sps = Some(nal),
                8 => pps = Some(nal),
                _ => {}
            }
        }
        let mut bytes = Vec::new();
        if idr && !kinds().any(|k| k == 7) {
            for nal in [sps, pps].into_iter().flatten() {
                bytes.extend_from_slice(&[0, 0, 0, 1]);
                bytes.extend_from_slice(nal);
            }
        }
        for nal in unit {
            bytes.extend_from_slice(&[0, 0, 0, 1]);
            bytes.extend_from_slice(nal);
        }
        frames.push(Frame {
            at: step * i as u32,
            data: bytes.into(),
            keyframe: idr && sps.is_some() && pps.is_some(),
        });
    }
    let length = step * frames.len() as u32;
    finish(ClipCodec::H264, frames, length)
}

/// The NAL units of an Annex B stream, without start codes; empty units are skipped.
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // The next start code, with the zero byte of a 4-byte one belonging to it.
            let mut e = s - 3;
            while e > 0 && data[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter_map(move |(s, e)| data.get(s..e).filter(|n| !n.is_empty()))
}

/// Ogg Opus: the packets after the `OpusHead` and `OpusTags` headers, timed by their TOC bytes.
fn ogg_opus(data: &[u8]) -> Result<Stream, String> {
    let mut reader = ogg::PacketReader::new(std::io::Cursor::new(data));
    let mut read = || {
        reader
            .read_packet()
            .map_err(|e| format!("not a valid Ogg file: {e}"))
    };
    let head = read()?.ok_or("empty Ogg file")?;
    if !head.data.starts_with(b"OpusHead") {
        return Err("the Ogg file does not hold Opus".into());
    }
    let serial = head.stream_serial();
    read()?.ok_or("the Ogg file ends before its OpusTags header")?;
    let mut frames = Vec::new();
    let mut at = Duration::ZERO;
    while let Some(packet) = read()? {
        if packet.stream_serial() != serial || packet.data.is_empty() {
            continue;
        }
        let length = opus_samples(&packet.data)
            .map(|samples| Duration::from_micros(u64::from(samples) * 1000 / 48))
            .ok_or("malformed Opus packet")?;
        frames.push(Frame {
            at,
            data: packet.data.into(),
            keyframe: true,
        });
        at += length;
    }
    finish(ClipCodec::Opus, frames, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_access_units_and_parameter_sets() {
        // SPS, PPS, IDR (first_mb 0), P slice (first_mb 0), P slice continuing (first_mb != 0).
        let stream = [
            &[0, 0, 0, 1, 0x67, 0x42][..],
            &[0, 0, 0, 1, 0x68, 0xce],
            &[0, 0, 1, 0x65, 0x88, 0x80],
            &[0, 0, 0, 1, 0x41, 0x9a],
            &[0, 0, 1, 0x41, 0x40],
            &[0, 0, 0, 1, 0x65, 0x88],
        ]
        .concat();
        let s = annex_b(&stream, 25).unwrap();
        assert_eq!(s.frames.len(), 3);
        assert!(s.frames[0].keyframe && !s.frames[1].keyframe && s.frames[2].keyframe);
        assert_eq!(s.frames[1].at, Duration::from_millis(40));
        assert_eq!(s.length, Duration::from_millis(120));
        // The P access unit holds both slices.
        assert_eq!(
            &*s.frames[1].data,
            &[0, 0, 0, 1, 0x41, 0x9a, 0, 0, 0, 1, 0x41, 0x40]
        );
        // The second IDR gets the parameter sets in front.
        assert!(
            s.frames[2]
                .data
                .starts_with(&[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68])
        );
    }

    #[test]
    fn annex_b_must_start_decodable() {
        let stream = [0, 0, 0, 1, 0x41, 0x9a];
        assert!(annex_b(&stream, 30).unwrap_err().contains("key frame"));
        assert!(annex_b(&[0, 0, 1], 30).unwrap_err().contains("no frames"));
    }

    #[test]
    fn ivf_frames_and_timing() {
        let mut file = b"DKIF\0\0\x20\0VP80\x80\x02\xe0\x01".to_vec();
        file.extend_from_slice(&30u32.to_le_bytes());
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&[0; 8]);
        for (pts, first) in [(0u64, 0x10u8), (1, 0x11), (2, 0x11)] {
            file.extend_from_slice(&3u32.to_le_bytes());
            file.extend_from_slice(&pts.to_le_bytes());
            file.extend_from_slice(&[first, 0, 0]);
        }
        let s = ivf(&file).unwrap();
        assert_eq!(s.codec, ClipCodec::Vp8);
        assert_eq!(s.frames.len(), 3);
        assert!(s.frames[0].keyframe && !s.frames[1].keyframe);
        assert!(s.length.abs_diff(Duration::from_millis(100)) < Duration::from_micros(1));
        assert_eq!(s.next_keyframe(1), 0);
        assert_eq!(s.gap_after(0), Duration::from_nanos(33_333_333));
        file.truncate(file.len() - 1);
        assert!(ivf(&file).unwrap_err().contains("past the end"));
        assert!(ivf(b"DKIF").unwrap_err().contains("truncated"));
    }

    #[test]
    fn vp9_and_av1_key_frames() {
        // Profile 0: 10 0 0 | show_existing 0 | frame_type 0.
        assert!(vp9_keyframe(&[0b1000_0000]));
        assert!(!vp9_keyframe(&[0b1000_0100]));
        assert!(!vp9_keyframe(&[0b1000_1000]));
        // Temporal delimiter, then a sequence header; or a frame OBU only.
        assert!(av1_keyframe(&[0x12, 0x00, 0x0a, 0x01, 0x00]));
        assert!(!av1_keyframe(&[0x12, 0x00, 0x32, 0x01, 0x00]));
        assert!(!av1_keyframe(&[0x12, 0x05]));
    }
}
