//! One track's packets, as they arrived, into frames on the wall clock: reordered,
//! depacketized, timed from their RTP timestamps anchored at the arrival of the track's
//! first frame, so that playback time equals wall time.
//!
//! - Video after a loss or a malformed payload waits for the next key frame, so that no
//!   frame is written that cannot decode; the caller is told to ask for one.
//! - Audio gaps (loss, or DTX silences in which the sender sends nothing) are filled with
//!   empty Opus packets (a TOC byte alone), which decoders turn into concealment or
//!   silence of the packet's duration, so that decoded audio lasts the wall time too.
//! - A new SSRC starts a new segment, anchored anew. A clock that strays more than half a
//!   second from the arrival times is anchored anew as well: at once when frames arrive
//!   early (the sender's clock jumped ahead), but only once it is clear when they arrive
//!   late. A sender starved of CPU sends what it captured meanwhile as fast as it can, late
//!   at first and catching up: those frames keep their times. A sender that stopped its RTP
//!   clock while muted stays as late: once its frames have arrived for [`CONFIRM_US`]
//!   without catching up, they move to when they arrived (the silence is filled).

use super::MediaCodec;
use super::depacketize::{Depacketizer, Frame};
use super::reorder::{Released, Reorder};

/// How far the RTP clock may stray from arrival times before it is anchored anew.
const MAX_STRAY_US: i64 = 500_000;
/// How long frames arriving late and not catching up are held before their clock is
/// anchored anew.
pub const CONFIRM_US: i64 = 300_000;
/// Longest that late frames are held, even if they seem to catch up.
const MAX_HOLD_US: i64 = 3_000_000;
/// Longest audio gap filled with empty packets. Nothing that sends audio goes longer without
/// a packet while its track lives (with DTX, a packet comes every 400 ms at least), so a
/// longer gap is a clock jump or a hostile dump claiming days of silence, which would
/// otherwise take memory and file space without end: past this it stays a gap in time.
const MAX_FILL_US: i64 = 600_000_000;
/// Least time between two video frames.
const MIN_VIDEO_STEP_US: i64 = 1_000;
/// Most a move of frames already under way changes one video frame's time: at 30 frames a
/// second, playback runs at most 12% fast or slow while it lasts.
const MAX_SLEW_PER_FRAME_US: i64 = 4_000;

/// How a timeline waits for late packets and fills what the sender did not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineOptions {
    /// Most packets held waiting for a missing one.
    pub reorder_packets: usize,
    /// Longest wait for a missing packet, in arrival milliseconds.
    pub reorder_ms: i64,
    /// Fill audio gaps inside a segment (loss, DTX silences).
    pub fill_within: bool,
    /// Fill audio gaps between segments, and hold the last video frame across them.
    pub fill_between: bool,
}

impl TimelineOptions {
    /// For recording live: about 150 ms of waiting (enough for retransmissions on a path
    /// with little delay, and a short delay before frames reach the file), every gap filled.
    pub fn live(codec: MediaCodec) -> Self {
        Self {
            reorder_packets: if codec.is_audio() { 64 } else { 512 },
            reorder_ms: 150,
            fill_within: true,
            fill_between: true,
        }
    }

    /// For dumps read afterwards, where waiting costs only memory: 2 s or 512 audio / 4096
    /// video packets.
    pub fn offline(codec: MediaCodec, fill_within: bool, fill_between: bool) -> Self {
        Self {
            reorder_packets: if codec.is_audio() { 512 } else { 4096 },
            reorder_ms: 2000,
            fill_within,
            fill_between,
        }
    }
}

/// A packet of the track.
#[derive(Clone, Debug)]
pub struct Packet<P> {
    /// Its stream's SSRC.
    pub ssrc: u32,
    /// Extended sequence number.
    pub seq: u64,
    /// Extended RTP time.
    pub rtp_time: u64,
    /// The marker bit.
    pub marker: bool,
    /// The RTP payload.
    pub payload: P,
    /// Arrival, in wall-clock microseconds.
    pub arrival_us: i64,
}

