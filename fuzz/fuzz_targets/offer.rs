//! Any bytes as the bodies of a WHIP or WHEP request and of a trickle-ICE PATCH to its
//! session, split at the first NUL: the offer is checked as a publisher's and as a player's,
//! answered with reel's WebRTC configuration, then the fragment is parsed and trickled in
//! (candidates) or restarts ICE (credentials). Errors are fine; panics are not.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use reel::media::{add_candidates, check_offer, negotiate, parse_fragment, restart_ice};
use str0m::IceCreds;

fuzz_target!(|data: &[u8]| {
    let (offer, fragment) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(offer) = std::str::from_utf8(offer) else {
        return;
    };
    let publish = check_offer(offer, true);
    let play = check_offer(offer, false);
    if publish.is_err() && play.is_err() {
        return;
    }
    let local = [SocketAddr::from(([127, 0, 0, 1], 50_000))];
    let Ok(mut session) = negotiate(offer, IceCreds::new(), &local) else {
        return;
    };
    assert!(session.answer.starts_with("v=0"), "{}", session.answer);
    let Some(Ok(fragment)) = fragment.map(std::str::from_utf8) else {
        return;
    };
    let Ok(fragment) = parse_fragment(fragment) else {
        return;
    };
    match &fragment.credentials {
        Some((ufrag, pwd)) => {
            let _ = restart_ice(&mut session.rtc, offer, ufrag, pwd);
        }
        None => {
            let _ = add_candidates(&mut session.rtc, &fragment.candidates);
        }
    }
});
