//! Short losses in an Opus track, made good the way receivers make them good, then encoded
//! again so that every player plays the same thing.
//!
//! A track's timeline fills each hole with empty Opus packets (a TOC byte alone). libopus
//! conceals such a packet, but FFmpeg's decoder (in ffmpeg, ffprobe and the players built on
//! them) decodes it as silence; and since CELT codes each band's energy from the frame
//! before, the frames after it come out too quiet while the prediction climbs back: a packet
//! of 20 ms missing cost 75 to 170 ms of sound.
//!
//! So a hole of at most [`MAX_HOLE_US`] gets real packets instead. The track's last packets
//! are decoded, the hole is concealed (from the in-band FEC of the packet after it where
//! there is some, else by libopus's loss concealment) and encoded again by an encoder that
//! heard the same sound before it. Longer holes (a network cut, a DTX pause) stay silent.

use std::collections::VecDeque;

use opus::{Application, Bandwidth, Bitrate, Channels};
use reel_rtp::{TimedFrame, opus_samples};

/// The longest hole concealed, µs: a burst of losses, not a pause.
const MAX_HOLE_US: i64 = 100_000;
/// Packets before a hole decoded (and encoded again) to bring the codecs to its sound.
const HISTORY: usize = 5;
/// Opus's rate, Hz.
const RATE: u32 = 48_000;
/// Samples per channel in the longest Opus packet (120 ms).
const MAX_PACKET_SAMPLES: usize = 5_760;
/// Bytes of the largest packet encoded.
const MAX_PACKET_BYTES: usize = 1_500;

/// Conceals the short holes of one Opus track, as its frames come from its timeline.
#[derive(Debug, Default)]
pub struct Concealer {
    /// The last packets before the frames to come.
    history: VecDeque<Vec<u8>>,
    /// Empty packets replaced.
    concealed: u64,
}

impl Concealer {
    /// Replaces the empty packets of each hole in `frames` that is short enough and followed
    /// by a packet. A hole that cannot be concealed stays as it is.
    pub fn conceal(&mut self, frames: &mut [TimedFrame]) {
        let mut i = 0;
        while i < frames.len() {
            if !is_empty(&frames[i]) {
                self.remember(&frames[i].data);
                i += 1;
                continue;
            }
            let end = i + frames[i..].iter().take_while(|f| is_empty(f)).count();
            let hole_us: i64 = frames[i..end].iter().map(|f| f.duration_us).sum();
            let made = match frames.get(end) {
                Some(next) if hole_us <= MAX_HOLE_US && !self.history.is_empty() => {
                    let slot = opus_samples(&frames[i].data).map_or(960, |s| s as usize);
                    self.packets(end - i, slot, &next.data)
                        .inspect_err(|e| tracing::debug!(error = %e, "a hole left silent"))
                        .ok()
                }
                _ => None,
            };
            match made {
                Some(packets) => {
                    for (f, p) in frames[i..end].iter_mut().zip(packets) {
                        // What a player decodes before the next hole.
                        self.remember(&p);
                        f.data = p;
                        self.concealed += 1;
                    }
                }
                // What came before a silence says nothing of what follows it.
                None => self.history.clear(),
            }
            i = end;
        }
    }

    /// Empty packets replaced so far.
    pub fn concealed(&self) -> u64 {
        self.concealed
    }

    fn remember(&mut self, packet: &[u8]) {
        let mut kept = match self.history.len() {
            HISTORY => self.history.pop_front().unwrap_or_default(),
            _ => Vec::new(),
        };
        kept.clear();
        kept.extend_from_slice(packet);
        self.history.push_back(kept);
    }

