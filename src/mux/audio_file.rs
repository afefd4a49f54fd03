//! Files of mixed audio: MP3, or AAC in MP4 (`.m4a`), encoded as the mix comes (in frames
//! of any size). An MP3 plays up to its last frame if the process dies; an `.m4a` is written in
//! fragments of two seconds and rewritten with its index in front when it is finished.

use std::path::{Path, PathBuf};

use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type;
use ffmpeg_next::{Dictionary, Rational, codec, frame};

use super::pcm::{MixedAudio, RATE, layout};
use super::regroup::Regroup;
use super::{MuxError, create_output, finalize, init, write_ready};

/// Bit rate per channel.
const BIT_RATE_PER_CHANNEL: usize = 64_000;

/// The codec of an audio file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AudioCodec {
    /// MP3 (LAME).
    #[default]
    Mp3,
    /// AAC in MP4.
    Aac,
}

impl AudioCodec {
    /// The extension of its files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Aac => "m4a",
        }
    }
}

/// An audio file being written.
pub struct AudioFile {
    out: ffmpeg_next::format::context::Output,
    encoder: ffmpeg_next::encoder::Audio,
    codec: AudioCodec,
    /// Samples per channel in a frame the encoder takes.
    frame_size: usize,
    channels: usize,
    /// Mixed audio on its way into the encoder's frames.
    regroup: Regroup,
    path: PathBuf,
    context: String,
}

impl AudioFile {
    /// Creates `path` for 48 kHz audio of `channels` (1 or 2, at 64 kbit/s each) in `codec`,
    /// and writes its header.
    ///
    /// LAME encodes in its fast mode (`-q 7`: the psychoacoustic model still switches blocks,
    /// but quantization noise is not shaped band by band): three times faster than its
    /// default, for a voice mix at this bit rate a difference hard to hear.
    pub fn create(path: &Path, codec: AudioCodec, channels: u16) -> Result<Self, MuxError> {
        init();
        let channels = usize::from(channels.clamp(1, 2));
        let context = format!("cannot write {}", path.display());
        let fail = |e| MuxError::new(&context)(e);
        let (format, id) = match codec {
            AudioCodec::Mp3 => ("mp3", codec::Id::MP3),
            AudioCodec::Aac => ("mp4", codec::Id::AAC),
        };
        let mut out = create_output(path, format, &context)?;
        let found = ffmpeg_next::encoder::find(id)
            .ok_or(ffmpeg_next::Error::EncoderNotFound)
            .map_err(fail)?;
        let mut encoder = codec::context::Context::new_with_codec(found)
            .encoder()
            .audio()
            .map_err(fail)?;
        encoder.set_rate(RATE);
        encoder.set_channel_layout(layout(channels));
        encoder.set_format(Sample::F32(Type::Planar));
        encoder.set_bit_rate(BIT_RATE_PER_CHANNEL * channels);
        encoder.set_time_base((1, RATE));
        let mut options = Dictionary::new();
        match codec {
            AudioCodec::Mp3 => encoder.set_compression(Some(7)),
            AudioCodec::Aac => {
                encoder.set_flags(codec::Flags::GLOBAL_HEADER);
                // Every AAC frame is a key frame: fragments by time, not by key frame.
                options.set("movflags", "empty_moov+default_base_moof");
                options.set("frag_duration", "2000000");
                options.set("flush_packets", "1");
            }
        }
        let encoder = encoder.open_as(found).map_err(fail)?;
        let mut stream = out.add_stream(found).map_err(fail)?;
        stream.set_parameters(&encoder);
        stream.set_time_base((1, RATE));
        out.write_header_with(options).map_err(fail)?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        Ok(Self {
            frame_size,
            regroup: Regroup::new(channels, frame_size),
            out,
            encoder,
            codec,
            channels,
            path: path.to_owned(),
            context,
        })
    }

