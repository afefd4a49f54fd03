//! `list-tracks`: what an archive holds, track by track.

use serde::Serialize;

use crate::domain::Timestamp;
use crate::rtp::TrackType;
use crate::rtp::archive::Archive;

/// One track of a participant session, over all its segments. Its JSON has the fields and
/// names of the reference tool's `list-tracks --format json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    /// The call type.
    pub call_type: String,
    /// The call id.
    pub call_id: String,
    /// The call session.
    pub call_session_id: String,
    /// When the call session started (RFC 3339, as the metadata says).
    pub call_start_time: String,
    /// The user id.
    pub user_id: String,
    /// The participant session.
    pub session_id: String,
    /// The track id.
    pub track_id: String,
    /// `TRACK_TYPE_AUDIO`, `TRACK_TYPE_VIDEO`, `TRACK_TYPE_SCREEN_SHARE`, ...
    pub track_type: TrackType,
    /// `audio` or `video`.
    pub track_kind: &'static str,
    /// Whether it comes from a shared screen.
    pub is_screenshare: bool,
    /// The codec as the metadata names it (`audio/opus`, `video/VP8`, ...).
    pub codec: String,
    /// How many segments (one per SSRC: restarts, reconnections).
    pub segment_count: usize,
    /// Arrival of its first packet (RFC 3339).
    pub track_start_time: String,
    /// Arrival of its last packet (RFC 3339).
    pub track_end_time: String,
    /// Its segments in time order.
    pub segments: Vec<SegmentInfo>,
}

/// One segment of a track.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentInfo {
    /// The base name of its files.
    pub base_filename: String,
    /// Its dump's path in the archive.
    pub rtpdump_path: String,
    /// Its session description's path in the archive.
    pub sdp_path: String,
    /// Its SSRC (0 when the metadata does not say).
    pub ssrc: u32,
    /// Arrival of its first packet (RFC 3339).
    pub start_time: String,
    /// Arrival of its last packet (RFC 3339).
    pub end_time: String,
    #[serde(skip)]
    first_ms: i64,
    #[serde(skip)]
    last_ms: i64,
}

/// What `list-tracks --format json` prints: the tracks, and the distinct users and
/// participant sessions among them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing<'a> {
    tracks: &'a [TrackInfo],
    user_ids: Vec<&'a str>,
    sessions: Vec<&'a str>,
}

/// Which kind of track to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KindFilter {
    /// Microphones and screen-share audio.
    Audio,
    /// Cameras and screen shares.
    Video,
}

/// How `list-tracks` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for people.
    Table,
    /// JSON: `{"tracks": [...], "userIds": [...], "sessions": [...]}`.
    Json,
    /// The user ids, one per line.
    Users,
    /// The participant session ids, one per line.
    Sessions,
    /// The track ids, one per line.
    Tracks,
}

/// The tracks of `archive`, by user, session and first appearance, of `kind` if given.
pub fn tracks(archive: &Archive, kind: Option<KindFilter>) -> Vec<TrackInfo> {
    let time = |ms: i64| Timestamp::from_unix_nanos(ms.saturating_mul(1_000_000)).to_rfc3339();
    let mut out: Vec<TrackInfo> = Vec::new();
    for session in &archive.sessions {
        let m = &session.metadata;
        let first = out.len();
        for f in &session.segments {
            let s = &f.segment;
            let audio = s.track_type.is_audio();
            if kind.is_some_and(|k| (k == KindFilter::Audio) != audio) {
                continue;
            }
            let last_ms = s.last_rtp_unix_timestamp.max(s.first_rtp_unix_timestamp);
            let segment = SegmentInfo {
                base_filename: s.base_filename.clone(),
                rtpdump_path: f.dump.clone(),
                sdp_path: sdp_path(&f.dump),
                ssrc: s.ssrc,
                start_time: time(s.first_rtp_unix_timestamp),
                end_time: time(last_ms),
                first_ms: s.first_rtp_unix_timestamp,
                last_ms,
            };
            match out[first..].iter_mut().find(|t| t.track_id == s.track_id) {
                Some(t) => t.segments.push(segment),
                None => out.push(TrackInfo {
                    call_type: m.call.call_type.clone(),
                    call_id: m.call.call_id.clone(),
                    call_session_id: m.call.call_session_id.clone(),
                    call_start_time: m.call.call_start_time.clone(),
                    user_id: m.participant_id.clone(),
                    session_id: m.user_session_id.clone(),
                    track_id: s.track_id.clone(),
                    track_type: s.track_type,
                    track_kind: if audio { "audio" } else { "video" },
                    is_screenshare: s.track_type.is_screen(),
                    codec: s.codec.clone(),
                    segment_count: 0,
                    track_start_time: String::new(),
                    track_end_time: String::new(),
                    segments: vec![segment],
                }),
            }
        }
    }
    for t in &mut out {
        t.segments.sort_by_key(|s| s.first_ms);
        t.segment_count = t.segments.len();
        let first = t.segments.iter().map(|s| s.first_ms).min().unwrap_or(0);
        let last = t.segments.iter().map(|s| s.last_ms).max().unwrap_or(0);
        t.track_start_time = time(first);
        t.track_end_time = time(last);
    }
    out
}

/// The `.sdp` beside a dump.
fn sdp_path(dump: &str) -> String {
    let stem = dump.strip_suffix(".rtpdump").unwrap_or(dump);
    format!("{stem}.sdp")
}

/// `tracks` printed in `format`.
pub fn render(tracks: &[TrackInfo], format: ListFormat) -> String {
    let lines = |ids: Vec<&str>| ids.iter().map(|s| format!("{s}\n")).collect::<String>();
    match format {
        ListFormat::Json => {
            let listing = Listing {
                tracks,
                user_ids: distinct(tracks, |t| &t.user_id),
                sessions: distinct(tracks, |t| &t.session_id),
            };
            serde_json::to_string_pretty(&listing).expect("tracks serialize") + "\n"
        }
        ListFormat::Users => lines(distinct(tracks, |t| &t.user_id)),
        ListFormat::Sessions => lines(distinct(tracks, |t| &t.session_id)),
        ListFormat::Tracks => lines(distinct(tracks, |t| &t.track_id)),
        ListFormat::Table => table(tracks),
    }
}

/// The distinct values of `field` among `tracks`, in order of first appearance.
fn distinct(tracks: &[TrackInfo], field: fn(&TrackInfo) -> &str) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for t in tracks {
        if !seen.contains(&field(t)) {
            seen.push(field(t));
        }
    }
    seen
}

fn table(tracks: &[TrackInfo]) -> String {
    let header = [
        "USER ID",
        "SESSION ID",
        "TRACK ID",
        "TYPE",
        "SCREENSHARE",
        "CODEC",
        "SEGMENTS",
    ];
    let rows: Vec<[String; 7]> = tracks
        .iter()
        .map(|t| {
            [
                t.user_id.clone(),
                t.session_id.clone(),
                t.track_id.clone(),
                t.track_kind.to_owned(),
                if t.is_screenshare { "yes" } else { "no" }.to_owned(),
                t.codec
                    .split_once('/')
                    .map_or(&*t.codec, |(_, n)| n)
                    .to_owned(),
                t.segment_count.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
