"""Protocol messages: every frame and request/response body as msgspec Structs.

Websocket frames are tagged unions on `"type"`, one per direction, with one
decoder and one encoder reused everywhere (msgspec's perf tips). HTTP bodies
that clients send are Structs too, so decoding *is* validation: a wrong type
or a missing field is a `msgspec.ValidationError` the edge turns into 422.
This module owns shapes and their encoding; it never performs I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

EventId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
SeatId = Annotated[str, Meta(min_length=1, max_length=64)]
Tier = Literal["REGULAR", "PREMIUM", "VIP"]
SeatState = Literal["available", "held", "booked"]
Ref = Annotated[str, Meta(max_length=128)]
Currency = Annotated[str, Meta(pattern=r"^[a-z]{3}$")]

# Longest request a buyer may make in one go; the per-buyer limit is lower
# in practice, this only bounds the work a single request can ask for.
MAX_SEATS_PER_REQUEST = 100


# ---------------------------------------------------------------- HTTP bodies


class Point(Struct, forbid_unknown_fields=True):
    x: float
    y: float


class SeatSpec(Struct):
    id: SeatId
    section: Annotated[str, Meta(min_length=1, max_length=64)]
    row: Annotated[str, Meta(min_length=1, max_length=32)]
    number: int
    x: float
    y: float
    tier: Tier
    price_cents: Annotated[int, Meta(ge=0)]


class CreateEvent(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    seats: Annotated[list[SeatSpec], Meta(max_length=100_000)]
    id: EventId | None = None
    starts_at: datetime | None = None
    currency: Currency = "usd"
    focal_point: Point | None = None


class HoldRequest(Struct):
    """Either explicit `seats`, or `count` (+ optional `tier`, `section`) for best available."""

    seats: Annotated[list[SeatId], Meta(max_length=MAX_SEATS_PER_REQUEST)] | None = None
    count: Annotated[int, Meta(ge=1, le=MAX_SEATS_PER_REQUEST)] | None = None
    tier: Tier | None = None
    section: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class SessionOut(Struct):
    buyer_id: str
    token: str


class Limits(Struct):
    """Extension: the server's buying rules, so a client need not guess them."""

    max_seats_per_buyer: int
    hold_seconds: int
    checkout_seconds: int


class EventOut(Struct):
    id: str
    name: str
    starts_at: datetime | None
    currency: str
    focal_point: Point
    limits: Limits
    seats: list[SeatSpec]


class Summary(Struct):
    available: int
    held: int
    booked: int


class AvailabilityOut(Struct):
    event_id: str
    epoch: str
    version: int
    seats: dict[str, str]
    summary: Summary


class HoldOut(Struct, omit_defaults=True):
    hold_id: str
    event_id: str
    seats: list[str]
    expires_at: str
    buyer_id: str | UnsetType = UNSET
    picked: list[str] | UnsetType = UNSET
    adjacent: bool | UnsetType = UNSET


class Ticket(Struct):
    """A ticket; the seat's place, tier and price (from the event's layout) are extensions."""

    seat: str
    code: str
    section: str | UnsetType = UNSET
    row: str | UnsetType = UNSET
    number: int | UnsetType = UNSET
    tier: str | UnsetType = UNSET
    price_cents: int | UnsetType = UNSET


class OrderSeat(Struct):
    """Extension: a seat of an order as the event's layout describes it."""

    seat: str
    section: str
    row: str
    number: int
    tier: str
    price_cents: int


class OrderEvent(Struct):
    """Extension: the event an order is for."""

    id: str
    name: str
    starts_at: datetime | None


