//! One Matroska file from the streams of several, each moved in time, with no re-encoding.

use std::path::Path;

use ffmpeg_next::util::mathematics::Rescale;
use ffmpeg_next::{Packet, Rational};

use super::writer::{Container, MICROS, live_options};
use super::{MuxError, create_output, init, open_input};

/// Writes every stream of each `(file, offset_us)` into `output` (Matroska), each file's
/// times moved `offset_us` later, the packets interleaved by time.
pub fn interleave(inputs: &[(&Path, i64)], output: &Path) -> Result<(), MuxError> {
    copy_streams(inputs, output, Container::Matroska).map(drop)
}

/// [`interleave`] into a `container` file; the time the written frames span, in µs.
pub(super) fn copy_streams(
    inputs: &[(&Path, i64)],
    output: &Path,
    container: Container,
) -> Result<i64, MuxError> {
    init();
    let context = format!("cannot write {}", output.display());
    let mut opened = Vec::with_capacity(inputs.len());
    for (path, _) in inputs {
        let input = open_input(path, &format!("cannot read {}", path.display()))?;
        opened.push(input);
    }
    let mut out = create_output(output, container.format(), &context)?;
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
    out.write_header_with(live_options())
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
