//! One MP3 of several audio files played together, each from its own moment: decoded as it is
//! read, summed, and encoded on a thread of its own, so that decoding and encoding use two
//! cores. Memory holds only the stretch where the files overlap unevenly.
//!
//! Empty Opus packets (a TOC byte alone: what fills lost audio and DTX silences) are not
//! decoded: they are silence in the mix, and most of a meeting's tracks are such silence.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc;

use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type;
use ffmpeg_next::util::mathematics::Rescale;
use ffmpeg_next::{ChannelLayout, Rational, codec, frame};

use super::writer::MICROS;
use super::{MuxError, init};

/// The mix's sample rate (Opus decodes at it).
const RATE: i32 = 48_000;
/// Bit rate of the MP3, per channel.
const BIT_RATE_PER_CHANNEL: usize = 64_000;
/// Mixed samples handed to the encoder at a time (per channel: eight MP3 frames, 192 ms),
/// and how many such blocks may wait for it.
const BLOCK: usize = 9_216;
const BLOCKS_WAITING: usize = 8;

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

/// Writes `output` (MP3, 48 kHz, `channels` 1 or 2 at 64 kbit/s each) from the first audio
/// stream of each `(file, offset_us)`, each starting `offset_us` into the mix. A mono mix
/// takes the mean of each input's channels.
pub fn mix_to_mp3(
    inputs: &[(&Path, i64)],
    channels: u16,
    output: &Path,
) -> Result<MixStats, MuxError> {
    init();
    let channels = usize::from(channels.clamp(1, 2));
    let mut sources = Vec::with_capacity(inputs.len());
    for (path, offset_us) in inputs {
        sources.push(open_source(path, *offset_us)?);
    }
    let (blocks, received) = mpsc::sync_channel::<Vec<Vec<f32>>>(BLOCKS_WAITING);
    std::thread::scope(|s| {
        let encoding = s.spawn(move || encode(received, channels, output));
        let mixed = decode_and_sum(inputs, &mut sources, channels, &blocks);
        // Closing the channel ends the encoding.
        drop(blocks);
        let encoded = encoding
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The encoder's error explains a closed channel better than the mixer's.
        encoded.and(mixed)
    })
}

/// Decodes and sums `sources`, handing finished stretches to `blocks`.
fn decode_and_sum(
    inputs: &[(&Path, i64)],
    sources: &mut [Source],
    channels: usize,
    blocks: &mpsc::SyncSender<Vec<Vec<f32>>>,
) -> Result<MixStats, MuxError> {
    let mut mix = Mix {
        planes: vec![VecDeque::new(); channels],
        start: 0,
        clipped: 0,
    };
    let mut decoded = frame::Audio::empty();
    // Decode the source that is furthest behind, so that the others wait for it.
    while let Some(i) = (0..sources.len())
        .filter(|&i| !sources[i].done)
        .min_by_key(|&i| sources[i].decoded_to)
    {
        let source = &mut sources[i];
        let read = || format!("cannot read {}", inputs[i].0.display());
        let mut got_packet = false;
        for (s, packet) in source.input.packets() {
            if s.index() != source.stream {
                continue;
            }
            got_packet = true;
            let data = packet.data().unwrap_or_default();
            if data.len() <= 1 {
                // A filler: silence, as long as its TOC byte says.
                if let (Some(pts), Some(n)) = (packet.pts(), crate::rtp::opus_samples(data)) {
                    let at = pts.rescale(source.time_base, (1, RATE)) + source.offset;
                    source.decoded_to = source.decoded_to.max(at + i64::from(n));
                }
            } else {
                source
                    .decoder
                    .send_packet(&packet)
                    .map_err(|e| MuxError::new(read())(e))?;
            }
            break;
        }
        if !got_packet {
            source.done = true;
            source
                .decoder
                .send_eof()
                .map_err(|e| MuxError::new(read())(e))?;
        }
        while source.decoder.receive_frame(&mut decoded).is_ok() {
            let at = decoded.pts().map_or(source.decoded_to, |pts| {
                pts.rescale(source.time_base, (1, RATE)) + source.offset
            });
            mix.add(at, &decoded)
                .map_err(|e| MuxError::new(read())(e))?;
            source.decoded_to = source.decoded_to.max(at + decoded.samples() as i64);
        }
        // Every sample before where the slowest source is can be encoded.
        let ready = sources
            .iter()
            .filter(|s| !s.done)
            .map(|s| s.decoded_to)
            .min()
            .unwrap_or(i64::MAX);
        while let Some(block) = mix.take_whole(ready, BLOCK) {
            if blocks.send(block).is_err() {
                // The encoder stopped; its error says why.
                return Err(MuxError::new("cannot encode the mix")(
                    ffmpeg_next::Error::Exit,
                ));
            }
        }
    }
    let end = mix.start + mix.planes[0].len() as i64;
    while let Some(block) = mix.take_whole(end, BLOCK).or_else(|| mix.take(end, BLOCK)) {
        if blocks.send(block).is_err() {
            break;
        }
    }
    Ok(MixStats {
        duration_s: end as f64 / f64::from(RATE),
        clipped: mix.clipped,
    })
}

