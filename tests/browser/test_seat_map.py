"""The buyer's seat map page in a real browser against a real server: live
updates between buyers, holding by click, tap, keyboard and the best-seats
picker, the cart surviving a reload, refusals in words, and the live feed
catching up after the server restarts."""

from __future__ import annotations

import asyncio
import re

from server.venues import grid_venue
from tests.browser.conftest import cart_seat_ids, click_seat, open_map, seat_state, wait_seat_state
from tests.browser.servers import RestartableServer
from tests.support import running_server, unique_id

VIP_FRONT = {0: "VIP", 1: "VIP", 2: "PREMIUM"}


async def small_event(server, rows: int = 6, per_row: int = 10) -> str:
    return await server.create_event(grid_venue(rows, per_row, event_id=unique_id(), tier_of_row=VIP_FRONT))


async def test_a_hold_in_one_browser_shows_as_held_in_another(server, new_context):
    event_id = await small_event(server)
    alice = await open_map(await new_context(), server.url, event_id)
    bob = await open_map(await new_context(), server.url, event_id)

    await click_seat(alice, "C-4")

    await wait_seat_state(alice, "C-4", "mine")
    assert await cart_seat_ids(alice) == ["C-4"]
    await wait_seat_state(bob, "C-4", "held")
    # What Bob reads when he points at it.
    await click_seat(bob, "C-4")  # centres it; clicking a held seat only explains
    position = await bob.evaluate("window.seatmap.clientPositionOf('C-4')")
    await bob.mouse.move(position["x"] + 1, position["y"])
    await bob.wait_for_selector(".map-tip:has-text('Held by another buyer')")
    assert await cart_seat_ids(bob) == []
    await bob.wait_for_selector("#message:has-text('is held by another buyer')")
    availability = await server.availability(event_id)
    assert availability["seats"]["C-4"] == "held"
    assert alice.errors == [] and bob.errors == []


async def test_best_seats_picker_holds_and_lists_them(server, new_context):
    event_id = await small_event(server)
    page = await open_map(await new_context(), server.url, event_id)

    await page.select_option("#best-count", "3")
    await page.select_option("#best-tier", "VIP")
    await page.click("#best button[type=submit]")

    await page.wait_for_function("document.querySelectorAll('#cart-list li').length === 3")
    picked = await cart_seat_ids(page)
    assert all(seat.startswith("A-") for seat in picked), picked  # VIP, nearest the stage
    for seat in picked:
        await wait_seat_state(page, seat, "mine")
    assert "VIP" in await page.inner_text("#cart-list")
    assert "3 seats" in await page.inner_text("#cart-total")
    await page.wait_for_selector("#message:has-text('Held 3 seats for you')")
    availability = await server.availability(event_id)
    assert {availability["seats"][seat] for seat in picked} == {"held"}


async def test_keyboard_alone_holds_a_seat(server, new_context):
    event_id = await small_event(server)
    page = await open_map(await new_context(), server.url, event_id)

    for _ in range(12):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "seat-map":
            break
    else:
        raise AssertionError("Tab never reached the seat map")
    # Focus starts on the free seat nearest the stage: A-5 of rows 1..10 (the stage is centred at 5.5).
    option = page.locator("#seat-map [role=option]")
    assert await option.inner_text() == "Stalls, row A, seat 5, VIP, $150, available"
    for key in ("ArrowRight", "ArrowRight", "ArrowDown"):
        await page.keyboard.press(key)
    assert (await option.inner_text()).startswith("Stalls, row B, seat 7, VIP")
    await page.keyboard.press("Enter")

    await wait_seat_state(page, "B-7", "mine")
    assert await cart_seat_ids(page) == ["B-7"]
    await page.wait_for_function(
        "document.querySelector('#seat-map [role=option]').textContent.endsWith('held by you')"
    )
    assert await option.get_attribute("aria-selected") == "true"
    # Space releases it again.
    await page.keyboard.press(" ")
    await wait_seat_state(page, "B-7", "available")
    assert await cart_seat_ids(page) == []


async def test_a_tap_on_a_phone_holds_a_seat(server, new_context):
    event_id = await small_event(server)
    context = await new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page = await open_map(context, server.url, event_id)
    position = await page.evaluate("window.seatmap.clientPositionOf('D-5')")
    await page.touchscreen.tap(position["x"], position["y"])
    await wait_seat_state(page, "D-5", "mine")
    assert await cart_seat_ids(page) == ["D-5"]


