//! The `*_timing_metadata.json` of a raw archive: one per participant session, saying which
//! segments its dumps hold and when they were received. reel's raw recorder writes it; the
//! `raw-recording` commands read it, from reel or from any archive of the same shape (fields
//! only reel's and Stream's recorders write default to zero).

use serde::{Deserialize, Serialize};

use crate::TrackType;

/// One participant session's metadata file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingMetadata {
    /// The call-level fields every file repeats.
    #[serde(flatten)]
    pub call: CallInfo,
    /// The user id.
    pub participant_id: String,
    /// The participant session.
    pub user_session_id: String,
    /// Its segments by kind.
    pub segments: Segments,
}

/// The call-level fields of every metadata file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    /// The call type.
    pub call_type: String,
    /// The call id.
    pub call_id: String,
    /// The call session.
    pub call_session_id: String,
    /// When the call session started (RFC 3339).
    pub call_start_time: String,
}

/// A participant session's segments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Segments {
    /// Microphone and screen-share audio.
    #[serde(default)]
    pub audio: Vec<Segment>,
    /// Camera and screen share.
    #[serde(default)]
    pub video: Vec<Segment>,
}

/// What the metadata says of one segment: one SSRC of one track, in one dump.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The segment's dump is the `.rtpdump` whose name contains this (and its `.sdp` beside).
    pub base_filename: String,
    /// `audio/opus`, `video/VP8`, ...
    pub codec: String,
    /// The track's id, the same across its segments.
    pub track_id: String,
    /// What the track carries.
    pub track_type: TrackType,
    /// Its SSRC.
    #[serde(default)]
    pub ssrc: u32,
    /// RTP timestamp of the first packet.
    pub first_rtp_rtp_timestamp: u32,
    /// Arrival of the first packet, unix ms.
    pub first_rtp_unix_timestamp: i64,
    /// RTP timestamp of the last packet.
    #[serde(default)]
    pub last_rtp_rtp_timestamp: u32,
    /// Arrival of the last packet, unix ms.
    #[serde(default)]
    pub last_rtp_unix_timestamp: i64,
    /// RTP time of the first sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rtcp_rtp_timestamp: Option<u32>,
    /// Sender's clock (unix ms) of the first sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rtcp_ntp_timestamp: Option<i64>,
    /// RTP time of the last sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rtcp_rtp_timestamp: Option<u32>,
    /// Sender's clock (unix ms) of the last sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rtcp_ntp_timestamp: Option<i64>,
    /// Video: ms from the first packet to the first key frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_key_frame_offset_ms: Option<i64>,
    /// Video: the largest picture its key frames announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame_dimension: Option<Dimension>,
    /// First packet, ms after the call session started.
    #[serde(default)]
    pub start_offset_ms: i64,
    /// Last packet, ms after the call session started.
    #[serde(default)]
    pub end_offset_ms: i64,
    /// From the first packet to the last by RTP time.
    #[serde(default)]
    pub rtp_duration_ms: i64,
    /// From the first packet to the last by arrival.
    #[serde(default)]
    pub unix_duration_ms: i64,
    /// `unix_duration_ms - rtp_duration_ms`.
    #[serde(default)]
    pub drift_ms: i64,
    /// RTP packets in the dump (RTCP not counted).
    #[serde(default)]
    pub rtp_packets: u64,
}

/// A picture size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_file_from_another_recorder_reads() {
        let json = r#"{"call_type":"default","call_id":"c","call_session_id":"s",
            "call_start_time":"2026-01-01T00:00:00Z","participant_id":"u","user_session_id":"us",
            "segments":{"audio":[{"base_filename":"a_1","codec":"audio/opus","track_id":"t",
            "track_type":"TRACK_TYPE_SCREEN_SHARE_AUDIO","first_rtp_rtp_timestamp":5,
            "first_rtp_unix_timestamp":1000,"extra":true}]}}"#;
        let m: TimingMetadata = serde_json::from_str(json).unwrap();
        let s = &m.segments.audio[0];
        assert_eq!(s.track_type, TrackType::ScreenShareAudio);
        assert_eq!(
            (s.codec.as_str(), s.rtp_packets, s.ssrc),
            ("audio/opus", 0, 0)
        );
        assert!(m.segments.video.is_empty());
        assert_eq!(m.call.call_id, "c");
    }
}
