"""`replay FILE`: play a recording (`drop --record`, `record`) or a server
traffic log (`SEATMAP_TRAFFIC_LOG`) against a server, on a fresh event with
the recorded layout, at the recorded pace (`--speed 1`), N times faster
(`--speed N`) or as fast as possible (`--speed max`).

Each client's operations run in their recorded order (the next after the
previous one's reply), clients in parallel. Ids the server makes (buyers,
holds, orders, PaymentIntents) differ from the recording's: each is mapped
as the replay learns it, and requests are rewritten with the new ids.

Races between clients are replayed in the order the server decided them,
inferred from the recording (docs/loadtest.md, "Replay"):

- an operation that took or freed seats (a grant, a release, a checkout)
  waits for the previous such operation on each of its seats, in recorded
  reply order; a best-available request waits for every earlier one;
- a request refused because seats were taken waits until this replay's map
  shows them taken; a grant of seats that someone's hold or checkout had
  before (and did not release by request) waits until the map shows them
  free again (the hold expired or the checkout lapsed);
- every such wait is bounded (`--max-wait`), then the request goes anyway.

At the end: the same invariants as a drop, then the replay is compared with
the recording: each operation's outcome (seats granted or the error code)
and the final map (at 1x all of it, at other speeds the booked seats, since
holds expire on the server's clock). `--strict` makes a difference fail.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter, defaultdict
from typing import Any

import httpx
import msgspec
import stripe

from . import wsclient
from .buyers import ms_of
from .drop import event_layout, server_env
from .endcheck import check, converge, settle_payments
from .maps import ClientMap, MapTracker
from .recording import Op, Recorder, Recording, load, merge
from .report import Progress, fmt, table
from .stack import Stack, free_port, host_port, unique_event_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a recording or a server traffic log (JSON lines)")
    parser.add_argument("--speed", default="1", help="1 (recorded pace), N (N times faster) or max (default 1)")
    parser.add_argument("--event", help="replay on this existing event instead of a fresh one")
    parser.add_argument("--max-wait", type=float, default=5.0, help="longest wait for an ordering condition, s")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to let payments settle at the end")
    parser.add_argument("--gateway", help="the payment gateway's URL (default: from checkout's payment_url)")
    parser.add_argument("--hold-seconds", type=int, help="server's hold life (default: the recording's)")
    parser.add_argument("--checkout-seconds", type=int, help="server's checkout life (default: the recording's)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes when started here")
    parser.add_argument("--record", metavar="FILE", help="record the replay's own traffic")
    parser.add_argument("--strict", action="store_true", help="fail (exit 3) when outcomes or the final map differ")
    parser.add_argument("--html", metavar="PATH", help="write the report as a self-contained HTML page")


# ---------------------------------------------------------------------------- ordering


def dependencies(ops: list[Op]) -> tuple[dict[int, set[int]], dict[int, list[tuple[str, str, int]]]]:
    """(op -> ops it must follow, op -> map conditions [(seat, 'taken'|'freed_after', op)])."""
    deps: dict[int, set[int]] = defaultdict(set)
    conditions: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    last_effect: dict[str, Op] = {}
    answered = sorted((op for op in ops if op.reply_t is not None), key=lambda op: (op.reply_t, op.index))
    for op in answered:
        if op.best:
            deps[op.index].update(o.index for o in set(last_effect.values()) if o.client != op.client)
        for seat in {*op.seats, *op.granted, *op.freed, *op.refused}:
            previous = last_effect.get(seat)
            if previous is not None and previous.client != op.client:
                deps[op.index].add(previous.index)
        for seat in op.refused:
            conditions[op.index].append((seat, "taken", -1))
        for seat in op.granted:
            previous = last_effect.get(seat)
            if previous is not None and previous.client != op.client and seat not in previous.freed:
                conditions[op.index].append((seat, "freed_after", previous.index))
        touched = list(op.granted) + list(op.freed) + (list(op.seats) if op.kind == "checkout" and op.ok else [])
        for seat in touched:
            last_effect[seat] = op
    return deps, conditions


# ---------------------------------------------------------------------------- the replayer


class ReplayClient:
    def __init__(self, recorded: str) -> None:
        self.recorded = recorded
        self.id = recorded
        self.token = ""
        self.sockets: dict[str, wsclient.WsClient] = {}
        self.map = ClientMap()
        self.pending: dict[str, asyncio.Future[tuple[dict[str, Any], float]]] = {}
        self.fifo: dict[str, list[asyncio.Future[tuple[dict[str, Any], float]]]] = defaultdict(list)
        self.holds: set[str] = set()


class Replayer:
    def __init__(
        self,
        rec: Recording,
        url: str,
        gateway: str | None,
        event_id: str,
        seat_ids: list[str],
        speed: float | None,
        max_wait: float,
        hold_ms: int,
        recorder: Recorder,
    ) -> None:
        self.rec, self.url, self.gateway, self.event_id = rec, url, gateway, event_id
        self.host, self.port = host_port(url)
        self.speed, self.max_wait, self.hold_ms = speed, max_wait, hold_ms
        self.ids: dict[str, str] = {rec.event_id: event_id} if rec.event_id else {}
        self.maps = MapTracker(seat_ids)
        self.follower_map = ClientMap()
        self.changed = asyncio.Event()
        self.done: dict[int, asyncio.Event] = {op.index: asyncio.Event() for op in rec.ops}
        self.done_at: dict[int, float] = {}
        self.deps, self.conditions = dependencies(rec.ops)
        self.clients = {name: ReplayClient(name) for name in rec.clients}
        self.outcomes: list[tuple[Op, Any]] = []
        self.waits: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.hold_sent: list[float] = []
        self.hold_ms_list: list[float] = []
        self.grants: list[dict[str, Any]] = []
        self.releases: list[dict[str, Any]] = []
        self.checkouts: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.recorder = recorder
        self.http = httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64))
        self.http_slots = asyncio.Semaphore(64)  # keep httpcore's queue short (see buyers.py)
        self.stripe: stripe.StripeClient | None = None
        self.follower: wsclient.WsClient | None = None

    # --------------------------------------------------------------- ids

    def _map(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.ids.get(value, value)
        if isinstance(value, dict):
            return {k: self._map(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._map(v) for v in value]
        return value

    def _map_path(self, path: str) -> str:
        route, sep, query = path.partition("?")
        route = "/".join(self.ids.get(part, part) for part in route.split("/"))
        if query:
            query = "&".join(
                f"{k}={','.join(self.ids.get(x, x) for x in v.split(','))}" if "=" in item else item
                for item in query.split("&")
                for k, _, v in [item.partition("=")]
            )
        return route + sep + query

    def _learn(self, recorded: Any, replayed: Any) -> None:
        if not isinstance(recorded, dict) or not isinstance(replayed, dict):
            return
        for key in ("hold_id", "order_id", "payment_intent_id", "buyer_id", "id"):
            old, new = recorded.get(key), replayed.get(key)
            if isinstance(old, str) and isinstance(new, str) and old != new and key != "id":
                self.ids[old] = new

    # --------------------------------------------------------------- frames

    def _on_frame(self, ws: wsclient.WsClient, payload: bytes, received: float) -> None:
        client, conn = ws.state
        target = client.map if client is not None else self.follower_map
        kind = self.maps.on_frame(target, payload, received)
        if kind is not None:
            if client is None:
                self.changed.set()
            return
        if client is None:
            return
        frame = msgspec.json.decode(payload)
        future = client.pending.pop(frame.get("ref") or "", None)
        if future is None and client.fifo[conn]:
            future = client.fifo[conn].pop(0)
        if future is not None and not future.done():
            future.set_result((frame, received))

    async def _open(self, client: ReplayClient | None, conn: str, path: str) -> wsclient.WsClient:
        loop = asyncio.get_running_loop()

        def factory() -> wsclient.WsClient:
            ws = wsclient.WsClient(self.host, self.port, path, self._on_frame)
            ws.state = (client, conn)
            return ws

        _, ws = await asyncio.wait_for(loop.create_connection(factory, self.host, self.port), 30)
        await asyncio.wait_for(asyncio.shield(ws.opened), 30)
        return ws

    async def start_follower(self) -> None:
        self.follower = await self._open(None, "follower", f"/ws/events/{self.event_id}?compact=1")
        for _ in range(300):
            if self.follower_map.snapshot:
                return
            await asyncio.sleep(0.01)

    # --------------------------------------------------------------- ordering waits

    async def _wait_for(self, op: Op) -> None:
        deadline = time.monotonic() + self.max_wait
        for index in self.deps.get(op.index, ()):
            event = self.done[index]
            if not event.is_set():
                try:
                    await asyncio.wait_for(event.wait(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    self.waits["dependency_timeout"] += 1
                    return
        conditions = self.conditions.get(op.index)
        if not conditions:
            return
        while not self._met(conditions):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.waits["map_condition_timeout"] += 1
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass

    def _met(self, conditions: list[tuple[str, str, int]]) -> bool:
        current = self.maps.current
        for seat, kind, after in conditions:
            state = current.get(seat)
            if kind == "taken" and state == "available":
                return False
            if kind == "freed_after":
                if state != "available":
                    return False
                if self.maps.changed_at.get(seat, 0.0) < self.done_at.get(after, 0.0):
                    return False
        return True

    # --------------------------------------------------------------- running

    async def run_client(self, client: ReplayClient, ops: list[Op], t_rec0: float, t0: float) -> None:
        for op in ops:
            if self.speed is not None:
                due = t0 + (op.t - t_rec0) / self.speed
                await asyncio.sleep(max(0.0, due - time.time()))
            await self._wait_for(op)
            try:
                reply = await self._perform(client, op)
            except Exception as error:
                self.errors[f"exception_{type(error).__name__}"] += 1
                reply = None
            self.done_at[op.index] = time.time()
            self.done[op.index].set()
            if op.reply is not None and op.kind not in ("open", "close"):
                self.outcomes.append((op, _outcome(op, reply)))

    async def _perform(self, client: ReplayClient, op: Op) -> dict[str, Any] | None:
        kind = op.kind
        if kind == "session":
            status, body = await self._http(client, "POST", "/api/sessions", None, auth=False)
            if status == 201:
                self._learn(op.reply.get("body") if op.reply else None, body)
                client.id, client.token = body["buyer_id"], body["token"]
            return {"status": status, "body": body}
        if not client.token:
            _, body = await self._http(client, "POST", "/api/sessions", None, auth=False)
            client.id, client.token = body["buyer_id"], body["token"]
        if kind == "open":
            path = self._map_path(op.request["path"])
            path += ("&" if "?" in path else "?") + f"token={client.token}"
            sent = time.time()
            client.sockets[op.conn or ""] = await self._open(client, op.conn or "", path)
            self.recorder.ws(client.id, op.conn or "", sent, "in", "open", path=self._map_path(op.request["path"]))
            return None
        if kind == "close":
            ws = client.sockets.pop(op.conn or "", None)
            if ws is not None:
                ws.close()
            return None
        if kind in ("hold", "release", "ping", "frame") and "method" not in op.request:
            return await self._frame(client, op)
        if kind == "confirm":
            return await self._confirm(client, op)
        method, path = op.request["method"], self._map_path(op.request["path"])
        body = self._map(op.request.get("body"))
        sent = time.time()
        status, answer = await self._http(client, method, path, body)
        received = time.time()
        recorded_body = None
        if op.reply is not None:  # an HTTP hold's reply was reshaped into a frame by the analysis
            recorded_body = op.reply.get("body") if "body" in op.reply else op.reply
        self._learn(recorded_body, answer)
        if kind == "hold":
            reply = {"type": "hold_ok" if status == 201 else "error", **(answer or {}), "status": status}
            self._note_hold(client, reply, sent, received)
            return reply
        if kind == "checkout" and status == 201:
            self.checkouts.append(
                {"client": client.id, "hold_id": path.split("/")[3], "order_id": answer["order_id"],
                 "payment_intent": answer["payment_intent_id"], "seats": answer.get("seats", []),
                 "send": sent, "reply": received, "expires_ms": ms_of(answer["expires_at"]),
                 "gateway": (answer.get("payment_url") or "").split("/pay/")[0] or None}
            )  # fmt: skip
            self.gateway = self.gateway or self.checkouts[-1]["gateway"]
        if method == "DELETE" and path.startswith("/api/holds/") and 200 <= status < 300:
            hold_id = path[len("/api/holds/") :].split("?")[0]
            self.releases.append({"client": client.id, "hold_id": hold_id, "seats": op.seats, "send": sent,
                                  "reply": received, "ok": True})  # fmt: skip
        return {"status": status, "body": answer}

    async def _http(
        self, client: ReplayClient, method: str, path: str, body: Any, auth: bool = True
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {client.token}"} if auth and client.token else None
        async with self.http_slots:
            sent = time.time()
            response = await self.http.request(method, path, json=body, headers=headers)
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        who = answer.get("buyer_id", client.id) if path == "/api/sessions" and isinstance(answer, dict) else client.id
        self.recorder.http(who, sent, method, path, body, response.status_code, answer, (time.time() - sent) * 1000)
        if response.status_code >= 400:
            code = answer.get("error") if isinstance(answer, dict) else None
            self.errors[f"http_{response.status_code}_{code}"] += 1
        return response.status_code, answer

    async def _frame(self, client: ReplayClient, op: Op) -> dict[str, Any] | None:
        ws = client.sockets.get(op.conn or "")
        if ws is None or not ws.is_open:
            self.errors["no_socket"] += 1
            return None
        frame = self._map(op.request)
        future = asyncio.get_running_loop().create_future()
        ref = frame.get("ref")
        if ref:
            client.pending[ref] = future
        else:
            client.fifo[op.conn or ""].append(future)
        sent = time.time()
        ws.send_text(msgspec.json.encode(frame))
        self.recorder.ws(client.id, op.conn or "", sent, "in", "ws", frame=frame)
        if op.reply is None:
            return None
        try:
            reply, received = await asyncio.wait_for(future, 30)
        except TimeoutError:
            self.errors["ws_timeout"] += 1
            return None
        self.recorder.ws(client.id, op.conn or "", received, "out", "ws", frame=reply)
        self._learn(op.reply, reply)
        if op.kind == "hold":
            self._note_hold(client, reply, sent, received)
        elif op.kind == "release" and reply.get("type") == "release_ok":
            held = op.request.get("seats") or op.seats
            self.releases.append({"client": client.id, "hold_id": frame["hold_id"], "seats": held, "send": sent,
                                  "reply": received, "ok": True})  # fmt: skip
        return reply

    def _note_hold(self, client: ReplayClient, reply: dict[str, Any], sent: float, received: float) -> None:
        self.hold_sent.append(sent)
        self.hold_ms_list.append((received - sent) * 1000)
        if reply.get("type") != "hold_ok":
            self.errors[str(reply.get("error"))] += 1
            return
        new = reply["hold_id"] not in client.holds
        client.holds.add(reply["hold_id"])
        self.grants.append(
            {"client": client.id, "hold_id": reply["hold_id"], "seats": list(reply.get("picked") or reply["seats"]),
             "hold_seats": list(reply["seats"]), "send": sent, "reply": received,
             "expires_ms": ms_of(reply["expires_at"]), "new_hold": new}
        )  # fmt: skip

    async def _confirm(self, client: ReplayClient, op: Op) -> dict[str, Any]:
        pi = self.ids.get(op.request.get("payment_intent", ""), "")
        if not pi or self.gateway is None:
            self.errors["confirm_unmapped"] += 1
            return {"status": 0, "body": None}
        if self.stripe is None:
            self.stripe = stripe.StripeClient(
                "sk_test_loadtest", base_addresses={"api": self.gateway},  # type: ignore[typeddict-item]
                http_client=stripe.HTTPXClient(timeout=30), max_network_retries=0,
            )  # fmt: skip
        method = op.request.get("payment_method", "pm_card_visa")
        order_id = next((c["order_id"] for c in self.checkouts if c["payment_intent"] == pi), "")
        sent = time.time()
        record: dict[str, Any] = {"client": client.id, "order_id": order_id, "payment_intent": pi, "method": method}
        try:
            intent = await self.stripe.v1.payment_intents.confirm_async(pi, {"payment_method": method})
            status, body = 200, {"id": intent.id, "status": intent.status}
            record.update(ok=True, status=intent.status)
        except stripe.CardError as error:
            status, body = 402, {"error": {"type": "card_error", "code": error.code}}
            record.update(ok=False, status="declined")
        except stripe.StripeError as error:
            status, body = error.http_status or 0, {"error": {"type": type(error).__name__}}
            record.update(ok=False, status="error")
        record.update(send=sent, reply=time.time())
        self.payments.append(record)
        self.recorder.http(client.id, sent, "POST", f"/v1/payment_intents/{pi}/confirm", {"payment_method": method},
                           status, body, (time.time() - sent) * 1000, target="gateway", payment_intent=pi,
                           payment_method=method)  # fmt: skip
        return {"status": status, "body": body}

    # --------------------------------------------------------------- for endcheck.converge

    async def call(self, name: str, **kwargs: Any) -> list[Any]:
        return [await getattr(self, name)(**kwargs)]

    async def versions(self) -> dict[str, int]:
        found = [c.map.version for c in self.clients.values() for ws in c.sockets.values() if ws.is_open]
        return {"min": min(found, default=-1), "max": max(found, default=-1), "open": len(found)}

    async def verify(self, expected: dict[str, str], version: int, epoch: str) -> dict[str, Any]:
        states = {c.id: c.map for c in self.clients.values() if any(ws.is_open for ws in c.sockets.values())}
        return self.maps.verify(states, expected, version, epoch)

    async def aclose(self) -> None:
        for client in self.clients.values():
            for ws in client.sockets.values():
                ws.close()
        if self.follower is not None:
            self.follower.close()
        await self.http.aclose()


def _outcome(op: Op, reply: dict[str, Any] | None) -> Any:
    replayed = Op(op.index, op.client, op.kind, op.t, op.request, op.conn, None, reply)
    return replayed.outcome()


def _speed(text: str) -> float | None:
    if text in ("max", "0", "inf"):
        return None
    value = float(text.rstrip("x"))
    if value <= 0:
        raise SystemExit("--speed must be positive, or max")
    return value


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    rec = load(args.file)
    speed = _speed(args.speed)
    limits = rec.meta.get("limits") or {}
    gateway = args.gateway
    if stack.server_url is None:
        port = free_port()
        args.hold_seconds = args.hold_seconds or limits.get("hold_seconds", 300)
        args.checkout_seconds = args.checkout_seconds or limits.get("checkout_seconds", 900)
        await asyncio.to_thread(stack.start_server, args.workers, **server_env(args, port))
        gateway = f"http://127.0.0.1:{port}"
    assert stack.server_url is not None
    if args.event:
        event_id = args.event
    else:
        body = rec.meta.get("event")
        if not body:
            raise SystemExit(
                f"{args.file} has no event layout (no meta line, no logged POST /api/events): give --event ID"
            )
        body = {k: v for k, v in body.items() if k in ("name", "starts_at", "currency", "focal_point", "seats")}
        event_id = await stack.create_event({**body, "id": unique_event_id("replay")})
    event = await event_layout(stack, event_id)
    hold_ms = event["limits"]["hold_seconds"] * 1000
    if limits and limits.get("hold_seconds") != event["limits"]["hold_seconds"]:
        progress(f"warning: the recording's holds lasted {limits.get('hold_seconds')} s, this server's "
                 f"{event['limits']['hold_seconds']} s: outcomes may differ")  # fmt: skip
    seat_ids = [s["id"] for s in event["seats"]]
    recorder = Recorder(f"{args.record}.part0" if args.record else None)
    replayer = Replayer(rec, stack.server_url, gateway, event_id, seat_ids, speed, args.max_wait, hold_ms, recorder)
    progress(
        f"replaying {len(rec.ops):,} operations of {len(rec.clients):,} clients ({rec.source}) on event "
        f"{event_id} at {'max speed' if speed is None else f'{speed:g}x'}"
    )
    started = time.time()
    try:
        await replayer.start_follower()
        t_rec0 = rec.ops[0].t if rec.ops else 0.0
        t0 = time.time() + 0.2
        tasks = [
            asyncio.ensure_future(replayer.run_client(replayer.clients[name], ops, t_rec0, t0))
            for name, ops in rec.clients.items()
        ]
        last = 0
        while not all(t.done() for t in tasks):
            await asyncio.wait(tasks, timeout=1.0)
            done_now = len(replayer.outcomes)
            progress(f"{done_now:,}/{sum(1 for op in rec.ops if op.reply is not None):,} operations replayed "
                     f"({done_now - last:,}/s), waits {dict(replayer.waits) or 'none'}")  # fmt: skip
            last = done_now
        for task in tasks:
            task.result()
        final_rec = rec.meta.get("final")
        if speed is not None and final_rec and rec.meta.get("final_t"):
            # read the final map at the moment the recording read it (holds expire on the server's clock)
            await asyncio.sleep(max(0.0, t0 + (rec.meta["final_t"] - t_rec0) / speed - time.time() - 0.2))
        done = {"grants": replayer.grants, "releases": replayer.releases, "checkouts": replayer.checkouts,
                "payments": replayer.payments}  # fmt: skip
        settled = await settle_payments(stack, replayer.gateway, replayer.payments, args.settle, progress)
        clients_open = (await replayer.versions())["open"]
        verdicts, availability = await converge(replayer, stack, event_id, clients_open, progress)  # type: ignore[arg-type]
        violations, checked = await check(stack, event_id, done, verdicts, availability, settled, hold_ms,
                                          clients_open)  # fmt: skip
        if args.record:
            recorder.flush()
            head = [{"event": event, "event_id": event_id, "limits": event["limits"], "replay_of": args.file}]
            merge([recorder.path or ""], args.record, head, [{"final": availability, "final_t": time.time()}])
    finally:
        await replayer.aclose()
    comparison = compare(rec, replayer.outcomes, final_rec, availability, speed)
    exit_code = 1 if violations else (3 if args.strict and not comparison["same"] else 0)
    return {
        "params": {"file": args.file, "speed": args.speed, "event_id": event_id, "source": rec.source,
                   "clients": len(rec.clients), "operations": len(rec.ops)},
        "summary": {"wall_s": time.time() - started, "outcomes_same": comparison["outcomes_same"],
                    "outcomes_different": comparison["outcomes_different"],
                    "final_map_same": comparison["final_map_same"], "violations": len(violations),
                    "waits": dict(replayer.waits)},
        "comparison": comparison,
        "errors": dict(replayer.errors),
        "checked": checked,
        "violations": violations,
        "exit_code": exit_code,
    }  # fmt: skip


def compare(
    rec: Recording,
    outcomes: list[tuple[Op, Any]],
    final_rec: dict[str, Any] | None,
    final_now: dict[str, Any],
    speed: float | None,
) -> dict[str, Any]:
    same = 0
    different = []
    for op, replayed in outcomes:
        recorded = op.outcome()
        if recorded == replayed:
            same += 1
        else:
            different.append({"client": op.client, "op": op.kind, "t": op.t, "recorded": recorded,
                              "replayed": replayed, "request": op.request})  # fmt: skip
    map_same = None
    map_diff: dict[str, Any] = {}
    scope = "all seats" if speed == 1 else "booked seats"
    if final_rec:
        before, after = final_rec["seats"], final_now["seats"]
        for seat in before:
            b, a = before[seat], after.get(seat)
            if (speed == 1 and b != a) or (speed != 1 and (b == "booked") != (a == "booked")):
                map_diff[seat] = {"recorded": b, "replayed": a}
        map_same = not map_diff
    return {
        "outcomes_same": same,
        "outcomes_different": len(different),
        "differences": different[:30],
        "final_map_same": map_same,
        "final_map_scope": scope,
        "final_map_differences": dict(list(map_diff.items())[:30]),
        "same": not different and map_same is not False,
    }


def render(result: dict[str, Any]) -> str:
    s, c = result["summary"], result["comparison"]
    lines = [
        table(
            ["operations", "same outcome", "different", "final map", "violations", "wall s"],
            [[result["params"]["operations"], s["outcomes_same"], s["outcomes_different"],
              "—" if c["final_map_same"] is None else ("same" if c["final_map_same"] else "DIFFERENT")
              + f" ({c['final_map_scope']})", s["violations"], fmt(s["wall_s"], 1)]],
        )
    ]  # fmt: skip
    for difference in c["differences"][:10]:
        lines.append(f"different: {difference}")
    for seat, states in list(c["final_map_differences"].items())[:10]:
        lines.append(f"final map differs at {seat}: {states}")
    if result["violations"]:
        from .invariants import describe

        lines.append(f"INVARIANTS VIOLATED ({len(result['violations'])}):")
        lines += [describe(v) for v in result["violations"][:20]]
    else:
        lines.append("invariants: all held")
    return "\n".join(lines)