    /// `n` packets of `slot` samples each for the hole between the history and `next`.
    fn packets(&self, n: usize, slot: usize, next: &[u8]) -> Result<Vec<Vec<u8>>, opus::Error> {
        let last = self.history.back().map_or(0, |p| p[0]);
        let (channels, width) = match last & 0x04 {
            0 => (Channels::Mono, 1),
            _ => (Channels::Stereo, 2),
        };
        let mut decoder = opus::Decoder::new(RATE, channels)?;
        let mut pcm = Vec::new();
        let mut out = vec![0i16; MAX_PACKET_SAMPLES * width];
        for p in &self.history {
            let got = decoder.decode(p, &mut out, false)?;
            pcm.extend_from_slice(&out[..got * width]);
        }
        let hole_at = pcm.len() / width;
        for k in 0..n {
            // The packet after the hole may carry the last lost frame (in-band FEC); without
            // it, libopus conceals that frame like the others.
            let fec = k + 1 == n;
            let frame = &mut out[..slot * width];
            let got = decoder.decode(if fec { next } else { &[] }, frame, fec)?;
            pcm.extend_from_slice(&frame[..got * width]);
        }
        // The sound after the hole, which the encoder looks ahead into.
        let got = decoder.decode(next, &mut out, false)?;
        pcm.extend_from_slice(&out[..got * width]);

        let config = last >> 3;
        let application = match config {
            0..=11 => Application::Voip,
            _ => Application::Audio,
        };
        let mut encoder = opus::Encoder::new(RATE, channels, application)?;
        encoder.set_bandwidth(bandwidth(config))?;
        let bytes: usize = self.history.iter().map(Vec::len).sum();
        let seconds = (hole_at as f64 / f64::from(RATE)).max(0.02);
        let bits = (bytes as f64 * 8.0 / seconds) as i32;
        encoder.set_bitrate(Bitrate::Bits(bits.clamp(6_000, 510_000)))?;
        // A packet holds what its encoder heard a look-ahead before the end of its input: the
        // encoder is given the sound that much early, so that its packets fall on the slots.
        let ahead = usize::try_from(encoder.get_lookahead()?).unwrap_or(0);
        let mut input = vec![0i16; slot * width];
        let mut made = Vec::with_capacity(n);
        let mut at = hole_at % slot;
        while at < hole_at + n * slot {
            for (j, s) in input.iter_mut().enumerate() {
                *s = pcm.get((at + ahead) * width + j).copied().unwrap_or(0);
            }
            let packet = encoder.encode_vec(&input, MAX_PACKET_BYTES)?;
            if at >= hole_at {
                made.push(packet);
            }
            at += slot;
        }
        Ok(made)
    }
}

/// An empty Opus packet: a TOC byte alone, put in a hole by the timeline.
fn is_empty(f: &TimedFrame) -> bool {
    f.data.len() <= 1
}

