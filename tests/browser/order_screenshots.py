"""Screenshots of buying, for docs/ui.md: the seat map with an order awaiting
payment, the order page after a declined card, and the confirmation page
with its tickets (desktop, phone, and as printed). Not a test: it asserts
nothing beyond reaching each page.

    .venv/bin/python -m tests.browser.order_screenshots     # ~20 s; writes docs/img/order-*.png

Embedded Redis and Postgres in a temporary directory, the real server and
the bundled gateway's payment page, as in the browser tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from pathlib import Path

from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import apply_migrations
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS, open_map
from tests.browser.test_checkout_pages import gala, hold_and_checkout, pay
from tests.support import running_server, test_settings

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
TICKETS = "document.querySelectorAll('#tickets .ticket').length"


async def main() -> list[str]:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    written: list[str] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="seatmap-shots-")))
        redis = stack.enter_context(EmbeddedRedis(tmp / "redis"))
        postgres = stack.enter_context(EmbeddedPostgres(tmp / "postgres"))
        await apply_migrations(postgres.url)
        settings = test_settings(redis.url, postgres.url, tmp / "server")
        async with running_server(settings) as server, async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
            event_id = await gala(server)

            async def shot(page, name: str, **options) -> None:
                await page.wait_for_timeout(300)  # let the last frame land
                await page.screenshot(path=str(DOCS_IMG / name), **options)
                written.append(name)

            # Declined, then back on the map with the order awaiting payment.
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await open_map(context, server.url, event_id)
            await hold_and_checkout(page, ["A-5", "A-6"])
            await pay(page, "decline")
            await page.wait_for_selector("#state-title:has-text('declined')")
            await shot(page, "order-declined.png")
            await page.click("#map-link")
            await page.wait_for_selector("#order-panel", state="visible")
            await page.evaluate("window.seatmap.map.fit()")
            await shot(page, "map-checkout.png")

            # Paid: the confirmation page with its tickets.
            await page.click("#order-pay")
            await pay(page)
            await page.wait_for_function(f"{TICKETS} === 2")
            await shot(page, "order-confirmed.png", full_page=True)
            order_url = page.url
            await page.emulate_media(media="print")
            await shot(page, "order-print.png", full_page=True)

            phone = await browser.new_context(
                viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True, device_scale_factor=2
            )
            # The order belongs to the buyer's session: carry it over to the phone's browser.
            storage = await context.storage_state()
            items = {item["name"]: item["value"] for origin in storage["origins"] for item in origin["localStorage"]}
            await phone.add_init_script(
                f"for (const [k, v] of Object.entries({json.dumps(items)})) localStorage.setItem(k, v);"
            )
            small = await phone.new_page()
            await small.goto(order_url)
            await small.wait_for_function(f"{TICKETS} === 2")
            await small.evaluate("document.getElementById('tickets-title').scrollIntoView()")
            await shot(small, "order-confirmed-phone.png")
            await browser.close()
    return written


if __name__ == "__main__":
    for name in asyncio.run(main()):
        print(DOCS_IMG / name)
