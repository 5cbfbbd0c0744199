"""`drop`: an on-sale drop. N buyers connect along a ramp from several client
processes, watch the map, then race for seats at the same moment by a
strategy (`hot`, `random`, `best`); some pay through the payment gateway
(a share declined), some release, some check out and walk away, some let
their hold expire. One progress line a second; bounded by `--duration`;
traffic only to the server's address (127.0.0.1 when it starts the stack).

At the end it checks every invariant (`loadtest.invariants`): a violation
fails the run (exit status 1) and prints its evidence. It reports hold
latency (HDR histogram), grant-to-client fan-out latency, frames and bytes
per second, errors by code, and the server's CPU and memory over time, as
JSON (`--json`) and as a self-contained HTML page (`--html`). `--record FILE`
writes every buyer's traffic as JSON lines for `replay`.

Buyers' code is in `loadtest.buyers`; the end checks in `loadtest.endcheck`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .buyers import DropBuyers
from .endcheck import check, converge, settle_payments
from .measure import Sampler, pid_listening_on
from .procs import Workers, split
from .recording import merge
from .report import Progress, fmt, table
from .seating import venue
from .stack import Stack, free_port, host_port, unique_event_id
from .stats import hdr_buckets, hdr_summary, histogram, record_ms
from .system import capacity_warnings

STRATEGIES = ("hot", "random", "best")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_drop_arguments(parser)
    parser.add_argument("--record", metavar="FILE", help="record every buyer's traffic as JSON lines")


def add_drop_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the drop")
    group.add_argument("--clients", type=int, default=1000, help="buyers (default 1000)")
    group.add_argument("--processes", type=int, default=4, help="client processes (default 4)")
    group.add_argument("--seats", type=int, default=2000, help="venue size (default 2000)")
    group.add_argument("--strategy", choices=STRATEGIES, default="hot", help="how buyers pick seats (default hot)")
    group.add_argument("--seats-per-buyer", type=int, default=2, help="seats each buyer wants (default 2)")
    group.add_argument("--attempts", type=int, default=3, help="hold attempts per buyer when beaten (default 3)")
    group.add_argument("--hot-share", type=float, default=0.1, help="share of seats that are 'hot' (default 0.1)")
    group.add_argument("--ramp", type=float, default=5.0, help="seconds over which buyers connect (default 5)")
    group.add_argument("--watch", type=float, default=2.0, help="seconds all watch the map before the sale")
    group.add_argument("--jitter", type=float, default=1.0, help="buyers' reaction spread after the sale opens, s")
    group.add_argument("--pay-share", type=float, default=0.3, help="share of buyers with seats who pay")
    group.add_argument("--decline-share", type=float, default=0.1, help="share of payers whose card is declined")
    group.add_argument("--release-share", type=float, default=0.2, help="share of non-payers who release")
    group.add_argument(
        "--lapse-share", type=float, default=0.5, help="share of the other non-payers who check out and walk away"
    )
    group.add_argument("--hold-seconds", type=int, default=20, help="SEATMAP_HOLD_SECONDS of a server started here")
    group.add_argument(
        "--checkout-seconds", type=int, default=15, help="SEATMAP_CHECKOUT_SECONDS of a server started here"
    )
    group.add_argument("--duration", type=float, default=90.0, help="hard limit on the drop itself, s (default 90)")
    group.add_argument("--settle", type=float, default=30.0, help="seconds to let payments settle at the end")
    group.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    group.add_argument("--event", help="drop on this existing event instead of creating one")
    group.add_argument("--gateway", help="the payment gateway's URL (default: from checkout's payment_url)")
    group.add_argument("--workers", type=int, default=1, help="server worker processes when started here")
    group.add_argument("--server-traffic-log", metavar="PATH", help="SEATMAP_TRAFFIC_LOG of a server started here")
    group.add_argument("--html", metavar="PATH", help="write the report as a self-contained HTML page")


def server_env(args: argparse.Namespace, gateway_port: int) -> dict[str, str]:
    """The environment of a `seatmap serve` started for a drop: short holds, the bundled gateway."""
    env = {
        "SEATMAP_HOLD_SECONDS": str(args.hold_seconds),
        "SEATMAP_CHECKOUT_SECONDS": str(args.checkout_seconds),
        "STRIPE_SECRET_KEY": "",  # empty: the bundled gateway, on its own free port
        "STRIPE_API_BASE": f"http://127.0.0.1:{gateway_port}",
        "SEATMAP_MAX_CONNECTIONS": "0",
        "SEATMAP_MAX_CONNECTIONS_PER_IP": "0",
    }
    if getattr(args, "server_traffic_log", None):
        env["SEATMAP_TRAFFIC_LOG"] = str(Path(args.server_traffic_log).resolve())
    return env


async def start_server(args: argparse.Namespace, stack: Stack) -> str | None:
    """Start the server with the gateway unless one was given; returns the gateway URL if known."""
    if stack.server_url is not None:
        return args.gateway
    port = free_port()
    await asyncio.to_thread(stack.start_server, args.workers, **server_env(args, port))
    return f"http://127.0.0.1:{port}"


async def event_layout(stack: Stack, event_id: str) -> dict[str, Any]:
    async with stack.admin() as client:
        response = await client.get(f"/api/events/{event_id}")
        response.raise_for_status()
        return response.json()


def hot_seats(event: dict[str, Any], share: float) -> list[str]:
    """The front seats nearest the focal point (the stage): `share` of the venue, at least 8."""
    focal = event.get("focal_point") or {"x": 0.0, "y": 0.0}
    by_distance = sorted(event["seats"], key=lambda s: (s["x"] - focal["x"]) ** 2 + (s["y"] - focal["y"]) ** 2)
    count = max(8, math.ceil(len(by_distance) * share))
    return [seat["id"] for seat in by_distance[:count]]


def resource_pids(stack: Stack) -> dict[str, int]:
    pids: dict[str, int] = {}
    if stack.server_pid:
        pids["server"] = stack.server_pid
    for name, url in (("redis", stack.redis_url), ("postgres", stack.database_url)):
        host, port = host_port(url)
        if host in ("127.0.0.1", "localhost"):
            pid = pid_listening_on(port)
            if pid and pid != stack.server_pid:
                pids[name] = pid
    return pids


class Live:
    """One progress line a second, and the series behind the report's plots."""

    def __init__(self, progress: Progress, clients: int) -> None:
        self.progress = progress
        self.clients = clients
        self.started = time.time()
        self.last: dict[str, Any] | None = None
        self.last_t = self.started
        self.series: dict[str, list[Any]] = {
            k: [] for k in ("t", "connected", "holds_per_s", "errors_per_s", "frames_per_s", "bytes_per_s")
        }
        self.peak_frames = 0.0

    def update(self, parts: list[dict[str, Any]]) -> None:
        now = time.time()
        counts: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for part in parts:
            counts.update(part["counts"])
            errors.update(part["errors"])
        frames = sum(p["frames"] for p in parts)
        sent_bytes = sum(p["bytes"] for p in parts)
        connected = sum(p["open"] for p in parts)
        dt = max(1e-3, now - self.last_t)
        last = self.last or {"holds": 0, "errors": 0, "frames": 0, "bytes": 0, "error_codes": Counter()}
        holds_s = (counts["holds_ok"] - last["holds"]) / dt
        errors_now = sum(errors.values())
        errors_s = (errors_now - last["errors"]) / dt
        frames_s = (frames - last["frames"]) / dt
        bytes_s = (sent_bytes - last["bytes"]) / dt
        self.peak_frames = max(self.peak_frames, frames_s)
        for key, value in (
            ("t", now - self.started), ("connected", connected), ("holds_per_s", holds_s),
            ("errors_per_s", errors_s), ("frames_per_s", frames_s), ("bytes_per_s", bytes_s),
        ):  # fmt: skip
            self.series[key].append(round(value, 3))
        new_errors = errors - last["error_codes"]
        shown = ", ".join(f"{code}={n}" for code, n in new_errors.most_common(4)) or "none"
        self.progress(
            f"connected {connected:,}/{self.clients:,}  holds/s {holds_s:,.0f} (total {counts['holds_ok']:,})  "
            f"errors/s {errors_s:,.0f} [{shown}]  frames/s {frames_s:,.0f}  {bytes_s / 2**20:,.1f} MiB/s  "
            f"paid {counts['paid']:,}  done {counts['done']:,}"
        )
        self.last = {"holds": counts["holds_ok"], "errors": errors_now, "frames": frames, "bytes": sent_bytes,
                     "error_codes": errors}  # fmt: skip
        self.last_t = now


