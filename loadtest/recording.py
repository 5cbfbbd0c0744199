"""Recordings of client traffic, as JSON lines, and reading them back.

The line format is the server's traffic log (`server/traffic_log.py`, which
documents it): `t`, `client`, `dir` (`in` client to server, `out` back),
`kind` (`http`, `open`, `ws`, `close`), and the frame or the HTTP request
with its response. A recording made by the load tester adds:

- `"target": "gateway"` on HTTP lines that went to the payment gateway (the
  stripe SDK's confirm call), with `"payment_intent"` and `"payment_method"`;
- `meta` lines: `{"kind": "meta", "event": <create-event body>, …}` first and
  `{"kind": "meta", "final": <GET …/availability at the end>}` last;
- `{"dir": "out", "kind": "ws", "frame": {"type": "snapshot", "version", "epoch"}}`
  in place of each snapshot (its seats are left out), and no diffs.

`load()` reads either kind of file into operations grouped by client: a
websocket command paired with its reply (replies come back in order on a
connection), or an HTTP request with its response.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from server.traffic_log import redact

_encoder = msgspec.json.Encoder()
REPLY_TYPES = {"hold_ok", "release_ok", "error", "pong"}
SKIPPED_CLIENTS = {"admin", "stripe"}


class Recorder:
    """Lines of one client process, kept in memory and written to `path` at the end."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lines: list[bytes] = []

    @property
    def on(self) -> bool:
        return self.path is not None

    def add(self, line: dict[str, Any]) -> None:
        if self.path is not None:
            self.lines.append(_encoder.encode(line))

    def http(
        self,
        client: str,
        t: float,
        method: str,
        path: str,
        body: Any,
        status: int,
        response: Any,
        ms: float,
        **extra: Any,
    ) -> None:
        if self.path is None:
            return
        line: dict[str, Any] = {"t": t, "client": client, "dir": "in", "kind": "http", "method": method}
        line["path"] = path
        if body is not None:
            line["body"] = body
        line["status"] = status
        if response is not None:
            line["response"] = redact(response)
        line["ms"] = round(ms, 3)
        line.update(extra)
        self.add(line)

    def ws(self, client: str, conn: str, t: float, direction: str, kind: str, **extra: Any) -> None:
        if self.path is not None:
            self.add({"t": t, "client": client, "conn": conn, "dir": direction, "kind": kind, **extra})

    def flush(self) -> int:
        if self.path is None:
            return 0
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as out:
            out.write(b"\n".join(self.lines) + (b"\n" if self.lines else b""))
        return len(self.lines)


def merge(parts: list[str], target: str, head: list[dict[str, Any]], tail: list[dict[str, Any]]) -> int:
    """Sort the processes' lines by time into one file between meta lines; removes the parts."""
    lines: list[tuple[float, bytes]] = []
    for part in parts:
        try:
            with open(part, "rb") as handle:
                for raw in handle:
                    raw = raw.rstrip(b"\n")
                    if raw:
                        lines.append((msgspec.json.decode(raw)["t"], raw))
        except FileNotFoundError:
            continue
        os.unlink(part)
    lines.sort(key=lambda item: item[0])
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for meta in head:
            out.write(_encoder.encode({"kind": "meta", **meta}) + b"\n")
        for _, raw in lines:
            out.write(raw + b"\n")
        for meta in tail:
            out.write(_encoder.encode({"kind": "meta", **meta}) + b"\n")
    return len(lines)


# ---------------------------------------------------------------------------- reading


@dataclass
class Op:
    """One thing a client did, with what came back."""

    index: int
    client: str
    kind: str  # session, open, close, hold, release, ping, frame, http, checkout, confirm
    t: float
    request: dict[str, Any]
    conn: str | None = None
    reply_t: float | None = None
    reply: dict[str, Any] | None = None  # the reply frame, or {"status", "body"}
    # filled by analysis: seats it asks for, took, freed, or was refused
    seats: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)
    freed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    best: bool = False

    @property
    def effectful(self) -> bool:
        return bool(self.granted or self.freed or (self.kind == "checkout" and self.seats and self.ok))

    @property
    def ok(self) -> bool:
        if self.reply is None:
            return False
        if self.kind in ("hold", "release", "ping", "frame"):
            return self.reply.get("type") in ("hold_ok", "release_ok", "pong")
        return 200 <= int(self.reply.get("status", 0)) < 300

    def outcome(self) -> Any:
        """What a replay must reproduce: granted seats or the error code / status."""
        if self.reply is None:
            return None
        if self.kind == "hold":
            if self.reply.get("type") == "hold_ok":
                return ["granted", sorted(self.reply.get("picked") or self.reply.get("seats") or [])]
            return ["refused", self.reply.get("error")]
        if self.kind in ("release", "ping", "frame"):
            return [self.reply.get("type"), self.reply.get("error")]
        body = self.reply.get("body")
        if self.kind == "http" and self.request.get("path", "").endswith("/holds") and isinstance(body, dict):
            if "picked" in body or ("seats" in body and "hold_id" in body):
                return ["granted", sorted(body.get("picked") or body.get("seats") or [])]
            return ["refused", body.get("error")]
        return [self.reply.get("status"), body.get("error") if isinstance(body, dict) else None]


@dataclass
class Recording:
    meta: dict[str, Any]
    ops: list[Op]
    clients: dict[str, list[Op]]
    event_id: str | None
    source: str  # "recording" or "access-log"


def _lines(path: str) -> list[dict[str, Any]]:
    found = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            raw = raw.strip()
            if not raw:
                continue
            try:
                found.append(msgspec.json.decode(raw))
            except msgspec.DecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON line ({error})") from None
    return found


