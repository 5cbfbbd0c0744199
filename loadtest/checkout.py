"""`checkout`: completed purchases per second, end to end, at a fixed
concurrency, and the share of time each step takes.

Each of `--concurrency` tasks (spread over client processes) buys again and
again, each purchase by a new buyer (a session made before the clock
starts) for its own seats (disjoint from every other task's, so purchases
never collide and the venue never runs out within the run):

1. hold: `POST /api/events/{id}/holds` with the seats;
2. checkout: `POST /api/holds/{hold_id}/checkout` (the server creates the
   PaymentIntent through the stripe SDK);
3. pay: the stripe SDK's `confirm` with `pm_card_visa` at the gateway;
4. confirmed: from the confirm's answer until the seats show `booked` on
   the live map (the gateway's signed webhook, the server booking the seats
   in Redis and Postgres, the diff reaching a websocket client).

A purchase counts when its last step ends inside the measured window.
At the end every order the run made must be `confirmed`
(`GET /api/events/{id}/orders?status=confirmed`), no seat in two of them,
and every booked seat in one.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from array import array
from typing import Any

import httpx
import msgspec
import stripe

from . import invariants, wsclient
from .drop import server_env
from .endcheck import orders_of
from .measure import CpuWindow
from .procs import Workers, split
from .report import Progress, fmt, table
from .seating import blocks_of, venue
from .stack import Stack, free_port, host_port, unique_event_id
from .stats import hdr_summary, histogram, record_ms

STEPS = ("hold", "checkout", "pay", "confirmed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=16, help="purchases in flight at once (default 16)")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (default 2)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--seats", type=int, default=8000, help="venue size (default 8000)")
    parser.add_argument("--seats-per-order", type=int, default=2, help="seats per purchase (default 2)")
    parser.add_argument("--gateway", help="the payment gateway's URL (default: from checkout's payment_url)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes when started here")
    parser.add_argument("--html", metavar="PATH", help="write the report as a self-contained HTML page")


class Purchasers:
    """A client process's purchase loops, and one websocket watching for `booked`."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.completed = 0
        self.failures: dict[str, int] = {}
        self.orders: list[str] = []

    def _on_frame(self, client: wsclient.WsClient, payload: bytes, received: float) -> None:
        if not payload.startswith(b'{"type":"diff"'):
            return
        for seat, state in msgspec.json.decode(payload)["changes"].items():
            if state == "booked":
                future = self.waiters.pop(seat, None)
                if future is not None and not future.done():
                    future.set_result(received)

    async def open(self, url: str, gateway: str | None, event_id: str, tokens: list[list[str]],
                   blocks: list[list[list[str]]]) -> int:  # fmt: skip
        self.url, self.gateway, self.event_id = url, gateway, event_id
        self.tokens, self.blocks = tokens, blocks
        host, port = host_port(url)
        self.watcher = await wsclient.connect(host, port, f"/ws/events/{event_id}?compact=1", self._on_frame)
        self.http = httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64))
        self.stripe: stripe.StripeClient | None = None
        return len(tokens)

    def _fail(self, why: str) -> None:
        self.failures[why] = self.failures.get(why, 0) + 1

    async def _purchase(self, token: str, seats: list[str]) -> list[float] | None:
        headers = {"Authorization": f"Bearer {token}"}
        loop = asyncio.get_running_loop()
        marks = [time.time()]
        held = await self.http.post(f"/api/events/{self.event_id}/holds", json={"seats": seats}, headers=headers)
        if held.status_code != 201:
            self._fail(f"hold_{held.status_code}")
            return None
        marks.append(time.time())
        order = await self.http.post(f"/api/holds/{held.json()['hold_id']}/checkout", headers=headers)
        if order.status_code != 201:
            self._fail(f"checkout_{order.status_code}")
            return None
        body = order.json()
        marks.append(time.time())
        if self.stripe is None:
            gateway = self.gateway or body["payment_url"].split("/pay/")[0]
            self.stripe = stripe.StripeClient(
                "sk_test_loadtest", base_addresses={"api": gateway},  # type: ignore[typeddict-item]
                http_client=stripe.HTTPXClient(timeout=30), max_network_retries=0,
            )  # fmt: skip
        booked = [loop.create_future() for _ in seats]
        for seat, future in zip(seats, booked, strict=True):
            self.waiters[seat] = future
        try:
            await self.stripe.v1.payment_intents.confirm_async(body["payment_intent_id"],
                                                               {"payment_method": "pm_card_visa"})  # fmt: skip
        except stripe.StripeError as error:
            self._fail(f"pay_{type(error).__name__}")
            return None
        marks.append(time.time())
        try:
            arrived = await asyncio.wait_for(asyncio.gather(*booked), 60)
        except TimeoutError:
            self._fail("not_booked_in_60s")
            return None
        marks.append(max(max(arrived), marks[-1]))
        self.orders.append(body["order_id"])
        return marks

    async def run(self, start_at: float, warmup: float, duration: float) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        window = (start_at + warmup, start_at + warmup + duration)
        steps = [array("d") for _ in STEPS]
        totals = array("d")
        ends = array("d")

        async def loop(task: int) -> None:
            for token, seats in zip(self.tokens[task], self.blocks[task], strict=False):
                if time.time() >= window[1]:
                    return
                marks = await self._purchase(token, seats)
                if marks is None:
                    continue
                self.completed += 1
                if window[0] <= marks[-1] <= window[1]:
                    for i in range(len(STEPS)):
                        steps[i].append(marks[i + 1] - marks[i])
                    totals.append(marks[-1] - marks[0])
                    ends.append(marks[-1])
            self._fail("ran_out_of_seats")

        await asyncio.gather(*(loop(task) for task in range(len(self.tokens))))
        return {"steps": [s.tolist() for s in steps], "totals": totals.tolist(), "ends": ends.tolist(),
                "failures": self.failures, "orders": self.orders}  # fmt: skip

    async def progress(self) -> int:
        return self.completed

    async def aclose(self) -> None:
        with_watcher = getattr(self, "watcher", None)
        if with_watcher is not None:
            with_watcher.abort()
        if getattr(self, "http", None) is not None:
            await self.http.aclose()


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    gateway = args.gateway
    if stack.server_url is None:
        port = free_port()
        args.hold_seconds, args.checkout_seconds = 300, 900
        await asyncio.to_thread(stack.start_server, args.workers, **server_env(args, port))
        gateway = f"http://127.0.0.1:{port}"
    assert stack.server_url is not None
    event_id = await stack.create_event(venue(args.seats, unique_event_id("checkout")))
    seat_ids = await stack.layout(event_id)
    blocks = blocks_of(seat_ids, args.seats_per_order)
    per_task_blocks = [blocks[task :: args.concurrency] for task in range(args.concurrency)]
    longest = max(len(b) for b in per_task_blocks)
    progress(f"event {event_id}: {len(seat_ids):,} seats, {len(blocks):,} purchases possible; making buyers")
    # enough buyers for up to 250 purchases/s over the run; a task that runs out stops early (reported)
    per_task = min(longest, max(8, int(250 * (args.warmup + args.duration) / args.concurrency) + 1))
    sessions = await make_sessions(stack, args.concurrency * per_task)
    tokens = [[t for _, t in sessions[task :: args.concurrency]] for task in range(args.concurrency)]
    processes = max(1, min(args.processes, args.concurrency))
    counts = split(args.concurrency, processes)
    workers = Workers(Purchasers, processes)
    server_cpu = CpuWindow(stack.server_pid) if stack.server_pid else None
    try:
        calls, start = [], 0
        for count in counts:
            calls.append(
                {
                    "url": stack.server_url,
                    "gateway": gateway,
                    "event_id": event_id,
                    "tokens": tokens[start : start + count],
                    "blocks": per_task_blocks[start : start + count],
                }
            )
            start += count  # fmt: skip
        await workers.call_each("open", calls, timeout=60)
        start_at = time.time() + 0.5
        window_start = start_at + args.warmup
        running = asyncio.ensure_future(
            workers.call("run", start_at=start_at, warmup=args.warmup, duration=args.duration)
        )
        await asyncio.wait([running], timeout=max(0.0, window_start - time.time()))
        if server_cpu:
            server_cpu.start()
        while not running.done():
            await asyncio.wait([running], timeout=1.0)
            if not running.done():
                progress(f"{sum(await workers.call('progress')):,} purchases completed")
        if server_cpu:
            server_cpu.stop()
        parts = running.result()
    finally:
        await workers.aclose()
    made = [o for part in parts for o in part["orders"]]
    orders, confirmed = await orders_of(stack, event_id)
    availability = await stack.availability(event_id)
    violations = invariants.double_orders(confirmed) + invariants.server_state(availability, confirmed)
    not_confirmed = [o for o in made if orders.get(o, {}).get("status") != "confirmed"]
    for order_id in not_confirmed[:20]:
        violations.append({"invariant": "a completed purchase is a confirmed order", "order_id": order_id,
                           "status": orders.get(order_id, {}).get("status")})  # fmt: skip
    return summarize(args, parts, violations, server_cpu, len(made))


