//! One MP3 of several audio files played together, each from its own moment: decoded as it is
//! read, summed, and encoded on a thread of its own, so that decoding and encoding use two
//! cores. Memory holds only the stretch where the files overlap unevenly.
//!
//! Empty Opus packets (a TOC byte alone: what fills lost audio and DTX silences) are not
//! decoded: they are silence in the mix, and most of a meeting's tracks are such silence.

use std::path::Path;
use std::sync::mpsc;

use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type;
use ffmpeg_next::util::mathematics::Rescale;
use ffmpeg_next::{Rational, codec, frame};

use super::audio_file::{AudioCodec, AudioFile};
use super::pcm::{RATE, layout};
use super::writer::MICROS;
use super::{MuxError, init, open_input};

/// Mixed frames handed to the encoder at a time (192 ms: fewer hand-overs, each of which
/// may wake its thread), and how many such batches may wait for it.
const BATCH: usize = 8;
const BATCHES_WAITING: usize = 8;

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
    let mut sources = Vec::with_capacity(inputs.len());
    for (path, offset_us) in inputs {
        sources.push(open_source(path, *offset_us, channels <= 1)?);
    }
    let mut mp3 = AudioFile::create(output, AudioCodec::Mp3, channels)?;
    let shape = mp3.shape();
    let (frames, received) = mpsc::sync_channel::<Vec<frame::Audio>>(BATCHES_WAITING);
    std::thread::scope(|s| {
        let encoding = s.spawn(move || {
            let encoded = received.iter().flatten().try_for_each(|f| mp3.encode(&f));
            // What was encoded before a failure is kept.
            let finished = mp3.finish();
            encoded.and(finished)
        });
        let mixed = decode_and_sum(inputs, &mut sources, shape, &frames);
        // Closing the channel ends the encoding.
        drop(frames);
        let encoded = encoding
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The encoder's error explains a closed channel better than the mixer's.
        encoded.and(mixed)
    })
}

/// Decodes and sums `sources` into frames of `shape` (channels, samples), handing them to
/// `frames` once every source is past them.
fn decode_and_sum(
    inputs: &[(&Path, i64)],
    sources: &mut [Source],
    (channels, frame_size): (usize, usize),
    frames: &mpsc::SyncSender<Vec<frame::Audio>>,
) -> Result<MixStats, MuxError> {
    let mut mix = Mix::new(channels);
    let mut batch = Vec::with_capacity(BATCH);
    // If the encoder stopped, its error says why.
    let closed = |_| MuxError::new("cannot encode the mix")(ffmpeg_next::Error::Exit);
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
        while let Some(f) = mix.take(ready, frame_size, true) {
            batch.push(f);
            if batch.len() == BATCH {
                frames.send(std::mem::take(&mut batch)).map_err(closed)?;
            }
        }
    }
    let end = mix.end();
    while let Some(f) = mix.take(end, frame_size, false) {
        batch.push(f);
    }
    frames.send(batch).map_err(closed)?;
    Ok(MixStats {
        duration_s: end as f64 / f64::from(RATE),
        clipped: mix.clipped,
    })
}

