"""Traffic log: every HTTP request/response and every websocket command and
reply of clients, as JSON lines, for `seatmap-loadtest replay` and for
looking at what buyers did.

Off unless `SEATMAP_TRAFFIC_LOG` names a file. One object per line:

    {"t": 1732300000.123456, "client": "b_…", "dir": "in",  "kind": "http",
     "method": "POST", "path": "/api/events/gala/holds", "body": {…},
     "status": 201, "response": {…}, "ms": 1.9}
    {"t": …, "client": "b_…", "conn": "4711-3", "dir": "in",  "kind": "open",
     "path": "/ws/events/gala?compact=1"}
    {"t": …, "client": "b_…", "conn": "4711-3", "dir": "in",  "kind": "ws", "frame": {"type": "hold", …}}
    {"t": …, "client": "b_…", "conn": "4711-3", "dir": "out", "kind": "ws", "frame": {"type": "hold_ok", …}}
    {"t": …, "client": "b_…", "conn": "4711-3", "dir": "in",  "kind": "close"}

`t` is the server's wall clock (`time.time()`) when a request or frame came
in or a reply went out; `dir` is `in` (client to server) or `out`. `client`
is the buyer id when the request or socket carries a valid buyer token,
`admin` for the organizer's token, `stripe` for webhooks, else the
connection id (`<pid>-<n>`, unique across workers). A session's creation
is logged under the buyer id it made. The load tester's recordings
(`loadtest.recording`) use the same lines plus `meta` lines and `target`.

What it logs: client frames and the server's direct replies (`hold_ok`,
`release_ok`, `error`, `pong`); not the snapshots and diffs the hub writes
to every socket (they are the same for everyone and follow from the event's
stream). Never logged: the `Authorization` header, `?token=` of a
websocket, the token of a new session and a checkout's `client_secret`
(replaced by `"<redacted>"`). Bodies longer than 64 KiB are cut (`"text"`
with their first 64 KiB).

Each line is one `write(2)` on a file opened with O_APPEND, so several
worker processes may share the file without interleaving lines. It costs a
system call per line: for drop rehearsals and debugging, not to leave on
at 10,000 clients.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from .auth import bearer

MAX_BODY = 64 * 1024
REDACTED = "<redacted>"
SECRET_FIELDS = ("token", "client_secret")

_encoder = msgspec.json.Encoder()
_connection_ids = itertools.count(1)


def parse_body(raw: bytes) -> dict[str, Any]:
    """A body as a line's field: `{"body": <JSON>}`, `{"text": …}` when not JSON, `{}` when empty."""
    if not raw:
        return {}
    if len(raw) > MAX_BODY:
        return {"text": raw[:MAX_BODY].decode(errors="replace"), "cut": len(raw)}
    try:
        return {"body": msgspec.json.decode(raw)}
    except msgspec.DecodeError:
        return {"text": raw.decode(errors="replace")}


def redact(value: Any) -> Any:
    """The value with secrets (new-session tokens, client secrets) replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if k in SECRET_FIELDS and isinstance(v, str) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def path_without_token(path: str, query: str) -> str:
    """`path?query` with any `token` parameter removed."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
    return f"{path}?{urlencode(pairs)}" if pairs else path


