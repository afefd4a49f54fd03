"""Plays media files in headless Chromium, as a user of the recordings would.

usage: play_in_chromium.py URL [URL ...]
  Prints one JSON line: per URL, {"duration": <the <audio> element's duration>,
  "ended": <it played to its end>, "error": <the element's error code or null>,
  "decoded": <seconds Web Audio decoded from the file>}.
"""
import asyncio
import json
import os
import sys

from playwright.async_api import async_playwright

CHROMIUM = os.environ.get("REEL_TEST_CHROMIUM", "/usr/lib/chromium/chromium")
FLAGS = ["--autoplay-policy=no-user-gesture-required", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-background-networking", "--disable-component-update"]

PLAY = """async (url) => {
  const a = new Audio();
  a.muted = true;
  const done = new Promise((resolve) => {
    a.onended = () => resolve(true);
    a.onerror = () => resolve(false);
    setTimeout(() => resolve(false), 30000);
  });
  a.src = url;
  a.playbackRate = 8;
  await a.play().catch(() => {});
  const ended = await done;
  let decoded = null;
  try {
    const bytes = await (await fetch(url)).arrayBuffer();
    const ctx = new OfflineAudioContext(1, 48000, 48000);
    decoded = (await ctx.decodeAudioData(bytes)).duration;
  } catch (e) {
    decoded = null;
  }
  return {duration: a.duration, ended, error: a.error ? a.error.code : null, decoded};
}"""


async def main(urls: list[str]) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = await browser.new_page()
        results = [await page.evaluate(PLAY, url) for url in urls]
        await browser.close()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
