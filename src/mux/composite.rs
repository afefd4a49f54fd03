//! Composite files: H.264 (in MP4, with AAC) or VP8 (in WebM, with Vorbis) from captured
//! pictures and mixed audio, encoded on a thread of their own.
//!
//! A [`CompositeSink`] takes each picture with its frame number (its time in frames from the
//! start, on the capture's clock) through a bounded queue, and mixed audio whose sample 0 is
//! frame 0. The file has one frame per frame time: a frame no picture came for shows the
//! picture before it, so the clock never waits for a late picture. The file is written as
//! fragmented MP4 (a fragment per key frame, every two seconds) or WebM in clusters of a
//! second, playable up to its last fragment or cluster if the process dies, and rewritten
//! with its index in front when it is finished.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::color;
use ffmpeg_next::{Dictionary, Rational, codec, frame};

use super::pcm::{MixedAudio, RATE as AUDIO_RATE, layout};
use super::regroup::Regroup;
use super::screen::Picture;
use super::writer::Container;
use super::{MuxError, create_output, finalize, init, write_ready};

/// Samples the AAC encoder puts before the first it was given.
const AAC_PRIMING: usize = 1024;

/// The audio stream's bits a second (stereo).
const AUDIO_BIT_RATE: usize = 128_000;

/// Pictures that may wait for the encoder (a second at 30 a second).
const QUEUE: usize = 30;

/// The video codec of a composite file, and with it its container and audio codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (x264) with AAC, in MP4.
    #[default]
    H264,
    /// VP8 (libvpx) with Vorbis, in WebM.
    Vp8,
}

impl VideoCodec {
    /// The extension of its files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::H264 => "mp4",
            Self::Vp8 => "webm",
        }
    }
}

/// What the file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoFormat {
    /// Its codec.
    pub codec: VideoCodec,
    /// Width and height (even).
    pub size: (u32, u32),
    /// Frames a second.
    pub rate: u32,
    /// The most bits a second the encoder spends (it spends fewer on pictures that move
    /// little).
    pub bit_rate: usize,
}

/// What a finished file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompositeStats {
    /// Frames in the file.
    pub frames: u64,
    /// Frames that show the picture before them, because no picture came for them.
    pub repeated: u64,
    /// Pictures that came for a frame already written, and were left out.
    pub late: u64,
}

enum Message {
    Picture(Picture, i64),
    Audio(Vec<MixedAudio>),
    End(i64),
}

/// Where mixed audio goes into a [`CompositeSink`]'s file; usable from another thread.
#[derive(Clone)]
pub struct AudioInput(mpsc::SyncSender<Message>);

impl AudioInput {
    /// Queues `audio`, waiting for room (audio is never dropped). False if the sink ended.
    pub fn push(&self, audio: Vec<MixedAudio>) -> bool {
        audio.is_empty() || self.0.send(Message::Audio(audio)).is_ok()
    }
}

/// A file being written from pictures (and mixed audio), by a thread of its own.
pub struct CompositeSink {
    queue: mpsc::SyncSender<Message>,
    meter: SinkMeter,
    rate: u32,
    thread: JoinHandle<Result<CompositeStats, MuxError>>,
}

/// How a [`CompositeSink`] goes, readable from any thread.
#[derive(Clone, Debug)]
pub struct SinkMeter {
    /// Pictures queued and not encoded yet.
    waiting: Arc<AtomicUsize>,
    /// Frames that showed the picture before them.
    repeated: Arc<AtomicU64>,
    rate: u32,
}

impl SinkMeter {
    /// How far the encoder is behind the pictures given to it.
    pub fn lag(&self) -> Duration {
        Duration::from_secs_f64(
            self.waiting.load(Ordering::Relaxed) as f64 / f64::from(self.rate.max(1)),
        )
    }

    /// Frames so far that show the picture before them.
    pub fn repeated(&self) -> u64 {
        self.repeated.load(Ordering::Relaxed)
    }
}

