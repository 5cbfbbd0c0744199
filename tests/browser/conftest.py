"""Browser fixtures: one headless Chromium (Debian's package) for the session,
a fresh browser context per buyer, and a helper that opens an event's seat
map and waits until it is live.

Playwright's own browser download is not used: the tests need
`/usr/bin/chromium` (`apt-get install -y chromium`) and skip without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PRESENT = CHROMIUM.exists()
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM_PRESENT:
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def new_context(browser: Any) -> AsyncIterator[Any]:
    """`await new_context(**options)`: a fresh browser (own storage) per buyer, closed after the test."""
    contexts = []

    async def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = await browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


async def open_map(context: Any, url: str, event_id: str) -> Any:
    """A page on the event's seat map, once its first snapshot is drawn and the feed is live."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # checked by tests that want a clean console
    await page.goto(f"{url}/events/{event_id}")
    await page.wait_for_function("window.seatmap && window.seatmap.live.status === 'live'")
    await page.wait_for_function("window.seatmap.timings.firstRender !== undefined")
    return page


async def seat_state(page: Any, seat_id: str) -> str:
    return await page.evaluate("(id) => window.seatmap.stateOf(id)", seat_id)


async def wait_seat_state(page: Any, seat_id: str, state: str) -> None:
    await page.wait_for_function(
        "([id, state]) => window.seatmap.stateOf(id) === state", arg=[seat_id, state]
    )


async def click_seat(page: Any, seat_id: str) -> None:
    """A real mouse click where the seat is drawn (zooming in first so seats are big enough to aim at)."""
    await page.evaluate(
        """(id) => {
            const s = window.seatmap, i = s.venue.index.get(id);
            s.map.animation = null;
            s.map._setView({scale: 30 / s.venue.pitch, tx: 0, ty: 0});
            const x = s.venue.xs[i] * s.map.scale, y = s.venue.ys[i] * s.map.scale;
            s.map._setView({scale: s.map.scale, tx: s.map.width / 2 - x, ty: s.map.height / 2 - y});
        }""",
        seat_id,
    )
    position = await page.evaluate("(id) => window.seatmap.clientPositionOf(id)", seat_id)
    await page.mouse.click(position["x"], position["y"])


async def cart_seat_ids(page: Any) -> list[str]:
    return await page.eval_on_selector_all("#cart-list li", "items => items.map(li => li.dataset.seatId)")