/// Opens `path` to be mixed from `offset_us` on, decoded to one channel if `mono` (the mix
/// is mono only when no track ever sent a stereo packet).
fn open_source(path: &Path, offset_us: i64, mono: bool) -> Result<Source, MuxError> {
    let context = format!("cannot read {}", path.display());
    let input = open_input(path, &context)?;
    let stream = input
        .streams()
        .best(ffmpeg_next::media::Type::Audio)
        .ok_or(ffmpeg_next::Error::StreamNotFound)
        .map_err(MuxError::new(&context))?;
    let (index, time_base) = (stream.index(), stream.time_base());
    let mut decoder = codec::context::Context::from_parameters(stream.parameters())
        .and_then(|mut c| {
            if mono {
                // SAFETY: the context was just made, and is opened only below.
                unsafe { super::params::decode_opus_as_mono(c.as_mut_ptr()) };
            }
            c.decoder().audio()
        })
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
pub(super) struct Mix {
    /// Samples before `head` were handed on; they are dropped once as many as are left, so
    /// that handing a frame on does not move what follows it each time.
    planes: Vec<Vec<f32>>,
    head: usize,
    /// The mix sample at `head`.
    start: i64,
    pub(super) clipped: u64,
}

impl Mix {
    /// An empty mix of `channels` (1 or 2) whose first sample is sample 0.
    pub(super) fn new(channels: usize) -> Self {
        Self {
            planes: vec![Vec::new(); channels.clamp(1, 2)],
            head: 0,
            start: 0,
            clipped: 0,
        }
    }

    /// The mix sample after the last one added.
    pub(super) fn end(&self) -> i64 {
        self.start + (self.planes[0].len() - self.head) as i64
    }

    /// Makes the mix reach sample `until`, with silence where nothing was added.
    pub(super) fn fill_to(&mut self, until: i64) {
        let Ok(len) = usize::try_from(until - self.start) else {
            return;
        };
        for plane in &mut self.planes {
            if plane.len() < self.head + len {
                plane.resize(self.head + len, 0.0);
            }
        }
    }

    /// Adds a decoded frame whose first sample is mix sample `at`; how many of its samples
    /// came after their place was handed on, and were dropped.
    pub(super) fn add(&mut self, at: i64, f: &frame::Audio) -> Result<usize, ffmpeg_next::Error> {
        let n = f.samples();
        let channels = usize::from(f.channels()).max(1);
        let packed: Vec<Vec<f32>>;
        let inputs: Vec<&[f32]> = match f.format() {
            Sample::F32(Type::Planar) => (0..channels).map(|c| &f.plane::<f32>(c)[..n]).collect(),
            Sample::F32(Type::Packed) => {
                let data = &f.data(0)[..n * channels * 4];
                packed = (0..channels)
                    .map(|c| {
                        (0..n)
                            .map(|k| {
                                let i = 4 * (k * channels + c);
                                f32::from_ne_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]])
                            })
                            .collect()
                    })
                    .collect();
                packed.iter().map(Vec::as_slice).collect()
            }
            _ => return Err(ffmpeg_next::Error::InvalidData),
        };
        // Samples from before what was already handed on are dropped.
        let skip = (self.start - at).max(0) as usize;
        if skip >= n {
            return Ok(n);
        }
        let from = self.head + (at + skip as i64 - self.start) as usize;
        let needed = from + n.saturating_sub(skip);
        for plane in &mut self.planes {
            if plane.len() < needed {
                plane.resize(needed, 0.0);
            }
        }
        // A mono mix takes the mean of the frame's channels; a stereo one its first two (or
        // its one channel twice).
        if let [mono] = self.planes.as_mut_slice() {
            let mono = &mut mono[from..needed];
            match inputs.as_slice() {
                [one] => add_into(mono, &one[skip..]),
                [left, right] => {
                    for ((m, l), r) in mono.iter_mut().zip(&left[skip..]).zip(&right[skip..]) {
                        *m += (l + r) * 0.5;
                    }
                }
                all => {
                    let scale = 1.0 / channels as f32;
                    for (k, m) in mono.iter_mut().enumerate() {
                        *m += all.iter().map(|p| p[skip + k]).sum::<f32>() * scale;
                    }
                }
            }
        } else {
            let sides = [inputs[0], inputs[channels.min(2) - 1]];
            for (plane, side) in self.planes.iter_mut().zip(sides) {
                add_into(&mut plane[from..needed], &side[skip..]);
            }
        }
        Ok(skip.min(n))
    }

    /// Takes a frame of up to `size` summed samples per channel before sample `until`,
    /// clipped at full scale; `None` when there are none, or if `whole` and fewer than `size`.
    pub(super) fn take(&mut self, until: i64, size: usize, whole: bool) -> Option<frame::Audio> {
        let live = self.planes[0].len() - self.head;
        let available = (until - self.start).min(live as i64).max(0) as usize;
        let take = available.min(size);
        if take == 0 || (whole && take < size) {
            return None;
        }
        let mut f = frame::Audio::new(Sample::F32(Type::Planar), take, layout(self.planes.len()));
        f.set_rate(RATE as u32);
        f.set_pts(Some(self.start));
        let head = self.head;
        for (c, plane) in self.planes.iter_mut().enumerate() {
            for (dst, &s) in f
                .plane_mut::<f32>(c)
                .iter_mut()
                .zip(&plane[head..head + take])
            {
                *dst = s.clamp(-1.0, 1.0);
                self.clipped += u64::from(*dst != s);
            }
        }
        self.head += take;
        self.start += take as i64;
        if self.head >= live - take {
            for plane in &mut self.planes {
                plane.drain(..self.head);
            }
            self.head = 0;
        }
        Some(f)
    }
}

/// Adds `src` into `dst`, sample by sample.
fn add_into(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}
