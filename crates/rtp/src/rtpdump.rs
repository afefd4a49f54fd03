//! The rtptools `rtpdump` format ("rtpplay1.0"), as pion's reader and Stream's raw-recording
//! tool read it: a text line, a 16-byte file header, then each packet behind an 8-byte header.
//! RTCP packets are marked by a zero `plen`.

use std::io::{self, BufRead, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The address named in the text line and the file header (a convention; nothing listens).
const SOURCE: ([u8; 4], u16) = ([127, 0, 0, 1], 5004);

/// Why a dump cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The bytes do not start as a dump does.
    #[error("not an rtpdump (it does not start with \"#!rtpplay1.0\")")]
    NotADump,
    /// The dump ends inside a header or a packet: it was cut short.
    #[error("the rtpdump is cut short at byte {at}")]
    Truncated {
        /// Where the last whole packet ends.
        at: u64,
    },
    /// A packet header gives an impossible length.
    #[error("malformed packet header at byte {at}")]
    Malformed {
        /// Where the bad header starts.
        at: u64,
    },
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A packet read from a dump; its bytes are in the buffer given to the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpPacket {
    /// Milliseconds from the dump's start to the packet's arrival.
    pub offset_ms: u32,
    /// Whether it is an RTCP packet (`plen` 0).
    pub rtcp: bool,
}

/// Reads an rtpdump stream packet by packet, holding one packet at a time.
pub struct RtpdumpReader<R: BufRead> {
    r: R,
    start: SystemTime,
    /// Bytes consumed so far.
    at: u64,
}

impl<R: BufRead> RtpdumpReader<R> {
    /// Reads the text line and file header.
    pub fn new(mut r: R) -> Result<Self, DumpError> {
        let mut line = Vec::new();
        // The line names an address: it is short in any dump.
        io::Read::take(&mut r, 256).read_until(b'\n', &mut line)?;
        if !line.starts_with(b"#!rtpplay1.0 ") || !line.ends_with(b"\n") {
            return Err(DumpError::NotADump);
        }
        let mut header = [0u8; 16];
        let at = line.len() as u64;
        read_whole(&mut r, &mut header, at)?;
        let seconds = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let micros = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        let start = UNIX_EPOCH
            + Duration::from_secs(u64::from(seconds))
            + Duration::from_micros(u64::from(micros.min(999_999)));
        Ok(Self {
            r,
            start,
            at: at + 16,
        })
    }

    /// The wall-clock time packet offsets count from.
    pub fn start(&self) -> SystemTime {
        self.start
    }

    /// Reads the next packet into `buf`; `None` at a clean end.
    pub fn next_packet(&mut self, buf: &mut Vec<u8>) -> Result<Option<DumpPacket>, DumpError> {
        if self.r.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut header = [0u8; 8];
        read_whole(&mut self.r, &mut header, self.at)?;
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let plen = u16::from_be_bytes([header[2], header[3]]);
        if len < 8 {
            return Err(DumpError::Malformed { at: self.at });
        }
        buf.resize(len - 8, 0);
        read_whole(&mut self.r, buf, self.at)?;
        self.at += len as u64;
        Ok(Some(DumpPacket {
            offset_ms: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            rtcp: plen == 0,
        }))
    }

    /// Where the last packet read ends.
    pub fn position(&self) -> u64 {
        self.at
    }
}

/// Fills `buf`, or says the dump was cut short after byte `at`.
fn read_whole(r: &mut impl io::Read, buf: &mut [u8], at: u64) -> Result<(), DumpError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => DumpError::Truncated { at },
        _ => DumpError::Io(e),
    })
}