/// The audio bandwidth of a TOC's configuration.
fn bandwidth(config: u8) -> Bandwidth {
    match config {
        0..=3 | 16..=19 => Bandwidth::Narrowband,
        4..=7 => Bandwidth::Mediumband,
        8..=11 | 20..=23 => Bandwidth::Wideband,
        12..=13 | 24..=27 => Bandwidth::Superwideband,
        _ => Bandwidth::Fullband,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffmpeg_next::{Packet, codec, frame};

    /// `seconds` of a steady 440 Hz tone in 20 ms packets from `application`.
    fn tone(application: Application, seconds: usize) -> Vec<Vec<u8>> {
        let mut encoder = opus::Encoder::new(RATE, Channels::Mono, application).unwrap();
        encoder.set_bitrate(Bitrate::Bits(64_000)).unwrap();
        if application == Application::Voip {
            // In-band FEC, which SILK codes only when told of losses.
            encoder.set_inband_fec(true).unwrap();
            encoder.set_packet_loss_perc(5).unwrap();
        }
        (0..seconds * 50)
            .map(|k| {
                let frame: Vec<i16> = (0..960)
                    .map(|i| {
                        let t = (k * 960 + i) as f64 / f64::from(RATE);
                        (9_000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                    })
                    .collect();
                encoder.encode_vec(&frame, MAX_PACKET_BYTES).unwrap()
            })
            .collect()
    }

    /// The frames of `packets` from 0, with the packets at `lost` taken out (a hole of empty
    /// packets, as a timeline leaves it).
    fn with_holes(packets: &[Vec<u8>], lost: impl Fn(usize) -> bool) -> Vec<TimedFrame> {
        packets
            .iter()
            .enumerate()
            .map(|(k, p)| TimedFrame {
                pts_us: k as i64 * 20_000,
                duration_us: 20_000,
                data: if lost(k) {
                    vec![p[0] & 0xfc]
                } else {
                    p.clone()
                },
                keyframe: true,
            })
            .collect()
    }

    /// The RMS of each 100 ms of `frames` decoded by FFmpeg's own Opus decoder.
    fn loudness(frames: &[TimedFrame]) -> Vec<f64> {
        crate::mux::init();
        let found = ffmpeg_next::decoder::find(codec::Id::OPUS).unwrap();
        let mut context = codec::context::Context::new_with_codec(found);
        context.set_parameters(codec::Parameters::new()).unwrap();
        let mut decoder = context.decoder().audio().unwrap();
        let mut samples: Vec<f64> = Vec::new();
        let mut decoded = frame::Audio::empty();
        for f in frames {
            if decoder.send_packet(&Packet::copy(&f.data)).is_err() {
                samples.extend(std::iter::repeat_n(0.0, 960));
                continue;
            }
            while decoder.receive_frame(&mut decoded).is_ok() {
                samples.extend(
                    decoded
                        .plane::<f32>(0)
                        .iter()
                        .map(|&s| f64::from(s) * 32768.0),
                );
            }
        }
        samples
            .chunks_exact(4_800)
            .map(|w| (w.iter().map(|s| s * s).sum::<f64>() / w.len() as f64).sqrt())
            .collect()
    }

    #[test]
    fn a_lost_packet_costs_no_more_than_its_own_time() {
        for application in [Application::Audio, Application::Voip] {
            let packets = tone(application, 10);
            // 2% of the packets lost at random, one at a time; and three in a row.
            let mut x = 0x2545_f491_4f6c_dd1d_u64;
            let random: Vec<bool> = (0..500)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.is_multiple_of(50)
                })
                .collect();
            let lost = |k: usize| k > 10 && (random[k] || (300..303).contains(&k));
            let steady = loudness(&with_holes(&packets, |_| false));
            let level = steady[2..].iter().sum::<f64>() / (steady.len() - 2) as f64;

            let mut frames = with_holes(&packets, lost);
            let filled = loudness(&frames);
            let quietest = filled[2..].iter().copied().fold(f64::MAX, f64::min);
            // FFmpeg's decoder takes an empty packet for silence, and CELT's prediction of
            // energies makes the frames after it too quiet.
            println!(
                "{application:?}: steady {level:.0}, quietest 100 ms {quietest:.0} unconcealed"
            );
            if application == Application::Audio {
                assert!(quietest < level / 2.0, "{quietest} of {level}");
            }

            let mut concealer = Concealer::default();
            concealer.conceal(&mut frames);
            assert_eq!(
                concealer.concealed(),
                (0..500).filter(|&k| lost(k)).count() as u64
            );
            let concealed = loudness(&frames);
            let quietest = concealed[2..].iter().copied().fold(f64::MAX, f64::min);
            println!("{application:?}: steady {level:.0}, quietest 100 ms {quietest:.0}");
            // Losses in a row fade, as in receivers.
            assert!(
                quietest > level * 0.6,
                "{application:?}: {quietest} of {level}"
            );
        }
    }

    #[test]
    fn long_holes_stay_silent_and_frames_cut_short_are_left_alone() {
        let packets = tone(Application::Audio, 4);
        // A second lost at once.
        let mut frames = with_holes(&packets, |k| (100..150).contains(&k));
        let mut concealer = Concealer::default();
        concealer.conceal(&mut frames);
        assert_eq!(concealer.concealed(), 0);
        let loudness = loudness(&frames);
        assert!(loudness[21..29].iter().all(|&l| l < 1.0), "{loudness:?}");
        // A hole at the end of what came is left for later; so is one before any packet.
        let mut concealer = Concealer::default();
        let mut frames = with_holes(&packets[..20], |k| k < 2 || k == 19);
        concealer.conceal(&mut frames);
        assert_eq!(concealer.concealed(), 0);
        // A packet that does not decode leaves its hole silent.
        let mut frames = with_holes(&packets[..20], |k| k == 10);
        frames[11].data = vec![0xff, 0xff, 0xff];
        concealer.conceal(&mut frames);
        assert_eq!(frames[10].data.len(), 1);
    }
}
