//! Any datagrams into a session as reel sets it up (an offer answered with reel's WebRTC
//! configuration: ICE-lite, RTP mode, its codecs and header extensions): each is demultiplexed
//! as STUN, DTLS, RTP or RTCP and handled, with time moving on between them, and the session's
//! output drained as a peer drains it. Errors are fine; panics are not.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use reel::media::negotiate;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{IceCreds, Input, Output, RtcConfig};

#[derive(Debug, Arbitrary)]
struct Datagram {
    /// Time since the previous one, ms.
    after_ms: u8,
    bytes: Vec<u8>,
}

/// A publisher's offer of audio and video, as a browser makes one.
fn offer() -> &'static str {
    static OFFER: OnceLock<String> = OnceLock::new();
    OFFER.get_or_init(|| {
        let mut client = RtcConfig::new().build(Instant::now());
        let mut api = client.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, _) = api.apply().expect("an offer with two m-lines");
        offer.to_sdp_string()
    })
}

fuzz_target!(|datagrams: Vec<Datagram>| {
    let local = SocketAddr::from(([127, 0, 0, 1], 50_000));
    let source = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let creds = IceCreds {
        ufrag: "fuzz".into(),
        pass: "fuzzfuzzfuzzfuzzfuzzfuzz".into(),
    };
    let mut session = negotiate(offer(), creds, &[local]).expect("the offer is answered");
    let mut now = Instant::now();
    for d in datagrams {
        now += Duration::from_millis(u64::from(d.after_ms));
        if let Ok(contents) = d.bytes.as_slice().try_into() {
            let receive = Receive {
                proto: Protocol::Udp,
                source,
                destination: local,
                contents,
            };
            let _ = session.rtc.handle_input(Input::Receive(now, receive));
        }
        let _ = session.rtc.handle_input(Input::Timeout(now));
        for _ in 0..1000 {
            match session.rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if !session.rtc.is_alive() {
            return;
        }
    }
});