class OrderOut(Struct, omit_defaults=True):
    order_id: str
    event_id: str
    buyer_id: str
    status: str
    seats: list[str]
    amount_cents: int
    refunded_cents: int
    currency: str
    created_at: datetime
    expires_at: datetime
    tickets: list[Ticket]
    confirmed_at: datetime | None = None
    payment_intent_id: str | None = None
    payment_url: str | None = None
    # Extensions (docs/protocol.md, "Orders").
    payment: str | UnsetType = UNSET  # PaymentState
    event: OrderEvent | UnsetType = UNSET
    seat_details: list[OrderSeat] | UnsetType = UNSET
    # Only to the order's own buyer, only while it is pending: what a payment page needs.
    client_secret: str | UnsetType = UNSET
    stripe_publishable_key: str | UnsetType = UNSET


class CheckoutOut(Struct):
    order_id: str
    status: str
    amount_cents: int
    currency: str
    payment_intent_id: str | None
    client_secret: str | None
    payment_url: str | None
    expires_at: datetime
    seats: list[str]


class RefundRequest(Struct, forbid_unknown_fields=True):
    amount_cents: Annotated[int, Meta(ge=1)] | None = None


# ------------------------------------------------------ websocket: client -> server


class HoldFrame(Struct, tag="hold", tag_field="type"):
    ref: Ref | None = None
    seats: Annotated[list[SeatId], Meta(max_length=MAX_SEATS_PER_REQUEST)] | None = None
    count: Annotated[int, Meta(ge=1, le=MAX_SEATS_PER_REQUEST)] | None = None
    tier: Tier | None = None
    section: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class ReleaseFrame(Struct, tag="release", tag_field="type"):
    hold_id: Annotated[str, Meta(min_length=1, max_length=200)]
    ref: Ref | None = None
    seats: Annotated[list[SeatId], Meta(max_length=MAX_SEATS_PER_REQUEST)] | None = None


class PingFrame(Struct, tag="ping", tag_field="type"):
    ref: Ref | None = None


ClientFrame = HoldFrame | ReleaseFrame | PingFrame


# ------------------------------------------------------ websocket: server -> client


class SnapshotFrame(Struct, tag="snapshot", tag_field="type", omit_defaults=True):
    """`seats` is the contract's form; with `?compact=1` the frame carries
    `states` instead: one character per seat in layout order ('a' available,
    'h' held, 'b' booked) — 20,000 seats in 20 KB rather than ~400 KB."""

    event_id: str
    epoch: str
    version: int
    seats: dict[str, str] | UnsetType = UNSET
    states: str | UnsetType = UNSET


class DiffFrame(Struct, tag="diff", tag_field="type"):
    event_id: str
    epoch: str
    prev: int
    version: int
    changes: dict[str, str]


class ResumedFrame(Struct, tag="resumed", tag_field="type"):
    """Extension: sent after the missed diffs of a successful resume (possibly none)."""

    event_id: str
    epoch: str
    version: int


class HoldOkFrame(Struct, tag="hold_ok", tag_field="type", omit_defaults=True):
    ref: str | None
    hold_id: str
    seats: list[str]
    expires_at: str
    picked: list[str] | UnsetType = UNSET
    adjacent: bool | UnsetType = UNSET


class ReleaseOkFrame(Struct, tag="release_ok", tag_field="type"):
    ref: str | None
    hold_id: str
    seats: list[str]


class PongFrame(Struct, tag="pong", tag_field="type"):
    ref: str | None
    worker: int  # the server process's pid: tells which worker a socket reached


# ------------------------------------------------------------ codecs, built once

encoder = msgspec.json.Encoder()
client_frame_decoder = msgspec.json.Decoder(ClientFrame)
create_event_decoder = msgspec.json.Decoder(CreateEvent)
hold_request_decoder = msgspec.json.Decoder(HoldRequest)
refund_request_decoder = msgspec.json.Decoder(RefundRequest)


def error_frame(body: dict[str, object], ref: str | None) -> bytes:
    """An error reply: the contract's error body plus `type` and `ref`."""
    return encoder.encode({"type": "error", "ref": ref, **body})


def iso_ms(epoch_ms: int) -> str:
    """Redis-clock milliseconds as an RFC 3339 UTC timestamp with milliseconds."""
    seconds, millis = divmod(int(epoch_ms), 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
