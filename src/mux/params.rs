//! Codec parameters of streams whose frames come from RTP, set by hand: FFmpeg's safe API
//! reaches only the codec and its type.

use ffmpeg_next::ffi;

use super::StreamSpec;
use crate::rtp::MediaCodec;

/// Fills `par` (a new stream's parameters) from `spec`.
///
/// # Safety
/// `par` must point to the `AVCodecParameters` of a stream that no other code uses.
pub(super) unsafe fn fill(par: *mut ffi::AVCodecParameters, spec: &StreamSpec) {
    use ffi::AVCodecID::*;
    // SAFETY: the caller owns `par`.
    let par = unsafe { &mut *par };
    par.codec_id = match spec.codec {
        MediaCodec::Opus => AV_CODEC_ID_OPUS,
        MediaCodec::Vp8 => AV_CODEC_ID_VP8,
        MediaCodec::Vp9 => AV_CODEC_ID_VP9,
        MediaCodec::H264 => AV_CODEC_ID_H264,
        MediaCodec::Av1 => AV_CODEC_ID_AV1,
    };
    let private;
    if spec.codec.is_audio() {
        par.codec_type = ffi::AVMediaType::AVMEDIA_TYPE_AUDIO;
        par.sample_rate = 48_000;
        let channels = i32::from(spec.channels.max(1));
        // SAFETY: `ch_layout` belongs to `par`.
        unsafe { ffi::av_channel_layout_default(&mut par.ch_layout, channels) };
        par.channels = channels;
        // Opus in Matroska must carry its identification header, or browsers refuse it.
        private = opus_head(spec.channels.max(1));
    } else {
        par.codec_type = ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
        par.width = i32::try_from(spec.width).unwrap_or(0);
        par.height = i32::try_from(spec.height).unwrap_or(0);
        private = spec.codec_private.clone().unwrap_or_default();
    }
    if !private.is_empty() {
        // FFmpeg frees extradata with av_free and reads up to 64 bytes past its end.
        let padded = private.len() + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        // SAFETY: a fresh zeroed allocation of `padded` bytes, of which `private` fills the
        // start; FFmpeg owns it from here.
        unsafe {
            let buf = ffi::av_mallocz(padded).cast::<u8>();
            if !buf.is_null() {
                std::ptr::copy_nonoverlapping(private.as_ptr(), buf, private.len());
                par.extradata = buf;
                par.extradata_size = private.len() as i32;
            }
        }
    }
}

/// The 19-byte `OpusHead` of a stream from RTP: no pre-skip (RTP timestamps are already the
/// presentation times), 48 kHz, no gain, channel mapping family 0.
fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, channels, 0, 0]);
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]);
    head
}

/// Makes the Opus decoder of `ctx` give one channel: the mean of the two of a stereo
/// stream whose packets are all coded mono (as browsers send them), at less cost than
/// decoding two equal channels and averaging them. Without a header, the decoder takes
/// one channel instead of Opus's own two. Other codecs and channel mappings are left as
/// they are.
///
/// # Safety
/// `ctx` must point to a codec context that is not yet opened and that no other code uses.
pub(super) unsafe fn decode_opus_as_mono(ctx: *mut ffi::AVCodecContext) {
    // SAFETY: the caller owns `ctx`.
    let ctx = unsafe { &mut *ctx };
    if ctx.codec_id != ffi::AVCodecID::AV_CODEC_ID_OPUS {
        return;
    }
    let size = usize::try_from(ctx.extradata_size).unwrap_or(0);
    if ctx.extradata.is_null() {
        // SAFETY: `ch_layout` belongs to `ctx`.
        unsafe {
            ffi::av_channel_layout_uninit(&mut ctx.ch_layout);
            ffi::av_channel_layout_default(&mut ctx.ch_layout, 1);
        }
        return;
    }
    if size < 19 {
        return;
    }
    // SAFETY: `extradata` holds `size` bytes.
    let head = unsafe { std::slice::from_raw_parts_mut(ctx.extradata, size) };
    // Only the header of channel mapping family 0 (mono or stereo) says no more than this.
    if !head.starts_with(b"OpusHead") || head[18] != 0 {
        return;
    }
    head[9] = 1;
    // SAFETY: `ch_layout` belongs to `ctx`.
    unsafe {
        ffi::av_channel_layout_uninit(&mut ctx.ch_layout);
        ffi::av_channel_layout_default(&mut ctx.ch_layout, 1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn opus_head_is_19_bytes() {
        let head = super::opus_head(2);
        assert_eq!(head.len(), 19);
        assert_eq!(&head[8..12], [1, 2, 0, 0]);
    }
}