/// A frame and its place on the wall clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedFrame {
    /// Presentation time, wall-clock microseconds.
    pub pts_us: i64,
    /// Duration in microseconds: a video frame's lasts until the next one (each video
    /// frame is held until the next comes).
    pub duration_us: i64,
    /// The coded frame.
    pub data: Vec<u8>,
    /// Decoding can start here.
    pub keyframe: bool,
}

/// What happened to a track so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimelineStats {
    /// Packets taken.
    pub packets: u64,
    /// Packets never received.
    pub lost: u64,
    /// Duplicates and packets too late to use.
    pub late: u64,
    /// Payloads that did not parse.
    pub malformed: u64,
    /// Video frames dropped while waiting for a key frame.
    pub skipped_frames: u64,
    /// Empty audio packets put in gaps.
    pub filled: u64,
}

/// Where a segment's RTP time sits on the wall clock.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    rtp_time: u64,
    us: i64,
}

/// One track's timeline; `P` is the payload's storage.
#[derive(Debug)]
pub struct Timeline<P> {
    codec: MediaCodec,
    options: TimelineOptions,
    reorder: Reorder<Held<P>>,
    depacketizer: Depacketizer,
    ssrc: Option<u32>,
    anchor: Option<Anchor>,
    need_keyframe: bool,
    keyframe_wanted: bool,
    /// Where the next audio packet should start, and the TOC byte of the last one.
    audio_next: Option<(i64, u8)>,
    /// The last video frame, held until the next one gives its duration.
    video_held: Option<TimedFrame>,
    /// The time of the last video frame given out.
    video_out_us: Option<i64>,
    /// What is left of a move of the coming video frames, made a little at each frame.
    slew_us: i64,
    /// Frames arriving later than their clock says, held until it is clear whether the
    /// sender catches up or its clock has to be anchored anew.
    late: Vec<LateFrame>,
    frames: Vec<Frame>,
    stats: TimelineStats,
}

/// A frame that arrived later than its clock says.
#[derive(Debug)]
struct LateFrame {
    frame: Frame,
    arrival_us: i64,
    /// How much later, µs.
    lateness_us: i64,
}

#[derive(Debug)]
struct Held<P> {
    rtp_time: u64,
    marker: bool,
    payload: P,
    arrival_us: i64,
}

impl<P: AsRef<[u8]>> Timeline<P> {
    /// An empty timeline for `codec`, recording live.
    pub fn new(codec: MediaCodec) -> Self {
        Self::with_options(codec, TimelineOptions::live(codec))
    }

    /// An empty timeline for `codec` with `options`.
    pub fn with_options(codec: MediaCodec, options: TimelineOptions) -> Self {
        Self {
            codec,
            options,
            reorder: Reorder::new(options.reorder_packets, options.reorder_ms),
            depacketizer: Depacketizer::new(codec),
            ssrc: None,
            anchor: None,
            need_keyframe: !codec.is_audio(),
            keyframe_wanted: false,
            audio_next: None,
            video_held: None,
            video_out_us: None,
            slew_us: 0,
            late: Vec::new(),
            frames: Vec::new(),
            stats: TimelineStats::default(),
        }
    }

    /// What happened so far.
    pub fn stats(&self) -> TimelineStats {
        TimelineStats {
            late: self.reorder.late(),
            ..self.stats
        }
    }

    /// The depacketizer (for the codec private data of the frames so far).
    pub fn depacketizer(&self) -> &Depacketizer {
        &self.depacketizer
    }

    /// How much later than `sender_us` the wall-clock time this timeline gives the extended
    /// RTP time `rtp_time` is, where `sender_us` is the sender's clock at that RTP time (from
    /// a sender report); `None` until the segment's first frame.
    pub fn offset_from_sender(&self, rtp_time: u64, sender_us: i64) -> Option<i64> {
        let a = self.anchor?;
        let ticks = self.codec.ticks_per_ms() as i64;
        Some(a.us + (rtp_time as i64 - a.rtp_time as i64) * 1000 / ticks - sender_us)
    }

