//! One MP3 of several audio files played together, each from its own moment: decoded as it is
//! read, summed, encoded. Memory holds only the stretch where the files overlap unevenly.

use std::collections::VecDeque;
use std::path::Path;

use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type;
use ffmpeg_next::util::mathematics::Rescale;
use ffmpeg_next::{ChannelLayout, Rational, codec, frame};

use super::writer::MICROS;
use super::{MuxError, init};

/// The mix's sample rate (Opus decodes at it).
const RATE: i32 = 48_000;
/// Bit rate of the MP3.
const BIT_RATE: usize = 128_000;

/// What a mix came to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MixStats {
    /// Its length in seconds.
    pub duration_s: f64,
    /// Samples that summed beyond full scale and were clipped.
    pub clipped: u64,
}

/// One input being decoded.
struct Source {
    input: ffmpeg_next::format::context::Input,
    stream: usize,
    time_base: Rational,
    decoder: ffmpeg_next::decoder::Audio,
    /// Where it starts in the mix, in samples.
    offset: i64,
    /// The mix sample up to which it is decoded.
    decoded_to: i64,
    done: bool,
}

/// Writes `output` (MP3, stereo, 48 kHz) from the first audio stream of each
/// `(file, offset_us)`, each starting `offset_us` into the mix.
pub fn mix_to_mp3(inputs: &[(&Path, i64)], output: &Path) -> Result<MixStats, MuxError> {
    init();
    let context = format!("cannot write {}", output.display());
    if output.to_str().is_none_or(|p| p.contains('\0')) {
        return Err(MuxError::new(context)(ffmpeg_next::Error::InvalidData));
    }
    let mut sources = Vec::with_capacity(inputs.len());
    for (path, offset_us) in inputs {
        sources.push(open_source(path, *offset_us)?);
    }
    let mut out = ffmpeg_next::format::output_as(output, "mp3").map_err(MuxError::new(&context))?;
    let codec = ffmpeg_next::encoder::find(codec::Id::MP3)
        .ok_or(ffmpeg_next::Error::EncoderNotFound)
        .map_err(MuxError::new(&context))?;
    let mut encoder = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(MuxError::new(&context))?;
    encoder.set_rate(RATE);
    encoder.set_channel_layout(ChannelLayout::STEREO);
    encoder.set_format(Sample::F32(Type::Planar));
    encoder.set_bit_rate(BIT_RATE);
    encoder.set_time_base((1, RATE));
    let mut encoder = encoder.open_as(codec).map_err(MuxError::new(&context))?;
    let frame_size = (encoder.frame_size() as usize).max(1);
    let mut stream = out.add_stream(codec).map_err(MuxError::new(&context))?;
    stream.set_parameters(&encoder);
    stream.set_time_base((1, RATE));
    out.write_header().map_err(MuxError::new(&context))?;
    let out_base = out.stream(0).map_or(Rational(1, RATE), |s| s.time_base());

    let mut mix = Mix {
        left: VecDeque::new(),
        right: VecDeque::new(),
        start: 0,
        clipped: 0,
    };
    let mut written = 0i64;
    let mut decoded = frame::Audio::empty();
    // Decode the source that is furthest behind, so that the others wait for it.
    while let Some(i) = (0..sources.len())
        .filter(|&i| !sources[i].done)
        .min_by_key(|&i| sources[i].decoded_to)
    {
        let source = &mut sources[i];
        let read = format!("cannot read {}", inputs[i].0.display());
        let mut got_packet = false;
        for (s, packet) in source.input.packets() {
            if s.index() == source.stream {
                source
                    .decoder
                    .send_packet(&packet)
                    .map_err(MuxError::new(&read))?;
                got_packet = true;
                break;
            }
        }
        if !got_packet {
            source.done = true;
            source.decoder.send_eof().map_err(MuxError::new(&read))?;
        }
        while source.decoder.receive_frame(&mut decoded).is_ok() {
            let at = decoded.pts().map_or(source.decoded_to, |pts| {
                pts.rescale(source.time_base, (1, RATE)) + source.offset
            });
            mix.add(at, &decoded).map_err(MuxError::new(&read))?;
            source.decoded_to = source.decoded_to.max(at + decoded.samples() as i64);
        }
        // Every sample before where the slowest source is can be encoded.
        let ready = sources
            .iter()
            .filter(|s| !s.done)
            .map(|s| s.decoded_to)
            .min()
            .unwrap_or(i64::MAX);
        written = mix.encode_until(ready, frame_size, written, &mut encoder, &mut out, out_base)?;
    }
    let end = mix.start + mix.left.len() as i64;
    mix.encode_until(end, frame_size, written, &mut encoder, &mut out, out_base)?;
    encoder.send_eof().map_err(MuxError::new(&context))?;
    drain(&mut encoder, &mut out, out_base, &context)?;
    out.write_trailer().map_err(MuxError::new(&context))?;
    Ok(MixStats {
        duration_s: end as f64 / f64::from(RATE),
        clipped: mix.clipped,
    })
}

