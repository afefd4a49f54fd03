//! Audio mixed while a call goes on: each track's Opus frames decoded and summed at their
//! place in the mix (48 kHz, mono or stereo), handed out in frames of the size its encoder
//! takes.
//!
//! Empty Opus packets (a TOC byte alone: lost audio and DTX silences) are silence, and are
//! not decoded.

use std::collections::HashMap;

use ffmpeg_next::{Packet, codec, frame};

use super::mix::Mix;
use super::pcm::{MixedAudio, RATE};
use super::{MuxError, init};

/// Samples an Opus encoder looks ahead (6.5 ms at 48 kHz, what Ogg files call pre-skip): a
/// decoder gives each sound that long after the time of the packet that carries it.
const OPUS_LOOKAHEAD: i64 = 312;

/// A track's decoder, and whether it gives two channels.
struct Voice {
    decoder: ffmpeg_next::decoder::Audio,
    stereo: bool,
}

/// The mix of a call's audio tracks.
pub struct LiveMix {
    voices: HashMap<String, Voice>,
    mix: Mix,
    decoded: frame::Audio,
    /// Samples per channel in a frame handed out.
    frame: usize,
    /// Samples that came after their place in the mix was handed out.
    late: u64,
}

impl LiveMix {
    /// An empty mix whose first sample is sample 0, handed out in frames of `shape`:
    /// channels (1 takes the mean of a track's two, 2 keeps them) and samples per channel.
    pub fn new((channels, frame): (usize, usize)) -> Self {
        init();
        Self {
            voices: HashMap::new(),
            mix: Mix::new(channels),
            decoded: frame::Audio::empty(),
            frame: frame.max(1),
            late: 0,
        }
    }

    /// The sample rate of the mix.
    pub const RATE: u32 = RATE as u32;

    /// Adds the Opus frame `opus` of `track`, whose first sample is mix sample `at`.
    pub fn add(&mut self, track: &str, at: i64, opus: &[u8]) -> Result<(), MuxError> {
        if opus.len() <= 1 {
            return Ok(());
        }
        let context = || format!("cannot decode the audio of {track}");
        // Browsers code their voices mono: one channel decoded costs about half of two. The
        // first packet a track codes in stereo gets it a decoder of two channels from then on.
        let stereo = opus[0] & 0x04 != 0;
        if self
            .voices
            .get(track)
            .is_none_or(|voice| stereo && !voice.stereo)
        {
            let voice = Voice {
                decoder: opus_decoder(stereo).map_err(MuxError::new(context()))?,
                stereo,
            };
            self.voices.insert(track.to_owned(), voice);
        }
        let decoder = &mut self.voices.get_mut(track).expect("made above").decoder;
        // A frame that does not decode is left out: the mix goes on without it.
        if decoder.send_packet(&Packet::copy(opus)).is_err() {
            return Ok(());
        }
        // A sound comes out of the decoder the encoder's look-ahead after its packet's time.
        let mut at = at - OPUS_LOOKAHEAD;
        while decoder.receive_frame(&mut self.decoded).is_ok() {
            let dropped = self
                .mix
                .add(at, &self.decoded)
                .map_err(MuxError::new(context()))?;
            self.late += dropped as u64;
            at += self.decoded.samples() as i64;
        }
        Ok(())
    }

    /// Forgets `track`'s decoder (its track ended).
    pub fn remove(&mut self, track: &str) {
        self.voices.remove(track);
    }

    /// The mixed frames before sample `until` (silence where nothing was added); with
    /// `last`, also a shorter frame at the end.
    pub fn take(&mut self, until: i64, last: bool) -> Vec<MixedAudio> {
        // Nothing added up to `until` is silence, not a wait.
        self.mix.fill_to(until);
        let mut frames = Vec::new();
        while let Some(f) = self.mix.take(until, self.frame, !last) {
            frames.push(MixedAudio(f));
        }
        frames
    }

    /// Samples that came after their place was handed out, and were left out.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Samples clipped at full scale.
    pub fn clipped(&self) -> u64 {
        self.mix.clipped
    }
}

