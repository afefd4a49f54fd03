//! Checks on offers before they reach the WebRTC engine, and trickle-ICE fragments.

/// Video codecs reel forwards and records.
pub const VIDEO_CODECS: [&str; 4] = ["VP8", "VP9", "H264", "AV1"];

/// What an offer asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferShape {
    /// Audio m-lines.
    pub audio: usize,
    /// Video m-lines.
    pub video: usize,
}

/// Why an offer or fragment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpProblem {
    /// Not SDP at all, or missing what every offer has.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// An m-line offers no codec reel can use.
    #[error(
        "m-line {index} ({kind}) offers no usable codec (offered: {offered}; reel takes {wanted})"
    )]
    NoCodec {
        /// 0-based index of the m-line.
        index: usize,
        /// `audio` or `video`.
        kind: String,
        /// The codec names offered.
        offered: String,
        /// The codec names reel takes for that kind.
        wanted: String,
    },
    /// More tracks than the endpoint takes.
    #[error("{0}")]
    TooManyTracks(String),
}

/// Checks `sdp` and counts its media sections. `publish` offers may carry at most one audio
/// and one video track (WHIP: one MediaStream per session).
pub fn check_offer(sdp: &str, publish: bool) -> Result<OfferShape, SdpProblem> {
    if !sdp.trim_start().starts_with("v=0") {
        return Err(SdpProblem::Malformed("it does not start with v=0".into()));
    }
    let mut shape = OfferShape::default();
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let kind = m.split(' ').next().unwrap_or_default().to_owned();
            sections.push((kind, Vec::new()));
        } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
            let Some(section) = sections.last_mut() else {
                continue;
            };
            if let Some(name) = map.split([' ', '/']).nth(1) {
                section.1.push(name.to_owned());
            }
        }
    }
    if sections.is_empty() {
        return Err(SdpProblem::Malformed("it has no m-line".into()));
    }
    for (index, (kind, codecs)) in sections.iter().enumerate() {
        let wanted: &[&str] = match kind.as_str() {
            "audio" => {
                shape.audio += 1;
                &["opus"]
            }
            "video" => {
                shape.video += 1;
                &VIDEO_CODECS
            }
            _ => continue,
        };
        if !codecs
            .iter()
            .any(|c| wanted.iter().any(|w| w.eq_ignore_ascii_case(c)))
        {
            return Err(SdpProblem::NoCodec {
                index,
                kind: kind.clone(),
                offered: if codecs.is_empty() {
                    "none".into()
                } else {
                    codecs.join(", ")
                },
                wanted: wanted.join(", "),
            });
        }
    }
    if shape.audio + shape.video == 0 {
        return Err(SdpProblem::Malformed(
            "it has no audio or video m-line".into(),
        ));
    }
    if publish && (shape.audio > 1 || shape.video > 1) {
        return Err(SdpProblem::TooManyTracks(format!(
            "a WHIP session carries at most one audio and one video track; this offer has {} audio and {} video \
             (publish a screen share or another camera as a session of its own, with ?source=screen or ?source_id=)",
            shape.audio, shape.video
        )));
    }
    Ok(shape)
}

/// A trickle-ICE fragment (`application/trickle-ice-sdpfrag`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// `a=ice-ufrag` and `a=ice-pwd`, when the client restarts ICE.
    pub credentials: Option<(String, String)>,
    /// `a=candidate:` lines, without the `a=` prefix.
    pub candidates: Vec<String>,
}

/// Parses a fragment; unknown lines are ignored.
pub fn parse_fragment(text: &str) -> Result<Fragment, SdpProblem> {
    let mut f = Fragment::default();
    let (mut ufrag, mut pwd) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            ufrag = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            pwd = Some(v.to_owned());
        } else if let Some(c) = line.strip_prefix("a=")
            && c.starts_with("candidate:")
        {
            f.candidates.push(c.to_owned());
        }
    }
    f.credentials = match (ufrag, pwd) {
        (Some(u), Some(p)) => Some((u, p)),
        (None, None) => None,
        _ => {
            return Err(SdpProblem::Malformed(
                "an ICE restart needs both a=ice-ufrag and a=ice-pwd".into(),
            ));
        }
    };
    Ok(f)
}

/// `offer` with its ICE credentials replaced (to restart ICE with the original offer).
pub fn with_credentials(offer: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(offer.len());
    for line in offer.lines() {
        let line = line.trim_end();
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// The `a=ice-ufrag` and `a=ice-pwd` of an SDP.
pub fn credentials(sdp: &str) -> Option<(String, String)> {
    let find = |p: &str| {
        sdp.lines()
            .find_map(|l| l.trim_end().strip_prefix(p).map(str::to_owned))
    };
    Some((find("a=ice-ufrag:")?, find("a=ice-pwd:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=ice-pwd:secret\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n\
        a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n";

    #[test]
    fn counts_and_checks_codecs() {
        assert_eq!(
            check_offer(OFFER, true).unwrap(),
            OfferShape { audio: 1, video: 1 }
        );
        let pcmu = OFFER.replace("opus/48000/2", "PCMU/8000");
        let e = check_offer(&pcmu, true).unwrap_err();
        assert!(
            e.to_string()
                .contains("m-line 0 (audio) offers no usable codec (offered: PCMU")
        );
        assert!(matches!(
            check_offer("hello", true),
            Err(SdpProblem::Malformed(_))
        ));
        assert!(matches!(
            check_offer("v=0\r\ns=-\r\n", true),
            Err(SdpProblem::Malformed(_))
        ));
    }

    #[test]
    fn publish_takes_one_track_of_each_kind() {
        let three = format!(
            "{OFFER}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n"
        );
        assert!(matches!(
            check_offer(&three, true),
            Err(SdpProblem::TooManyTracks(_))
        ));
        assert_eq!(check_offer(&three, false).unwrap().video, 3);
    }

    #[test]
    fn fragments_and_restarts() {
        let f = parse_fragment(
            "a=ice-ufrag:new\r\na=ice-pwd:pw\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 6000 typ host\r\na=end-of-candidates\r\n",
        )
        .unwrap();
        assert_eq!(f.credentials, Some(("new".into(), "pw".into())));
        assert_eq!(f.candidates.len(), 1);
        assert!(parse_fragment("a=ice-ufrag:x\r\n").is_err());
        let restarted = with_credentials(OFFER, "new", "pw");
        assert_eq!(credentials(&restarted), Some(("new".into(), "pw".into())));
        assert!(!restarted.contains("a=candidate"));
    }
}
