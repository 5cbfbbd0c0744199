"""Simulated buyers of an on-sale drop, many per client process.

Each buyer is one small coroutine: make a session (`POST /api/sessions`),
open the live map (`?compact=1`), watch it until the sale opens, then try to
hold seats by the run's strategy, choosing among the seats its map shows
available (`hot`: the front rows nearest the stage, `random`, or `best`:
`{"count": n}`), retrying a few times when beaten to them. A buyer that got
seats then pays (checkout, the stripe SDK's confirm against the gateway with
`pm_card_visa` or, for a share, `pm_card_chargeDeclined`, then polls its
order), releases them, checks out and walks away (the checkout lapses), or
walks away (the hold expires). It stays connected, following the map, until
the run ends.

Everything a buyer sends and gets back is noted for the invariant checks
(grants with their expiry, releases, checkouts, payments), for the report
(hold latency, errors by code, frames and bytes), and, when recording, as
traffic lines (`loadtest.recording`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from array import array
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import msgspec
import stripe

from . import wsclient
from .maps import ClientMap, MapTracker
from .recording import Recorder
from .stack import host_port

FATES = ("pay", "release", "lapse", "expire")


def ms_of(stamp: str) -> int:
    """An RFC 3339 timestamp as Unix milliseconds."""
    return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


class Buyer:
    __slots__ = ("conn", "gid", "id", "map", "pending", "snapshot", "token", "ws")

    def __init__(self, gid: int, conn: str) -> None:
        self.gid = gid
        self.conn = conn
        self.id = f"pending-{conn}"
        self.token = ""
        self.map = ClientMap()
        self.pending: dict[str, asyncio.Future[tuple[dict[str, Any], float]]] = {}
        self.snapshot: asyncio.Future[None] | None = None
        self.ws: wsclient.WsClient | None = None


class DropBuyers:
    """One client process's buyers (a `procs.Workers` handler)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.buyers: list[Buyer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.grants: list[dict[str, Any]] = []
        self.releases: list[dict[str, Any]] = []
        self.checkouts: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.hold_sent = array("d")
        self.hold_ms = array("d")
        self.open = 0
        self.finishing = False
        self.http: httpx.AsyncClient | None = None
        self.stripe: stripe.StripeClient | None = None

    # ------------------------------------------------------------------ setup

    async def setup(
        self,
        *,
        url: str,
        gateway: str | None,
        event_id: str,
        layout: list[list[Any]],
        hot: list[str],
        first: int,
        count: int,
        plan: dict[str, Any],
        record: str | None,
        seed: int,
    ) -> int:
        self.url = url
        self.host, self.port = host_port(url)
        self.gateway = gateway
        self.event_id = event_id
        self.seat_ids = [seat[0] for seat in layout]
        self.rows: dict[str, list[str]] = {}
        self.row_of: dict[str, tuple[str, str]] = {}
        by_row: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for seat_id, section, row, number in layout:
            by_row.setdefault((section, row), []).append((number, seat_id))
            self.row_of[seat_id] = (section, row)
        self.row_seats = {key: [s for _, s in sorted(v)] for key, v in by_row.items()}
        self.position = {s: i for seats in self.row_seats.values() for i, s in enumerate(seats)}
        self.hot = hot
        self.plan = plan
        self.seed = seed
        self.maps = MapTracker(self.seat_ids)
        self.recorder = Recorder(record)
        self.buyers = [Buyer(first + i, f"{self.index}-{i}") for i in range(count)]
        self.total = plan["clients"]
        self.http = httpx.AsyncClient(
            base_url=url, timeout=30, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
        )
        # httpcore's pool does work per queued request on every release: with thousands queued it
        # stalls the loop for seconds, so at most as many requests as connections are ever in it
        self.http_slots = asyncio.Semaphore(64)
        return count

    def _stripe(self, gateway: str) -> stripe.StripeClient:
        if self.stripe is None:
            self.stripe = stripe.StripeClient(
                "sk_test_loadtest",
                base_addresses={"api": gateway},  # type: ignore[typeddict-item]
                http_client=stripe.HTTPXClient(timeout=30),
                max_network_retries=0,
            )
        return self.stripe

    async def start(self, *, t0: float, ramp: float, sale_at: float, deadline: float) -> int:
        self.deadline = deadline
        loop = asyncio.get_running_loop()
        for buyer in self.buyers:
            connect_at = t0 + ramp * buyer.gid / max(1, self.total)
            self.tasks.append(loop.create_task(self._run(buyer, connect_at, sale_at)))
        return len(self.tasks)

    # ------------------------------------------------------------------ frames

    def _on_frame(self, client: wsclient.WsClient, payload: bytes, received: float) -> None:
        buyer: Buyer = client.state
        kind = self.maps.on_frame(buyer.map, payload, received)
        if kind == "diff":
            return
        if kind == "snapshot":
            if self.recorder.on:
                self.recorder.ws(
                    buyer.id, buyer.conn, received, "out", "ws",
                    frame={"type": "snapshot", "epoch": buyer.map.epoch, "version": buyer.map.version},
                )  # fmt: skip
            if buyer.snapshot is not None and not buyer.snapshot.done():
                buyer.snapshot.set_result(None)
            return
        frame = msgspec.json.decode(payload)
        future = buyer.pending.pop(frame.get("ref") or "", None)
        if future is not None and not future.done():
            future.set_result((frame, received))
        elif frame.get("type") == "error":
            self.errors[f"ws_{frame.get('error')}"] += 1

    def _on_closed(self, buyer: Buyer, future: asyncio.Future[Any]) -> None:
        self.open -= 1
        if not self.finishing:
            self.errors[f"closed_{buyer.ws.close_code if buyer.ws else None}"] += 1

    # ------------------------------------------------------------------ one buyer

    async def _run(self, buyer: Buyer, connect_at: float, sale_at: float) -> None:
        rng = random.Random(self.seed * 1_000_003 + buyer.gid)
        try:
            await asyncio.sleep(max(0.0, connect_at - time.time()))
            if not await self._session(buyer):
                return
            if not await self._connect(buyer):
                return
            await asyncio.sleep(max(0.0, sale_at - time.time()) + rng.uniform(0, self.plan["jitter"]))
            granted = await self._hold(buyer, rng)
            if granted is not None:
                await self._after_grant(buyer, granted, rng)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a buyer's failure is counted, never fatal to the run
            self.errors[f"exception_{type(error).__name__}"] += 1
        finally:
            self.counts["done"] += 1

    async def _request(
        self, buyer: Buyer, method: str, path: str, body: Any = None, token: bool = True
    ) -> tuple[int, Any]:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {buyer.token}"} if token and buyer.token else None
        async with self.http_slots:
            started = time.time()
            response = await self.http.request(method, path, json=body, headers=headers)
            ms = (time.time() - started) * 1000
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = None
        client = buyer.id
        if path == "/api/sessions" and isinstance(answer, dict):
            client = answer.get("buyer_id", client)
        self.recorder.http(client, started, method, path, body, response.status_code, answer, ms)
        if response.status_code >= 400:
            code = answer.get("error") if isinstance(answer, dict) else None
            self.errors[f"http_{response.status_code}_{code}"] += 1
        return response.status_code, answer

    async def _session(self, buyer: Buyer) -> bool:
        status, answer = await self._request(buyer, "POST", "/api/sessions", token=False)
        if status != 201:
            return False
        buyer.id, buyer.token = answer["buyer_id"], answer["token"]
        self.counts["sessions"] += 1
        return True

    async def _connect(self, buyer: Buyer) -> bool:
        loop = asyncio.get_running_loop()
        path = f"/ws/events/{self.event_id}?token={buyer.token}&compact=1"
        buyer.snapshot = loop.create_future()

        def factory() -> wsclient.WsClient:
            client = wsclient.WsClient(self.host, self.port, path, self._on_frame)
            client.state = buyer
            return client

        opened_at = time.time()
        for attempt in range(3):
            try:
                _, client = await asyncio.wait_for(loop.create_connection(factory, self.host, self.port), 30)
                await asyncio.wait_for(asyncio.shield(client.opened), 30)
                break
            except (OSError, TimeoutError, wsclient.HandshakeError):
                if attempt == 2:
                    self.errors["connect_failed"] += 1
                    return False
                await asyncio.sleep(0.2 * (attempt + 1))
        buyer.ws = client
        self.open += 1
        self.counts["connected"] += 1
        client.closed.add_done_callback(lambda f: self._on_closed(buyer, f))
        self.recorder.ws(buyer.id, buyer.conn, opened_at, "in", "open",
                         path=f"/ws/events/{self.event_id}?compact=1")  # fmt: skip
        try:
            await asyncio.wait_for(buyer.snapshot, 30)
        except TimeoutError:
            self.errors["no_snapshot"] += 1
            return False
        return True

    async def _command(self, buyer: Buyer, frame: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
        assert buyer.ws is not None
        future = asyncio.get_running_loop().create_future()
        buyer.pending[frame["ref"]] = future
        sent = time.time()
        buyer.ws.send_text(msgspec.json.encode(frame))
        self.recorder.ws(buyer.id, buyer.conn, sent, "in", "ws", frame=frame)
        try:
            reply, received = await asyncio.wait_for(future, 30)
        except TimeoutError:
            buyer.pending.pop(frame["ref"], None)
            self.errors["ws_timeout"] += 1
            raise
        self.recorder.ws(buyer.id, buyer.conn, received, "out", "ws", frame=reply)
        return reply, sent, received

    def _choose(self, rng: random.Random) -> dict[str, Any] | None:
        """The seats to ask for, from what this process's map shows available."""
        wanted = self.plan["seats_per_buyer"]
        strategy = self.plan["strategy"]
        if strategy == "best":
            return {"count": wanted}
        available = self.maps.available
        if not len(available):
            return None
        if strategy == "hot":
            for _ in range(24):
                seat = self.hot[rng.randrange(len(self.hot))]
                if seat in available:
                    return {"seats": self._beside(seat, wanted, available)}
        return {"seats": available.sample(rng, wanted)}

    def _beside(self, seat: str, wanted: int, available: Any) -> list[str]:
        """`seat` and free neighbours in its row, up to `wanted`, side by side."""
        row = self.row_seats[self.row_of[seat]]
        at = self.position[seat]
        chosen = [seat]
        left, right = at - 1, at + 1
        while len(chosen) < wanted and (left >= 0 or right < len(row)):
            if right < len(row) and row[right] in available:
                chosen.append(row[right])
                right += 1
            elif left >= 0 and row[left] in available:
                chosen.insert(0, row[left])
                left -= 1
            else:
                break
        return chosen

    async def _hold(self, buyer: Buyer, rng: random.Random) -> dict[str, Any] | None:
        for attempt in range(self.plan["attempts"]):
            if time.time() > self.deadline:
                return None
            choice = self._choose(rng)
            if choice is None:
                self.counts["sold_out"] += 1
                return None
            frame = {"type": "hold", "ref": f"{buyer.conn}-h{attempt}", **choice}
            self.counts["hold_requests"] += 1
            reply, sent, received = await self._command(buyer, frame)
            self.hold_sent.append(sent)
            self.hold_ms.append((received - sent) * 1000)
            if reply.get("type") == "hold_ok":
                self.counts["holds_ok"] += 1
                granted = {
                    "client": buyer.id,
                    "hold_id": reply["hold_id"],
                    "seats": list(reply.get("picked") or reply["seats"]),
                    "hold_seats": list(reply["seats"]),
                    "send": sent,
                    "reply": received,
                    "expires_ms": ms_of(reply["expires_at"]),
                    # each buyer holds once, so its hold is new: expires_at - hold life = grant time
                    "new_hold": True,
                }
                self.grants.append(granted)
                return granted
            code = reply.get("error", "unknown")
            self.errors[code] += 1
            if code != "seats_unavailable":
                return None
            await asyncio.sleep(rng.uniform(0.02, 0.2))
        return None

    async def _after_grant(self, buyer: Buyer, granted: dict[str, Any], rng: random.Random) -> None:
        fate = self._fate(rng)
        self.counts[f"fate_{fate}"] += 1
        await asyncio.sleep(rng.uniform(0.1, 0.6))
        if fate == "expire" or time.time() > self.deadline:
            return
        if fate == "release":
            frame = {"type": "release", "ref": f"{buyer.conn}-r", "hold_id": granted["hold_id"]}
            reply, sent, received = await self._command(buyer, frame)
            ok = reply.get("type") == "release_ok"
            self.releases.append(
                {"client": buyer.id, "hold_id": granted["hold_id"], "seats": granted["hold_seats"],
                 "send": sent, "reply": received, "ok": ok}
            )  # fmt: skip
            self.counts["releases" if ok else "release_refused"] += 1
            return
        sent = time.time()
        status, order = await self._request(buyer, "POST", f"/api/holds/{granted['hold_id']}/checkout")
        received = time.time()
        if status != 201:
            return
        self.counts["checkouts"] += 1
        self.checkouts.append(
            {"client": buyer.id, "hold_id": granted["hold_id"], "order_id": order["order_id"],
             "payment_intent": order["payment_intent_id"], "seats": order.get("seats") or granted["hold_seats"],
             "send": sent, "reply": received, "expires_ms": ms_of(order["expires_at"])}
        )  # fmt: skip
        if fate == "lapse":
            return
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        declined = rng.random() < self.plan["decline_share"]
        method = "pm_card_chargeDeclined" if declined else "pm_card_visa"
        paid = await self._pay(buyer, order, method)
        if paid:
            await self._await_order(buyer, order["order_id"])

    def _fate(self, rng: random.Random) -> str:
        if rng.random() < self.plan["pay_share"]:
            return "pay"
        if rng.random() < self.plan["release_share"]:
            return "release"
        return "lapse" if rng.random() < self.plan["lapse_share"] else "expire"

    async def _pay(self, buyer: Buyer, order: dict[str, Any], method: str) -> bool:
        gateway = self.gateway or (order.get("payment_url") or "").split("/pay/")[0]
        client = self._stripe(gateway)
        pi = order["payment_intent_id"]
        sent = time.time()
        record = {"client": buyer.id, "order_id": order["order_id"], "payment_intent": pi, "method": method}
        try:
            intent = await client.v1.payment_intents.confirm_async(pi, {"payment_method": method})
            status, answer = 200, {"id": intent.id, "status": intent.status}
            record.update(ok=True, status=intent.status)
            self.counts["paid"] += 1
        except stripe.CardError as error:
            status, answer = 402, {"error": {"type": "card_error", "code": error.code}}
            record.update(ok=False, status="declined")
            self.counts["declined"] += 1
        except stripe.StripeError as error:
            status = error.http_status or 0
            answer = {"error": {"type": type(error).__name__, "message": str(error)[:200]}}
            record.update(ok=False, status="error")
            self.errors[f"gateway_{type(error).__name__}"] += 1
        received = time.time()
        record.update(send=sent, reply=received)
        self.payments.append(record)
        self.recorder.http(
            buyer.id, sent, "POST", f"/v1/payment_intents/{pi}/confirm", {"payment_method": method},
            status, answer, (received - sent) * 1000,
            target="gateway", payment_intent=pi, payment_method=method,
        )  # fmt: skip
        return bool(record["ok"])

    async def _await_order(self, buyer: Buyer, order_id: str) -> None:
        """Poll the order until it is settled (or the run's end)."""
        while time.time() < self.deadline:
            await asyncio.sleep(0.25)
            status, order = await self._request(buyer, "GET", f"/api/orders/{order_id}")
            if status == 200 and order["status"] != "pending":
                self.counts[f"order_{order['status']}"] += 1
                return

    # ------------------------------------------------------------------ parent calls

    async def progress(self) -> dict[str, Any]:
        frames = sum(b.ws.frames for b in self.buyers if b.ws is not None)
        sent_bytes = sum(b.ws.bytes for b in self.buyers if b.ws is not None)
        return {
            "open": self.open,
            "frames": frames,
            "bytes": sent_bytes,
            "counts": dict(self.counts),
            "errors": dict(self.errors),
            "buyers": len(self.buyers),
        }

    async def finish(self) -> dict[str, Any]:
        """Stop buyers still running (the run's time is up) and hand over what they did."""
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self.counts["cancelled"] += len(pending)
        return {
            "grants": self.grants,
            "releases": self.releases,
            "checkouts": self.checkouts,
            "payments": self.payments,
            "hold_sent": self.hold_sent.tolist(),
            "hold_ms": self.hold_ms.tolist(),
            "counts": dict(self.counts),
            "errors": dict(self.errors),
        }

    async def versions(self) -> dict[str, int]:
        versions = [b.map.version for b in self.buyers if b.ws is not None and b.ws.is_open]
        return {"min": min(versions, default=-1), "max": max(versions, default=-1), "open": len(versions)}

    async def verify(self, expected: dict[str, str], version: int, epoch: str) -> dict[str, Any]:
        states = {b.id: b.map for b in self.buyers if b.ws is not None and b.ws.is_open}
        return self.maps.verify(states, expected, version, epoch)

    async def fanout(self) -> dict[str, Any]:
        return self.maps.fanout_samples()

    async def flush_recording(self) -> int:
        return self.recorder.flush()

    async def disconnect(self) -> int:
        self.finishing = True
        clients = [b.ws for b in self.buyers if b.ws is not None]
        for client in clients:
            client.close()
        if clients:
            await asyncio.wait([c.closed for c in clients], timeout=20)
        for client in clients:
            client.abort()
        return len(clients)

    async def aclose(self) -> None:
        self.finishing = True
        for buyer in self.buyers:
            if buyer.ws is not None:
                buyer.ws.abort()
        if self.http is not None:
            with contextlib.suppress(Exception):
                await self.http.aclose()