impl CompositeSink {
    /// Creates `path` (its header written) for pictures of `format`, and an AAC stream if
    /// `audio`.
    pub fn create(path: &Path, format: VideoFormat, audio: bool) -> Result<Self, MuxError> {
        let file = PictureFile::create(path, format, audio)?;
        let (queue, received) = mpsc::sync_channel(QUEUE);
        let meter = SinkMeter {
            waiting: Arc::default(),
            repeated: Arc::default(),
            rate: format.rate,
        };
        let counted = meter.clone();
        let thread = std::thread::Builder::new()
            .name("reel-encoder".into())
            .spawn(move || file.encode(&received, &counted))
            .map_err(|e| {
                MuxError::new(format!("cannot write {}", path.display()))(
                    ffmpeg_next::Error::Other {
                        errno: e.raw_os_error().unwrap_or(11),
                    },
                )
            })?;
        Ok(Self {
            queue,
            meter,
            rate: format.rate,
            thread,
        })
    }

    /// Queues `picture` for frame `frame`. False if the encoder is a second behind (or
    /// stopped): the picture is dropped, and its frame shows the one before.
    pub fn push(&self, picture: Picture, frame: i64) -> bool {
        let waiting = &self.meter.waiting;
        waiting.fetch_add(1, Ordering::Relaxed);
        let queued = self
            .queue
            .try_send(Message::Picture(picture, frame))
            .is_ok();
        if !queued {
            waiting.fetch_sub(1, Ordering::Relaxed);
        }
        queued
    }

    /// Where mixed audio goes.
    pub fn audio_input(&self) -> AudioInput {
        AudioInput(self.queue.clone())
    }

    /// Its live figures.
    pub fn meter(&self) -> SinkMeter {
        self.meter.clone()
    }

