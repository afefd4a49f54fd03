"""Broadcasts from headless Chromium's fake camera and microphone over WHIP with trickle ICE,
as browser broadcasters and OBS do: the offer goes before any candidate is known, and each
candidate follows by PATCH (application/trickle-ice-sdpfrag) as the browser finds it.

usage: browser_broadcast.py ORIGIN WHIP_URL TOKEN SECONDS
  ORIGIN is a page of the server (the script runs there); WHIP_URL the broadcast endpoint.
  Prints one JSON line: {"candidates_in_offer", "patches", "codec", "sent": {"audio", "video"}}
  read from the browser's stats before the session is deleted.
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

BROADCAST = """async ([url, token, seconds]) => {
  const media = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 640, height: 360}});
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) pc.addTransceiver(track, {direction: "sendonly"});
  const auth = {"Authorization": "Bearer " + token};
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
  if (r.status !== 201) throw new Error("WHIP answered " + r.status + ": " + await r.text());
  location = new URL(r.headers.get("Location"), url).href;
  await pc.setRemoteDescription({type: "answer", sdp: await r.text()});
  for (const line of waiting.splice(0)) sent.push(patch(line));
  await new Promise((done) => setTimeout(done, seconds * 1000));
  await Promise.all(sent);
  const out = {candidates_in_offer: offer.split("\\n").filter((l) => l.startsWith("a=candidate")).length,
               patches, sent: {audio: 0, video: 0}, codec: null};
  const stats = await pc.getStats();
  for (const s of stats.values()) {
    if (s.type === "outbound-rtp") {
      out.sent[s.kind] += s.packetsSent;
      if (s.kind === "video" && s.codecId) out.codec = stats.get(s.codecId).mimeType;
    }
  }
  await fetch(location, {method: "DELETE", headers: auth});
  pc.close();
  return out;
}"""


async def main(origin: str, url: str, token: str, seconds: float) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = await browser.new_page()
        page.on("console", lambda m: print(f"console: {m.text}", file=sys.stderr))
        await page.goto(origin)
        out = await page.evaluate(BROADCAST, [url, token, seconds])
        await browser.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