/// The length of the longest prefix of the dump `r` that holds whole packets only: what a
/// dump cut short by a crash should be truncated to.
pub fn whole_packets_len<R: BufRead>(r: R) -> Result<u64, DumpError> {
    let mut reader = RtpdumpReader::new(r)?;
    let mut buf = Vec::new();
    loop {
        match reader.next_packet(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) | Err(DumpError::Truncated { .. } | DumpError::Malformed { .. }) => {
                return Ok(reader.position());
            }
            Err(e) => return Err(e),
        }
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
    /// The header and payload of an RTP packet (skipping CSRCs and header extensions, and
    /// dropping padding); `None` if `packet` is not a well-formed version 2 RTP packet.
    pub fn parse(packet: &[u8]) -> Option<(RtpHeader, &[u8])> {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return None;
        }
        let word =
            |i: usize| u32::from_be_bytes([packet[i], packet[i + 1], packet[i + 2], packet[i + 3]]);
        let mut start = 12 + 4 * usize::from(packet[0] & 0x0f);
        if packet[0] & 0x10 != 0 {
            let words = packet.get(start + 2..start + 4)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        let mut end = packet.len();
        if packet[0] & 0x20 != 0 {
            end = end.checked_sub(usize::from(*packet.last()?))?;
        }
        let payload = packet.get(start..end)?;
        let header = RtpHeader {
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            seq: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: word(4),
            ssrc: word(8),
        };
        Some((header, payload))
    }

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
    fn the_reader_gives_back_what_was_written_and_names_a_cut() {
        let start = UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000);
        let mut w = RtpdumpWriter::new(Vec::new(), start).unwrap();
        let header = RtpHeader {
            marker: false,
            payload_type: 96,
            seq: 7,
            timestamp: 3000,
            ssrc: 42,
        };
        let mut packet = Vec::new();
        header.write_packet(&[1, 2, 3], &mut packet);
        w.rtp(start + Duration::from_millis(20), &packet).unwrap();
        w.rtcp(
            start + Duration::from_millis(30),
            &sender_report(42, start, 0, 1, 3),
        )
        .unwrap();
        let bytes = w.into_inner();
        let mut r = RtpdumpReader::new(io::Cursor::new(&bytes)).unwrap();
        assert_eq!(r.start(), start);
        let mut buf = Vec::new();
        let first = r.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!((first.offset_ms, first.rtcp), (20, false));
        assert_eq!(RtpHeader::parse(&buf), Some((header, &[1u8, 2, 3][..])));
        let second = r.next_packet(&mut buf).unwrap().unwrap();
        assert_eq!((second.offset_ms, second.rtcp, buf.len()), (30, true, 28));
        assert!(r.next_packet(&mut buf).unwrap().is_none());

        let cut = &bytes[..bytes.len() - 1];
        let mut r = RtpdumpReader::new(io::Cursor::new(cut)).unwrap();
        r.next_packet(&mut buf).unwrap();
        let err = r.next_packet(&mut buf).unwrap_err();
        assert!(matches!(err, DumpError::Truncated { at } if at == bytes.len() as u64 - 36));
        assert!(err.to_string().contains("cut short"));
        assert!(matches!(
            RtpdumpReader::new(io::Cursor::new(b"#!rtpplay1.0 x\n\0\0")),
            Err(DumpError::Truncated { .. })
        ));
    }

    #[test]
    fn rtp_headers_with_csrcs_extensions_and_padding() {
        let mut p = vec![0xb1, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one extension word
        p.extend_from_slice(&[5, 6, 0, 0, 3]); // payload and 3 bytes of padding
        let (h, payload) = RtpHeader::parse(&p).unwrap();
        assert_eq!((h.payload_type, h.seq, h.timestamp, h.ssrc), (96, 1, 2, 3));
        assert_eq!(payload, &[5, 6]);
        for bad in [&p[..11], &p[..18], &[0x40; 12][..]] {
            assert_eq!(RtpHeader::parse(bad), None);
        }
        let mut all_padding = p[..12].to_vec();
        all_padding[0] = 0xa0;
        all_padding.push(200);
        assert_eq!(RtpHeader::parse(&all_padding), None);
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