async def make_sessions(stack: Stack, count: int, parallel: int = 32) -> list[tuple[str, str]]:
    """`count` buyers (buyer_id, token), made `parallel` at a time."""
    found: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=stack.server_url or "", timeout=30) as client:

        async def one() -> None:
            while len(found) < count:
                found.append(("", ""))
                slot = len(found) - 1
                response = await client.post("/api/sessions")
                response.raise_for_status()
                body = response.json()
                found[slot] = (body["buyer_id"], body["token"])

        await asyncio.gather(*(one() for _ in range(parallel)))
    return found[:count]


def summarize(args: argparse.Namespace, parts: list[dict[str, Any]], violations: list[dict[str, Any]],
              server_cpu: CpuWindow | None, made: int) -> dict[str, Any]:  # fmt: skip
    steps = [[x for part in parts for x in part["steps"][i]] for i in range(len(STEPS))]
    totals = [x for part in parts for x in part["totals"]]
    failures: dict[str, int] = {}
    for part in parts:
        for why, n in part["failures"].items():
            failures[why] = failures.get(why, 0) + n
    spent = sum(sum(s) for s in steps)
    total_hist = histogram()
    for value in totals:
        record_ms(total_hist, value * 1000)
    step_rows = {}
    for name, values in zip(STEPS, steps, strict=True):
        hist = histogram()
        for value in values:
            record_ms(hist, value * 1000)
        step_rows[name] = {"share": sum(values) / spent if spent else None, "latency_ms": hdr_summary(hist)}
    completed = len(totals)
    result = {
        "params": {"concurrency": args.concurrency, "duration_s": args.duration, "warmup_s": args.warmup,
                   "client_processes": args.processes, "seats_per_order": args.seats_per_order},
        "purchases": completed,
        "purchases_per_s": completed / args.duration,
        "orders_made": made,
        "latency_ms": hdr_summary(total_hist),
        "steps": step_rows,
        "failures": failures,
        "violations": violations,
        "exit_code": 1 if violations else 0,
    }  # fmt: skip
    if server_cpu:
        result["server_cores_busy"] = server_cpu.utilisation
        result["server_cpu_ms_per_purchase"] = server_cpu.cpu / completed * 1000 if completed else None
    result["summary"] = {"purchases_per_s": result["purchases_per_s"], "purchases": completed,
                         **{f"share_{k}": v["share"] for k, v in step_rows.items()}}  # fmt: skip
    result["latency"] = {"purchase (hold to booked)": {"summary": result["latency_ms"], "buckets": []}}
    return result


def render(result: dict[str, Any]) -> str:
    rows = [
        [name, fmt(100 * row["share"], 1) if row["share"] is not None else "—", fmt(row["latency_ms"]["p50"], 1),
         fmt(row["latency_ms"]["p99"], 1)]
        for name, row in result["steps"].items()
    ]  # fmt: skip
    lat = result["latency_ms"]
    rows.append(["whole purchase", "100.0", fmt(lat["p50"], 1), fmt(lat["p99"], 1)])
    lines = [
        f"{result['purchases']:,} purchases completed in the window: "
        f"{result['purchases_per_s']:,.1f} purchases/s at concurrency {result['params']['concurrency']}"
        + (f", server {result['server_cores_busy']:.2f} cores busy, "
           f"{fmt(result.get('server_cpu_ms_per_purchase'), 2)} ms CPU per purchase"
           if "server_cores_busy" in result else ""),
        "",
        table(["step", "share of time %", "p50 ms", "p99 ms"], rows),
        "failures: " + (", ".join(f"{k}={v}" for k, v in result["failures"].items()) or "none"),
        f"invariants: {'all held' if not result['violations'] else result['violations'][:5]}",
    ]  # fmt: skip
    return "\n".join(lines)
