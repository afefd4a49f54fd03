//! What a session does with the bytes of an offer and of its trickle fragments, answered
//! with reel's WebRTC configuration.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};

use super::MediaError;
use super::sdp;

/// An offer answered: the engine that will carry the session, and the answer's SDP.
pub struct Negotiated {
    /// The session's engine, holding both descriptions.
    pub rtc: Rtc,
    /// The answer.
    pub answer: String,
}

/// Reads `offer` (checked by [`sdp::check_offer`] first) and answers it with ICE `creds` and
/// `local` as host candidates.
pub fn negotiate(
    offer: &str,
    creds: IceCreds,
    local: &[SocketAddr],
) -> Result<Negotiated, MediaError> {
    let parsed = SdpOffer::from_sdp_string(offer)
        .map_err(|e| MediaError::BadOffer(format!("malformed SDP: {e}")))?;
    if local.is_empty() {
        return Err(MediaError::Internal("no advertised address".into()));
    }
    let mut rtc = rtc_config(creds).build(Instant::now());
    for addr in local {
        let c = Candidate::host(*addr, "udp")
            .map_err(|e| MediaError::Internal(format!("bad candidate {addr}: {e}")))?;
        rtc.add_local_candidate(c);
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(parsed)
        .map_err(|e| MediaError::BadOffer(format!("cannot answer the offer: {e}")))?
        .to_sdp_string();
    Ok(Negotiated { rtc, answer })
}

/// Restarts ICE with the client's new `ufrag` and `pwd`: `offer` (the session's original)
/// with them is answered anew. Returns the new answer.
pub fn restart_ice(
    rtc: &mut Rtc,
    offer: &str,
    ufrag: &str,
    pwd: &str,
) -> Result<String, MediaError> {
    let offer = sdp::with_credentials(offer, ufrag, pwd);
    let offer = SdpOffer::from_sdp_string(&offer)
        .map_err(|e| MediaError::BadOffer(format!("cannot restart ICE: {e}")))?;
    Ok(rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| MediaError::BadOffer(format!("cannot restart ICE: {e}")))?
        .to_sdp_string())
}

/// Adds trickled `candidates` (`candidate:` lines) as the client's.
pub fn add_candidates(rtc: &mut Rtc, candidates: &[String]) -> Result<(), MediaError> {
    for c in candidates {
        match Candidate::from_sdp_string(c) {
            Ok(c) => rtc.add_remote_candidate(c),
            Err(e) => return Err(MediaError::BadOffer(format!("bad candidate {c:?}: {e}"))),
        }
    }
    Ok(())
}

/// The RTP header extensions reel negotiates: str0m's standard set without video orientation.
/// Declining it makes senders rotate frames before encoding (libwebrtc does when it is not
/// negotiated), so every recording and player shows the picture upright, and an orientation
/// change reaches recordings as a change of picture size, which their streams keep.
fn extensions() -> ExtensionMap {
    let mut map = ExtensionMap::empty();
    for (id, ext) in [
        (1, Extension::AudioLevel),
        (2, Extension::AbsoluteSendTime),
        (3, Extension::TransportSequenceNumber),
        (4, Extension::RtpMid),
        (10, Extension::RtpStreamId),
        (11, Extension::RepairedRtpStreamId),
    ] {
        map.set(id, ext);
    }
    map
}

fn rtc_config(creds: IceCreds) -> RtcConfig {
    RtcConfig::new()
        .set_extension_map(extensions())
        .set_ice_lite(true)
        .set_rtp_mode(true)
        // Publishers measure round trips from reel's receiver reports: audio's, like video's,
        // come every second rather than str0m's five, so a new publisher has one at once.
        .set_rtcp_report_interval_audio(Duration::from_secs(1))
        .set_local_ice_credentials(creds)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_h264(true)
        .enable_vp9(true)
        .enable_av1(true)
}