class TrafficLog:
    """Appends lines to one file; shared by every request and socket of a process."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.lines = 0

    def write(self, line: dict[str, Any]) -> None:
        if self._fd < 0:
            return
        os.write(self._fd, _encoder.encode(line) + b"\n")
        self.lines += 1

    def write_raw_frame(self, head: dict[str, Any], payload: bytes) -> None:
        """A line whose `frame` is `payload`, already JSON (the server's own encoding), spliced in."""
        if self._fd < 0:
            return
        os.write(self._fd, _encoder.encode(head)[:-1] + b',"frame":' + payload + b"}\n")
        self.lines += 1

    def socket(self, path: str, client: str | None) -> SocketLog:
        return SocketLog(self, path, client)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class SocketLog:
    """One websocket's hook: the endpoint calls `frame_in` for each client
    frame, `frame_out` for each direct reply, `closed` at the end."""

    def __init__(self, log: TrafficLog | None, path: str, client: str | None) -> None:
        self.log = log
        self.conn = f"{os.getpid()}-{next(_connection_ids)}"
        self.client = client or self.conn
        if log is not None:
            log.write(self._head("in", "open") | {"path": path})

    def _head(self, direction: str, kind: str) -> dict[str, Any]:
        return {"t": time.time(), "client": self.client, "conn": self.conn, "dir": direction, "kind": kind}

    def frame_in(self, text: str | None) -> None:
        if self.log is None:
            return
        head = self._head("in", "ws")
        if text is None:
            self.log.write(head | {"text": "<binary frame>"})
            return
        parsed = parse_body(text.encode())
        self.log.write(head | ({"frame": parsed["body"]} if "body" in parsed else parsed))

    def frame_out(self, payload: bytes) -> None:
        if self.log is not None:
            self.log.write_raw_frame(self._head("out", "ws"), payload)

    def closed(self, code: int | None = None) -> None:
        if self.log is not None:
            self.log.write(self._head("in", "close") | ({"code": code} if code is not None else {}))


NO_SOCKET_LOG = SocketLog(None, "", "-")
SCOPE_KEY = "seatmap.traffic"


def socket_log(scope: dict[str, Any], client: str | None) -> SocketLog:
    """The hook for a websocket of this scope (a no-op one when logging is off)."""
    log: TrafficLog | None = scope.get(SCOPE_KEY)
    if log is None:
        return NO_SOCKET_LOG
    return log.socket(path_without_token(scope.get("path", ""), scope.get("query_string", b"").decode()), client)


def _client_of(scope: dict[str, Any], authorization: str | None) -> str | None:
    """Who sent an HTTP request: a verified buyer id, 'admin', 'stripe' or None (unknown)."""
    if scope.get("path") == "/api/webhooks/stripe":
        return "stripe"
    token = bearer(authorization)
    if token is None:
        return None
    services = (scope.get("state") or {}).get("services")
    if services is None:
        return None
    if services.signer.is_admin(token):
        return "admin"
    try:
        return services.signer.buyer_of(token)
    except Exception:
        return None  # a forged token: logged under the connection


class TrafficLogMiddleware:
    """ASGI middleware: logs each HTTP request with its response, and puts the
    log in websocket scopes (`scope["seatmap.traffic"]`) for the endpoint's hook."""

    def __init__(self, app: Any, path: str | os.PathLike[str]) -> None:
        self.app = app
        self.log = TrafficLog(path)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[SCOPE_KEY] = self.log
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        request = bytearray()
        response = bytearray()
        status = 0

        async def receive_logged() -> Any:
            message = await receive()
            if message["type"] == "http.request" and len(request) <= MAX_BODY:
                request.extend(message.get("body", b""))
            return message

        async def send_logged(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(response) <= MAX_BODY:
                response.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_logged, send_logged)
        finally:
            self._write(scope, started, bytes(request), status, bytes(response))

    def _write(self, scope: Any, started: float, request: bytes, status: int, response: bytes) -> None:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode(errors="replace") or None
        encoding = headers.get(b"accept-encoding", b"")
        answer = parse_body(response) if b"gzip" not in encoding or response[:2] != b"\x1f\x8b" else {}
        client = _client_of(scope, authorization)
        if client is None and scope.get("path") == "/api/sessions" and isinstance(answer.get("body"), dict):
            client = answer["body"].get("buyer_id")
        client = client or f"{os.getpid()}-{next(_connection_ids)}"
        line: dict[str, Any] = {
            "t": started,
            "client": client,
            "dir": "in",
            "kind": "http",
            "method": scope.get("method", ""),
            "path": path_without_token(scope.get("path", ""), scope.get("query_string", b"").decode()),
        }
        line.update(parse_body(request))
        line["status"] = status
        if "body" in answer:
            line["response"] = redact(answer["body"])
        elif "text" in answer:
            line["response_text"] = answer["text"]
        line["ms"] = round((time.time() - started) * 1000, 3)
        self.log.write(line)


def middleware(path: str | os.PathLike[str] | None) -> list[Any]:
    """The middleware list entry for `create_app` (empty when the log is off)."""
    if not path:
        return []
    from starlette.middleware import Middleware

    return [Middleware(TrafficLogMiddleware, path=path)]
