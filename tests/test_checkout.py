"""Checkout and payment end to end: real Redis, Postgres, the bundled
Stripe-compatible gateway reached by the real stripe SDK, and webhooks
signed as Stripe signs them."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest
import stripe

from server.venues import grid_venue
from tests.payflow import (
    confirm,
    dumps,
    gateway,
    gateway_events,
    hold_and_checkout,
    order,
    post_webhook,
    sign,
    wait_for_status,
)
from tests.support import MapFollower, receive_json, running_server, unique_id


@pytest.fixture
async def event_id(server) -> str:
    return await server.create_event(grid_venue(3, 10, event_id=unique_id()))


async def test_full_purchase(server, event_id):
    follower = MapFollower()
    async with server.socket(event_id) as ws:
        follower.apply(await receive_json(ws))
        token, checkout = await hold_and_checkout(server, event_id, ["A-1", "A-2"])
        assert checkout["status"] == "pending" and checkout["amount_cents"] == 10000
        assert checkout["currency"] == "usd" and checkout["client_secret"].startswith(checkout["payment_intent_id"])
        assert checkout["payment_url"].startswith(server.settings.stripe_api_base + "/pay/")
        await confirm(server, checkout["payment_intent_id"])
        confirmed = await wait_for_status(server, checkout["order_id"], "confirmed")
        while follower.version != (await server.availability(event_id))["version"]:
            follower.apply(await receive_json(ws))
    assert sorted(t["seat"] for t in confirmed["tickets"]) == ["A-1", "A-2"]
    codes = [t["code"] for t in confirmed["tickets"]]
    assert len(set(codes)) == 2 and all(len(code) >= 20 for code in codes)
    assert follower.seats["A-1"] == follower.seats["A-2"] == "booked"
    # booked, then captured through Stripe (authorize-then-capture)
    for _ in range(100):
        pi = await asyncio.to_thread(gateway(server).v1.payment_intents.retrieve, checkout["payment_intent_id"])
        if pi.status == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert pi.status == "succeeded" and pi.amount_received == 10000
    async with server.http(token) as client:
        mine = (await client.get("/api/orders")).json()["orders"]
        assert [o["order_id"] for o in mine] == [checkout["order_id"]]
        assert (await client.get(f"/api/orders/{checkout['order_id']}")).json()["status"] == "confirmed"
    async with server.admin() as admin:
        listed = (await admin.get(f"/api/events/{event_id}/orders?status=confirmed")).json()["orders"]
    assert [o["order_id"] for o in listed] == [checkout["order_id"]]


async def test_checkout_again_returns_the_same_order(server, event_id):
    _, token = await server.buyer()
    async with server.http(token) as client:
        hold_id = (await client.post(f"/api/events/{event_id}/holds", json={"seats": ["B-1"]})).json()["hold_id"]
        answers = await asyncio.gather(*(client.post(f"/api/holds/{hold_id}/checkout") for _ in range(5)))
    assert all(a.status_code == 201 for a in answers), [(a.status_code, a.text[:300]) for a in answers]
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert len({a.json()["payment_intent_id"] for a in answers}) == 1


async def test_checkout_refusals(server, event_id):
    _, ann = await server.buyer()
    _, bob = await server.buyer()
    async with server.http(ann) as client:
        hold_id = (await client.post(f"/api/events/{event_id}/holds", json={"seats": ["B-2"]})).json()["hold_id"]
    async with server.http(bob) as client:
        assert (await client.post(f"/api/holds/{hold_id}/checkout")).status_code == 404
        assert (await client.post(f"/api/holds/nope.{event_id}/checkout")).status_code == 404
    async with server.http() as anonymous:
        assert (await anonymous.post(f"/api/holds/{hold_id}/checkout")).status_code == 401


async def test_declined_then_retried(server, event_id):
    _, checkout = await hold_and_checkout(server, event_id, ["B-3"])
    with pytest.raises(stripe.CardError):
        await confirm(server, checkout["payment_intent_id"], "pm_card_chargeDeclined")
    await asyncio.sleep(0.3)
    assert (await order(server, checkout["order_id"]))["status"] == "pending"
    await confirm(server, checkout["payment_intent_id"])
    await wait_for_status(server, checkout["order_id"], "confirmed")


async def test_unpaid_checkout_lapses_and_frees_its_seats(server_settings):
    async with running_server(server_settings(checkout_seconds=1)) as short:
        event_id = await short.create_event(grid_venue(1, 4, event_id=unique_id()))
        _, checkout = await hold_and_checkout(short, event_id, ["A-1"])
        assert (await short.availability(event_id))["seats"]["A-1"] == "held"
        lapsed = await wait_for_status(short, checkout["order_id"], "expired")
        assert lapsed["tickets"] == []
        for _ in range(100):
            if (await short.availability(event_id))["seats"]["A-1"] == "available":
                break
            await asyncio.sleep(0.05)
        assert (await short.availability(event_id))["seats"]["A-1"] == "available"


async def test_late_payment_for_a_seat_sold_meanwhile_is_given_back(server_settings):
    async with running_server(server_settings(checkout_seconds=1)) as short:
        event_id = await short.create_event(grid_venue(1, 4, event_id=unique_id()))
        _, late = await hold_and_checkout(short, event_id, ["A-2"])
        await wait_for_status(short, late["order_id"], "expired")
        for _ in range(100):  # the lapsed seat goes back on sale
            if (await short.availability(event_id))["seats"]["A-2"] == "available":
                break
            await asyncio.sleep(0.05)
        _, winner = await hold_and_checkout(short, event_id, ["A-2"])
        await confirm(short, winner["payment_intent_id"])
        await wait_for_status(short, winner["order_id"], "confirmed")
        # now the first buyer pays, too late
        await confirm(short, late["payment_intent_id"])
        given_back = await wait_for_status(short, late["order_id"], "cancelled")
        assert given_back["tickets"] == []
        for _ in range(100):
            pi = await asyncio.to_thread(gateway(short).v1.payment_intents.retrieve, late["payment_intent_id"])
            if pi.status == "canceled":
                break
            await asyncio.sleep(0.05)
        assert pi.status == "canceled"  # the authorization was released: nothing charged
        assert (await order(short, winner["order_id"]))["status"] == "confirmed"
        assert (await short.availability(event_id))["seats"]["A-2"] == "booked"


async def test_late_payment_books_seats_still_free(server_settings):
    async with running_server(server_settings(checkout_seconds=1)) as short:
        event_id = await short.create_event(grid_venue(1, 4, event_id=unique_id()))
        _, late = await hold_and_checkout(short, event_id, ["A-3"])
        await wait_for_status(short, late["order_id"], "expired")
        await confirm(short, late["payment_intent_id"])
        booked = await wait_for_status(short, late["order_id"], "confirmed")
        assert [t["seat"] for t in booked["tickets"]] == ["A-3"]
        assert (await short.availability(event_id))["seats"]["A-3"] == "booked"


async def test_webhooks_duplicated_six_at_once_act_once(server, event_id, database_url):
    _, checkout = await hold_and_checkout(server, event_id, ["C-1"])
    await confirm(server, checkout["payment_intent_id"])
    await wait_for_status(server, checkout["order_id"], "confirmed")
    events = await gateway_events(server, checkout["payment_intent_id"])
    secret = server.settings.stripe_webhook_secret
    for event in events:
        payload = dumps(event)
        answers = await asyncio.gather(*(post_webhook(server, payload, sign(payload, secret)) for _ in range(6)))
        assert all(a.status_code == 200 for a in answers)
        assert all(a.json()["duplicate"] for a in answers)  # the gateway delivered it already
    conn = await asyncpg.connect(database_url)
    try:
        audit = await conn.fetch(
            "SELECT to_status FROM order_audit WHERE order_id = $1 ORDER BY id", checkout["order_id"]
        )
        tickets = await conn.fetchval("SELECT count(*) FROM tickets WHERE order_id = $1", checkout["order_id"])
    finally:
        await conn.close()
    assert [row["to_status"] for row in audit] == ["pending", "confirmed"]
    assert tickets == 1


async def test_events_out_of_order_and_concurrent_end_right(server_settings):
    # Deliveries held back for a minute: the test delivers the events itself.
    async with running_server(server_settings(gateway_webhook_delay=60)) as slow:
        event_id = await slow.create_event(grid_venue(1, 4, event_id=unique_id()))
        _, checkout = await hold_and_checkout(slow, event_id, ["A-1"])
        await confirm(slow, checkout["payment_intent_id"])
        events = await gateway_events(slow, checkout["payment_intent_id"])
        assert {"payment_intent.amount_capturable_updated"} <= {e["type"] for e in events}
        secret = slow.settings.stripe_webhook_secret
        # newest first, all at once, each twice
        payloads = [dumps(e) for e in events] * 2
        answers = await asyncio.gather(*(post_webhook(slow, p, sign(p, secret)) for p in payloads))
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        confirmed = await wait_for_status(slow, checkout["order_id"], "confirmed")
        assert len(confirmed["tickets"]) == 1
        # the capture raised payment_intent.succeeded: deliver it too, then everything again
        for _ in range(100):
            events = await gateway_events(slow, checkout["payment_intent_id"])
            if any(e["type"] == "payment_intent.succeeded" for e in events):
                break
            await asyncio.sleep(0.05)
        for event in events:
            payload = dumps(event)
            assert (await post_webhook(slow, payload, sign(payload, secret))).status_code == 200
        assert (await order(slow, checkout["order_id"]))["status"] == "confirmed"
        assert (await slow.availability(event_id))["seats"]["A-1"] == "booked"


async def test_forged_stale_altered_and_unsigned_webhooks_change_nothing(server, event_id):
    _, checkout = await hold_and_checkout(server, event_id, ["C-2"])
    pi = checkout["payment_intent_id"]
    event = {
        "id": f"evt_forged_{unique_id()}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": pi,
                "object": "payment_intent",
                "amount": 5000,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"order_id": checkout["order_id"]},
            }
        },
    }
    payload = dumps(event)
    secret = server.settings.stripe_webhook_secret
    cases = [
        sign(payload, "whsec_not_the_secret"),
        sign(payload, secret, timestamp=int(time.time()) - 3600),
        sign(dumps({**event, "id": "evt_other"}), secret),  # signature of another body
        None,
        "t=1,v1=deadbeef",
    ]
    for signature in cases:
        answer = await post_webhook(server, payload, signature)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_signature", answer.text
    assert (await order(server, checkout["order_id"]))["status"] == "pending"
    # a validly signed body that is not JSON is a bad request, not a forgery
    garbage = b"not json"
    answer = await post_webhook(server, garbage, sign(garbage, secret))
    assert answer.status_code == 400 and answer.json()["error"] == "bad_request"


async def test_a_payment_of_the_wrong_amount_does_not_confirm(server, event_id):
    _, checkout = await hold_and_checkout(server, event_id, ["C-3"])
    stripe_client = gateway(server)
    # A PaymentIntent that claims the order but is not its payment, for less.
    foreign = await asyncio.to_thread(
        stripe_client.v1.payment_intents.create,
        {
            "amount": 100,
            "currency": "usd",
            "capture_method": "manual",
            "metadata": {"order_id": checkout["order_id"]},
        },
    )
    await confirm(server, foreign.id)
    for _ in range(100):
        pi = await asyncio.to_thread(stripe_client.v1.payment_intents.retrieve, foreign.id)
        if pi.status == "canceled":
            break
        await asyncio.sleep(0.05)
    assert pi.status == "canceled"  # given back
    assert (await order(server, checkout["order_id"]))["status"] == "pending"
    assert (await server.availability(event_id))["seats"]["C-3"] == "held"


async def test_refunds_partial_full_and_over(server, event_id):
    _, checkout = await hold_and_checkout(server, event_id, ["C-4", "C-5"])
    await confirm(server, checkout["payment_intent_id"])
    await wait_for_status(server, checkout["order_id"], "confirmed")
    order_id = checkout["order_id"]
    async with server.admin() as admin:
        partial = await admin.post(f"/api/orders/{order_id}/refund", json={"amount_cents": 3000})
        assert partial.status_code == 200, partial.text
        assert partial.json()["status"] == "partially_refunded" and partial.json()["refunded_cents"] == 3000
        assert (await server.availability(event_id))["seats"]["C-4"] == "booked"
        over = await admin.post(f"/api/orders/{order_id}/refund", json={"amount_cents": 7001})
        assert over.status_code == 422 and over.json()["error"] == "validation_error"
        bad = await admin.post(f"/api/orders/{order_id}/refund", json={"amount_cents": "lots"})
        assert bad.status_code == 422
        rest = await admin.post(f"/api/orders/{order_id}/refund")
        assert rest.status_code == 200 and rest.json()["status"] == "refunded"
        assert rest.json()["refunded_cents"] == 10000 and rest.json()["tickets"] == []
        again = await admin.post(f"/api/orders/{order_id}/refund")
        assert again.status_code == 409
    _, token = await server.buyer()
    async with server.http(token) as buyer:
        assert (await buyer.post(f"/api/orders/{order_id}/refund")).status_code == 403
        assert (await buyer.get(f"/api/orders/{order_id}")).status_code == 404
    for _ in range(100):
        seats = (await server.availability(event_id))["seats"]
        if seats["C-4"] == seats["C-5"] == "available":
            break
        await asyncio.sleep(0.05)
    assert seats["C-4"] == seats["C-5"] == "available"
    # the refund webhooks arrive later and change nothing more
    await asyncio.sleep(0.5)
    final = await order(server, order_id)
    assert final["status"] == "refunded" and final["refunded_cents"] == 10000


async def test_database_refuses_a_second_live_booking(database_url, server, event_id):
    _, checkout = await hold_and_checkout(server, event_id, ["C-6"])
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO orders (id, event_id, buyer_id, hold_id, status, amount_cents, currency, expires_at)"
                " VALUES ('ord_x', $1, 'b', 'h_x', 'pending', 5000, 'usd', now());"
                "INSERT INTO order_seats (order_id, event_id, seat_id, price_cents, live)"
                " VALUES ('ord_x', $1, 'C-6', 5000, true)".replace("$1", f"'{event_id}'")
            )
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("DELETE FROM order_audit WHERE order_id = $1", checkout["order_id"])
    finally:
        await conn.close()


async def test_payment_page_pays(server, event_id):
    """The gateway's page a person pays on (payment_url), submitted like a browser would."""
    import httpx

    _, checkout = await hold_and_checkout(server, event_id, ["C-7"])
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        page = await browser.get(checkout["payment_url"])
        assert page.status_code == 200 and "Pay" in page.text
    assert json.dumps(checkout)  # shape is JSON


async def test_a_paid_checkout_is_booked_not_expired_when_its_webhook_is_late(server_settings):
    # Webhooks held back a minute; the checkout lapses after 2 s.
    async with running_server(server_settings(checkout_seconds=2, gateway_webhook_delay=60)) as slow:
        event_id = await slow.create_event(grid_venue(1, 4, event_id=unique_id()))
        _, checkout = await hold_and_checkout(slow, event_id, ["A-1"])
        await confirm(slow, checkout["payment_intent_id"])  # paid at once
        booked = await wait_for_status(slow, checkout["order_id"], "confirmed", "expired", timeout=20)
        assert booked["status"] == "confirmed"  # never told "expired" after paying
        assert (await slow.availability(event_id))["seats"]["A-1"] == "booked"
