"""Publishes a test pattern and a tone to a WHIP endpoint with aiortc, without trickle ICE.

usage: whip_publish.py URL TOKEN CODEC SECONDS [SOUND]
  CODEC is vp8 or h264; SOUND is an ffmpeg audio source graph (default: a 440 Hz tone). Prints one JSON line: {"location": ..., "sent": {"audio": n, "video": n}}
  with the packets aiortc reports sent, after deleting the session.
"""
import asyncio
import json
import sys
import urllib.parse

import aioice.ice
import httpx
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

# Loopback only: aiortc never gathers 127.0.0.1 by itself.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def main(url: str, token: str, codec: str, seconds: float, sound: str) -> None:
    pc = RTCPeerConnection()
    video = MediaPlayer("testsrc=size=640x360:rate=30", format="lavfi")
    audio = MediaPlayer(sound, format="lavfi")
    pc.addTransceiver(audio.audio, direction="sendonly")
    vt = pc.addTransceiver(video.video, direction="sendonly")
    mime = {"vp8": "video/VP8", "h264": "video/H264"}[codec]
    caps = RTCRtpSender.getCapabilities("video").codecs
    vt.setCodecPreferences([c for c in caps if c.mimeType in (mime, "video/rtx")])
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content=pc.localDescription.sdp, headers=headers)
        if r.status_code != 201:
            raise SystemExit(f"WHIP answered {r.status_code}: {r.text}")
        location = urllib.parse.urljoin(url, r.headers["Location"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
        await asyncio.sleep(seconds)
        sent = {"audio": 0, "video": 0}
        for s in (await pc.getStats()).values():
            if s.type == "outbound-rtp":
                sent[s.kind] += s.packetsSent
        r = await http.delete(location, headers=headers)
        assert r.status_code == 200, r.status_code
    await pc.close()
    print(json.dumps({"location": location, "sent": sent}), flush=True)


if __name__ == "__main__":
    sound = sys.argv[5] if len(sys.argv) > 5 else "sine=frequency=440"
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sound))
