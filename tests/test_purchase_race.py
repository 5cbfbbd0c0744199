"""Many buyers race through hold, checkout and payment for overlapping seats,
with lapsing checkouts, declines and late payments. At the end every seat is
in at most one confirmed order, every successful payment is booked or given
back, and the live map agrees with Postgres."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
import stripe

from server.venues import grid_venue
from tests.payflow import confirm, gateway, order
from tests.support import running_server, unique_id

pytestmark = pytest.mark.slow

BUYERS = 30
SEATS = [f"A-{n}" for n in range(1, 11)]


async def shopper(server, event_id: str, seed: int, outcomes: list) -> None:
    rng = random.Random(seed)
    _, token = await server.buyer()
    async with server.http(token) as client:
        for _ in range(12):
            wanted = rng.sample(SEATS, rng.choice((1, 2)))
            held = await client.post(f"/api/events/{event_id}/holds", json={"seats": wanted})
            if held.status_code != 201:
                await asyncio.sleep(rng.random() * 0.5)
                continue
            checkout = await client.post(f"/api/holds/{held.json()['hold_id']}/checkout")
            if checkout.status_code != 201:
                continue
            body = checkout.json()
            await asyncio.sleep(rng.random() * 2.0)  # some pay after their checkout lapsed (1.5 s)
            method = "pm_card_chargeDeclined" if rng.random() < 0.2 else "pm_card_visa"
            try:
                await confirm(server, body["payment_intent_id"], method)
                outcomes.append((body["order_id"], body["payment_intent_id"]))
            except stripe.StripeError:
                pass
            return


async def test_buyers_racing_for_overlapping_seats(server_settings):
    async with running_server(server_settings(checkout_seconds=1, hold_seconds=30)) as running:
        event_id = await running.create_event(grid_venue(1, 10, event_id=unique_id()))
        paid: list[tuple[str, str]] = []
        await asyncio.gather(*(shopper(running, event_id, seed, paid) for seed in range(BUYERS)))
        assert paid, "some payments went through"

        # let webhooks, captures, cancels and expiries settle
        client = gateway(running)
        settled = {"confirmed", "cancelled", "refunded", "expired"}
        for _ in range(300):
            states = [(await order(running, order_id))["status"] for order_id, _ in paid]
            intents = [await asyncio.to_thread(client.v1.payment_intents.retrieve, pi) for _, pi in paid]
            done = all(s in settled for s in states) and all(pi.status in ("succeeded", "canceled") for pi in intents)
            if done:
                break
            await asyncio.sleep(0.1)
        assert done, list(zip(states, [pi.status for pi in intents], strict=True))

        # every successful payment: booked (captured, order confirmed) or given back
        for (order_id, _), state, pi in zip(paid, states, intents, strict=True):
            if state == "confirmed":
                assert pi.status == "succeeded", (order_id, pi.status)
            else:
                assert pi.status == "canceled" or state == "refunded", (order_id, state, pi.status)

        conn = await asyncpg.connect(running.settings.database_url)
        try:
            doubles = await conn.fetch(
                "SELECT s.seat_id, count(*) FROM order_seats s JOIN orders o ON o.id = s.order_id"
                " WHERE o.event_id = $1 AND o.status IN ('confirmed', 'partially_refunded')"
                " GROUP BY s.seat_id HAVING count(*) > 1",
                event_id,
            )
            booked = {
                row["seat_id"]
                for row in await conn.fetch(
                    "SELECT s.seat_id FROM order_seats s JOIN orders o ON o.id = s.order_id"
                    " WHERE o.event_id = $1 AND o.status = 'confirmed'",
                    event_id,
                )
            }
        finally:
            await conn.close()
        assert doubles == []
        # the race really raced: payments both won and lost
        assert "confirmed" in states and set(states) - {"confirmed"}, states
        for _ in range(100):
            seats = (await running.availability(event_id))["seats"]
            if {seat for seat, state in seats.items() if state == "booked"} == booked:
                break
            await asyncio.sleep(0.1)
        assert {seat for seat, state in seats.items() if state == "booked"} == booked
