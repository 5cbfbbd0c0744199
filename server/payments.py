"""Payments through the real `stripe` SDK: the only module that talks to
Stripe (or to the bundled Stripe-compatible gateway, which the SDK reaches
through `STRIPE_API_BASE` exactly as it would reach Stripe).

Every call that moves money carries an idempotency key derived from the
order, so a retried or concurrent call never creates a second PaymentIntent,
capture or refund. Webhook payloads are verified here too, with
`stripe.Webhook.construct_event` on the raw body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe

from .errors import BadRequest, InvalidSignature, Unavailable, ValidationError
from .order_states import PaymentView
from .settings import Settings

log = logging.getLogger("seatmap.payments")
GATEWAY_KEY = "sk_test_seatmap_bundled_gateway"


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    client_secret: str
    view: PaymentView


def _intent(pi: Any) -> Intent:
    return Intent(
        id=pi.id,
        client_secret=getattr(pi, "client_secret", "") or "",
        view=PaymentView(
            status=pi.status,
            amount=int(pi.amount),
            currency=str(pi.currency),
            amount_received=int(getattr(pi, "amount_received", 0) or 0),
        ),
    )


class Payments:
    def __init__(self, settings: Settings) -> None:
        assert settings.stripe_webhook_secret
        self.webhook_secret = settings.stripe_webhook_secret
        self.uses_gateway = settings.uses_gateway
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self._http = stripe.HTTPXClient(timeout=20)
        self.client = stripe.StripeClient(
            settings.stripe_secret_key or GATEWAY_KEY,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=self._http,
            max_network_retries=2,
        )
        self.api_base = settings.stripe_api_base

    async def close(self) -> None:
        await self._http.close_async()

    async def create_intent(
        self, order_id: str, amount: int, currency: str, metadata: dict[str, str], description: str
    ) -> Intent:
        """Authorize-then-capture PaymentIntent of the order; the same order gets the same one."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "capture_method": "manual",
            "payment_method_types": ["card"],
            "metadata": {"order_id": order_id, **metadata},
            "description": description,
        }
        try:
            pi = await self.client.v1.payment_intents.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": f"seatmap-order-{order_id}"},
            )
        except stripe.InvalidRequestError as error:
            raise ValidationError(f"the payment provider refused the order: {error.user_message or error}") from None
        except stripe.StripeError as error:
            raise Unavailable(f"the payment provider did not answer ({type(error).__name__}); retry") from None
        return _intent(pi)

    async def retrieve(self, payment_intent_id: str) -> Intent:
        pi = await self.client.v1.payment_intents.retrieve_async(payment_intent_id)
        return _intent(pi)

    async def capture(self, payment_intent_id: str, key: str) -> Intent:
        pi = await self.client.v1.payment_intents.capture_async(payment_intent_id, options={"idempotency_key": key})
        return _intent(pi)

    async def cancel(self, payment_intent_id: str, key: str) -> Intent:
        pi = await self.client.v1.payment_intents.cancel_async(payment_intent_id, options={"idempotency_key": key})
        return _intent(pi)

    async def refund(self, payment_intent_id: str, amount: int, key: str, reason: str | None = None) -> str:
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount}
        if reason:
            params["metadata"] = {"reason": reason}
        refund = await self.client.v1.refunds.create_async(
            params,  # type: ignore[arg-type]
            options={"idempotency_key": key},
        )
        return refund.id

    def payment_url(self, intent: Intent, return_url: str) -> str:
        """Where a person pays: the gateway's checkout page, or with real Stripe
        Seatmap's own page that mounts Stripe's Payment Element."""
        from urllib.parse import quote

        if self.uses_gateway:
            return f"{self.api_base}/pay/{intent.id}?return_url={quote(return_url, safe='')}"
        return return_url.replace("/orders/", "/pay/", 1)

    def verify(self, payload: bytes, signature: str | None) -> Any:
        """The event of a webhook, or InvalidSignature (missing, wrong or stale)."""
        if not signature:
            raise InvalidSignature("the Stripe-Signature header is missing")
        try:
            return stripe.Webhook.construct_event(payload, signature, self.webhook_secret, tolerance=300)
        except stripe.SignatureVerificationError:
            raise InvalidSignature("the Stripe-Signature does not match this body, or is too old") from None
        except ValueError:
            # The signature matched but the body is not JSON: a sender bug, not forgery.
            raise BadRequest("the webhook body is not a JSON Stripe event") from None