async def test_reload_keeps_the_cart(server, new_context):
    event_id = await small_event(server)
    context = await new_context()
    page = await open_map(context, server.url, event_id)
    await click_seat(page, "E-2")
    await wait_seat_state(page, "E-2", "mine")
    await click_seat(page, "E-3")
    await wait_seat_state(page, "E-3", "mine")
    hold_id = await page.evaluate("window.seatmap.cart.holdId")

    await page.reload()
    await page.wait_for_function("window.seatmap && window.seatmap.live.status === 'live'")
    await page.wait_for_function("document.querySelectorAll('#cart-list li').length === 2")

    assert sorted(await cart_seat_ids(page)) == ["E-2", "E-3"]
    assert await page.evaluate("window.seatmap.cart.holdId") == hold_id
    assert await seat_state(page, "E-2") == "mine"
    assert re.fullmatch(r"Held for you for (4:[0-5]\d|5:00)", await page.inner_text("#cart-timer"))
    # Checkout buys what the cart holds, and says for how long it keeps the seats.
    assert await page.inner_text("#checkout") == "Checkout · $100"
    assert "15 minutes" in await page.inner_text("#checkout-note")


async def test_refusals_say_what_happened_and_what_to_do(server, new_context):
    event_id = await small_event(server)
    page = await open_map(await new_context(), server.url, event_id)

    # Seat just taken: the page has not heard of it yet (its feed is paused).
    await page.evaluate("window.seatmap.live.stop()")
    _buyer, token = await server.buyer()
    async with server.http(token) as client:
        response = await client.post(f"/api/events/{event_id}/holds", json={"seats": ["F-9"]})
        assert response.status_code == 201
    await click_seat(page, "F-9")
    await page.wait_for_selector("#message:has-text('row F, seat 9 was just taken by someone else')")
    assert await cart_seat_ids(page) == []

    # The limit: 8 seats per buyer.
    await page.select_option("#best-count", "8")
    await page.click("#best button[type=submit]")
    await page.wait_for_function("document.querySelectorAll('#cart-list li').length === 8")
    await click_seat(page, "F-1")
    await page.wait_for_selector("#message:has-text('You can hold at most 8 seats')")
    assert len(await cart_seat_ids(page)) == 8


async def test_an_expired_hold_empties_the_cart(server_settings, new_context):
    async with running_server(server_settings(hold_seconds=2)) as server:
        event_id = await small_event(server)
        page = await open_map(await new_context(), server.url, event_id)
        await click_seat(page, "A-1")
        await wait_seat_state(page, "A-1", "mine")
        await page.wait_for_selector("#message:has-text('Your hold expired')", timeout=10_000)
        assert await cart_seat_ids(page) == []
        await wait_seat_state(page, "A-1", "available")
        assert await page.evaluate("localStorage.getItem(`seatmap:hold:${window.seatmap.venue.id}`)") is None


async def test_the_map_catches_up_after_a_server_restart(server_settings, new_context):
    settings = server_settings()
    restartable = RestartableServer(settings)
    first = await restartable.start()
    try:
        event_id = await small_event(first)
        page = await open_map(await new_context(), restartable.url, event_id)
        await click_seat(page, "A-1")
        await wait_seat_state(page, "A-1", "mine")

        await restartable.stop()
        await page.wait_for_selector("#connection[data-status=reconnecting], #connection[data-status=offline]")
        assert await page.is_visible(".map-stale")

        # While the page's server is down, another server of the same
        # deployment (same Redis and Postgres) takes holds.
        async with running_server(settings) as other:
            _buyer, token = await other.buyer()
            async with other.http(token) as client:
                response = await client.post(f"/api/events/{event_id}/holds", json={"seats": ["B-1", "B-2"]})
                assert response.status_code == 201
            await asyncio.sleep(0.2)
            await restartable.start()

        await page.wait_for_function("window.seatmap.live.status === 'live'", timeout=20_000)
        await wait_seat_state(page, "B-1", "held")
        await wait_seat_state(page, "B-2", "held")
        assert await seat_state(page, "A-1") == "mine"
        assert await page.inner_text("#connection-text") == "Live"
        stats = await page.evaluate("window.seatmap.live.stats")
        # It resumed from where it was (missed diffs, then `resumed`), not from a new snapshot.
        assert stats["snapshots"] == 1 and stats["resumes"] >= 1, stats
        assert 1012 in stats["closes"], stats
        assert page.errors == []
    finally:
        await restartable.stop()


async def test_the_map_resumes_after_the_socket_drops(server, new_context):
    event_id = await small_event(server)
    page = await open_map(await new_context(), server.url, event_id)
    await page.evaluate("window.seatmap.live.dropForTest()")
    _buyer, token = await server.buyer()
    async with server.http(token) as client:
        response = await client.post(f"/api/events/{event_id}/holds", json={"seats": ["C-1"]})
        assert response.status_code == 201
    await wait_seat_state(page, "C-1", "held")
    await page.wait_for_function("window.seatmap.live.status === 'live' && window.seatmap.live.stats.connects === 2")


async def test_the_event_list_links_to_each_map(server, new_context):
    event_id = await small_event(server)
    page = await (await new_context()).new_page()
    await page.goto(f"{server.url}/")
    link = page.locator(f"#events a[href='/events/{event_id}']")
    await link.click()
    await page.wait_for_function("window.seatmap && window.seatmap.live.status === 'live'")
    assert await page.inner_text("#event-name") == "6x10 grid"