    /// Channels and samples per channel of the frames [`encode`](Self::encode) takes (the
    /// last may be shorter).
    pub(super) fn shape(&self) -> (usize, usize) {
        (self.channels, self.frame_size)
    }

    /// Encodes mixed audio.
    pub fn write(&mut self, mixed: &[MixedAudio]) -> Result<(), MuxError> {
        for m in mixed {
            for f in self.regroup.push(&m.0) {
                self.encode(&f)?;
            }
        }
        Ok(())
    }

    /// Encodes one frame of its [`shape`](Self::shape).
    pub(super) fn encode(&mut self, frame: &frame::Audio) -> Result<(), MuxError> {
        self.encoder
            .send_frame(frame)
            .map_err(|e| MuxError::new(&self.context)(e))?;
        self.drain()
    }

    /// Flushes the encoder and closes the file (an `.m4a` gets its index in front).
    pub fn finish(mut self) -> Result<(), MuxError> {
        if let Some(last) = self.regroup.flush() {
            self.encode(&last)?;
        }
        self.encoder
            .send_eof()
            .map_err(MuxError::new(&self.context))?;
        self.drain()?;
        self.out
            .write_trailer()
            .map_err(MuxError::new(&self.context))?;
        if self.codec == AudioCodec::Aac {
            finalize(&self.path)?;
        }
        Ok(())
    }

    /// Writes the packets the encoder has ready.
    fn drain(&mut self) -> Result<(), MuxError> {
        let base = Rational(1, RATE);
        write_ready(&mut self.encoder, &mut self.out, (0, base), &self.context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One second of a 440 Hz tone in frames of `shape`, timed from 0.
    fn tone((channels, size): (usize, usize)) -> Vec<frame::Audio> {
        let mut frames = Vec::new();
        let mut n = 0;
        while n < RATE as usize {
            let take = size.min(RATE as usize - n);
            let mut f = frame::Audio::new(Sample::F32(Type::Planar), take, layout(channels));
            f.set_rate(RATE as u32);
            f.set_pts(Some(n as i64));
            for c in 0..channels {
                for (k, s) in f.plane_mut::<f32>(c).iter_mut().enumerate() {
                    let t = (n + k) as f32 / RATE as f32;
                    *s = 0.25 * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
                }
            }
            frames.push(f);
            n += take;
        }
        frames
    }

    /// Codec, channels and duration as ffprobe reads them.
    fn probe(path: &Path) -> (String, u64, f64) {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries"])
            .args(["stream=codec_name,channels:format=duration", "-of", "json"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let stream = &v["streams"][0];
        (
            stream["codec_name"].as_str().unwrap().to_owned(),
            stream["channels"].as_u64().unwrap(),
            v["format"]["duration"].as_str().unwrap().parse().unwrap(),
        )
    }

    #[test]
    fn mixes_become_mp3_or_aac_of_their_length() {
        let dir = tempfile::tempdir().unwrap();
        for (codec, channels, want) in [
            (AudioCodec::Mp3, 2, "mp3"),
            (AudioCodec::Mp3, 1, "mp3"),
            (AudioCodec::Aac, 2, "aac"),
            (AudioCodec::Aac, 1, "aac"),
        ] {
            let path = dir
                .path()
                .join(format!("{want}{channels}.{}", codec.extension()));
            let mut file = AudioFile::create(&path, codec, channels).unwrap();
            // The mix comes in stereo frames of its own size.
            let mixed: Vec<MixedAudio> = tone((2, 1024)).into_iter().map(MixedAudio).collect();
            file.write(&mixed).unwrap();
            file.finish().unwrap();
            let (got, got_channels, seconds) = probe(&path);
            assert_eq!(
                (got.as_str(), got_channels),
                (want, u64::from(channels)),
                "{path:?}"
            );
            assert!((seconds - 1.0).abs() < 0.06, "{path:?}: {seconds} s");
        }
        assert!(AudioFile::create(&dir.path().join("a\0b.mp3"), AudioCodec::Mp3, 2).is_err());
    }
}
