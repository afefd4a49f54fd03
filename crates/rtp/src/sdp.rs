//! Session descriptions of recorded RTP streams: one codec per file, nothing else, as the
//! raw-recording tools (and ffmpeg or GStreamer given the dump) read them.

/// What the description of one recorded RTP stream says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSdp {
    /// Video, or audio.
    pub video: bool,
    /// The RTP payload type.
    pub payload_type: u8,
    /// The codec's SDP name (`opus`, `VP8`, `H264`, ...).
    pub name: String,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// Audio channels (0 for video, and for audio that does not say).
    pub channels: u8,
    /// Format parameters (`a=fmtp`), may be empty.
    pub fmtp: String,
}

/// Why a description cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// No `m=audio` or `m=video` line.
    #[error("the SDP has no audio or video media line")]
    NoMedia,
    /// No `a=rtpmap` for the media line's first payload type.
    #[error("the SDP has no rtpmap for payload type {0}")]
    NoRtpmap(u8),
    /// A line that should hold numbers does not.
    #[error("malformed SDP line: {0}")]
    Malformed(String),
}

impl StreamSdp {
    /// The SDP text.
    pub fn render(&self) -> String {
        let kind = if self.video { "video" } else { "audio" };
        let pt = self.payload_type;
        let mut sdp = format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=raw-recording\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m={kind} 5004 RTP/AVP {pt}\r\na=rtpmap:{pt} {}/{}",
            self.name, self.clock_rate
        );
        if self.channels > 0 {
            sdp.push_str(&format!("/{}", self.channels));
        }
        sdp.push_str("\r\n");
        if !self.fmtp.is_empty() {
            sdp.push_str(&format!("a=fmtp:{pt} {}\r\n", self.fmtp));
        }
        sdp
    }

    /// Reads the first media line of `text` and its first payload type's codec.
    pub fn parse(text: &str) -> Result<StreamSdp, SdpError> {
        let lines = || text.lines().map(str::trim);
        let malformed = |line: &str| SdpError::Malformed(line.chars().take(80).collect());
        let media = lines()
            .find(|l| l.starts_with("m=audio ") || l.starts_with("m=video "))
            .ok_or(SdpError::NoMedia)?;
        let payload_type: u8 = media
            .split_whitespace()
            .nth(3)
            .and_then(|pt| pt.parse().ok())
            .ok_or_else(|| malformed(media))?;
        let attribute = |name: &str| {
            let prefix = format!("a={name}:{payload_type} ");
            lines().find_map(|l| l.strip_prefix(&prefix).map(str::trim))
        };
        let rtpmap = attribute("rtpmap").ok_or(SdpError::NoRtpmap(payload_type))?;
        let mut parts = rtpmap.split('/');
        let name = parts.next().unwrap_or_default().to_owned();
        let clock_rate = parts
            .next()
            .and_then(|c| c.parse().ok())
            .filter(|&c| c > 0)
            .ok_or_else(|| malformed(rtpmap))?;
        let channels = match parts.next() {
            Some(c) => c.parse().map_err(|_| malformed(rtpmap))?,
            None => 0,
        };
        Ok(StreamSdp {
            video: media.starts_with("m=video"),
            payload_type,
            name,
            clock_rate,
            channels,
            fmtp: attribute("fmtp").unwrap_or_default().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opus() -> StreamSdp {
        StreamSdp {
            video: false,
            payload_type: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: 2,
            fmtp: "minptime=10;useinbandfec=1".into(),
        }
    }

    #[test]
    fn audio_and_video() {
        let a = opus().render();
        assert!(a.contains("m=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"));
        let vp8 = StreamSdp {
            video: true,
            payload_type: 96,
            name: "VP8".into(),
            clock_rate: 90000,
            channels: 0,
            fmtp: String::new(),
        };
        let v = vp8.render();
        assert!(v.ends_with("m=video 5004 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"));
        assert!(v.starts_with("v=0\r\n"));
        assert_eq!(StreamSdp::parse(&a), Ok(opus()));
        assert_eq!(StreamSdp::parse(&v), Ok(vp8));
    }

    #[test]
    fn descriptions_that_cannot_be_read() {
        assert_eq!(StreamSdp::parse("v=0\r\n"), Err(SdpError::NoMedia));
        let no_map = "m=video 9 RTP/AVP 96\na=rtpmap:97 VP8/90000\n";
        assert_eq!(StreamSdp::parse(no_map), Err(SdpError::NoRtpmap(96)));
        let bad_clock = "m=audio 9 RTP/AVP 0\na=rtpmap:0 PCMU/fast\n";
        assert!(matches!(
            StreamSdp::parse(bad_clock),
            Err(SdpError::Malformed(_))
        ));
        let bad_pt = "m=audio 9 RTP/AVP 300\n";
        assert!(matches!(
            StreamSdp::parse(bad_pt),
            Err(SdpError::Malformed(_))
        ));
    }
}
