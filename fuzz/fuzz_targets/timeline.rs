//! Any packets of any codec through what extraction does with them: sequence numbers and
//! timestamps extended across wraps, reordered, depacketized, placed on the wall clock, with
//! segments restarted and video moved by sender reports, the frames taken after each step as
//! writers take them. No frame that comes out may last less than nothing. Errors are counted;
//! panics are not allowed, nor memory without bound.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use reel_rtp::extend::Extender;
use reel_rtp::timeline::{Packet, TimelineOptions};
use reel_rtp::{MediaCodec, Timeline, frame_size, packet_frame_size, starts_keyframe};

#[derive(Debug, Arbitrary)]
struct Input {
    codec: u8,
    live: bool,
    fill_within: bool,
    fill_between: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Packet {
        ssrc: u8,
        seq: u16,
        timestamp: u32,
        marker: bool,
        /// Arrival after the previous packet, ms (dumps store u32 ms offsets).
        after_ms: u16,
        payload: Vec<u8>,
    },
    NewSegment,
    Shift {
        delta_us: i32,
        moved_out: bool,
    },
    Sender {
        rtp: u32,
        sender_us: i32,
    },
}

fuzz_target!(|input: Input| {
    let codecs = [
        MediaCodec::Opus,
        MediaCodec::Vp8,
        MediaCodec::Vp9,
        MediaCodec::H264,
        MediaCodec::Av1,
    ];
    let codec = codecs[usize::from(input.codec) % codecs.len()];
    let options = if input.live {
        TimelineOptions::live(codec)
    } else {
        TimelineOptions::offline(codec, input.fill_within, input.fill_between)
    };
    let mut timeline = Timeline::with_options(codec, options);
    let (mut seq, mut ts) = (Extender::new(16), Extender::new(32));
    let mut arrival_ms: i64 = 1_700_000_000_000;
    let mut frames = Vec::new();
    for step in input.steps {
        written(codec, &mut frames);
        match step {
            Step::Packet {
                ssrc,
                seq: s,
                timestamp,
                marker,
                after_ms,
                payload,
            } => {
                arrival_ms += i64::from(after_ms);
                let _ = starts_keyframe(codec.name(), &payload);
                let _ = packet_frame_size(codec, &payload);
                timeline.push(
                    Packet {
                        ssrc: u32::from(ssrc),
                        seq: seq.extend(u64::from(s)),
                        rtp_time: ts.extend(u64::from(timestamp)),
                        marker,
                        payload,
                        arrival_us: arrival_ms * 1000,
                    },
                    &mut frames,
                );
            }
            Step::NewSegment => timeline.new_segment(&mut frames),
            Step::Shift {
                delta_us,
                moved_out,
            } => timeline.shift(i64::from(delta_us), moved_out),
            Step::Sender { rtp, sender_us } => {
                let _ = timeline.offset_from_sender(
                    ts.extend(u64::from(rtp)),
                    arrival_ms * 1000 + i64::from(sender_us),
                );
            }
        }
    }
    timeline.finish(&mut frames);
    written(codec, &mut frames);
    let _ = timeline.stats();
});

/// What a writer does with the frames a step gave: reads their sizes and takes them.
fn written(codec: MediaCodec, frames: &mut Vec<reel_rtp::timeline::TimedFrame>) {
    for f in frames.drain(..) {
        let _ = frame_size(codec, &f.data);
        assert!(f.duration_us >= 0, "negative duration: {f:?}");
    }
}
