"""Buying in a real browser: the seat map's Checkout, the bundled gateway's
real payment page, the order page with its tickets and QR codes, a declined
card then a retry, a checkout left to lapse, and a late payment given back.

The QR codes are read back from the page's pixels (`qr_read.py`, an
independent reader that also checks the Reed-Solomon codewords), so a
passing test means each ticket scans as its code."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from server.venues import grid_venue
from tests.browser.conftest import click_seat, open_map, wait_seat_state
from tests.browser.qr_read import read_qr_png, smallest_version
from tests.payflow import wait_for_status
from tests.support import running_server, unique_id

VIP_FRONT = {0: "VIP", 1: "VIP", 2: "PREMIUM"}
GATEWAY_PAGE = re.compile(r".*/pay/pi_[^/?]+\?return_url=.*")
ORDER_PAGE = re.compile(r".*/orders/[^/?]+(\?.*)?$")


async def gala(server: Any) -> str:
    body = grid_venue(6, 10, event_id=unique_id(), tier_of_row=VIP_FRONT)
    body["name"] = "Autumn Gala"
    body["starts_at"] = "2026-10-17T19:30:00Z"
    return await server.create_event(body)


async def hold_and_checkout(page: Any, seats: list[str]) -> str:
    """Click `seats` on the map, press Checkout, arrive on the payment page; the order id."""
    for seat in seats:
        await click_seat(page, seat)
        await wait_seat_state(page, seat, "mine")
    await page.click("#checkout")
    await page.wait_for_url(GATEWAY_PAGE)
    # The payment page returns to the order's page (and lives on another origin: the gateway's).
    return_url = parse_qs(urlsplit(page.url).query)["return_url"][0]
    return urlsplit(return_url).path.removeprefix("/orders/")


async def pay(page: Any, choice: str = "pay") -> None:
    """Press a button on the gateway's checkout page ("pay" or "decline") and come back."""
    await page.click(f"button.{choice}")
    await page.wait_for_url(ORDER_PAGE)


async def assert_tickets_scan(page: Any, order: dict[str, Any]) -> None:
    tickets = page.locator("#tickets .ticket")
    assert await tickets.count() == len(order["seats"])
    codes = {ticket["seat"]: ticket["code"] for ticket in order["tickets"]}
    for k in range(await tickets.count()):
        ticket = tickets.nth(k)
        seat, code = await ticket.get_attribute("data-seat"), await ticket.get_attribute("data-code")
        assert codes[seat] == code
        svg = ticket.locator("svg.qr")
        # The encoder picked the smallest symbol for the code (22 characters: version 2, 25 modules).
        assert await svg.get_attribute("data-modules") == str(17 + 4 * smallest_version(code))
        decoded = read_qr_png(await svg.screenshot())
        assert decoded["text"] == code, decoded
        assert decoded["level"] in ("M", "Q", "H")


async def test_a_purchase_through_the_payment_page_ends_with_scannable_tickets(server, new_context):
    event_id = await gala(server)
    context = await new_context()
    page = await open_map(context, server.url, event_id)

    order_id = await hold_and_checkout(page, ["A-5", "A-6"])
    # The gateway's page asks for the order's amount.
    assert await page.inner_text("#amount") == "300.00 USD"
    await pay(page)

    assert page.url.startswith(f"{server.url}/orders/{order_id}?")
    await page.wait_for_selector('#state-title:has-text("You\'re going!")')
    order = await wait_for_status(server, order_id, "confirmed")
    await page.wait_for_function("document.querySelectorAll('#tickets .ticket').length === 2")
    await assert_tickets_scan(page, order)
    text = await page.text_content("main")
    for words in ("Autumn Gala", "Row", "VIP", "$150", "$300", "Ticket 1 of 2", "Ticket 2 of 2"):
        assert words in text, words
    assert await page.inner_text("#event-name") == "Autumn Gala"
    assert "2026" in await page.inner_text("#event-date")
    assert await page.is_visible("#print")
    # The checkout is over: the page forgot it.
    assert await page.evaluate(f"localStorage.getItem('seatmap:order:{event_id}')") is None

    # Printed, only the tickets remain.
    await page.emulate_media(media="print")
    assert await page.is_hidden("#print") and await page.is_hidden("#state-title")
    assert await page.is_visible("#tickets .ticket svg.qr")
    await page.emulate_media(media="screen")

    # Back on the map the seats are sold and the order is listed.
    await page.click("#map-link")
    await page.wait_for_function("window.seatmap && window.seatmap.live.status === 'live'")
    await wait_seat_state(page, "A-5", "booked")
    link = page.locator(f"#my-orders a[href='/orders/{order_id}']")
    await link.wait_for()
    assert "Confirmed" in await page.inner_text("#my-orders")
    assert await page.is_hidden("#order-panel")
    assert page.errors == []

    # The list of events shows this browser's orders too.
    await page.goto(f"{server.url}/")
    await page.locator(f"#my-orders a[href='/orders/{order_id}']", has_text="Autumn Gala").wait_for()


