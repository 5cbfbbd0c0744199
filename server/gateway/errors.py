"""Stripe's errors, as the gateway raises and renders them.

Hierarchy (HTTP status, Stripe ``error.type``)::

    GatewayError                  500 api_error (a gateway bug; never details)
    ├── InvalidRequest            400 invalid_request_error
    │   ├── ResourceMissing       404 invalid_request_error, code resource_missing
    │   ├── Unauthenticated       401 invalid_request_error (the SDK: AuthenticationError)
    │   └── UnexpectedState       400 invalid_request_error, code payment_intent_unexpected_state
    ├── IdempotencyMismatch       400 idempotency_error
    └── CardDeclined              402 card_error, code card_declined (+ decline_code)

Each error renders Stripe's body ``{"error": {"type", "message", "code"?,
"param"?, ...}}`` (absent fields are left out, as Stripe does), which the
stripe SDK turns into its typed exceptions (InvalidRequestError,
AuthenticationError, IdempotencyError, CardError, APIError). Only the HTTP
edges turn these into bytes.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ResourceMissing(InvalidRequest):
    status = 404
    default_code = "resource_missing"


class Unauthenticated(InvalidRequest):
    status = 401


class UnexpectedState(InvalidRequest):
    default_code = "payment_intent_unexpected_state"


class IdempotencyMismatch(GatewayError):
    status = 400
    type = "idempotency_error"


class CardDeclined(GatewayError):
    status = 402
    type = "card_error"
    default_code = "card_declined"
