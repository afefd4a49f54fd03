"""Opens join pages in headless Chromium with fake camera and microphone, lets them talk,
and reports what each page's WebRTC stats say.

usage: browser_call.py [--switch-camera PAGE:AFTER] SECONDS URL [URL ...]
  --switch-camera makes page number PAGE (from 0) switch cameras AFTER seconds in the call
  (from when its media began to flow).
  Prints one JSON line: a list with, per page, {"sent", "codecs", "received", "framesDecoded"}
  read from getStats just before the page leaves the call, and "in_call_seconds" from the
  moment the page's publishing connection was up (its media reaching reel) until it left,
  by the page's own clock.
"""
import asyncio
import json
import os
import sys

from playwright.async_api import async_playwright

CHROMIUM = os.environ.get("REEL_TEST_CHROMIUM", "/usr/lib/chromium/chromium")
FLAGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def main(seconds: float, urls: list[str], switch: tuple[int, float] | None) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        pages = []
        for url in urls:
            page = await browser.new_page()
            page.on("console", lambda m: print(f"console: {m.text}", file=sys.stderr))
            await page.goto(url)
            await page.wait_for_function("window.reel && window.reel.ready", timeout=20000)
            pages.append(page)
        status = [await page.text_content("#status") for page in pages]
        if switch:
            # AFTER seconds from when that page's media began to flow (on a busy machine the
            # pages after it may take a while to join).
            page, after = switch
            since = await pages[page].evaluate("(Date.now() - window.reel.connectedAt) / 1000")
            await asyncio.sleep(max(0.0, after - since))
            await pages[page].evaluate("window.reel.switchCamera()")
            await asyncio.sleep(seconds - after)
        else:
            await asyncio.sleep(seconds)
        stats = [await page.evaluate("window.reel.stats()") for page in pages]
        for page, s in zip(pages, stats):
            await page.evaluate("window.reel.leave()")
            s["in_call_seconds"] = await page.evaluate("(Date.now() - window.reel.connectedAt) / 1000")
        for s, st in zip(stats, status):
            s["status"] = st
        await browser.close()
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    switch = None
    if args[0] == "--switch-camera":
        page, after = args[1].split(":")
        switch = (int(page), float(after))
        args = args[2:]
    asyncio.run(main(float(args[0]), args[1:], switch))
