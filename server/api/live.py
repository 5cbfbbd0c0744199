"""The live seat map over websocket: `GET /ws/events/{event_id}`.

Served by the `LiveRoute` middleware, ahead of Starlette's router (see
there why). A connection follows one event through the hub and may send hold and
release commands (with a buyer token). Everything the server writes goes
through the client's sink (pre-framed bytes on the transport), so replies
and diffs share one bounded buffer. A connection that cannot be served
(unknown event, forged token, bad query) is accepted, told why in the
contract's error shape, and closed with 4000 + the HTTP status.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any

import msgspec
from starlette.websockets import WebSocket

from ..clientip import client_ip
from ..errors import BadRequest, Forbidden, NotFound, SeatmapError, Unauthorized
from ..guards import origin_allowed
from ..hub import Subscriber
from ..logs import context_id
from ..metrics import METRICS
from ..protocol import (
    HoldFrame,
    HoldOkFrame,
    PingFrame,
    PongFrame,
    ReleaseFrame,
    ReleaseOkFrame,
    client_frame_decoder,
    encoder,
    error_frame,
    iso_ms,
)
from ..ratelimit import Limit
from ..services import Services, services_of
from ..traffic_log import SocketLog, socket_log
from ..wire import Sink, sink_for, text_frame
from .common import DEPENDENCY_ERRORS, dependency_down
from .context import new_id

log = logging.getLogger("seatmap.ws")


class _RefOnly(msgspec.Struct):
    ref: Any = None


_ref_decoder = msgspec.json.Decoder(_RefOnly)


def _ref_of(text: str) -> str | None:
    """The `ref` of a frame that failed to decode, when it can be found."""
    try:
        ref = _ref_decoder.decode(text).ref
    except msgspec.DecodeError:
        return None
    return ref if isinstance(ref, str) else None


def _query_int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number") from None
    if number < 0:
        raise BadRequest(f"'{name}' must not be negative")
    return number


class Connection:
    """One client's session: its buyer (if any), sink and subscription."""

    __slots__ = ("buyer", "event", "ip", "services", "sink", "subscriber", "traffic")

    def __init__(
        self, services: Services, event: Any, buyer: str | None, sink: Sink, ip: str | None, traffic: SocketLog
    ) -> None:
        self.traffic = traffic
        self.services = services
        self.event = event
        self.buyer = buyer
        self.sink = sink
        self.ip = ip
        self.subscriber: Subscriber | None = None

    def reply(self, payload: bytes) -> None:
        self.traffic.frame_out(payload)
        if not self.sink.write(text_frame(payload)) and self.subscriber is not None:
            self.services.hub.cut_off(self.subscriber)

    async def handle(self, text: str) -> None:
        limit = self.services.settings.max_frame_bytes
        if len(text) > limit:
            self.reply(error_frame(BadRequest(f"frames may be at most {limit} bytes").body(), None))
            return
        try:
            frame = client_frame_decoder.decode(text)
        except msgspec.DecodeError as exc:
            self.reply(error_frame(BadRequest(f"malformed frame: {exc}").body(), _ref_of(text)))
            return
        try:
            self.reply(await self.dispatch(frame))
        except SeatmapError as error:
            self.reply(error_frame(error.body(), frame.ref))
        except DEPENDENCY_ERRORS as error:
            self.reply(error_frame(dependency_down(error).body(), frame.ref))

    async def dispatch(self, frame: HoldFrame | ReleaseFrame | PingFrame) -> bytes:
        match frame:
            case PingFrame(ref=ref):
                return encoder.encode(PongFrame(ref, os.getpid()))
            case HoldFrame():
                buyer = self._buyer()
                await self.services.rate_limiter.check_all(
                    (Limit.HOLDS_PER_BUYER, buyer), (Limit.HOLDS_PER_IP, self.ip)
                )
                granted = await self.services.holds.request(
                    self.event,
                    buyer,
                    seats=frame.seats,
                    count=frame.count,
                    tier=frame.tier,
                    section=frame.section,
                    request_id=f"ws:{frame.ref}" if frame.ref else "",
                    path="ws",
                )
                reply = HoldOkFrame(
                    ref=frame.ref,
                    hold_id=granted.hold_id,
                    seats=granted.seats,
                    expires_at=iso_ms(granted.expires_ms),
                    picked=granted.picked,
                )
                if granted.adjacent is not None:
                    reply.adjacent = granted.adjacent
                return encoder.encode(reply)
            case ReleaseFrame():
                buyer = self._buyer()
                remaining = await self.services.holds.release(self.event, buyer, frame.hold_id, frame.seats)
                return encoder.encode(ReleaseOkFrame(frame.ref, frame.hold_id, remaining))
        raise BadRequest("unknown frame type")  # pragma: no cover - the decoder only yields the above

    def _buyer(self) -> str:
        if self.buyer is None:
            raise Unauthorized("connect with ?token=<buyer token> to hold or release seats")
        return self.buyer


