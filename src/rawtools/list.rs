//! `list-tracks`: what an archive holds, track by track.

use serde::Serialize;

use crate::rtp::archive::Archive;

/// One track of a participant session, over all its segments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackInfo {
    /// The user id.
    pub user_id: String,
    /// The participant session.
    pub session_id: String,
    /// The track id.
    pub track_id: String,
    /// `audio` or `video`.
    pub track_type: &'static str,
    /// Whether it comes from a shared screen.
    pub is_screenshare: bool,
    /// The codec's SDP name.
    pub codec: String,
    /// How many segments (one per SSRC: restarts, reconnections).
    pub segments: usize,
    /// Arrival of its first packet, unix ms.
    pub first_packet_ms: i64,
    /// Arrival of its last packet, unix ms.
    pub last_packet_ms: i64,
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
    /// A JSON array of tracks.
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
    let mut out: Vec<TrackInfo> = Vec::new();
    for session in &archive.sessions {
        let first = out.len();
        for s in session.segments.iter().map(|f| &f.segment) {
            let audio = s.track_type.is_audio();
            if kind.is_some_and(|k| (k == KindFilter::Audio) != audio) {
                continue;
            }
            match out[first..].iter_mut().find(|t| t.track_id == s.track_id) {
                Some(t) => {
                    t.segments += 1;
                    t.first_packet_ms = t.first_packet_ms.min(s.first_rtp_unix_timestamp);
                    t.last_packet_ms = t.last_packet_ms.max(s.last_rtp_unix_timestamp);
                }
                None => out.push(TrackInfo {
                    user_id: session.metadata.participant_id.clone(),
                    session_id: session.metadata.user_session_id.clone(),
                    track_id: s.track_id.clone(),
                    track_type: if audio { "audio" } else { "video" },
                    is_screenshare: s.track_type.is_screen(),
                    codec: s.codec_name().to_owned(),
                    segments: 1,
                    first_packet_ms: s.first_rtp_unix_timestamp,
                    last_packet_ms: s.last_rtp_unix_timestamp.max(s.first_rtp_unix_timestamp),
                }),
            }
        }
    }
    out
}

/// `tracks` printed in `format`.
pub fn render(tracks: &[TrackInfo], format: ListFormat) -> String {
    let distinct = |field: fn(&TrackInfo) -> &str| {
        let mut seen: Vec<&str> = Vec::new();
        for t in tracks {
            if !seen.contains(&field(t)) {
                seen.push(field(t));
            }
        }
        seen.iter().map(|s| format!("{s}\n")).collect::<String>()
    };
    match format {
        ListFormat::Json => serde_json::to_string_pretty(tracks).expect("tracks serialize") + "\n",
        ListFormat::Users => distinct(|t| &t.user_id),
        ListFormat::Sessions => distinct(|t| &t.session_id),
        ListFormat::Tracks => distinct(|t| &t.track_id),
        ListFormat::Table => table(tracks),
    }
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
                t.track_type.to_owned(),
                if t.is_screenshare { "yes" } else { "no" }.to_owned(),
                t.codec.clone(),
                t.segments.to_string(),
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
