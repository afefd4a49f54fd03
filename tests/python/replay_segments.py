"""Turns every track segment of a raw recording archive into a media file with ffmpeg, the
way a user would without reel: each `.rtpdump` is replayed over UDP on loopback to ffmpeg,
which reads the segment's `.sdp` and copies the stream into Matroska.

usage: replay_segments.py ARCHIVE.tar.gz OUTDIR
  Prints one JSON line: per segment, {"dump": <path in the archive>, "out": <file>,
  "sent": <RTP packets replayed>, "rc": <ffmpeg's exit code>, "errors": <ffmpeg's stderr>}.
"""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

SPEED = 4.0  # replay faster than real time
# ffmpeg's socket buffer (the kernel caps it at net.core.rmem_max): an ffmpeg waiting for the
# CPU on a busy machine finds what was sent meanwhile, as a receiver with a jitter buffer
# would, instead of the kernel dropping it.
BUFFER = 4 * 1024 * 1024


def rtp_packets(data: bytes):
    """(offset ms, packet) of every RTP packet of an rtpdump (RTCP is skipped)."""
    pos = data.index(b"\n") + 1 + 16
    while pos < len(data):
        length, plen, offset = struct.unpack(">HHI", data[pos:pos + 8])
        if plen:
            yield offset, data[pos + 8:pos + length]
        pos += length


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_queue(port: int):
    """The bytes waiting in the UDP socket bound to `port` on this machine, or None if none is."""
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}"):
                return int(fields[4].split(":")[1], 16)
    return None


def wait(until, what: str, timeout: float = 60.0) -> None:
    start = time.monotonic()
    while not until():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"{what} within {timeout} s")
        time.sleep(0.05)


def replay(dump: bytes, sdp: str, out: str, result: dict) -> None:
    port = free_port()
    sdp = re.sub(r"^m=(\w+) \d+", lambda m: f"m={m.group(1)} {port}", sdp, flags=re.M)
    sdp = re.sub(r"^c=.*$", "c=IN IP4 127.0.0.1", sdp, flags=re.M)
    with tempfile.NamedTemporaryFile("w", suffix=".sdp", delete=False) as f:
        f.write(sdp)
    ffmpeg = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp",
         "-buffer_size", str(BUFFER), "-i", f.name, "-map", "0", "-c", "copy", "-y", out],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    # Sent once ffmpeg listens (a busy machine may take seconds to start it).
    wait(lambda: udp_queue(port) is not None, "ffmpeg did not listen")
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        start = time.monotonic()
        for offset, packet in rtp_packets(dump):
            delay = start + offset / 1000 / SPEED - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            s.sendto(packet, ("127.0.0.1", port))
            sent += 1
    # Stopped once ffmpeg has read everything.
    wait(lambda: not udp_queue(port), "ffmpeg did not read the stream")
    time.sleep(0.5)
    _, errors = ffmpeg.communicate(b"q", timeout=30)
    os.unlink(f.name)
    result.update(out=out, sent=sent, rc=ffmpeg.returncode, errors=errors.decode(errors="replace"))


def main(path: str, outdir: str) -> None:
    with tarfile.open(path, "r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    results, threads = [], []
    for name in sorted(files):
        if not name.endswith(".rtpdump"):
            continue
        sdp = files[name[: -len(".rtpdump")] + ".sdp"].decode()
        out = os.path.join(outdir, os.path.basename(name)[: -len(".rtpdump")] + ".mkv")
        result = {"dump": name}
        results.append(result)
        t = threading.Thread(target=replay, args=(files[name], sdp, out, result))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
