//! Session descriptions of recorded RTP streams: one codec per file, nothing else, as the
//! raw-recording tools (and ffmpeg or GStreamer given the dump) read them.

/// The SDP of one RTP stream: `video` or audio, payload type `pt`, the codec's SDP `name`,
/// clock rate, audio `channels` (0 for video) and format parameters (`a=fmtp`, may be empty).
pub fn single_codec(
    video: bool,
    pt: u8,
    name: &str,
    clock_rate: u32,
    channels: u8,
    fmtp: &str,
) -> String {
    let kind = if video { "video" } else { "audio" };
    let mut sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=raw-recording\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m={kind} 5004 RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/{clock_rate}"
    );
    if channels > 0 {
        sdp.push_str(&format!("/{channels}"));
    }
    sdp.push_str("\r\n");
    if !fmtp.is_empty() {
        sdp.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
    }
    sdp
}

#[cfg(test)]
mod tests {
    #[test]
    fn audio_and_video() {
        let a = super::single_codec(false, 111, "opus", 48000, 2, "minptime=10;useinbandfec=1");
        assert!(a.contains("m=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"));
        let v = super::single_codec(true, 96, "VP8", 90000, 0, "");
        assert!(v.ends_with("m=video 5004 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"));
        assert!(v.starts_with("v=0\r\n"));
    }
}
