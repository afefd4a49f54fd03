//! One Matroska file from the streams of several, each moved in time, with no re-encoding;
//! and a file a crash cut short (or an MP4 written in fragments), rewritten whole.

use std::path::Path;

use ffmpeg_next::util::mathematics::Rescale;
use ffmpeg_next::{Dictionary, Packet, Rational};

use super::writer::{Container, MICROS};
use super::{MuxError, create_output, init, open_input};

/// Rewrites, in place, a file that a crash cut short (no index, no duration, perhaps a
/// torn last cluster or fragment) into a complete one holding every frame that can be read;
/// returns the time its frames span, in microseconds. An `.mp4` or `.m4a` gets its index in
/// front.
pub fn finalize(path: &Path) -> Result<i64, MuxError> {
    let context = format!("cannot finalize {}", path.display());
    let partial = path.with_extension("partial");
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let target = match extension {
        "mp4" | "m4a" => {
            let mut options = Dictionary::new();
            options.set("movflags", "+faststart");
            ("mp4", options)
        }
        "mp3" => ("mp3", Dictionary::new()),
        _ => {
            let container = Container::of(path);
            (container.format(), container.live_options())
        }
    };
    let span = copy_streams(&[(path, 0)], &partial, target)
        .map_err(|e| MuxError::new(&context)(e.source))?;
    std::fs::rename(&partial, path).map_err(|e| {
        // EIO for an error that has no errno.
        let errno = e.raw_os_error().unwrap_or(5);
        MuxError::new(&context)(ffmpeg_next::Error::Other { errno })
    })?;
    Ok(span)
}

/// Writes every stream of each `(file, offset_us)` into `output` (Matroska), each file's
/// times moved `offset_us` later, the packets interleaved by time.
pub fn interleave(inputs: &[(&Path, i64)], output: &Path) -> Result<(), MuxError> {
    let target = (
        Container::Matroska.format(),
        Container::Matroska.live_options(),
    );
    copy_streams(inputs, output, target).map(drop)
}

/// [`interleave`] into a file of FFmpeg's `format`, written with `options`; the time the
/// written frames span, in µs.
fn copy_streams(
    inputs: &[(&Path, i64)],
    output: &Path,
    (format, options): (&str, Dictionary),
) -> Result<i64, MuxError> {
    init();
    let context = format!("cannot write {}", output.display());
    let mut opened = Vec::with_capacity(inputs.len());
    for (path, _) in inputs {
        let input = open_input(path, &format!("cannot read {}", path.display()))?;
        opened.push(input);
    }
    let mut out = create_output(output, format, &context)?;
    // Each input's first stream index in the output, and its streams' time bases.
    let mut first_index = Vec::with_capacity(opened.len());
    let mut in_bases: Vec<Vec<Rational>> = Vec::with_capacity(opened.len());
    for input in &opened {
        first_index.push(out.nb_streams() as usize);
        in_bases.push(input.streams().map(|s| s.time_base()).collect());
        for stream in input.streams() {
            let mut copy = out
                .add_stream(None::<ffmpeg_next::Codec>)
                .map_err(MuxError::new(&context))?;
            copy.set_parameters(stream.parameters());
            copy.set_time_base(stream.time_base());
        }
    }
    out.write_header_with(options)
        .map_err(MuxError::new(&context))?;
    let out_bases: Vec<Rational> = out.streams().map(|s| s.time_base()).collect();
    let mut sources: Vec<_> = opened
        .iter_mut()
        .map(|i| i.packets().map(|(s, p)| (s.index(), p)).peekable())
        .collect();
    // The wall time (µs) of a packet of input `k`.
    let at = |k: usize, stream: usize, p: &Packet| {
        p.pts().unwrap_or(0).rescale(in_bases[k][stream], MICROS) + inputs[k].1
    };
    let (mut first, mut end) = (i64::MAX, i64::MIN);
    loop {
        let next = sources
            .iter_mut()
            .enumerate()
            .filter_map(|(k, s)| s.peek().map(|(stream, p)| (at(k, *stream, p), k)))
            .min();
        let Some((at_us, k)) = next else { break };
        let Some((stream, mut packet)) = sources[k].next() else {
            break;
        };
        let index = first_index[k] + stream;
        let (from, to) = (in_bases[k][stream], out_bases[index]);
        let shift = inputs[k].1.rescale(MICROS, from);
        if packet.pts().is_some() {
            first = first.min(at_us);
            end = end.max(at_us + packet.duration().rescale(from, MICROS));
        }
        packet.set_pts(packet.pts().map(|t| t + shift));
        packet.set_dts(packet.dts().map(|t| t + shift));
        packet.rescale_ts(from, to);
        packet.set_stream(index);
        packet.set_position(-1);
        packet
            .write(&mut out)
            .map_err(|e| MuxError::new(&context)(e))?;
    }
    out.write_trailer().map_err(MuxError::new(&context))?;
    Ok(if first <= end { end - first } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::{FrameReader, StreamSpec, Writer};
    use crate::rtp::MediaCodec;

    /// Frames of the (only) stream of `path`, and where the last ends, in ms.
    fn frames(path: &Path) -> (usize, i64) {
        let mut reader = FrameReader::open(path).unwrap();
        let (mut n, mut end) = (0, 0);
        while let Some(f) = reader.next_frame().unwrap() {
            n += 1;
            end = end.max((f.pts_us + f.duration_us) / 1000);
        }
        (n, end)
    }

    #[test]
    fn a_file_never_finished_keeps_its_complete_clusters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.mkv");
        let audio = StreamSpec::audio(MediaCodec::Opus, 2);
        let mut w = Writer::create(&path, Container::Matroska, &[audio]).unwrap();
        for i in 0..250 {
            w.write(0, i * 20_000, 20_000, &[0xf8], true).unwrap();
        }
        // What a crash leaves: the file as flushed so far.
        let copy = dir.path().join("copy.mkv");
        std::fs::copy(&path, &copy).unwrap();
        drop(w);
        let (count, end) = frames(&copy);
        assert!(count >= 150, "{count}");
        assert!(end >= 3000, "{end}");
        // Finalized, it keeps those frames and gains an index.
        let span = finalize(&copy).unwrap();
        assert_eq!(frames(&copy), (count, end));
        assert_eq!(span, end * 1000);
        assert!(finalize(&dir.path().join("missing.mkv")).is_err());
    }
}
