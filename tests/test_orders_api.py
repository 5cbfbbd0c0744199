"""The order API's extensions through the real server: seat details on
tickets and the event on each order, the payment state, the buyer's orders
filtered by event, `/pay/{order_id}` in both payment modes, and a payment
page's secrets shown to the order's own buyer only.

The derivation of the payment state is a pure function, tested directly too."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import stripe

from server.order_states import PaymentRecord, PaymentState, payment_state
from server.settings import Settings, SettingsError
from server.venues import grid_venue
from tests.browser.servers import STRIPE_PUBLISHABLE_KEY, stripe_mode_server
from tests.payflow import confirm, hold_and_checkout, wait_for_status
from tests.support import RunningServer, running_server, unique_id

SECRETS = ("client_secret", "stripe_publishable_key")


@pytest.fixture
async def event_id(server) -> str:
    body = grid_venue(3, 10, event_id=unique_id(), tier_of_row={0: "VIP"})
    body["name"] = "Winter Recital"
    body["starts_at"] = "2026-12-05T19:00:00Z"
    return await server.create_event(body)


async def buyer_get(server: RunningServer, token: str, path: str) -> httpx.Response:
    async with server.http(token) as client:
        return await client.get(path)


async def wait_for_payment(server: RunningServer, order_id: str, state: str, timeout: float = 15) -> dict[str, Any]:
    """The order (read as admin) once its `payment` is `state`: the outbox acts just after a webhook answers."""
    deadline = time.monotonic() + timeout
    async with server.admin() as admin:
        while True:
            current = (await admin.get(f"/api/orders/{order_id}")).json()
            if current["payment"] == state:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id}: payment {current['payment']}, not {state}")
            await asyncio.sleep(0.05)


# ------------------------------------------------------------ the derivation, pure


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (PaymentRecord(5000), "none"),  # no PaymentIntent yet
        (PaymentRecord(5000, "requires_payment_method"), "none"),  # new, or declined
        (PaymentRecord(5000, "requires_capture"), "authorized"),
        (PaymentRecord(5000, "succeeded", captured_cents=5000), "captured"),
        (PaymentRecord(5000, "succeeded"), "captured"),  # seen succeeded before the amount was
        (PaymentRecord(5000, "requires_capture", released=True), "released"),  # Seatmap cancelled it
        (PaymentRecord(5000, "canceled", released=True), "released"),
        (PaymentRecord(5000, "canceled", was_confirmed=True), "released"),  # booked on it; the capture failed
        (PaymentRecord(5000, "canceled"), "none"),  # cancelled in Stripe before anything was authorized
        (PaymentRecord(5000, "succeeded", 5000, refunded_cents=2000), "partially_refunded"),
        (PaymentRecord(5000, "succeeded", 5000, refunded_cents=5000), "refunded"),
        (PaymentRecord(5000, "succeeded", 0, refunded_cents=5000), "refunded"),  # against the order's amount
        (PaymentRecord(5000, "succeeded", 5000, released=True), "captured"),  # a release that found it captured
    ],
)
def test_payment_state_derivation(record: PaymentRecord, expected: str) -> None:
    assert payment_state(record) == PaymentState(expected)


# ------------------------------------------------------------ the order's new fields


async def test_an_order_carries_its_event_seat_details_and_payment(server, event_id):
    token, checkout = await hold_and_checkout(server, event_id, ["A-2", "B-7"])
    order_id = checkout["order_id"]
    pending = (await buyer_get(server, token, f"/api/orders/{order_id}")).json()
    assert pending["event"] == {"id": event_id, "name": "Winter Recital", "starts_at": "2026-12-05T19:00:00Z"}
    assert pending["seat_details"] == [
        {"seat": "A-2", "section": "Stalls", "row": "A", "number": 2, "tier": "VIP", "price_cents": 15000},
        {"seat": "B-7", "section": "Stalls", "row": "B", "number": 7, "tier": "REGULAR", "price_cents": 5000},
    ]
    assert pending["payment"] == "none" and pending["tickets"] == []
    # The contract's fields are all still there.
    for field in ("order_id", "event_id", "buyer_id", "status", "seats", "amount_cents", "refunded_cents"):
        assert field in pending
    assert {"currency", "created_at", "expires_at", "tickets"} <= pending.keys()

    await confirm(server, checkout["payment_intent_id"])
    await wait_for_status(server, order_id, "confirmed")
    captured = await wait_for_payment(server, order_id, "captured")
    tickets = {ticket["seat"]: ticket for ticket in captured["tickets"]}
    assert set(tickets) == {"A-2", "B-7"}
    a2 = tickets["A-2"]
    assert (a2["section"], a2["row"], a2["number"], a2["tier"], a2["price_cents"]) == ("Stalls", "A", 2, "VIP", 15000)
    assert tickets["B-7"]["tier"] == "REGULAR" and len(a2["code"]) >= 20
    mine = (await buyer_get(server, token, "/api/orders")).json()["orders"]
    listed = [(o["order_id"], o["payment"], o["event"]["name"]) for o in mine]
    assert listed == [(order_id, "captured", "Winter Recital")]


async def test_a_declined_card_leaves_the_payment_at_none(server, event_id):
    token, checkout = await hold_and_checkout(server, event_id, ["C-1"])
    with pytest.raises(stripe.CardError):
        await confirm(server, checkout["payment_intent_id"], "pm_card_chargeDeclined")
    await asyncio.sleep(0.3)  # the payment_failed webhook has landed
    order = (await buyer_get(server, token, f"/api/orders/{checkout['order_id']}")).json()
    assert order["status"] == "pending" and order["payment"] == "none"


async def test_refunds_show_in_the_payment_state(server, event_id):
    _, checkout = await hold_and_checkout(server, event_id, ["C-4", "C-5"])
    order_id = checkout["order_id"]
    await confirm(server, checkout["payment_intent_id"])
    await wait_for_payment(server, order_id, "captured")
    async with server.admin() as admin:
        partial = (await admin.post(f"/api/orders/{order_id}/refund", json={"amount_cents": 3000})).json()
        assert (partial["status"], partial["payment"]) == ("partially_refunded", "partially_refunded")
        full = (await admin.post(f"/api/orders/{order_id}/refund")).json()
        assert (full["status"], full["payment"]) == ("refunded", "refunded")
        assert full["tickets"] == [] and full["event"]["id"] == event_id


async def test_a_late_payment_released_says_so(server_settings):
    async with running_server(server_settings(checkout_seconds=1)) as short:
        event_id = await short.create_event(grid_venue(1, 4, event_id=unique_id()))
        token, late = await hold_and_checkout(short, event_id, ["A-2"])
        expired = await wait_for_status(short, late["order_id"], "expired")
        assert expired["payment"] == "none"
        for _ in range(100):  # the lapsed seat goes back on sale
            if (await short.availability(event_id))["seats"]["A-2"] == "available":
                break
            await asyncio.sleep(0.05)
        _, winner = await hold_and_checkout(short, event_id, ["A-2"])
        await confirm(short, winner["payment_intent_id"])
        await wait_for_status(short, winner["order_id"], "confirmed")
        await confirm(short, late["payment_intent_id"])  # too late: the seat is sold
        await wait_for_status(short, late["order_id"], "cancelled")
        released = await wait_for_payment(short, late["order_id"], "released")
        assert released["tickets"] == [] and not released.get("confirmed_at")
        mine = (await buyer_get(short, token, f"/api/orders/{late['order_id']}")).json()
        assert (mine["status"], mine["payment"]) == ("cancelled", "released")


# ------------------------------------------------------------ GET /api/orders?event_id=


async def test_a_buyers_orders_filtered_by_event(server):
    first = await server.create_event(grid_venue(1, 4, event_id=unique_id()))
    second = await server.create_event(grid_venue(1, 4, event_id=unique_id()))
    _, token = await server.buyer()
    made = {}
    async with server.http(token) as client:
        for event in (first, second):
            hold = (await client.post(f"/api/events/{event}/holds", json={"seats": ["A-1"]})).json()
            made[event] = (await client.post(f"/api/holds/{hold['hold_id']}/checkout")).json()["order_id"]
        everything = (await client.get("/api/orders")).json()["orders"]
        assert {o["order_id"] for o in everything} == set(made.values())
        for event in (first, second):
            answer = await client.get("/api/orders", params={"event_id": event})
            assert answer.status_code == 200
            assert [o["order_id"] for o in answer.json()["orders"]] == [made[event]]
        unknown = await client.get("/api/orders", params={"event_id": "no-such-event"})
        assert unknown.status_code == 200 and unknown.json() == {"orders": []}
        for malformed in ("", "has space", "dots.are.not.ids", "x" * 65):
            refused = await client.get("/api/orders", params={"event_id": malformed})
            assert refused.status_code == 422, malformed
            assert refused.json()["error"] == "validation_error" and refused.json()["details"]
    # Another buyer's filter finds none of them.
    _, other = await server.buyer()
    assert (await buyer_get(server, other, f"/api/orders?event_id={first}")).json() == {"orders": []}
    async with server.http() as anonymous:
        assert (await anonymous.get(f"/api/orders?event_id={first}")).status_code == 401


# ------------------------------------------------------------ the payment page's secrets


async def test_only_the_buyer_sees_the_client_secret_and_only_while_pending(server, event_id):
    token, checkout = await hold_and_checkout(server, event_id, ["B-2"])
    order_id = checkout["order_id"]
    own = (await buyer_get(server, token, f"/api/orders/{order_id}")).json()
    assert own["client_secret"] == checkout["client_secret"]
    assert "stripe_publishable_key" not in own  # none configured here

    _, other = await server.buyer()
    refused = await buyer_get(server, other, f"/api/orders/{order_id}")
    assert refused.status_code == 404 and "client_secret" not in refused.text
    async with server.admin() as admin:
        as_admin = await admin.get(f"/api/orders/{order_id}")
        listed = await admin.get(f"/api/events/{event_id}/orders")
    assert as_admin.status_code == 200 and checkout["client_secret"] not in as_admin.text
    assert listed.status_code == 200 and checkout["client_secret"] not in listed.text
    assert checkout["client_secret"] not in (await buyer_get(server, token, "/api/orders")).text

    await confirm(server, checkout["payment_intent_id"])
    await wait_for_status(server, order_id, "confirmed")
    paid = await buyer_get(server, token, f"/api/orders/{order_id}")
    assert checkout["client_secret"] not in paid.text and not SECRETS & paid.json().keys()


async def test_with_the_gateway_pay_redirects_to_its_page(server, event_id):
    _, checkout = await hold_and_checkout(server, event_id, ["B-3"])
    order_id = checkout["order_id"]
    async with httpx.AsyncClient(base_url=server.url) as browser:  # no token: a link someone opens
        answer = await browser.get(f"/pay/{order_id}")
        assert answer.status_code == 303
        assert answer.headers["location"] == checkout["payment_url"]
        gateway_page = await browser.get(answer.headers["location"])
        assert gateway_page.status_code == 200 and "Pay" in gateway_page.text
        assert (await browser.get("/pay/ord_nope")).status_code == 404

        await confirm(server, checkout["payment_intent_id"])
        await wait_for_status(server, order_id, "confirmed")
        paid = await browser.get(f"/pay/{order_id}")  # nothing left to pay: the order's page
        assert paid.status_code == 303 and paid.headers["location"] == f"/orders/{order_id}"


async def test_with_stripe_pay_is_seatmaps_page_and_the_buyer_gets_the_keys(server_settings):
    async with stripe_mode_server(server_settings()) as server:
        event_id = await server.create_event(grid_venue(1, 4, event_id=unique_id()))
        token, checkout = await hold_and_checkout(server, event_id, ["A-1"])
        order_id = checkout["order_id"]
        assert checkout["payment_url"] == f"{server.url}/pay/{order_id}"
        async with httpx.AsyncClient() as browser:
            page = await browser.get(checkout["payment_url"])
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/js/pay.js">' in page.text
        assert checkout["client_secret"] not in page.text  # the page holds no secret

        own = (await buyer_get(server, token, f"/api/orders/{order_id}")).json()
        assert own["client_secret"] == checkout["client_secret"]
        assert own["stripe_publishable_key"] == STRIPE_PUBLISHABLE_KEY
        async with server.admin() as admin:
            as_admin = (await admin.get(f"/api/orders/{order_id}")).json()
        assert not SECRETS & as_admin.keys()
        _, other = await server.buyer()
        assert (await buyer_get(server, other, f"/api/orders/{order_id}")).status_code == 404

        await confirm(server, checkout["payment_intent_id"])  # what Stripe.js does on the page
        await wait_for_status(server, order_id, "confirmed")
        paid = (await buyer_get(server, token, f"/api/orders/{order_id}")).json()
        assert not SECRETS & paid.keys() and "payment_url" not in paid


# ------------------------------------------------------------ the setting


def test_the_publishable_key_setting_round_trips_and_refuses_a_secret_key() -> None:
    settings = Settings.from_env({"STRIPE_PUBLISHABLE_KEY": "pk_live_abc"})
    assert settings.stripe_publishable_key == "pk_live_abc"
    assert Settings.from_env(settings.as_env()).stripe_publishable_key == "pk_live_abc"
    assert Settings.from_env({}).stripe_publishable_key is None
    with pytest.raises(SettingsError, match="STRIPE_PUBLISHABLE_KEY"):
        Settings.from_env({"STRIPE_PUBLISHABLE_KEY": "sk_live_oops"})
