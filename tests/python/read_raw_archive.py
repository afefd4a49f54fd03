"""An independent reader of raw recording archives, written from the format's description
(rtptools' rtpdump, single-codec SDP, *_timing_metadata.json), sharing no code with reel.

usage: read_raw_archive.py ARCHIVE.tar.gz
  Prints one JSON object: {"entries": [paths], "participants": [metadata with, per segment,
  "dump": {"rtp", "rtcp", "ssrcs", "first_seq", "last_ts", "pts", "repeated", "missing",
  "sdp_rtpmap"}]}; "missing" counts the sequence numbers between the first and the last that
  no packet has (what the network lost before reel got it).
"""
import json
import re
import struct
import sys
import tarfile

PREAMBLE = re.compile(rb"^#!rtpplay1\.0 (\d+\.\d+\.\d+\.\d+)/(\d+)\n")


def read_dump(data: bytes) -> dict:
    m = PREAMBLE.match(data)
    if not m:
        raise ValueError("bad rtpdump preamble")
    pos = m.end() + 16
    rtp = rtcp = 0
    ssrcs, pts, seqs = set(), set(), set()
    repeated = 0
    first_seq = last_ts = None
    last_offset = -1
    extended, prev = [], None
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated packet header")
        length, plen, offset = struct.unpack(">HHI", data[pos:pos + 8])
        body = data[pos + 8:pos + length]
        if len(body) != length - 8:
            raise ValueError("truncated packet")
        if offset < last_offset:
            raise ValueError("offsets go backwards")
        last_offset = offset
        if plen == 0:
            if body[1] != 200:
                raise ValueError(f"unexpected RTCP type {body[1]}")
            rtcp += 1
        else:
            if plen != length - 8 or body[0] >> 6 != 2:
                raise ValueError("bad RTP packet")
            pt = body[1] & 0x7F
            seq, last_ts, ssrc = struct.unpack(">HII", body[2:12])
            if first_seq is None:
                first_seq = seq
            if (ssrc, seq) in seqs:
                repeated += 1
            seqs.add((ssrc, seq))
            if prev is None:
                extended.append(seq)
            else:
                step = (seq - prev + 0x8000) % 0x10000 - 0x8000
                extended.append(extended[-1] + step)
            prev = seq
            ssrcs.add(ssrc)
            pts.add(pt)
            rtp += 1
        pos += length
    return {"rtp": rtp, "rtcp": rtcp, "ssrcs": sorted(ssrcs), "first_seq": first_seq, "last_ts": last_ts, "pts": sorted(pts),
            "repeated": repeated,
            "missing": (max(extended) - min(extended) + 1 - len(set(extended))) if extended else 0}


def main(path: str) -> None:
    with tarfile.open(path, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        files = {name: tar.extractfile(m).read() for name, m in members.items()}
    participants = []
    for name, data in sorted(files.items()):
        if not name.endswith("_timing_metadata.json"):
            continue
        meta = json.loads(data)
        folder = name.rsplit("/", 1)[0]
        for seg in meta["segments"]["audio"] + meta["segments"]["video"]:
            dumps = [n for n in files if n.endswith(".rtpdump") and seg["base_filename"] in n]
            if len(dumps) != 1:
                raise ValueError(f"{seg['base_filename']} matches {dumps}")
            dump = read_dump(files[dumps[0]])
            sdp = files[dumps[0][: -len(".rtpdump")] + ".sdp"].decode()
            rtpmaps = [l for l in sdp.splitlines() if l.startswith("a=rtpmap:")]
            dump["sdp_rtpmap"] = rtpmaps[-1] if rtpmaps else None
            dump["sdp_lines"] = len(sdp.splitlines())
            dump["folder"] = dumps[0].rsplit("/", 1)[0] == folder
            seg["dump"] = dump
        participants.append(meta)
    print(json.dumps({"entries": sorted(files), "participants": participants}))


if __name__ == "__main__":
    main(sys.argv[1])