async def test_a_declined_card_then_a_retry_from_the_seat_map(server, new_context):
    event_id = await gala(server)
    page = await open_map(await new_context(), server.url, event_id)
    order_id = await hold_and_checkout(page, ["C-3"])

    await pay(page, "decline")
    assert "redirect_status=failed" in page.url
    await page.wait_for_selector("#state-title:has-text('Your payment was declined')")
    assert "Nothing was charged" in await page.inner_text("#state-text")
    assert await page.inner_text("#pay-link") == "Try again"
    assert re.fullmatch(r"Reserved for you for 1[0-5]:\d\d", await page.inner_text("#order-countdown"))
    assert await page.is_hidden("#tickets-section")
    assert "row C, seat 3" in await page.inner_text("#seats")

    # The buyer goes back to the map: the seat is in their checkout, with the time left and "Pay now".
    await page.click("#map-link")
    await page.wait_for_function("window.seatmap && window.seatmap.live.status === 'live'")
    await wait_seat_state(page, "C-3", "checkout")
    await page.wait_for_selector("#order-panel", state="visible")
    assert await page.is_visible("#legend-checkout")
    assert re.fullmatch(r"Reserved for you for 1[0-5]:\d\d", await page.inner_text("#order-timer"))
    assert "row C, seat 3" in await page.inner_text("#order-list")
    assert "seats are released when the time runs out" in await page.inner_text("#order-panel")
    assert await page.locator("#order-panel button", has_text="Cancel").count() == 0
    # The keyboard's words say so too.
    assert await page.evaluate("window.seatmap.stateOf('C-3')") == "checkout"

    await page.click("#order-pay")
    await page.wait_for_url(GATEWAY_PAGE)
    await pay(page)
    await page.wait_for_selector('#state-title:has-text("You\'re going!")')
    order = await wait_for_status(server, order_id, "confirmed")
    await page.wait_for_function("document.querySelectorAll('#tickets .ticket').length === 1")
    await assert_tickets_scan(page, order)
    assert page.errors == []


async def test_a_lapsed_checkout_says_the_seats_were_released(server_settings, new_context):
    async with running_server(server_settings(checkout_seconds=2)) as server:
        event_id = await gala(server)
        page = await open_map(await new_context(), server.url, event_id)
        order_id = await hold_and_checkout(page, ["D-4", "D-5"])

        # The buyer leaves the payment page without paying and comes back to the map.
        await page.go_back()
        await page.wait_for_function("window.seatmap && window.seatmap.live.status === 'live'")
        await page.wait_for_selector("#message:has-text('Your checkout ended before payment')")
        assert "seats were released" in await page.inner_text("#message")
        await wait_seat_state(page, "D-4", "available")
        await wait_seat_state(page, "D-5", "available")
        assert await page.is_hidden("#order-panel")
        assert await page.evaluate(f"localStorage.getItem('seatmap:order:{event_id}')") is None

        # Its order page says the same, and leads back to the map.
        await page.goto(f"{server.url}/orders/{order_id}")
        await page.wait_for_selector("#state-title:has-text('Your checkout ended before payment')")
        assert await page.get_attribute("#back-link", "href") == f"/events/{event_id}"
        assert await page.is_hidden("#pay-link")
        assert page.errors == []


async def test_a_late_payment_for_seats_taken_meanwhile_is_given_back(server_settings, new_context):
    async with running_server(server_settings(checkout_seconds=2)) as server:
        event_id = await gala(server)
        page = await open_map(await new_context(), server.url, event_id)
        order_id = await hold_and_checkout(page, ["E-7"])
        # The buyer dawdles on the payment page; the checkout lapses and someone else takes the seat.
        await wait_for_status(server, order_id, "expired")
        _buyer, token = await server.buyer()
        async with server.http(token) as client:
            response = await client.post(f"/api/events/{event_id}/holds", json={"seats": ["E-7"]})
            assert response.status_code == 201, response.text

        await pay(page)
        await page.wait_for_selector("#state-title:has-text('was refunded'), #state-title:has-text('was cancelled')")
        state = await page.inner_text("#order-state")
        assert "after your checkout ended" in state and "someone else had taken a seat" in state
        assert re.search(r"payment was released|refunded in full", state)
        assert await page.is_hidden("#tickets-section")
        assert page.errors == []