    /// Moves a video segment's frames `delta_us` later (or earlier). If `moved_out`, the
    /// caller moved the frames already given out by as much, and the move is made at once;
    /// otherwise it is spread over the coming frames, a few milliseconds each, so that the
    /// picture neither jumps nor freezes.
    pub fn shift(&mut self, delta_us: i64, moved_out: bool) {
        if !moved_out {
            self.slew_us += delta_us;
            return;
        }
        if let Some(a) = &mut self.anchor {
            a.us += delta_us;
        }
        if let Some(out) = &mut self.video_out_us {
            *out += delta_us;
        }
        if let Some(held) = &mut self.video_held {
            held.pts_us += delta_us;
        }
    }

    /// True once since the last call if the track needs a key frame to go on.
    pub fn take_keyframe_wanted(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    /// Takes a packet; the frames it completes go to `out`.
    pub fn push(&mut self, p: Packet<P>, out: &mut Vec<TimedFrame>) {
        if self.ssrc.is_some_and(|s| s != p.ssrc) {
            self.end_segment(out);
        }
        self.ssrc = Some(p.ssrc);
        self.stats.packets += 1;
        let held = Held {
            rtp_time: p.rtp_time,
            marker: p.marker,
            payload: p.payload,
            arrival_us: p.arrival_us,
        };
        self.reorder.push(p.seq, p.arrival_us / 1000, held);
        while let Some(r) = self.reorder.pop() {
            self.take(r, out);
        }
    }

    /// Starts a new segment (the track restarted): what is held of the last one is
    /// released, and the next frame is anchored anew.
    pub fn new_segment(&mut self, out: &mut Vec<TimedFrame>) {
        self.end_segment(out);
    }

    /// Ends the track: everything held is released.
    pub fn finish(&mut self, out: &mut Vec<TimedFrame>) {
        self.end_segment(out);
        if let Some(held) = self.video_held.take() {
            self.video_out_us = Some(held.pts_us);
            out.push(held);
        }
    }

    fn end_segment(&mut self, out: &mut Vec<TimedFrame>) {
        while let Some(r) = self.reorder.drain() {
            self.take(r, out);
        }
        let late = self.reorder.late();
        self.reorder = Reorder::new(self.options.reorder_packets, self.options.reorder_ms);
        self.stats.late += late;
        self.depacketizer.finish();
        // Still late at the end: where they arrived, unless they were catching up.
        let stuck = self.late_is_stuck();
        self.release_late(stuck, out);
        self.anchor = None;
        self.need_keyframe = !self.codec.is_audio();
    }

    fn take(&mut self, r: Released<Held<P>>, out: &mut Vec<TimedFrame>) {
        let video = !self.codec.is_audio();
        if r.lost_before > 0 {
            self.stats.lost += r.lost_before;
            if video {
                self.depacketizer.lost();
                self.wait_for_keyframe();
            }
        }
        let h = r.item;
        if self
            .depacketizer
            .push(h.rtp_time, h.marker, h.payload.as_ref(), &mut self.frames)
            .is_err()
        {
            self.stats.malformed += 1;
            if video {
                self.wait_for_keyframe();
            }
        }
        self.emit_frames(h.arrival_us, out);
    }

    fn wait_for_keyframe(&mut self) {
        self.need_keyframe = true;
        self.keyframe_wanted = true;
    }

    fn emit_frames(&mut self, arrival_us: i64, out: &mut Vec<TimedFrame>) {
        let frames = std::mem::take(&mut self.frames);
        for f in frames {
            self.emit(f, arrival_us, out);
        }
    }

    fn emit(&mut self, f: Frame, arrival_us: i64, out: &mut Vec<TimedFrame>) {
        if self.need_keyframe {
            if !f.keyframe {
                self.stats.skipped_frames += 1;
                self.keyframe_wanted = true;
                return;
            }
            self.need_keyframe = false;
        }
        // The first frame of a segment: what comes before it is a gap between segments.
        let Some(anchor) = self.anchor else {
            self.anchor = Some(Anchor {
                rtp_time: f.rtp_time,
                us: arrival_us,
            });
            return self.place(f, true, out);
        };
        let lateness_us = arrival_us - self.at(anchor, f.rtp_time);
        if lateness_us > MAX_STRAY_US || !self.late.is_empty() {
            self.late.push(LateFrame {
                frame: f,
                arrival_us,
                lateness_us,
            });
            let (first, last) = (&self.late[0], &self.late[self.late.len() - 1]);
            let held_us = last.arrival_us - first.arrival_us;
            if last.lateness_us <= MAX_STRAY_US {
                // Caught up: a burst after a stall; every frame keeps its time.
                self.release_late(false, out);
            } else if held_us >= MAX_HOLD_US || (held_us >= CONFIRM_US && self.late_is_stuck()) {
                self.release_late(true, out);
            }
            return;
        }
        if lateness_us < -MAX_STRAY_US {
            // Ahead of its clock: the sender's clock jumped.
            self.anchor = Some(Anchor {
                rtp_time: f.rtp_time,
                us: arrival_us,
            });
        }
        self.place(f, false, out);
    }

    /// Whether the late frames have arrived for [`CONFIRM_US`] without catching up: their
    /// lateness fell by less than a quarter of the time they took to arrive (a sender
    /// catching up sends faster than its clock runs).
    fn late_is_stuck(&self) -> bool {
        let (Some(first), Some(last)) = (self.late.first(), self.late.last()) else {
            return false;
        };
        let held_us = last.arrival_us - first.arrival_us;
        held_us >= CONFIRM_US && first.lateness_us - last.lateness_us < held_us / 4
    }

    /// Where the clock puts `rtp_time` from `anchor`, µs.
    fn at(&self, a: Anchor, rtp_time: u64) -> i64 {
        let ticks = self.codec.ticks_per_ms() as i64;
        a.us + (rtp_time as i64 - a.rtp_time as i64) * 1000 / ticks
    }

    /// Places the late frames; with `reanchor`, the clock first moves so that the least
    /// late of them lands where it arrived.
    fn release_late(&mut self, reanchor: bool, out: &mut Vec<TimedFrame>) {
        if self.late.is_empty() {
            return;
        }
        if reanchor
            && let Some(a) = &mut self.anchor
            && let Some(least) = self.late.iter().map(|l| l.lateness_us).min()
        {
            a.us += least.max(0);
        }
        for l in std::mem::take(&mut self.late) {
            self.place(l.frame, false, out);
        }
    }

    /// Puts `f` on the wall clock and gives it out.
    fn place(&mut self, f: Frame, segment_start: bool, out: &mut Vec<TimedFrame>) {
        let mut anchor = self.anchor.expect("placed frames are anchored");
        if self.slew_us != 0 && !self.codec.is_audio() {
            let step = self
                .slew_us
                .clamp(-MAX_SLEW_PER_FRAME_US, MAX_SLEW_PER_FRAME_US);
            self.slew_us -= step;
            anchor.us += step;
            self.anchor = Some(anchor);
        }
        let mut pts_us = self.at(anchor, f.rtp_time);
        if !self.codec.is_audio() {
            // Video times only go forward: a frame that would not come after the one before
            // (a picture sent in two frames, a clock anchored anew) follows it by 1 ms, the
            // resolution of a Matroska file.
            if let Some(held) = &self.video_held {
                pts_us = pts_us.max(held.pts_us + MIN_VIDEO_STEP_US);
            }
            // A frame lasts until the next one; the last one as long as the one before.
            let last = self.video_held.replace(TimedFrame {
                pts_us,
                duration_us: 0,
                data: f.data,
                keyframe: f.keyframe,
            });
            if let Some(mut last) = last {
                // Across segments, a frame may be held until the next segment's first.
                let longest = if segment_start && self.options.fill_between {
                    i64::MAX
                } else {
                    MAX_STRAY_US
                };
                last.duration_us = (pts_us - last.pts_us).clamp(0, longest);
                if let Some(held) = &mut self.video_held {
                    held.duration_us = last.duration_us;
                }
                self.video_out_us = Some(last.pts_us);
                out.push(last);
            }
            return;
        }
        let duration_us = opus_samples(&f.data).map_or(20_000, |s| i64::from(s) * 1000 / 48);
        let fill = if segment_start {
            self.options.fill_between
        } else {
            self.options.fill_within
        };
        if let Some((next, toc)) = self.audio_next.filter(|_| fill) {
            let empty = [toc & 0xfc];
            let step = opus_samples(&empty).map_or(20_000, |s| i64::from(s) * 1000 / 48);
            let mut at = next;
            let until = pts_us.min(next.saturating_add(MAX_FILL_US));
            while until - at >= step {
                out.push(TimedFrame {
                    pts_us: at,
                    duration_us: step,
                    data: empty.to_vec(),
                    keyframe: true,
                });
                self.stats.filled += 1;
                at += step;
            }
        }
        self.audio_next = Some((pts_us + duration_us, f.data[0]));
        out.push(TimedFrame {
            pts_us,
            duration_us,
            data: f.data,
            keyframe: true,
        });
    }
}

/// Samples (at 48 kHz) of an Opus packet, from its TOC byte and frame count.
pub fn opus_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(packet.get(1)? & 0x3f),
    };
    Some(per_frame * frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(seq: u64, arrival_ms: i64) -> Packet<Vec<u8>> {
        Packet {
            ssrc: 1,
            seq,
            rtp_time: seq * 960,
            marker: false,
            // CELT fullband 20 ms, one frame.
            payload: vec![0xf8, 0xaa],
            arrival_us: arrival_ms * 1000,
        }
    }

    #[test]
    fn audio_gaps_are_filled_up_to_the_wall_time() {
        let mut t = Timeline::new(MediaCodec::Opus);
        let mut out = Vec::new();
        for seq in [0, 1, 2, 3, 7, 8, 9] {
            t.push(audio(seq, 1000 + seq as i64 * 20), &mut out);
        }
        // A DTX silence: the next packet's RTP time is 50 packets ahead.
        let mut after_silence = audio(10, 2200);
        after_silence.rtp_time = 60 * 960;
        t.push(after_silence, &mut out);
        t.finish(&mut out);
        let times: Vec<i64> = out.iter().map(|f| f.pts_us / 1000).collect();
        let expected: Vec<i64> = (0..=60).map(|i| 1000 + i * 20).collect();
        assert_eq!(times, expected);
        assert_eq!(out[4].data, [0xf8]);
        assert_eq!(t.stats().lost, 3);
        assert_eq!(t.stats().filled, 3 + 50);
    }

    #[test]
    fn a_gap_of_days_is_filled_for_ten_minutes_only() {
        let mut t = Timeline::with_options(
            MediaCodec::Opus,
            TimelineOptions::offline(MediaCodec::Opus, true, true),
        );
        let mut out = Vec::new();
        t.push(audio(0, 1000), &mut out);
        // A dump claiming the next packet came 40 days later, its clock agreeing.
        let days_us: i64 = 40 * 86_400 * 1_000_000;
        let mut late = audio(1, 1000 + days_us / 1000);
        late.rtp_time = (days_us / 1000 * 48) as u64;
        t.push(late, &mut out);
        t.finish(&mut out);
        assert_eq!(t.stats().filled, 600_000_000 / 20_000);
        let last = out.last().unwrap();
        assert_eq!(last.data, [0xf8, 0xaa]);
        assert_eq!(last.pts_us - out[0].pts_us, days_us);
    }

    #[test]
    fn video_waits_for_a_key_frame_after_a_loss() {
        let mut t = Timeline::new(MediaCodec::Vp8);
        let mut out = Vec::new();
        let frame = |seq: u64, key: bool| Packet {
            ssrc: 7,
            seq,
            rtp_time: 90_000 + seq * 3000,
            marker: true,
            payload: vec![0x10, if key { 0x00 } else { 0x01 }],
            arrival_us: 5_000_000 + seq as i64 * 33_333,
        };
        // Delta frames before the first key frame go; so do those after a loss.
        for (seq, key) in [
            (0, false),
            (1, true),
            (2, false),
            (4, false),
            (5, true),
            (6, false),
        ] {
            t.push(frame(seq, key), &mut out);
        }
        t.finish(&mut out);
        let got: Vec<(i64, i64, bool)> = out
            .iter()
            .map(|f| (f.pts_us, f.duration_us, f.keyframe))
            .collect();
        assert_eq!(
            got,
            [
                (5_033_333, 33_333, true),
                (5_066_666, 100_000, false),
                (5_166_666, 33_333, true),
                (5_199_999, 33_333, false)
            ]
        );
        assert!(t.take_keyframe_wanted());
        assert_eq!(t.stats().skipped_frames, 2);
    }

    /// A sender that closed in the middle of its last frame: that frame is left out, rather
    /// than written half (what decoders fail on), a millisecond after the one before.
    #[test]
    fn a_last_frame_half_sent_is_left_out() {
        let mut t = Timeline::new(MediaCodec::Vp8);
        let mut out = Vec::new();
        for (seq, marker) in [(0, true), (1, true), (2, true), (3, false)] {
            t.push(
                Packet {
                    ssrc: 5,
                    seq,
                    rtp_time: 90_000 + seq * 3000,
                    marker,
                    payload: vec![0x10, if seq == 0 { 0x00 } else { 0x01 }, 0xaa],
                    arrival_us: 2_000_000 + seq as i64 * 33_333,
                },
                &mut out,
            );
        }
        t.finish(&mut out);
        let times: Vec<i64> = out.iter().map(|f| f.pts_us).collect();
        assert_eq!(times, [2_000_000, 2_033_333, 2_066_666]);
    }

    #[test]
    fn video_times_only_go_forward() {
        let mut t = Timeline::new(MediaCodec::Vp8);
        let mut out = Vec::new();
        // A key frame, then a frame with the same RTP time, then one from before it.
        for (seq, rtp_time, key) in [(0, 90_000, true), (1, 90_000, false), (2, 87_000, false)] {
            let payload = vec![0x10, if key { 0x00 } else { 0x01 }];
            let arrival_us = 1_000_000 + seq as i64 * 10_000;
            t.push(
                Packet {
                    ssrc: 3,
                    seq,
                    rtp_time,
                    marker: true,
                    payload,
                    arrival_us,
                },
                &mut out,
            );
        }
        t.finish(&mut out);
        let times: Vec<i64> = out.iter().map(|f| f.pts_us).collect();
        assert_eq!(times, [1_000_000, 1_001_000, 1_002_000]);
    }

    #[test]
    fn sender_offsets_and_shifts() {
        // 30 fps video arriving 100 ms after the sender's clock says it was captured.
        let frame = |seq: u64| Packet {
            ssrc: 3,
            seq,
            rtp_time: seq * 3000,
            marker: true,
            payload: vec![0x10, if seq == 0 { 0x00 } else { 0x01 }],
            arrival_us: 1_100_000 + seq as i64 * 33_333,
        };
        let sender_us = |rtp_time: u64| 1_000_000 + rtp_time as i64 * 1000 / 90;
        let mut t = Timeline::new(MediaCodec::Vp8);
        let mut out = Vec::new();
        let mut seq = 0;
        while t.offset_from_sender(0, sender_us(0)).is_none() {
            t.push(frame(seq), &mut out);
            seq += 1;
        }
        assert_eq!(t.offset_from_sender(9000, sender_us(9000)), Some(100_000));
        // Moved with the frames already given out: every frame sits at its sender time.
        t.shift(-100_000, true);
        out.iter_mut().for_each(|f| f.pts_us -= 100_000);
        for _ in 0..10 {
            t.push(frame(seq), &mut out);
            seq += 1;
        }
        assert_eq!(t.offset_from_sender(0, sender_us(0)), Some(0));
        for (n, f) in out.iter().enumerate() {
            assert_eq!(f.pts_us, sender_us(n as u64 * 3000), "frame {n}");
        }
        // Moved 50 ms earlier after frames were given out: 4 ms a frame, so the last frames
        // sit at the new offset and no frame came closer than 29 ms to the one before.
        t.shift(-50_000, false);
        for _ in 0..20 {
            t.push(frame(seq), &mut out);
            seq += 1;
        }
        t.finish(&mut out);
        let steps: Vec<i64> = out.windows(2).map(|w| w[1].pts_us - w[0].pts_us).collect();
        assert!(
            steps.iter().all(|s| (29_333..=33_334).contains(s)),
            "{steps:?}"
        );
        let last = out.last().unwrap();
        assert_eq!(last.pts_us, sender_us((seq - 1) * 3000) - 50_000);
    }

    #[test]
    fn a_new_ssrc_is_anchored_at_its_arrival() {
        let mut t = Timeline::new(MediaCodec::Opus);
        let mut out = Vec::new();
        t.push(audio(0, 0), &mut out);
        let mut p = audio(500, 3000);
        p.ssrc = 2;
        p.rtp_time = 12345;
        t.push(p, &mut out);
        t.finish(&mut out);
        assert_eq!(out.first().map(|f| f.pts_us), Some(0));
        assert_eq!(out.last().map(|f| f.pts_us), Some(3_000_000));
        // The gap between segments is filled too.
        assert_eq!(out.len(), 150 + 1);
    }

    /// A sender starved of CPU for 540 ms sends what it captured meanwhile in one burst: the
    /// frames keep the times their clock gives, with no silence put in and none going back.
    #[test]
    fn a_burst_after_a_stall_keeps_its_times() {
        let mut t = Timeline::new(MediaCodec::Opus);
        let mut out = Vec::new();
        for seq in 0..150u64 {
            // Packets 50 to 76 were held by the sender and all arrive with packet 77.
            let arrival_ms = if (50..77).contains(&seq) {
                77 * 20
            } else {
                seq as i64 * 20
            };
            t.push(audio(seq, 1000 + arrival_ms), &mut out);
        }
        t.finish(&mut out);
        let times: Vec<i64> = out.iter().map(|f| f.pts_us / 1000).collect();
        let expected: Vec<i64> = (0..150).map(|i| 1000 + i * 20).collect();
        assert_eq!(times, expected);
        assert_eq!(t.stats().filled, 0);
    }

    /// A sender starved of CPU for 700 ms then sends its backlog at one and a half times its
    /// clock's pace: late for almost a second and a half, but catching up all along. The
    /// frames keep their times; none is added.
    #[test]
    fn a_slow_catch_up_keeps_its_times() {
        let mut t = Timeline::new(MediaCodec::Opus);
        let mut out = Vec::new();
        let mut arrival_ms = 0i64;
        for seq in 0..200u64 {
            let due = seq as i64 * 20;
            arrival_ms = match seq {
                0..50 => due,
                50 => due + 700,
                _ => (arrival_ms + 13).max(due),
            };
            t.push(audio(seq, arrival_ms), &mut out);
        }
        t.finish(&mut out);
        let times: Vec<i64> = out.iter().map(|f| f.pts_us / 1000).collect();
        let expected: Vec<i64> = (0..200).map(|i| i * 20).collect();
        assert_eq!(times, expected);
    }

    /// A sender whose RTP clock stood still for 2 s (muted) goes on from where it stopped:
    /// once its frames have kept arriving late, they move to when they arrived, and the
    /// silence is filled.
    #[test]
    fn a_clock_that_stood_still_is_anchored_anew() {
        let mut t = Timeline::new(MediaCodec::Opus);
        let mut out = Vec::new();
        for seq in 0..100u64 {
            let arrival_ms = seq as i64 * 20 + if seq >= 50 { 2000 } else { 0 };
            t.push(audio(seq, arrival_ms), &mut out);
        }
        t.finish(&mut out);
        let times: Vec<i64> = out.iter().map(|f| f.pts_us / 1000).collect();
        assert!(times.windows(2).all(|w| w[1] - w[0] == 20), "{times:?}");
        assert_eq!(times.last(), Some(&(99 * 20 + 2000)));
        assert_eq!(t.stats().filled, 100);
    }

    #[test]
    fn opus_durations() {
        assert_eq!(opus_samples(&[0xf8]), Some(960));
        assert_eq!(opus_samples(&[0x78]), Some(960)); // SILK wideband 20 ms
        assert_eq!(opus_samples(&[0xfb, 0x03]), Some(2880));
        assert_eq!(opus_samples(&[0xfb]), None);
        assert_eq!(opus_samples(&[]), None);
        // Config 11 is SILK wideband 60 ms; code 0 is one frame.
        assert_eq!(opus_samples(&[11 << 3]), Some(2880));
        // CELT FB 20 ms, one frame; two frames; code 3 with 3 frames.
        assert_eq!(opus_samples(&[31 << 3]), Some(960));
        assert_eq!(opus_samples(&[31 << 3 | 1]), Some(1920));
        assert_eq!(opus_samples(&[31 << 3 | 3, 3]), Some(2880));
        assert_eq!(opus_samples(&[31 << 3 | 3]), None);
    }
}
