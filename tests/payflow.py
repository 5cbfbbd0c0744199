"""Helpers for payment tests: pay through the bundled gateway with the real
stripe SDK, sign webhooks exactly as Stripe does, wait for an order."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import stripe

from tests.support import ADMIN_TOKEN, RunningServer


def gateway(server: RunningServer) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_tests", base_addresses={"api": server.settings.stripe_api_base})


async def confirm(server: RunningServer, payment_intent_id: str, method: str = "pm_card_visa") -> Any:
    """What a buyer does on the payment page: the gateway's confirm call."""
    return await asyncio.to_thread(
        gateway(server).v1.payment_intents.confirm, payment_intent_id, {"payment_method": method}
    )


async def hold_and_checkout(
    server: RunningServer, event_id: str, seats: list[str]
) -> tuple[str, dict[str, Any]]:
    _, token = await server.buyer()
    async with server.http(token) as client:
        held = await client.post(f"/api/events/{event_id}/holds", json={"seats": seats})
        assert held.status_code == 201, held.text
        checkout = await client.post(f"/api/holds/{held.json()['hold_id']}/checkout")
        assert checkout.status_code == 201, checkout.text
    return token, checkout.json()


async def order(server: RunningServer, order_id: str) -> dict[str, Any]:
    async with server.admin() as admin:
        response = await admin.get(f"/api/orders/{order_id}")
        assert response.status_code == 200, response.text
        return response.json()


async def wait_for_status(server: RunningServer, order_id: str, *statuses: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        current = await order(server, order_id)
        if current["status"] in statuses:
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} is {current['status']}, not {statuses}")
        await asyncio.sleep(0.05)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload`, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def gateway_events(server: RunningServer, payment_intent_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.settings.stripe_api_base) as client:
        response = await client.get("/_gateway/events", params={"payment_intent": payment_intent_id})
        response.raise_for_status()
        body = response.json()
    return body["data"] if isinstance(body, dict) else body


async def post_webhook(server: RunningServer, payload: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    async with server.http() as client:
        return await client.post("/api/webhooks/stripe", content=payload, headers=headers)


async def admin_get(server: RunningServer, path: str) -> Any:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as client:
        response = await client.get(path)
        response.raise_for_status()
        return response.json()


def dumps(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