def _header(scope: Any, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def live_socket(websocket: WebSocket, raw_send: Any) -> None:
    context_id.set(new_id("ws"))  # on every log line of this connection's task
    services = services_of(websocket)
    settings = services.settings
    params = websocket.query_params
    scope = websocket.scope
    ip = client_ip(scope, settings.trusted_proxies)
    origin = _header(scope, b"origin")
    host = _header(scope, b"host")
    # Held for the connection's life otherwise: nothing needs the headers after this.
    scope["headers"] = ()
    try:
        if not origin_allowed(origin, host, settings.allowed_origins):
            raise Forbidden(f"pages from {origin} may not open the live seat map (SEATMAP_ALLOWED_ORIGINS)")
        event = await services.catalog.get(websocket.path_params["event_id"])
        token = params.get("token")
        buyer = services.signer.buyer_of(token) if token else None
        epoch = params.get("epoch")
        since = _query_int(params.get("since"), "since")
        compact = params.get("compact", "") in ("1", "true")
        await services.rate_limiter.check(Limit.WEBSOCKETS_PER_IP, ip)
        if not services.connections.acquire(ip):  # last: released in the finally below
            raise services.connections.refusal(ip)
    except SeatmapError as error:
        # Accept, say why in the error shape, then close with 4000 + the HTTP
        # status: a browser sees neither the body nor the status of a refused
        # upgrade, only 1006.
        METRICS.ws_refused.inc(1, error.code)
        await websocket.accept()
        await websocket.send_text(error_frame(error.body(), None).decode())
        await websocket.close(4000 + error.status, error.code)
        return

    try:
        await websocket.accept()
    except BaseException:
        services.connections.release(ip)
        raise
    METRICS.ws_connections.inc()
    sink = sink_for(raw_send, settings.client_buffer_bytes, settings.socket_send_buffer)
    traffic = socket_log(dict(scope) if not isinstance(scope, dict) else scope, buyer)
    connection = Connection(services, event, buyer, sink, ip, traffic)
    try:
        connection.subscriber = await services.hub.join(event, sink, compact=compact, epoch=epoch, since=since)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                traffic.closed(message.get("code"))
                break
            text = message.get("text")
            traffic.frame_in(text)
            if text is None:
                connection.reply(error_frame(BadRequest("send JSON text frames, not binary").body(), None))
                continue
            await connection.handle(text)
    except NotFound:  # pragma: no cover - the event existed a moment ago
        pass
    finally:
        services.connections.release(ip)
        METRICS.ws_connections.dec()
        if connection.subscriber is not None:
            services.hub.leave(connection.subscriber)
        sink.discard()


LIVE_PATH = re.compile(r"^/ws/events/([^/]+)$")


class LiveRoute:
    """ASGI middleware that serves `/ws/events/{event_id}` itself, ahead of
    Starlette's exception middleware and router: each layer would stay
    suspended on every connection's stack for its whole life (about 2.5 KB
    per idle client), and the server's own `send` is needed unwrapped so the
    hub can write to the transport."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and (match := LIVE_PATH.match(scope["path"])):
            scope["path_params"] = {"event_id": match.group(1)}
            try:
                await live_socket(WebSocket(scope, receive, send), send)
            except Exception:
                log.exception("live socket failed")
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": 1011})
            return
        await self.app(scope, receive, send)
