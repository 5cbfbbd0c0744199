"""`snapshot`: the size and encode time of a new client's first frame.

For a venue of `--seats` seats (default 20,000), all available (the longest
state name, so the largest contract-form frame):

- on the wire: a client connects to the running server over a real
  websocket, in the contract form (`seats` object) and with `?compact=1`
  (`states` string), and the first frame's bytes (header included) and the
  time from sending the upgrade to having the whole frame are recorded;
- encode time: `server.hub.Feed.snapshot_frame` is called in this process on
  the same event, `--iterations` times per form, with the feed's version
  bumped before each call so its per-version cache never answers;
- the reference: a plain JSON object of seat ids (`{"A-1": "available", …}`)
  encoded with the standard library's `json`, the naive first frame.

Target: the compact frame at most 40 KB on the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from typing import Any

import msgspec

from server.hub import Feed
from server.live import LiveSnapshot

from . import wsclient
from .report import Progress, fmt, table, verdict
from .seating import event_of, venue
from .stack import Stack, host_port, unique_event_id

TARGET_BYTES = 40_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seats", type=int, default=20_000, help="venue size (default 20000)")
    parser.add_argument("--iterations", type=int, default=200, help="encodes timed per form (default 200)")
    parser.add_argument("--connections", type=int, default=5, help="websocket first frames read per form")


async def _first_frame(host: str, port: int, path: str) -> tuple[int, bytes, float]:
    """(wire bytes, payload, seconds from upgrade request to the whole first frame)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[tuple[int, bytes, float]] = loop.create_future()

    def on_frame(client: wsclient.WsClient, payload: bytes, received: float) -> None:
        if not got.done():
            got.set_result((client.bytes, payload, time.perf_counter()))

    started = time.perf_counter()
    client = await wsclient.connect(host, port, path, on_frame)
    try:
        size, payload, done = await asyncio.wait_for(got, 60)
    finally:
        client.close()
    return size, payload, done - started


def _time_encode(feed: Feed, compact: bool, iterations: int) -> tuple[float, int]:
    """Median µs per `snapshot_frame` over 5 rounds, and the frame's size."""
    version = feed.version
    size = len(feed.snapshot_frame(compact))
    rounds = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(iterations):
            feed.version += 1  # a new version: the cached frame no longer applies
            feed.snapshot_frame(compact)
        rounds.append((time.perf_counter() - began) / iterations * 1e6)
    feed.version = version
    return statistics.median(rounds), size


def _time_reference(seat_ids: list[str], iterations: int) -> tuple[float, int]:
    """The naive frame: a JSON object of every seat id with the standard library."""
    seats = {seat: "available" for seat in seat_ids}
    size = len(json.dumps(seats, separators=(",", ":")).encode())
    rounds = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(iterations):
            json.dumps(seats, separators=(",", ":")).encode()
        rounds.append((time.perf_counter() - began) / iterations * 1e6)
    return statistics.median(rounds), size


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    await asyncio.to_thread(stack.start_server)
    assert stack.server_url is not None
    body = venue(args.seats, unique_event_id("snap"))
    event_id = await stack.create_event(body)
    progress(f"event {event_id} with {len(body['seats']):,} seats on {stack.server_url}")
    host, port = host_port(stack.server_url)
    wire: dict[str, Any] = {}
    for form, query in (("contract", ""), ("compact", "?compact=1")):
        sizes, times = [], []
        for _ in range(max(1, args.connections)):
            size, payload, seconds = await _first_frame(host, port, f"/ws/events/{event_id}{query}")
            sizes.append(size)
            times.append(seconds * 1000)
        frame = msgspec.json.decode(payload)
        seats = len(frame["seats"]) if "seats" in frame else len(frame["states"])
        if frame.get("type") != "snapshot" or seats != len(body["seats"]):
            raise RuntimeError(f"the {form} first frame is not a snapshot of {len(body['seats'])} seats")
        wire[form] = {"bytes": max(sizes), "seats": seats, "first_frame_ms_median": statistics.median(times)}
        progress(
            f"{form} snapshot on the wire: {max(sizes):,} bytes, {statistics.median(times):.1f} ms to receive"
        )

    event = event_of(body)
    feed = Feed.from_snapshot(event, LiveSnapshot(epoch=secrets.token_hex(4), version=0, taken={}))
    encode: dict[str, Any] = {}
    for form, compact in (("contract", False), ("compact", True)):
        micros, size = await asyncio.to_thread(_time_encode, feed, compact, args.iterations)
        encode[form] = {"us": micros, "bytes": size}
        progress(f"{form} snapshot encode: {micros:,.0f} µs, {size:,} bytes")
    ref_us, ref_bytes = await asyncio.to_thread(
        _time_reference, [s["id"] for s in body["seats"]], args.iterations
    )
    progress(f"reference (stdlib json object): {ref_us:,.0f} µs, {ref_bytes:,} bytes")
    compact_bytes = wire["compact"]["bytes"]
    return {
        "params": {
            "seats": len(body["seats"]),
            "iterations": args.iterations,
            "connections": args.connections,
        },
        "wire": wire,
        "encode": encode,
        "reference": {"form": "json.dumps({seat_id: 'available'})", "us": ref_us, "bytes": ref_bytes},
        "ratios": {
            "compact_over_reference_bytes": compact_bytes / ref_bytes,
            "contract_over_reference_bytes": wire["contract"]["bytes"] / ref_bytes,
        },
        "targets": {
            "compact_wire_bytes": {
                "at_most": TARGET_BYTES,
                "value": compact_bytes,
                "verdict": verdict(compact_bytes, TARGET_BYTES, at_most=True),
            }
        },
    }


def render(result: dict[str, Any]) -> str:
    rows = []
    for form in ("contract", "compact"):
        wire, encode = result["wire"][form], result["encode"][form]
        rows.append(
            [
                f"Seatmap, {form} form",
                wire["bytes"],
                fmt(wire["first_frame_ms_median"], 1),
                fmt(encode["us"], 0),
            ]
        )
    ref = result["reference"]
    rows.append(["reference: stdlib json object of seat ids", ref["bytes"], "—", fmt(ref["us"], 0)])
    target = result["targets"]["compact_wire_bytes"]
    return "\n".join(
        [
            f"{result['params']['seats']:,} seats",
            table(["first frame", "bytes on the wire", "ms to receive", "encode µs"], rows),
            "",
            f"compact frame {target['value']:,} bytes, target ≤ {TARGET_BYTES:,}: {target['verdict']}",
        ]
    )