/// An Opus decoder of RTP packets (no header) at 48 kHz, of one channel or two.
fn opus_decoder(stereo: bool) -> Result<ffmpeg_next::decoder::Audio, ffmpeg_next::Error> {
    let opus =
        ffmpeg_next::decoder::find(codec::Id::OPUS).ok_or(ffmpeg_next::Error::DecoderNotFound)?;
    let mut context = codec::context::Context::new_with_codec(opus);
    if !stereo {
        // SAFETY: the context was just made, and is opened only below.
        unsafe { super::params::decode_opus_as_mono(context.as_mut_ptr()) };
    }
    context.decoder().audio()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::FrameReader;

    /// The Opus frames of one second of a `hz` tone, with their times (µs).
    fn tone(dir: &std::path::Path, hz: u32) -> Vec<(i64, Vec<u8>)> {
        opus_of(
            dir,
            &format!("sine=frequency={hz}:duration=1"),
            &format!("{hz}"),
        )
    }

    /// The Opus frames of `source` (an FFmpeg filter graph), with their times (µs).
    fn opus_of(dir: &std::path::Path, source: &str, name: &str) -> Vec<(i64, Vec<u8>)> {
        let path = dir.join(format!("{name}.ogg"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", source])
            .args(["-c:a", "libopus", "-ar", "48000", "-y"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let mut reader = FrameReader::open(&path).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = reader.next_frame().unwrap() {
            frames.push((f.pts_us, f.data));
        }
        // From 0 (the encoder's priming samples make the first time negative).
        let zero = frames[0].0;
        frames.iter_mut().for_each(|f| f.0 -= zero);
        frames
    }

    /// The strength of `hz` in `pcm`: the Goertzel filter's magnitude per sample.
    fn strength(pcm: &[f32], hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / f64::from(RATE);
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in pcm {
            let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
            (s2, s1) = (s1, s);
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2).sqrt() / pcm.len() as f64
    }

    /// Two voices, the second from half a second in, a filler and a frame too late: each at
    /// its place, silence where nobody spoke, AAC-sized frames.
    #[test]
    fn voices_are_summed_at_their_places() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (tone(dir.path(), 440), tone(dir.path(), 660));
        let mut mix = LiveMix::new((2, 1024));
        let at = |us: i64| us * i64::from(RATE) / 1_000_000;
        for (us, data) in &a {
            mix.add("a", at(*us), data).unwrap();
        }
        // Nothing is handed out before it is asked for; what is taken is whole frames.
        let first = mix.take(at(250_000), false);
        assert_eq!(first.len(), 11);
        for (us, data) in &b {
            mix.add("b", at(us + 500_000), data).unwrap();
            mix.add("b", at(us + 500_000), &[0xf8]).unwrap();
        }
        // Too late for its place: left out, and counted.
        mix.add("b", 0, &b[10].1).unwrap();
        // And the decoder's look-ahead before the first frame, which falls before sample 0.
        assert_eq!(mix.late(), 960 + OPUS_LOOKAHEAD as u64);
        mix.remove("b");
        let rest = mix.take(at(2_000_000), true);
        let pcm: Vec<f32> = first
            .iter()
            .chain(&rest)
            .flat_map(|f| f.0.plane::<f32>(0)[..f.0.samples()].to_vec())
            .collect();
        assert_eq!(pcm.len(), 96_000);
        assert!(rest[..rest.len() - 1].iter().all(|f| f.0.samples() == 1024));
        let second =
            |from: f64, to: f64| &pcm[(from * 48_000.0) as usize..(to * 48_000.0) as usize];
        let (alone, both, after, silent) = (
            second(0.1, 0.45),
            second(0.6, 0.95),
            second(1.1, 1.45),
            second(1.6, 1.95),
        );
        // A tone of ffmpeg's (amplitude 1/8) measures about 1/16; the other, nothing.
        let (on, off) = (0.04, 0.005);
        assert!(strength(alone, 440.0) > on && strength(alone, 660.0) < off);
        assert!(strength(both, 440.0) > on && strength(both, 660.0) > on);
        assert!(strength(after, 440.0) < off && strength(after, 660.0) > on);
        assert!(silent.iter().all(|&s| s == 0.0));
        assert_eq!(mix.clipped(), 0);
    }

    /// A voice that turns stereo half a second in: its sides kept apart from then on.
    #[test]
    fn a_voice_that_turns_stereo_keeps_its_sides() {
        let dir = tempfile::tempdir().unwrap();
        let mono = tone(dir.path(), 440);
        let stereo = opus_of(
            dir.path(),
            "sine=frequency=440:duration=1[l];sine=frequency=660:duration=1[r];[l][r]amerge=inputs=2",
            "stereo",
        );
        assert!(mono.iter().all(|(_, f)| f[0] & 0x04 == 0));
        assert!(stereo.iter().all(|(_, f)| f[0] & 0x04 != 0));
        let mut mix = LiveMix::new((2, 1024));
        let at = |us: i64| us * i64::from(RATE) / 1_000_000;
        let half = mono.iter().filter(|(us, _)| *us < 500_000);
        let rest = stereo.iter().filter(|(us, _)| *us >= 500_000);
        for (us, data) in half.chain(rest) {
            mix.add("a", at(*us), data).unwrap();
        }
        let frames = mix.take(at(1_000_000), true);
        let side = |c: usize| -> Vec<f32> {
            frames
                .iter()
                .flat_map(|f| f.0.plane::<f32>(c)[..f.0.samples()].to_vec())
                .collect()
        };
        let (left, right) = (side(0), side(1));
        let part =
            |pcm: &[f32]| pcm[(0.65 * 48_000.0) as usize..(0.95 * 48_000.0) as usize].to_vec();
        let (left, right) = (part(&left), part(&right));
        let (on, off) = (0.04, 0.005);
        assert!(strength(&left, 440.0) > on && strength(&left, 660.0) < off);
        assert!(strength(&right, 660.0) > on && strength(&right, 440.0) < off);
    }
}
