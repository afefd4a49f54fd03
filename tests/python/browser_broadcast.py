"""Broadcasts from headless Chromium's fake camera and microphone over WHIP, or watches a
broadcast over WHEP, with trickle ICE as browsers and OBS do: the offer goes before any
candidate is known, and each candidate follows by PATCH (application/trickle-ice-sdpfrag).

usage: browser_broadcast.py publish|watch ORIGIN URL TOKEN SECONDS [CODEC [RESIZE_AFTER]]
  ORIGIN is a page of the server (the script runs there); URL the WHIP or WHEP endpoint;
  TOKEN "-" for none. A publisher sends CODEC (a video MIME type, by default the browser's
  choice) at 640x360, and at 320x180 from RESIZE_AFTER seconds on, if given. Prints one JSON line: {"status"} and, once the session was made,
  {"candidates_in_offer", "patches", "codec", "sent" or "received": {"audio", "video"},
  "frames_decoded"} from the browser's stats before the session is deleted.
"""
import asyncio
import json
import os
import sys

from playwright.async_api import async_playwright

CHROMIUM = os.environ.get("REEL_TEST_CHROMIUM", "/usr/lib/chromium/chromium")
FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
         "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

SESSION = """async ([publish, url, token, seconds, codec, resizeAfter]) => {
  const pc = new RTCPeerConnection();
  if (publish) {
    const media = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 360}});
    for (const track of media.getTracks()) {
      const t = pc.addTransceiver(track, {direction: "sendonly"});
      if (codec && track.kind === "video") {
        const caps = RTCRtpSender.getCapabilities("video").codecs;
        t.setCodecPreferences(caps.filter((c) => c.mimeType === codec || c.mimeType === "video/rtx"));
      }
      if (resizeAfter && track.kind === "video") {
        setTimeout(() => track.applyConstraints({width: 320, height: 180}), resizeAfter * 1000);
      }
    }
  } else {
    pc.addTransceiver("audio", {direction: "recvonly"});
    pc.addTransceiver("video", {direction: "recvonly"});
  }
  const auth = token === "-" ? {} : {"Authorization": "Bearer " + token};
  let location = null, patches = 0;
  const waiting = [];
  const patch = async (line) => {
    const mid = pc.getTransceivers()[0].mid;
    const frag = `a=mid:${mid}\\r\\n${line}\\r\\n`;
    const r = await fetch(location, {method: "PATCH", body: frag,
      headers: {...auth, "Content-Type": "application/trickle-ice-sdpfrag"}});
    if (r.status !== 204) throw new Error("PATCH answered " + r.status);
    patches++;
  };
  const sent = [];
  pc.onicecandidate = (e) => {
    const line = e.candidate ? "a=" + e.candidate.candidate : "a=end-of-candidates";
    if (location) sent.push(patch(line)); else waiting.push(line);
  };
  await pc.setLocalDescription(await pc.createOffer());
  const offer = pc.localDescription.sdp;
  const r = await fetch(url, {method: "POST", body: offer, headers: {...auth, "Content-Type": "application/sdp"}});
  if (r.status !== 201) return {status: r.status, text: await r.text()};
  location = new URL(r.headers.get("Location"), url).href;
  await pc.setRemoteDescription({type: "answer", sdp: await r.text()});
  for (const line of waiting.splice(0)) sent.push(patch(line));
  await new Promise((done) => setTimeout(done, seconds * 1000));
  await Promise.all(sent);
  const out = {status: 201, candidates_in_offer: offer.split("\\n").filter((l) => l.startsWith("a=candidate")).length,
               patches, sent: {audio: 0, video: 0}, received: {audio: 0, video: 0}, codec: null, frames_decoded: 0};
  const stats = await pc.getStats();
  for (const s of stats.values()) {
    if (s.type === "outbound-rtp" || s.type === "inbound-rtp") {
      if (s.type === "outbound-rtp") out.sent[s.kind] += s.packetsSent;
      else out.received[s.kind] += s.packetsReceived;
      if (s.kind === "video" && s.codecId) out.codec = stats.get(s.codecId).mimeType;
      if (s.kind === "video" && s.framesDecoded) out.frames_decoded += s.framesDecoded;
    }
  }
  await fetch(location, {method: "DELETE", headers: auth});
  pc.close();
  return out;
}"""


async def main(mode: str, origin: str, url: str, token: str, seconds: float,
               codec: str | None, resize_after: float | None) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = await browser.new_page()
        page.on("console", lambda m: print(f"console: {m.text}", file=sys.stderr))
        await page.goto(origin)
        out = await page.evaluate(SESSION, [mode == "publish", url, token, seconds, codec, resize_after])
        await browser.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], args[3], float(args[4]),
                     args[5] if len(args) > 5 else None,
                     float(args[6]) if len(args) > 6 else None))
