//! The rtptools `rtpdump` format ("rtpplay1.0"), as pion's reader and Stream's raw-recording
//! tool read it: a text line, a 16-byte file header, then each packet behind an 8-byte header.
//! RTCP packets are marked by a zero `plen`.

use std::io::{self, BufRead, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The address named in the text line and the file header (a convention; nothing listens).
const SOURCE: ([u8; 4], u16) = ([127, 0, 0, 1], 5004);

/// The length of the longest prefix of the dump `r` that holds whole packets only: what a
/// dump cut short by a crash should be truncated to. An error if `r` does not start as a
/// dump does.
pub fn whole_packets_len<R: BufRead + Seek>(mut r: R) -> io::Result<u64> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.starts_with(b"#!rtpplay1.0 ") || !line.ends_with(b"\n") {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not an rtpdump"));
    }
    let mut end = line.len() as u64 + 16;
    let size = r.seek(SeekFrom::End(0))?;
    if size < end {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "rtpdump header cut short",
        ));
    }
    loop {
        r.seek(SeekFrom::Start(end))?;
        let mut header = [0u8; 8];
        if r.read_exact(&mut header).is_err() {
            return Ok(end);
        }
        let len = u64::from(u16::from_be_bytes([header[0], header[1]]));
        if len < 8 || end + len > size {
            return Ok(end);
        }
        end += len;
    }
}

/// Writes an rtpdump stream.
pub struct RtpdumpWriter<W: Write> {
    out: W,
    start: SystemTime,
}

impl<W: Write> RtpdumpWriter<W> {
    /// Starts a dump whose packet offsets count from `start`.
    pub fn new(mut out: W, start: SystemTime) -> io::Result<Self> {
        let (ip, port) = SOURCE;
        writeln!(
            out,
            "#!rtpplay1.0 {}.{}.{}.{}/{port}",
            ip[0], ip[1], ip[2], ip[3]
        )?;
        let since = start.duration_since(UNIX_EPOCH).unwrap_or_default();
        // The format has 32 bits of seconds.
        out.write_all(&(since.as_secs() as u32).to_be_bytes())?;
        out.write_all(&since.subsec_micros().to_be_bytes())?;
        out.write_all(&ip)?;
        out.write_all(&port.to_be_bytes())?;
        out.write_all(&[0, 0])?;
        Ok(Self { out, start })
    }

    /// Appends an RTP packet received at `at`.
    pub fn rtp(&mut self, at: SystemTime, packet: &[u8]) -> io::Result<()> {
        self.record(at, packet, true)
    }

    /// Appends an RTCP packet received at `at`.
    pub fn rtcp(&mut self, at: SystemTime, packet: &[u8]) -> io::Result<()> {
        self.record(at, packet, false)
    }

    fn record(&mut self, at: SystemTime, packet: &[u8], rtp: bool) -> io::Result<()> {
        let len = u16::try_from(packet.len() + 8)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet over 65527 bytes"))?;
        let plen = if rtp { len - 8 } else { 0 };
        let offset = at.duration_since(self.start).unwrap_or(Duration::ZERO);
        // Offsets wrap after 49 days, as in rtptools.
        let offset_ms = offset.as_millis() as u32;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&plen.to_be_bytes())?;
        self.out.write_all(&offset_ms.to_be_bytes())?;
        self.out.write_all(packet)
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The fields of an RTP header reel writes (version 2, no padding, CSRCs or extensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Appends the 12-byte header and `payload` to `out`.
    pub fn write_packet(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
    }
}

/// Seconds from the NTP epoch (1900) to the unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// An RTCP sender report (RFC 3550 6.4.1) without report blocks: `ssrc` says that `rtp_time`
/// was its media clock at wall-clock `ntp` (unix time), after `packets` packets of `octets`
/// payload bytes.
pub fn sender_report(
    ssrc: u32,
    ntp: SystemTime,
    rtp_time: u32,
    packets: u32,
    octets: u32,
) -> [u8; 28] {
    let since = ntp.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = (since.as_secs() + NTP_UNIX_OFFSET) as u32;
    let fraction = ((u64::from(since.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    let mut sr = [0u8; 28];
    sr[0] = 0x80;
    sr[1] = 200;
    sr[2..4].copy_from_slice(&6u16.to_be_bytes());
    for (i, word) in [ssrc, seconds, fraction, rtp_time, packets, octets]
        .into_iter()
        .enumerate()
    {
        sr[4 + 4 * i..8 + 4 * i].copy_from_slice(&word.to_be_bytes());
    }
    sr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_packet_is_cut_off() {
        let mut w = RtpdumpWriter::new(Vec::new(), UNIX_EPOCH).unwrap();
        w.rtp(UNIX_EPOCH, &[0x80; 20]).unwrap();
        w.rtcp(UNIX_EPOCH, &[0x81; 28]).unwrap();
        let whole = w.into_inner().len() as u64;
        let mut w = RtpdumpWriter::new(Vec::new(), UNIX_EPOCH).unwrap();
        w.rtp(UNIX_EPOCH, &[0x80; 20]).unwrap();
        w.rtcp(UNIX_EPOCH, &[0x81; 28]).unwrap();
        w.rtp(UNIX_EPOCH, &[0x80; 100]).unwrap();
        let mut bytes = w.into_inner();
        bytes.truncate(bytes.len() - 7);
        assert_eq!(whole_packets_len(io::Cursor::new(&bytes)).unwrap(), whole);
        bytes.truncate(whole as usize + 3);
        assert_eq!(whole_packets_len(io::Cursor::new(&bytes)).unwrap(), whole);
        assert!(whole_packets_len(io::Cursor::new(b"garbage")).is_err());
    }

    #[test]
    fn file_and_packet_headers() {
        let start = UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
        let mut w = RtpdumpWriter::new(Vec::new(), start).unwrap();
        let mut packet = Vec::new();
        RtpHeader {
            marker: true,
            payload_type: 111,
            seq: 65535,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
        }
        .write_packet(&[9, 9], &mut packet);
        assert_eq!(
            packet,
            [
                0x80, 0xef, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 9, 9
            ]
        );
        w.rtp(start + Duration::from_millis(1500), &packet).unwrap();
        w.rtcp(start, &sender_report(7, start, 90_000, 1, 2))
            .unwrap();
        let bytes = w.into_inner();
        let text = b"#!rtpplay1.0 127.0.0.1/5004\n";
        assert!(bytes.starts_with(text));
        let h = &bytes[text.len()..];
        assert_eq!(&h[..4], &1_700_000_000u32.to_be_bytes());
        assert_eq!(&h[4..8], &250_000u32.to_be_bytes());
        assert_eq!(&h[8..16], &[127, 0, 0, 1, 0x13, 0x8c, 0, 0]);
        let p = &h[16..];
        assert_eq!(&p[..8], &[0, 22, 0, 14, 0, 0, 0x05, 0xdc]);
        assert_eq!(&p[8..22], &packet[..]);
        let r = &p[22..];
        assert_eq!(&r[..8], &[0, 36, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[8..12], &[0x80, 200, 0, 6]);
        // NTP seconds of 1,700,000,000.25 and a quarter second as a fraction.
        assert_eq!(
            &r[16..20],
            &(1_700_000_000u32 + 2_208_988_800u32).to_be_bytes()
        );
        assert_eq!(&r[20..24], &0x4000_0000u32.to_be_bytes());
        assert_eq!(r.len(), 36);
    }
}
