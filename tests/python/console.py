"""Uses the recordings console in headless Chromium as a person would.

usage: console.py BASE_URL API_SECRET SCREENSHOT_DIR ID_TO_DELETE ID_TO_DELETE
  Signs in with a wrong secret, then the right one; waits for the recordings and their
  pictures; takes screenshots of the grid and the list at 1280x800 and of the grid at a
  phone's width; plays the first playable recording; deletes the two ids with multi-select.
  Prints one JSON object of what it saw.
"""
import asyncio
import json
import os
import sys

from playwright.async_api import async_playwright

CHROMIUM = os.environ.get("REEL_TEST_CHROMIUM", "/usr/lib/chromium/chromium")
FLAGS = ["--autoplay-policy=no-user-gesture-required", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", "--force-color-profile=srgb"]

# Resolves once every picture on the page has loaded (or failed), with each card's id, its
# picture's box and whether the picture shows.
PICTURES = """async () => {
  const cards = [...document.querySelectorAll('#grid .card')];
  await Promise.all(cards.flatMap((c) => [...c.querySelectorAll('img')]).map((img) =>
    img.complete ? null : new Promise((done) => { img.onload = done; img.onerror = done; })));
  return cards.map((c) => {
    const box = c.querySelector('.picture').getBoundingClientRect();
    const img = c.querySelector('.picture img');
    return { id: c.dataset.id, box: [box.x, box.y, box.width, box.height],
             picture: img ? img.naturalWidth > 0 : null };
  });
}"""


async def main() -> None:
    base, secret, shots, *delete = sys.argv[1:]
    seen = {"console": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        page.on("console", lambda m: m.type == "error" and seen["console"].append(m.text))
        page.on("pageerror", lambda e: seen["console"].append(f"uncaught: {e}"))
        page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))

        await page.goto(base + "/console")
        await page.fill("#secret", "not the secret")
        await page.click("button[type=submit]")
        seen["refused"] = await page.text_content(".refused")
        seen["console"].clear()  # the refused sign-in's 401
        await page.fill("#secret", secret)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#grid .card")
        await page.wait_for_function("document.getElementById('usage-bytes').textContent !== '…'")
        seen["cookies"] = [{k: c[k] for k in ("name", "httpOnly", "sameSite", "path")}
                           for c in await context.cookies()]
        seen["usage"] = await page.text_content("#usage-bytes")
        seen["cards"] = await page.evaluate(PICTURES)
        seen["count"] = await page.text_content("#count")
        await page.screenshot(path=f"{shots}/grid.png")
        await page.click("#view-list")
        await page.wait_for_selector("#list tbody tr")
        seen["rows"] = await page.eval_on_selector_all("#list tbody tr", "rs => rs.map(r => r.dataset.id)")
        await page.screenshot(path=f"{shots}/list.png")
        await page.click("#view-grid")

        await page.set_viewport_size({"width": 390, "height": 844})
        seen["phone_overflow"] = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        await page.screenshot(path=f"{shots}/phone.png")
        await page.set_viewport_size({"width": 1280, "height": 800})

        # Play the first recording a browser can play.
        playable = await page.evaluate("""() => {
          const card = [...document.querySelectorAll('#grid .card')].find((c) => c.querySelector('img'));
          return card && card.dataset.id;
        }""")
        await page.click(f'#grid .card[data-id="{playable}"] .about')
        await page.wait_for_selector("#player[open] #player-element")
        await page.evaluate("() => { const v = document.getElementById('player-element'); v.muted = true; return v.play(); }")
        await page.wait_for_function(
            "document.getElementById('player-element').currentTime > 1", timeout=20000)
        await page.wait_for_function("document.getElementById('fact-size').textContent !== '–'")
        seen["played"] = {
            "id": playable,
            "current_time": await page.evaluate("document.getElementById('player-element').currentTime"),
            "length": await page.text_content("#fact-length"),
            "dimensions": await page.text_content("#fact-size"),
            "quality": await page.text_content("#fact-quality"),
        }
        await page.screenshot(path=f"{shots}/player.png")
        await page.click("#player-close")

        # Pick two and delete them.
        for id_ in delete:
            await page.click(f'#grid .card[data-id="{id_}"] .pick')
        seen["delete_label"] = await page.text_content("#delete-selected")
        await page.click("#delete-selected")
        await page.wait_for_function(
            f"document.querySelectorAll('#grid .card').length === {len(seen['cards']) - len(delete)}",
            timeout=20000)
        seen["left"] = await page.eval_on_selector_all("#grid .card", "cs => cs.map(c => c.dataset.id)")
        seen["usage_after"] = await page.text_content("#usage-bytes")

        # Select all, then sign out: the console is gone until the next sign-in.
        await page.check("#select-all")
        seen["picked_all"] = await page.eval_on_selector_all("#grid .card.picked", "cs => cs.length")
        await page.click("#sign-out")
        await page.wait_for_selector("#secret")
        seen["cookies_after"] = [c["name"] for c in await context.cookies()]
        await browser.close()
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