def latency_series(sent: list[float], millis: list[float], started: float, ticks: list[float]) -> dict[str, list]:
    """p50, p99 and max hold latency of the holds sent in each second of the progress series."""
    buckets: dict[int, list[float]] = {}
    for t, ms in zip(sent, millis, strict=True):
        buckets.setdefault(int(t - started), []).append(ms)
    found: dict[str, list[Any]] = {"p50_ms": [], "p99_ms": [], "max_ms": []}
    for tick in ticks:
        values = sorted(buckets.get(int(tick) - 1, []))
        if not values:
            for key in found:
                found[key].append(None)
            continue
        found["p50_ms"].append(round(values[len(values) // 2], 3))
        found["p99_ms"].append(round(values[min(len(values) - 1, int(len(values) * 0.99))], 3))
        found["max_ms"].append(round(values[-1], 3))
    return found


def fanout_latency(grants: list[dict[str, Any]], parts: list[dict[str, Any]], hold_ms: int) -> Any:
    """HDR histogram of grant-to-receipt delays, one value per (grant, client that saw it)."""
    hist = histogram()
    first_diff: dict[str, list[tuple[int, float, tuple[int, int]]]] = {}
    per_process: list[dict[tuple[int, int], tuple[float, list[list[int]]]]] = []
    for part in parts:
        mine = {}
        for prev, version, taken, first, counts in part["diffs"]:
            mine[(prev, version)] = (first, counts)
            for seat in taken:
                first_diff.setdefault(seat, []).append((version, first, (prev, version)))
        per_process.append(mine)
    for seat_diffs in first_diff.values():
        seat_diffs.sort()
    for grant in grants:
        if not grant.get("new_hold") or not grant["seats"]:
            continue
        granted_s = (grant["expires_ms"] - hold_ms) / 1000
        key = None
        for _, first, candidate in first_diff.get(grant["seats"][0], []):
            if first >= granted_s - 0.005:
                key = candidate
                break
        if key is None:
            continue
        for mine in per_process:
            if key in mine:
                first, counts = mine[key]
                for offset, count in counts:
                    record_ms(hist, (first + offset / 1000 - granted_s) * 1000, count)
    return hist


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    if not 0 <= args.pay_share <= 1 or not 0 <= args.decline_share <= 1:
        raise SystemExit("shares are between 0 and 1")
    for warning in capacity_warnings(args.clients, args.processes):
        progress(f"warning: {warning}")
    gateway = await start_server(args, stack)
    assert stack.server_url is not None
    if host_port(stack.server_url)[0] not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(
        "SEATMAP_LOADTEST_ANY_HOST"
    ):
        raise SystemExit(f"refusing to load {stack.server_url}: only servers on this machine (127.0.0.1)")
    event_id = args.event or await stack.create_event(venue(args.seats, unique_event_id("drop")))
    event = await event_layout(stack, event_id)
    hold_ms = event["limits"]["hold_seconds"] * 1000
    layout = [[s["id"], s["section"], s["row"], s["number"]] for s in event["seats"]]
    hot = hot_seats(event, args.hot_share)
    progress(
        f"event {event_id}: {len(layout):,} seats ({len(hot):,} hot), holds last {hold_ms // 1000} s, "
        f"checkouts {event['limits']['checkout_seconds']} s; server {stack.server_url} pid {stack.server_pid}"
    )
    plan = {
        "clients": args.clients,
        "strategy": args.strategy,
        "seats_per_buyer": args.seats_per_buyer,
        "attempts": args.attempts,
        "jitter": args.jitter,
        "pay_share": args.pay_share,
        "decline_share": args.decline_share,
        "release_share": args.release_share,
        "lapse_share": args.lapse_share,
    }
    processes = max(1, min(args.processes, args.clients))
    counts = split(args.clients, processes)
    record = getattr(args, "record", None)
    parts_paths = [f"{record}.part{i}" for i in range(processes)] if record else [None] * processes
    workers = Workers(DropBuyers, processes)
    sampler = Sampler(resource_pids(stack))
    live = Live(progress, args.clients)
    started_wall = time.time()
    try:
        first = 0
        calls = []
        for index, count in enumerate(counts):
            calls.append(
                {"url": stack.server_url, "gateway": gateway, "event_id": event_id, "layout": layout, "hot": hot,
                 "first": first, "count": count, "plan": plan, "record": parts_paths[index], "seed": args.seed}
            )  # fmt: skip
            first += count
        await workers.call_each("setup", calls, timeout=120)
        t0 = time.time() + 1.0
        sale_at = t0 + args.ramp + args.watch
        deadline = t0 + args.duration
        await workers.call("start", t0=t0, ramp=args.ramp, sale_at=sale_at, deadline=deadline)
        progress(f"{args.clients:,} buyers in {processes} processes: ramp {args.ramp:g} s, sale opens at +"
                 f"{sale_at - t0:.1f} s, strategy {args.strategy}")  # fmt: skip
        sampler.sample()
        while time.time() < deadline + 1:
            await asyncio.sleep(max(0.0, 1.0 - (time.time() - live.last_t)))
            try:
                parts = await workers.call("progress", timeout=10)
            except TimeoutError:
                progress("client processes too busy to report this second")
                continue
            live.update(parts)
            sampler.sample()
            if sum(p["counts"].get("done", 0) for p in parts) >= args.clients:
                break
        done_parts = await workers.call("finish", timeout=120)
        done: dict[str, list[Any]] = {k: [] for k in ("grants", "releases", "checkouts", "payments")}
        for part in done_parts:
            for key in done:
                done[key] += part[key]
        progress(f"buyers finished: {len(done['grants']):,} grants, {len(done['checkouts']):,} checkouts, "
                 f"{sum(1 for p in done['payments'] if p['ok']):,} payments; settling")  # fmt: skip
        if gateway is None:
            gateway = next((c.get("gateway") for c in done["checkouts"] if c.get("gateway")), None)
        settled = await settle_payments(stack, gateway or args.gateway, done["payments"], args.settle, progress)
        sampler.sample()
        connected = sum(p["counts"].get("connected", 0) for p in done_parts)
        verdicts, availability = await converge(workers, stack, event_id, connected, progress)
        final_t = time.time()
        violations, checked = await check(stack, event_id, done, verdicts, availability, settled, hold_ms, connected)
        fan_parts = await workers.call("fanout", timeout=120)
        recorded = 0
        if record:
            await workers.call("flush_recording", timeout=120)
            head = [
                {
                    "event": {k: v for k, v in event.items() if k != "limits"},
                    "event_id": event_id,
                    "limits": event["limits"],
                    "server": stack.server_url,
                    "params": vars_of(args),
                }
            ]
            tail = [{"final": availability, "final_t": final_t}]
            recorded = merge([p for p in parts_paths if p], record, head, tail)
            progress(f"recorded {recorded:,} lines to {record}")
        await workers.call("disconnect", timeout=60)
    finally:
        await workers.aclose()
    return build_result(args, done_parts, done, live, sampler, fan_parts, hold_ms, started_wall, checked,
                        violations, event_id, len(layout), recorded)  # fmt: skip


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    hidden = {"admin_token", "func"}
    return {k: v for k, v in vars(args).items() if k not in hidden and isinstance(v, str | int | float | bool | None)}


def build_result(
    args: argparse.Namespace,
    parts: list[dict[str, Any]],
    done: dict[str, list[Any]],
    live: Live,
    sampler: Sampler,
    fan_parts: list[dict[str, Any]],
    hold_ms: int,
    started: float,
    checked: dict[str, Any],
    violations: list[dict[str, Any]],
    event_id: str,
    seats: int,
    recorded: int,
) -> dict[str, Any]:
    hold_hist = histogram()
    sent: list[float] = []
    millis: list[float] = []
    for part in parts:
        sent += part["hold_sent"]
        millis += part["hold_ms"]
    for ms in millis:
        record_ms(hold_hist, ms)
    fan_hist = fanout_latency(done["grants"], fan_parts, hold_ms)
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for part in parts:
        counts.update(part["counts"])
        errors.update(part["errors"])
    series = dict(live.series)
    series.update(latency_series(sent, millis, live.started, series["t"]))
    frames = series["frames_per_s"]
    active = [f for f in frames if f > 0]
    summary = {
        "clients": args.clients,
        "connected": counts["connected"],
        "hold_requests": counts["hold_requests"],
        "holds_granted": counts["holds_ok"],
        "holds_refused": counts["hold_requests"] - counts["holds_ok"],
        "peak_holds_per_s": max(series["holds_per_s"], default=0),
        "releases": counts["releases"],
        "checkouts": counts["checkouts"],
        "paid": counts["paid"],
        "declined": counts["declined"],
        "orders_confirmed": checked["orders"].get("confirmed", 0),
        "sold_out_buyers": counts["sold_out"],
        "peak_frames_per_s": max(frames, default=0),
        "mean_frames_per_s": sum(active) / len(active) if active else 0,
        "peak_mib_per_s": max(series["bytes_per_s"], default=0) / 2**20,
        "frames_total": int(sum(f for f in frames)),
        "violations": len(violations),
        "recorded_lines": recorded,
        "wall_s": time.time() - started,
    }
    return {
        "params": vars_of(args) | {"event_id": event_id, "venue_seats": seats},
        "summary": summary,
        "latency": {
            "hold (request to reply)": {"summary": hdr_summary(hold_hist), "buckets": hdr_buckets(hold_hist)},
            "fan-out (grant to each client's receipt)": {
                "summary": hdr_summary(fan_hist),
                "buckets": hdr_buckets(fan_hist),
            },
        },
        "errors": dict(errors),
        "counts": dict(counts),
        "checked": checked,
        "violations": violations,
        "series": series,
        "resources": sampler.series,
        "exit_code": 1 if violations else 0,
    }


def render(result: dict[str, Any]) -> str:
    s = result["summary"]
    hold = result["latency"]["hold (request to reply)"]["summary"]
    fan = result["latency"]["fan-out (grant to each client's receipt)"]["summary"]
    lines = [
        table(
            ["buyers", "connected", "hold requests", "granted", "refused", "peak holds/s", "checkouts", "paid",
             "confirmed", "peak frames/s", "peak MiB/s"],
            [[s["clients"], s["connected"], s["hold_requests"], s["holds_granted"], s["holds_refused"],
              fmt(s["peak_holds_per_s"], 0), s["checkouts"], s["paid"], s["orders_confirmed"],
              fmt(s["peak_frames_per_s"], 0), fmt(s["peak_mib_per_s"], 1)]],
        ),
        "",
        table(
            ["latency ms", "count", "p50", "p95", "p99", "max"],
            [["hold", hold["count"], fmt(hold["p50"], 2), fmt(hold["p95"], 2), fmt(hold["p99"], 2),
              fmt(hold["max"], 1)],
             ["grant→client", fan["count"], fmt(fan["p50"], 1), fmt(fan["p95"], 1), fmt(fan["p99"], 1),
              fmt(fan["max"], 1)]],
        ),
        "",
        "errors by code: " + (", ".join(f"{k}={v}" for k, v in sorted(result["errors"].items())) or "none"),
    ]  # fmt: skip
    if result["violations"]:
        from .invariants import describe

        lines.append("")
        lines.append(f"INVARIANTS VIOLATED ({len(result['violations'])}):")
        lines += [describe(v) for v in result["violations"][:20]]
    else:
        maps = result["checked"]["maps"]["counts"]
        lines.append(
            f"invariants: all held (grants {result['checked']['grants']:,}, "
            f"maps {maps.get('converged', 0):,} equal to GET /availability, "
            f"successful payments settled {result['checked']['payments_succeeded']:,})"
        )
    return "\n".join(lines)
