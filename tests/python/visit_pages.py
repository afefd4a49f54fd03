"""Opens pages in headless Chromium, as a layout recording would, and runs checks in them.

usage: visit_pages.py < cases.json
  cases: [{"url": ..., "width": W, "height": H, "screenshot": <PNG path or null>,
           "steps": [<JS function source, awaited in the page, its result kept>, ...]}]
  Each page is awaited until it shows #egress-ready-for-capture and every video on it has a
  picture; the screenshot is taken before the steps run.
  Prints one JSON line: per case, {"results": [...], "console": [<errors and warnings>]}.
"""
import asyncio
import json
import os
import sys

from playwright.async_api import async_playwright

CHROMIUM = os.environ.get("REEL_TEST_CHROMIUM", "/usr/lib/chromium/chromium")
FLAGS = ["--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection",
         "--disable-features=WebRtcHideLocalIpsWithMdns",
         "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", "--force-color-profile=srgb"]

SETTLED = """() => new Promise((done) => {
  const check = () => {
    const ready = document.getElementById("egress-ready-for-capture");
    const videos = [...document.querySelectorAll(".reel-tile:not(.reel-tile--no-video) video")];
    if (ready && videos.every((v) => v.readyState >= 2))
      requestAnimationFrame(() => requestAnimationFrame(done));
    else setTimeout(check, 50);
  };
  check();
})"""


async def visit(browser, case):
    page = await browser.new_page(viewport={"width": case["width"], "height": case["height"]})
    console = []
    page.on("console", lambda m: m.type in ("error", "warning") and console.append(m.text))
    page.on("pageerror", lambda e: console.append(f"uncaught: {e}"))
    await page.goto(case["url"])
    try:
        await asyncio.wait_for(page.evaluate(SETTLED), 20)
    except asyncio.TimeoutError:
        console.append("the page did not settle within 20 s")
    if case.get("screenshot"):
        await page.screenshot(path=case["screenshot"])
    results = []
    for step in case.get("steps", []):
        try:
            results.append(await page.evaluate(step))
        except Exception as e:  # noqa: BLE001 - reported to the test
            results.append({"error": str(e)})
    await page.close()
    return {"results": results, "console": console}


async def main() -> None:
    cases = json.load(sys.stdin)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        out = [await visit(browser, c) for c in cases]
        await browser.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
