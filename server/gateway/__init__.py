"""The bundled Stripe-compatible test gateway.

When ``STRIPE_SECRET_KEY`` is unset, Seatmap's server talks, through the real
stripe SDK, to this gateway instead of Stripe (``STRIPE_API_BASE``, by default
http://127.0.0.1:12111). Unlike stripe-mock it keeps state and sends signed
webhooks, so the demo and the tests exercise the real payment flow. See
docs/gateway.md.

The package, one concern per module::

    config       GatewayConfig: every knob, validated
    errors       Stripe's error types and bodies
    forms        Stripe's form encoding in, typed parameters out      (pure)
    objects      PaymentIntent, Charge, Refund, Event shapes; test cards (pure)
    transitions  the state machine: what each call does and emits     (pure)
    store        SQLite: objects, idempotency keys, events, delivery queue
    service      one call = one transaction: idempotency, events, expansion
    webhooks     Stripe-Signature, retry schedule, the delivery worker
    api          the /v1 REST routes
    page         the checkout page (/pay/{id})
    inspection   /_gateway/health, /_gateway/events, /_gateway/deliveries
    app          create_app(): routes plus the lifespan owning the resources
    runner       the CLI, a uvicorn server, a background thread, a child process
"""

from server.gateway.app import create_app
from server.gateway.config import GatewayConfig, GatewayConfigError, address_of

__all__ = ["GatewayConfig", "GatewayConfigError", "address_of", "create_app"]
