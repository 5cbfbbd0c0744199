"""Webhook signing as Stripe does it, and the retry schedule: checked against the stripe SDK itself."""

from __future__ import annotations

import time

import msgspec
import pytest
import stripe

from server.gateway import objects
from server.gateway.webhooks import backoff, sign

SECRET = "whsec_test_secret"


def signed_event() -> tuple[bytes, int]:
    intent = {
        "id": "pi_1",
        "object": "payment_intent",
        "metadata": {"order_id": "o-1"},
        "status": "succeeded",
    }
    event = objects.event(
        "payment_intent.succeeded",
        intent,
        now=int(time.time()),
        api_version="2026-10-28.endive",
        request_id="req_1",
        idempotency_key="key-1",
        pending_webhooks=1,
    )
    return msgspec.json.encode(event), int(time.time())


def test_the_stripe_sdk_accepts_what_the_gateway_signs() -> None:
    body, now = signed_event()
    event = stripe.Webhook.construct_event(body, sign(body, SECRET, now), SECRET)
    assert event.type == "payment_intent.succeeded"
    assert event.data.object.metadata["order_id"] == "o-1"
    assert event.request.idempotency_key == "key-1"
    assert event.livemode is False


def test_a_wrong_secret_altered_body_or_stale_timestamp_is_rejected() -> None:
    body, now = signed_event()
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, sign(body, "whsec_other", now), SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body + b" ", sign(body, SECRET, now), SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, sign(body, SECRET, now - 301), SECRET)


def test_retry_delays_double_from_the_base_up_to_the_cap() -> None:
    assert [backoff(n, base=0.5, cap=5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff(10_000, base=0.5, cap=3600.0) == 3600.0