def load(path: str) -> Recording:
    meta: dict[str, Any] = {}
    ops: list[Op] = []
    waiting: dict[str, deque[Op]] = defaultdict(deque)  # conn -> commands awaiting their reply
    conn_paths: dict[str, str] = {}
    source = "access-log"
    for line in _lines(path):
        kind = line.get("kind")
        if kind == "meta":
            source = "recording"
            meta.update({k: v for k, v in line.items() if k not in ("kind", "t")})
            continue
        client = str(line.get("client", ""))
        if kind == "http":
            if client in SKIPPED_CLIENTS:
                if line.get("method") == "POST" and line.get("path") == "/api/events" and "body" in line:
                    meta.setdefault("event", line["body"])
                    meta.setdefault("event_id", (line.get("response") or {}).get("id"))
                continue
            if line.get("method") == "GET" and not line.get("path", "").startswith("/api/"):
                continue  # pages and static files
            request = {k: line[k] for k in ("method", "path", "body", "payment_intent", "payment_method") if k in line}
            reply = {"status": line.get("status", 0), "body": line.get("response")}
            op_kind = "http"
            if line.get("target") == "gateway":
                op_kind = "confirm"
            elif line.get("path") == "/api/sessions":
                op_kind = "session"
            elif line.get("method") == "POST" and line.get("path", "").endswith("/checkout"):
                op_kind = "checkout"
            t = float(line["t"])
            ops.append(Op(len(ops), client, op_kind, t, request, None, t + float(line.get("ms", 0)) / 1000, reply))
        elif kind == "open":
            conn_paths[line["conn"]] = line.get("path", "")
            ops.append(Op(len(ops), client, "open", float(line["t"]), {"path": line.get("path", "")}, line["conn"]))
        elif kind == "close":
            if line.get("dir") == "in":
                ops.append(Op(len(ops), client, "close", float(line["t"]), {}, line.get("conn")))
        elif kind == "ws":
            conn = line.get("conn", "")
            frame = line.get("frame")
            if line.get("dir") == "in":
                if not isinstance(frame, dict):
                    frame = {"text": line.get("text", "")}
                ftype = frame.get("type")
                op_kind = ftype if ftype in ("hold", "release", "ping") else "frame"
                op = Op(len(ops), client, op_kind, float(line["t"]), frame, conn)
                ops.append(op)
                waiting[conn].append(op)
            elif isinstance(frame, dict) and frame.get("type") in REPLY_TYPES and waiting[conn]:
                op = waiting[conn].popleft()
                op.reply, op.reply_t = frame, float(line["t"])
    ops.sort(key=lambda op: (op.t, op.index))
    for index, op in enumerate(ops):
        op.index = index
    _analyse(ops)
    clients: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        clients[op.client].append(op)
    event_id = meta.get("event_id") or (meta.get("event") or {}).get("id")
    if event_id is None:
        event_id = _guess_event(ops)
    return Recording(meta, ops, dict(clients), event_id, source)


def _guess_event(ops: list[Op]) -> str | None:
    for op in ops:
        path = op.request.get("path", "")
        for prefix in ("/ws/events/", "/api/events/"):
            if path.startswith(prefix):
                return path[len(prefix) :].split("/")[0].split("?")[0]
    return None


def _analyse(ops: list[Op]) -> None:
    """Fill in each op's seats: requested, granted, freed, refused (following each client's holds)."""
    holds: dict[str, list[str]] = {}  # hold id -> its seats now
    for op in ops:
        body = op.reply.get("body") if op.reply and op.kind != "hold" else None
        if op.kind == "hold" or (
            op.kind == "http" and op.request.get("path", "").endswith("/holds") and op.request.get("method") == "POST"
        ):
            request = op.request if op.kind == "hold" else (op.request.get("body") or {})
            answer = op.reply if op.kind == "hold" else (body if isinstance(body, dict) else {})
            if op.kind == "http":
                op.kind = "hold"
                op.reply = {
                    "type": "hold_ok" if op.reply and op.reply.get("status") == 201 else "error",
                    **(answer or {}),
                    "status": (op.reply or {}).get("status"),
                }
                answer = op.reply
            op.seats = list(request.get("seats") or [])
            op.best = request.get("count") is not None
            if answer and answer.get("type") == "hold_ok":
                op.granted = list(answer.get("picked") or answer.get("seats") or [])
                holds[answer["hold_id"]] = list(answer.get("seats") or op.granted)
            elif answer:
                op.refused = list(answer.get("seats") or [])
        elif op.kind == "release" or (
            op.kind == "http"
            and op.request.get("method") == "DELETE"
            and op.request.get("path", "").startswith("/api/holds/")
        ):
            if op.kind == "release":
                hold_id = op.request.get("hold_id", "")
                subset = op.request.get("seats")
            else:
                path = op.request["path"]
                hold_id = path[len("/api/holds/") :].split("?")[0]
                subset = path.split("seats=", 1)[1].split(",") if "seats=" in path else None
            seats = list(subset or holds.get(hold_id, []))
            op.seats = seats
            if op.ok:
                op.freed = seats
                holds[hold_id] = [s for s in holds.get(hold_id, []) if s not in seats]
        elif op.kind == "checkout":
            hold_id = op.request.get("path", "").split("/")[3] if op.request.get("path") else ""
            seats = (body or {}).get("seats") if isinstance(body, dict) else None
            op.seats = list(seats or holds.get(hold_id, []))
            if op.ok:
                holds.pop(hold_id, None)


def dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
