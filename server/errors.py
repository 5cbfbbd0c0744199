"""Errors: one root exception and one subclass per client-facing error code.

Hierarchy::

    SeatmapError                      (500 internal_error: a bug, never shown in detail)
    ├── BadRequest                    400 bad_request
    ├── InvalidSignature              400 invalid_signature
    ├── Unauthorized                  401 unauthorized
    ├── Forbidden                     403 forbidden
    ├── NotFound                      404 not_found
    ├── Conflict                      409 conflict
    │   └── SeatsUnavailable          409 seats_unavailable (+ "seats": [...])
    ├── ValidationError               422 validation_error
    ├── LimitExceeded                 429 limit_exceeded (+ Retry-After when known)
    └── Unavailable                   503 unavailable

Each error knows its contract code and HTTP status, and renders the contract's
error body ``{"error": code, "details": sentence, ...extra}``. The HTTP and
websocket edges are the only places that turn these into bytes.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SeatmapError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, details: str, **extra: Any) -> None:
        super().__init__(details)
        self.details = details
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "details": self.details, **self.extra}


class BadRequest(SeatmapError):
    code = "bad_request"
    status = 400


class InvalidSignature(SeatmapError):
    code = "invalid_signature"
    status = 400


class Unauthorized(SeatmapError):
    code = "unauthorized"
    status = 401


class Forbidden(SeatmapError):
    code = "forbidden"
    status = 403


class NotFound(SeatmapError):
    code = "not_found"
    status = 404


class Conflict(SeatmapError):
    code = "conflict"
    status = 409


class SeatsUnavailable(Conflict):
    code = "seats_unavailable"

    def __init__(self, details: str, seats: list[str], **extra: Any) -> None:
        super().__init__(details, seats=seats, **extra)
        self.seats = seats


class ValidationError(SeatmapError):
    code = "validation_error"
    status = 422


class LimitExceeded(SeatmapError):
    code = "limit_exceeded"
    status = 429

    def __init__(self, details: str, retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(details, **extra)
        self.retry_after = retry_after


class Unavailable(SeatmapError):
    code = "unavailable"
    status = 503