fn open_source(path: &Path, offset_us: i64) -> Result<Source, MuxError> {
    let context = format!("cannot read {}", path.display());
    if path.to_str().is_none_or(|p| p.contains('\0')) {
        return Err(MuxError::new(context)(ffmpeg_next::Error::InvalidData));
    }
    let input = ffmpeg_next::format::input(path).map_err(MuxError::new(&context))?;
    let stream = input
        .streams()
        .best(ffmpeg_next::media::Type::Audio)
        .ok_or(ffmpeg_next::Error::StreamNotFound)
        .map_err(MuxError::new(&context))?;
    let (index, time_base) = (stream.index(), stream.time_base());
    let mut decoder = codec::context::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().audio())
        .map_err(MuxError::new(&context))?;
    decoder.set_packet_time_base(time_base);
    let offset = offset_us.rescale(MICROS, (1, RATE));
    Ok(Source {
        input,
        stream: index,
        time_base,
        decoder,
        offset,
        decoded_to: offset,
        done: false,
    })
}

/// The sum of what was decoded, from sample `start` on.
struct Mix {
    left: VecDeque<f32>,
    right: VecDeque<f32>,
    start: i64,
    clipped: u64,
}

impl Mix {
    /// Adds a decoded frame whose first sample is mix sample `at`.
    fn add(&mut self, at: i64, f: &frame::Audio) -> Result<(), ffmpeg_next::Error> {
        let n = f.samples();
        let channels = usize::from(f.channels()).max(1);
        let (left, right): (Vec<f32>, Vec<f32>) = match f.format() {
            Sample::F32(Type::Planar) => {
                let l = &f.plane::<f32>(0)[..n];
                let r = if channels > 1 {
                    &f.plane::<f32>(1)[..n]
                } else {
                    l
                };
                (l.to_vec(), r.to_vec())
            }
            Sample::F32(Type::Packed) => {
                let data = &f.data(0)[..n * channels * 4];
                let sample = |i: usize| {
                    f32::from_ne_bytes([
                        data[4 * i],
                        data[4 * i + 1],
                        data[4 * i + 2],
                        data[4 * i + 3],
                    ])
                };
                (0..n)
                    .map(|k| {
                        (
                            sample(k * channels),
                            sample(k * channels + channels.min(2) - 1),
                        )
                    })
                    .unzip()
            }
            _ => return Err(ffmpeg_next::Error::InvalidData),
        };
        // Samples from before what was already encoded are dropped.
        let skip = (self.start - at).max(0) as usize;
        let from = (at + skip as i64 - self.start) as usize;
        let needed = from + n.saturating_sub(skip);
        if self.left.len() < needed {
            self.left.resize(needed, 0.0);
            self.right.resize(needed, 0.0);
        }
        for k in skip..n {
            self.left[from + k - skip] += left[k];
            self.right[from + k - skip] += right[k];
        }
        Ok(())
    }

    /// Encodes whole frames of the mix up to sample `until` (and, at the end, the rest);
    /// returns the samples encoded so far.
    fn encode_until(
        &mut self,
        until: i64,
        frame_size: usize,
        mut written: i64,
        encoder: &mut ffmpeg_next::encoder::Audio,
        out: &mut ffmpeg_next::format::context::Output,
        out_base: Rational,
    ) -> Result<i64, MuxError> {
        let context = "cannot encode the mix";
        let end_of_mix = until == self.start + self.left.len() as i64;
        loop {
            let available = (until - self.start).min(self.left.len() as i64).max(0) as usize;
            let take = if available >= frame_size {
                frame_size
            } else if end_of_mix && available > 0 {
                available
            } else {
                return Ok(written);
            };
            // Only the last frame may be short.
            let mut f = frame::Audio::new(Sample::F32(Type::Planar), take, ChannelLayout::STEREO);
            f.set_rate(RATE as u32);
            for (plane, side) in [&mut self.left, &mut self.right].into_iter().enumerate() {
                let samples = f.plane_mut::<f32>(plane);
                for (k, s) in side.drain(..take).enumerate() {
                    let clamped = s.clamp(-1.0, 1.0);
                    if clamped != s {
                        self.clipped += 1;
                    }
                    samples[k] = clamped;
                }
            }
            f.set_pts(Some(written));
            self.start += take as i64;
            written += take as i64;
            encoder.send_frame(&f).map_err(MuxError::new(context))?;
            drain(encoder, out, out_base, context)?;
        }
    }
}

/// Writes the packets `encoder` has ready.
fn drain(
    encoder: &mut ffmpeg_next::encoder::Audio,
    out: &mut ffmpeg_next::format::context::Output,
    out_base: Rational,
    context: &str,
) -> Result<(), MuxError> {
    let mut packet = ffmpeg_next::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        packet.set_stream(0);
        packet.rescale_ts((1, RATE), out_base);
        packet
            .write_interleaved(out)
            .map_err(MuxError::new(context))?;
    }
    Ok(())
}
