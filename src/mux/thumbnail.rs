//! Still pictures of a video: one key frame decoded on its own and written as a JPEG, made
//! smaller when it is wide. Each picture gets a decoder and an encoder of its own, which
//! costs little next to decoding (pictures are taken seconds apart).

use ffmpeg_next::codec::{self, Id};
use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling::{self, Flags};
use ffmpeg_next::{Packet, Rational, frame};

use super::{MuxError, init};
use crate::rtp::MediaCodec;

/// The JPEG quantizer (2 best .. 31 worst): small files that still look sharp.
const QUALITY: i32 = 5;

/// The JPEG of the key frame `keyframe` (as RTP carried it: H.264 in Annex B with its
/// parameter sets), at most `max_width` pixels wide, keeping its shape.
pub fn thumbnail(codec: MediaCodec, keyframe: &[u8], max_width: u32) -> Result<Vec<u8>, MuxError> {
    init();
    picture(codec, keyframe, max_width).map_err(MuxError::new(format!(
        "cannot make a picture of a {codec:?} key frame"
    )))
}

fn picture(
    codec: MediaCodec,
    keyframe: &[u8],
    max_width: u32,
) -> Result<Vec<u8>, ffmpeg_next::Error> {
    let picture = decode(codec, keyframe)?;
    let (width, height) = fit((picture.width(), picture.height()), max_width);
    let mut scaled = frame::Video::empty();
    scaling::Context::get(
        picture.format(),
        picture.width(),
        picture.height(),
        Pixel::YUVJ420P,
        width,
        height,
        Flags::AREA,
    )?
    .run(&picture, &mut scaled)?;
    encode_jpeg(&scaled)
}

/// The size of a picture of `size` at most `max_width` wide, in even pixels.
fn fit((w, h): (u32, u32), max_width: u32) -> (u32, u32) {
    let (w2, h2) = if w > max_width {
        (
            max_width,
            (u64::from(h) * u64::from(max_width) / u64::from(w.max(1))) as u32,
        )
    } else {
        (w, h)
    };
    ((w2 & !1).max(2), (h2 & !1).max(2))
}

/// The picture of `keyframe`, decoded alone.
fn decode(codec: MediaCodec, keyframe: &[u8]) -> Result<frame::Video, ffmpeg_next::Error> {
    let id = match codec {
        MediaCodec::Vp8 => Id::VP8,
        MediaCodec::Vp9 => Id::VP9,
        MediaCodec::H264 => Id::H264,
        MediaCodec::Av1 => Id::AV1,
        MediaCodec::Opus => return Err(ffmpeg_next::Error::InvalidData),
    };
    let found = ffmpeg_next::decoder::find(id).ok_or(ffmpeg_next::Error::DecoderNotFound)?;
    let mut decoder = codec::context::Context::new_with_codec(found)
        .decoder()
        .video()?;
    decoder.send_packet(&Packet::copy(keyframe))?;
    decoder.send_eof()?;
    let mut picture = frame::Video::empty();
    decoder.receive_frame(&mut picture)?;
    if picture.width() == 0 || picture.height() == 0 {
        return Err(ffmpeg_next::Error::InvalidData);
    }
    Ok(picture)
}

/// `picture` (full-range 4:2:0) as a JPEG file's bytes.
fn encode_jpeg(picture: &frame::Video) -> Result<Vec<u8>, ffmpeg_next::Error> {
    let found = ffmpeg_next::encoder::find(Id::MJPEG).ok_or(ffmpeg_next::Error::EncoderNotFound)?;
    let mut encoder = codec::context::Context::new_with_codec(found)
        .encoder()
        .video()?;
    encoder.set_width(picture.width());
    encoder.set_height(picture.height());
    encoder.set_format(Pixel::YUVJ420P);
    encoder.set_time_base(Rational::new(1, 1));
    encoder.set_qmin(QUALITY);
    encoder.set_qmax(QUALITY);
    let mut encoder = encoder.open()?;
    encoder.send_frame(picture)?;
    encoder.send_eof()?;
    let mut packet = Packet::empty();
    encoder.receive_packet(&mut packet)?;
    Ok(packet.data().map(<[u8]>::to_vec).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::FrameReader;

    #[test]
    fn wide_pictures_are_made_smaller_and_keep_their_shape() {
        assert_eq!(fit((1920, 1080), 640), (640, 360));
        assert_eq!(fit((320, 240), 640), (320, 240));
        assert_eq!(fit((641, 481), 640), (640, 480));
        assert_eq!(fit((4000, 1), 640), (640, 2));
    }

    #[test]
    fn a_key_frame_becomes_a_jpeg_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("clip.webm");
        let made = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=1280x720:rate=5",
            ])
            .args(["-frames:v", "1", "-c:v", "libvpx"])
            .arg(&clip)
            .status()
            .unwrap();
        assert!(made.success());
        let frame = FrameReader::open(&clip)
            .unwrap()
            .next_frame()
            .unwrap()
            .unwrap();
        assert!(frame.keyframe);
        let jpeg = thumbnail(MediaCodec::Vp8, &frame.data, 640).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
        let out = dir.path().join("t.jpg");
        std::fs::write(&out, &jpeg).unwrap();
        let probed = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
            ])
            .args(["-of", "csv=p=0"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&probed.stdout).trim(),
            "mjpeg,640,360"
        );
        // Its colours are the picture's: FFmpeg's own reading of both, in RGB, agrees.
        let rgb = |file: &std::path::Path| {
            let out = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-i"])
                .arg(file)
                .args(["-frames:v", "1", "-vf", "scale=640:360", "-f", "rawvideo"])
                .args(["-pix_fmt", "rgb24", "-"])
                .output()
                .unwrap();
            out.stdout
        };
        let (ours, theirs) = (rgb(&out), rgb(&clip));
        assert_eq!(ours.len(), 640 * 360 * 3);
        assert_eq!(ours.len(), theirs.len());
        let differ: u64 = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = differ as f64 / ours.len() as f64;
        assert!(mean < 6.0, "the colours differ by {mean} on average");
        assert!(thumbnail(MediaCodec::Vp8, &[0x55; 300], 640).is_err());
        assert!(thumbnail(MediaCodec::H264, &[], 640).is_err());
        assert!(thumbnail(MediaCodec::Opus, &frame.data, 640).is_err());
    }
}