    /// Shows the last picture until `end` (from the start), encodes what is queued, and
    /// finishes the file with its index in front. Audio queued after this is not written.
    pub fn finish(self, end: Duration) -> Result<CompositeStats, MuxError> {
        let frames = (end.as_secs_f64() * f64::from(self.rate)).round() as i64;
        // If the thread stopped, its result says why.
        let _ = self.queue.send(Message::End(frames));
        drop(self.queue);
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// The encoders and the file, owned by the encoding thread.
struct PictureFile {
    out: ffmpeg_next::format::context::Output,
    encoder: ffmpeg_next::encoder::Video,
    /// The audio encoder (stream 1), and the mix on its way into its frames.
    audio: Option<(ffmpeg_next::encoder::Audio, Regroup)>,
    path: PathBuf,
    rate: i32,
    /// The last picture written and its frame: shown until the next.
    held: Option<(frame::Video, i64)>,
    stats: CompositeStats,
    context: String,
}

impl PictureFile {
    fn create(path: &Path, format: VideoFormat, with_audio: bool) -> Result<Self, MuxError> {
        init();
        let context = format!("cannot write {}", path.display());
        let fail = |e| MuxError::new(&context)(e);
        let (w, h) = format.size;
        // 4:2:0 needs even sizes.
        if w % 2 + h % 2 != 0 || w == 0 || h == 0 {
            return Err(fail(ffmpeg_next::Error::InvalidData));
        }
        let rate = i32::try_from(format.rate.clamp(1, 120)).expect("clamped");
        let (container, video_encoder, audio_encoder) = match format.codec {
            VideoCodec::H264 => ("mp4", "libx264", "aac"),
            VideoCodec::Vp8 => ("webm", "libvpx", "libvorbis"),
        };
        let mut out = create_output(path, container, &context)?;
        let found = ffmpeg_next::encoder::find_by_name(video_encoder)
            .ok_or(ffmpeg_next::Error::EncoderNotFound)
            .map_err(fail)?;
        let mut encoder = codec::context::Context::new_with_codec(found)
            .encoder()
            .video()
            .map_err(fail)?;
        encoder.set_width(w);
        encoder.set_height(h);
        encoder.set_format(Pixel::YUV420P);
        encoder.set_time_base((1, rate));
        encoder.set_frame_rate(Some((rate, 1)));
        // A key frame every two seconds: the fragments a crash may lose are that long.
        encoder.set_gop(2 * rate.unsigned_abs());
        // No frames out of order: the first picture is at time 0 in every player, on the
        // audio's clock, and a picture is written as soon as it is encoded.
        encoder.set_max_b_frames(0);
        // The matrix and range of the conversion from the screen's RGB.
        encoder.set_colorspace(color::Space::SMPTE170M);
        encoder.set_color_range(color::Range::MPEG);
        encoder.set_flags(codec::Flags::GLOBAL_HEADER);
        let cap = format.bit_rate.to_string();
        let buffer = (2 * format.bit_rate).to_string();
        let options = match format.codec {
            // Constant quality, capped: flat layouts take few bits, moving ones at most the
            // cap.
            VideoCodec::H264 => Dictionary::from_iter([
                ("preset", "veryfast"),
                ("crf", "23"),
                ("maxrate", cap.as_str()),
                ("bufsize", buffer.as_str()),
            ]),
            // libvpx's fastest real-time mode, each picture encoded as it comes.
            VideoCodec::Vp8 => {
                encoder.set_bit_rate(format.bit_rate);
                Dictionary::from_iter([
                    ("deadline", "realtime"),
                    ("cpu-used", "8"),
                    ("lag-in-frames", "0"),
                    ("crf", "10"),
                    ("maxrate", cap.as_str()),
                    ("bufsize", buffer.as_str()),
                ])
            }
        };
        let encoder = encoder.open_as_with(found, options).map_err(fail)?;
        let mut stream = out.add_stream(found).map_err(fail)?;
        stream.set_parameters(&encoder);
        stream.set_time_base((1, rate));
        let audio = if with_audio {
            let found = ffmpeg_next::encoder::find_by_name(audio_encoder)
                .ok_or(ffmpeg_next::Error::EncoderNotFound)
                .map_err(fail)?;
            let mut encoder = codec::context::Context::new_with_codec(found)
                .encoder()
                .audio()
                .map_err(fail)?;
            encoder.set_rate(AUDIO_RATE);
            encoder.set_channel_layout(layout(2));
            encoder.set_format(ffmpeg_next::format::Sample::F32(
                ffmpeg_next::format::sample::Type::Planar,
            ));
            encoder.set_bit_rate(AUDIO_BIT_RATE);
            encoder.set_time_base((1, AUDIO_RATE));
            encoder.set_flags(codec::Flags::GLOBAL_HEADER);
            let encoder = encoder.open_as(found).map_err(fail)?;
            let mut stream = out.add_stream(found).map_err(fail)?;
            stream.set_parameters(&encoder);
            stream.set_time_base((1, AUDIO_RATE));
            // Vorbis takes frames of any size.
            let size = match encoder.frame_size() {
                0 => 1024,
                n => n as usize,
            };
            // Players do not trim the AAC encoder's priming (no edit list survives the
            // fragments): the mix's first samples give way to it, so that sound and picture
            // start together.
            let priming = if format.codec == VideoCodec::H264 {
                AAC_PRIMING
            } else {
                0
            };
            Some((encoder, Regroup::new(2, size).skipping(priming)))
        } else {
            None
        };
        let options = match format.codec {
            VideoCodec::H264 => Container::Mp4.live_options(),
            VideoCodec::Vp8 => Container::WebM.live_options(),
        };
        out.write_header_with(options).map_err(fail)?;
        Ok(Self {
            out,
            encoder,
            audio,
            path: path.to_owned(),
            rate,
            held: None,
            stats: CompositeStats::default(),
            context,
        })
    }

    /// Encodes what `received` brings until its end; the file is finished either way.
    fn encode(
        mut self,
        received: &mpsc::Receiver<Message>,
        meter: &SinkMeter,
    ) -> Result<CompositeStats, MuxError> {
        let mut end = None;
        let mut written = Ok(());
        while let Ok(m) = received.recv() {
            match m {
                Message::Picture(p, frame) => {
                    meter.waiting.fetch_sub(1, Ordering::Relaxed);
                    if written.is_ok() {
                        written = self.picture(p.0, frame);
                    }
                    meter.repeated.store(self.stats.repeated, Ordering::Relaxed);
                }
                Message::Audio(frames) => {
                    if written.is_ok() {
                        written = self.audio(&frames);
                    }
                }
                Message::End(frame) => {
                    end = Some(frame);
                    break;
                }
            }
        }
        // A failure keeps what was written before it: the file is finished either way.
        let finished = self.finish(end);
        written.and(finished)
    }

    /// Writes `picture` as frame `frame`, after the picture before for the frames between.
    fn picture(&mut self, mut picture: frame::Video, frame: i64) -> Result<(), MuxError> {
        if self.held.as_ref().is_some_and(|(_, last)| frame <= *last) {
            self.stats.late += 1;
            return Ok(());
        }
        if (picture.width(), picture.height()) != (self.encoder.width(), self.encoder.height()) {
            return Err(MuxError::new(&self.context)(
                ffmpeg_next::Error::InvalidData,
            ));
        }
        if self.held.is_none() && frame > 0 {
            // The file starts at frame 0: the first picture stands in for the ones before.
            picture.set_pts(Some(0));
            self.send(&picture)?;
            self.stats.repeated += 1;
            self.held = Some((picture, 0));
            self.repeat_until(frame)?;
            picture = self.held.take().expect("held above").0;
        } else {
            self.repeat_until(frame)?;
        }
        picture.set_pts(Some(frame));
        self.send(&picture)?;
        self.held = Some((picture, frame));
        Ok(())
    }

    /// Encodes mixed audio.
    fn audio(&mut self, frames: &[MixedAudio]) -> Result<(), MuxError> {
        for f in frames {
            let Some((_, regroup)) = self.audio.as_mut() else {
                return Ok(());
            };
            for ready in regroup.push(&f.0) {
                self.send_audio(Some(&ready))?;
            }
        }
        Ok(())
    }

    /// Encodes `frame`, or the end of the audio.
    fn send_audio(&mut self, frame: Option<&frame::Audio>) -> Result<(), MuxError> {
        let Some((encoder, _)) = self.audio.as_mut() else {
            return Ok(());
        };
        match frame {
            Some(f) => encoder.send_frame(f),
            None => encoder.send_eof(),
        }
        .map_err(MuxError::new(&self.context))?;
        // The encoder takes a frame only once what it made of the one before is out.
        self.drain_audio()
    }

    /// Shows the held picture in every frame before `frame`.
    fn repeat_until(&mut self, frame: i64) -> Result<(), MuxError> {
        let Some((mut held, last)) = self.held.take() else {
            return Ok(());
        };
        for f in last + 1..frame {
            held.set_pts(Some(f));
            self.send(&held)?;
            self.stats.repeated += 1;
        }
        self.held = Some((held, last.max(frame - 1)));
        Ok(())
    }

    fn send(&mut self, picture: &frame::Video) -> Result<(), MuxError> {
        self.encoder
            .send_frame(picture)
            .map_err(MuxError::new(&self.context))?;
        self.stats.frames += 1;
        self.drain()
    }

    /// Shows the last picture until frame `end`, flushes the encoder, closes the file and
    /// rewrites it with its index in front.
    fn finish(mut self, end: Option<i64>) -> Result<CompositeStats, MuxError> {
        if let Some(end) = end {
            self.repeat_until(end)?;
        }
        self.encoder
            .send_eof()
            .map_err(MuxError::new(&self.context))?;
        self.drain()?;
        if let Some(last) = self.audio.as_mut().and_then(|(_, r)| r.flush()) {
            self.send_audio(Some(&last))?;
        }
        self.send_audio(None)?;
        self.out
            .write_trailer()
            .map_err(MuxError::new(&self.context))?;
        finalize(&self.path)?;
        Ok(self.stats)
    }

    /// Writes the packets the encoder has ready.
    fn drain(&mut self) -> Result<(), MuxError> {
        // The encoder leaves durations out; without one, the last picture would get none.
        let base = Rational(1, self.rate);
        write_ready(&mut self.encoder, &mut self.out, (0, base), &self.context)
    }

    /// Writes the packets the audio encoder has ready.
    fn drain_audio(&mut self) -> Result<(), MuxError> {
        let Some((encoder, _)) = self.audio.as_mut() else {
            return Ok(());
        };
        let base = Rational(1, AUDIO_RATE);
        write_ready(encoder, &mut self.out, (1, base), &self.context)
    }
}

#[cfg(test)]
impl Picture {
    /// A picture of `size` in four coloured quarters.
    fn quarters(size: (u32, u32), colours: [[u8; 3]; 4]) -> Self {
        let (w, h) = (size.0 as usize, size.1 as usize);
        let mut bgrx = vec![0; 4 * w * h];
        for (i, pixel) in bgrx.chunks_exact_mut(4).enumerate() {
            let q = usize::from(i % w >= w / 2) + 2 * usize::from(i / w >= h / 2);
            let [r, g, b] = colours[q];
            pixel[..3].copy_from_slice(&[b, g, r]);
        }
        Self::from_bgrx(size, 4 * w, &bgrx, &mut Default::default()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLUE: [[u8; 3]; 4] = [[0, 0, 0], [255, 255, 255], [9, 9, 9], [90, 9, 9]];

    fn format(size: (u32, u32), rate: u32) -> VideoFormat {
        VideoFormat {
            codec: VideoCodec::H264,
            size,
            rate,
            bit_rate: 1_000_000,
        }
    }

    /// Every frame of `path` as RGB.
    fn frames(path: &Path, size: (u32, u32)) -> Vec<Vec<u8>> {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(path)
            .args([
                "-fps_mode",
                "passthrough",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
            .chunks((size.0 * size.1 * 3) as usize)
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Pictures that started late and stopped coming before the end (a capture that fell
    /// behind): the first one is shown from the start and the last one until the end, so the
    /// file lasts as long as the capture ran, one frame per frame time.
    #[test]
    fn the_last_picture_lasts_until_the_end() {
        init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.mp4");
        let sink = CompositeSink::create(&path, format((64, 36), 30), false).unwrap();
        // The first picture, late for frame 0, stands in for frames 0 and 1.
        for i in 2..10 {
            assert!(sink.push(Picture::quarters((64, 36), BLUE), i));
        }
        let stats = sink.finish(Duration::from_secs(2)).unwrap();
        assert_eq!(
            stats,
            CompositeStats {
                frames: 60,
                repeated: 52,
                late: 0
            }
        );
        // Read back: 60 frames, the last ending at 2 s.
        let mut reader = crate::mux::FrameReader::open(&path).unwrap();
        let (mut n, mut end) = (0, 0);
        while let Some(f) = reader.next_frame().unwrap() {
            n += 1;
            end = end.max(f.pts_us + f.duration_us);
        }
        assert_eq!(n, 60);
        assert!((end - 2_000_000).abs() < 1000, "{end} µs");
    }

    #[test]
    fn pictures_come_out_in_their_colours_and_times() {
        init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.mp4");
        let colours = [[230, 25, 75], [60, 180, 75], [67, 99, 216], [255, 225, 25]];
        let sink = CompositeSink::create(&path, format((320, 180), 10), false).unwrap();
        // Frames 0 to 9 but 4 and 5, which show frame 3's picture; a late one left out.
        for i in [0, 1, 2, 3, 6, 7, 8, 9, 9] {
            let c = if i == 3 { BLUE } else { colours };
            assert!(sink.push(Picture::quarters((320, 180), c), i));
        }
        let stats = sink.finish(Duration::from_secs(1)).unwrap();
        assert_eq!(
            stats,
            CompositeStats {
                frames: 10,
                repeated: 2,
                late: 1
            }
        );
        let frames = frames(&path, (320, 180));
        assert_eq!(frames.len(), 10);
        for (n, frame) in frames.iter().enumerate() {
            let want = if (3..=5).contains(&n) { BLUE } else { colours };
            for (q, (x, y)) in [(80, 45), (240, 45), (80, 135), (240, 135)]
                .into_iter()
                .enumerate()
            {
                let i = 3 * (y * 320 + x);
                let got = &frame[i..i + 3];
                let off = (0..3).map(|c| got[c].abs_diff(want[q][c])).max().unwrap();
                assert!(
                    off <= 6,
                    "frame {n}, quarter {q}: {got:?}, not {:?}",
                    want[q]
                );
            }
        }
    }

    #[test]
    fn a_picture_of_another_size_fails_the_file_but_keeps_what_it_has() {
        init();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.mp4");
        let sink = CompositeSink::create(&path, format((320, 180), 10), false).unwrap();
        for i in 0..30 {
            assert!(sink.push(Picture::quarters((320, 180), BLUE), i));
        }
        assert!(sink.push(Picture::quarters((160, 90), BLUE), 30));
        assert!(sink.finish(Duration::from_secs(4)).is_err());
        // The file is finished: the pictures before, and the last of them until the end.
        assert_eq!(frames(&path, (320, 180)).len(), 40);
        assert!(CompositeSink::create(&path, format((321, 180), 10), false).is_err());
    }
}