/// Encodes the blocks `received` into `output` until the channel closes.
fn encode(
    received: mpsc::Receiver<Vec<Vec<f32>>>,
    channels: usize,
    output: &Path,
) -> Result<(), MuxError> {
    let context = format!("cannot write {}", output.display());
    if output.to_str().is_none_or(|p| p.contains('\0')) {
        return Err(MuxError::new(context)(ffmpeg_next::Error::InvalidData));
    }
    let layout = if channels == 1 {
        ChannelLayout::MONO
    } else {
        ChannelLayout::STEREO
    };
    let mut out = ffmpeg_next::format::output_as(output, "mp3").map_err(MuxError::new(&context))?;
    let codec = ffmpeg_next::encoder::find(codec::Id::MP3)
        .ok_or(ffmpeg_next::Error::EncoderNotFound)
        .map_err(MuxError::new(&context))?;
    let mut encoder = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(MuxError::new(&context))?;
    encoder.set_rate(RATE);
    encoder.set_channel_layout(layout);
    encoder.set_format(Sample::F32(Type::Planar));
    encoder.set_bit_rate(BIT_RATE_PER_CHANNEL * channels);
    encoder.set_time_base((1, RATE));
    let mut encoder = encoder.open_as(codec).map_err(MuxError::new(&context))?;
    let frame_size = (encoder.frame_size() as usize).max(1);
    let mut stream = out.add_stream(codec).map_err(MuxError::new(&context))?;
    stream.set_parameters(&encoder);
    stream.set_time_base((1, RATE));
    out.write_header().map_err(MuxError::new(&context))?;
    let out_base = out.stream(0).map_or(Rational(1, RATE), |s| s.time_base());

    let mut pending: Vec<VecDeque<f32>> = vec![VecDeque::new(); channels];
    let mut written = 0i64;
    let mut send = |pending: &mut Vec<VecDeque<f32>>, take: usize| -> Result<(), MuxError> {
        // Only the last frame may be short.
        let mut f = frame::Audio::new(Sample::F32(Type::Planar), take, layout);
        f.set_rate(RATE as u32);
        for (plane, side) in pending.iter_mut().enumerate() {
            for (dst, src) in f.plane_mut::<f32>(plane).iter_mut().zip(side.drain(..take)) {
                *dst = src;
            }
        }
        f.set_pts(Some(written));
        written += take as i64;
        encoder
            .send_frame(&f)
            .map_err(|e| MuxError::new(&context)(e))?;
        drain(&mut encoder, &mut out, out_base, &context)
    };
    for block in received {
        for (side, samples) in pending.iter_mut().zip(block) {
            side.extend(samples);
        }
        while pending[0].len() >= frame_size {
            send(&mut pending, frame_size)?;
        }
    }
    let rest = pending[0].len();
    if rest > 0 {
        send(&mut pending, rest)?;
    }
    encoder.send_eof().map_err(MuxError::new(&context))?;
    drain(&mut encoder, &mut out, out_base, &context)?;
    out.write_trailer().map_err(MuxError::new(&context))
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

/// The sum of what was decoded, from sample `start` on, one plane per output channel.
struct Mix {
    planes: Vec<VecDeque<f32>>,
    start: i64,
    clipped: u64,
}

impl Mix {
    /// Adds a decoded frame whose first sample is mix sample `at`.
    fn add(&mut self, at: i64, f: &frame::Audio) -> Result<(), ffmpeg_next::Error> {
        let n = f.samples();
        let channels = usize::from(f.channels()).max(1);
        let planes: Vec<Vec<f32>> = match f.format() {
            Sample::F32(Type::Planar) => (0..channels)
                .map(|c| f.plane::<f32>(c)[..n].to_vec())
                .collect(),
            Sample::F32(Type::Packed) => {
                let data = &f.data(0)[..n * channels * 4];
                (0..channels)
                    .map(|c| {
                        (0..n)
                            .map(|k| {
                                let i = 4 * (k * channels + c);
                                f32::from_ne_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]])
                            })
                            .collect()
                    })
                    .collect()
            }
            _ => return Err(ffmpeg_next::Error::InvalidData),
        };
        // A mono mix takes the mean of the frame's channels; a stereo one its first two (or
        // its one channel twice).
        let sides: Vec<Vec<f32>> = if self.planes.len() == 1 {
            let scale = 1.0 / channels as f32;
            vec![
                (0..n)
                    .map(|k| planes.iter().map(|p| p[k]).sum::<f32>() * scale)
                    .collect(),
            ]
        } else {
            vec![planes[0].clone(), planes[channels.min(2) - 1].clone()]
        };
        // Samples from before what was already handed on are dropped.
        let skip = (self.start - at).max(0) as usize;
        let from = (at + skip as i64 - self.start) as usize;
        let needed = from + n.saturating_sub(skip);
        for (plane, side) in self.planes.iter_mut().zip(&sides) {
            if plane.len() < needed {
                plane.resize(needed, 0.0);
            }
            for (dst, src) in plane.range_mut(from..needed).zip(&side[skip..]) {
                *dst += src;
            }
        }
        Ok(())
    }

    /// Takes `size` summed samples per channel before sample `until`; `None` if fewer are
    /// there.
    fn take_whole(&mut self, until: i64, size: usize) -> Option<Vec<Vec<f32>>> {
        let available = (until - self.start).min(self.planes[0].len() as i64);
        if available < size as i64 {
            return None;
        }
        self.take(until, size)
    }

    /// Takes up to `max` summed samples per channel before sample `until`, clipped at full
    /// scale; `None` when there are none.
    fn take(&mut self, until: i64, max: usize) -> Option<Vec<Vec<f32>>> {
        let available = (until - self.start).min(self.planes[0].len() as i64).max(0) as usize;
        let take = available.min(max);
        if take == 0 {
            return None;
        }
        let mut clipped = 0;
        let block = self
            .planes
            .iter_mut()
            .map(|plane| {
                plane
                    .drain(..take)
                    .map(|s| {
                        let c = s.clamp(-1.0, 1.0);
                        clipped += u64::from(c != s);
                        c
                    })
                    .collect()
            })
            .collect();
        self.clipped += clipped;
        self.start += take as i64;
        Some(block)
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
            .map_err(|e| MuxError::new(context)(e))?;
    }
    Ok(())
}
