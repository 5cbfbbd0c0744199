"""`connections`: server memory per idle websocket connection.

For Seatmap and, side by side, two reference servers (`refservers`): the
`websockets` library's own server, and a bare Starlette endpoint on uvicorn
with Seatmap's uvicorn options. Each gets one warm-up connection (so
per-event state such as Seatmap's feed and cached snapshot exists), a
settle, then the server process's RSS and USS (psutil) are read; then
`--clients` connections are opened from client processes apart from the
server, each receiving the same snapshot and then idling (answering pings);
after a settle the memory is read again. (after - before) / clients is the
cost of one idle connection.

Target: Seatmap at most 10 KiB per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from . import wsclient
from .measure import memory
from .procs import Workers, split
from .refservers import BareStarlette, BareWebsockets
from .report import Progress, fmt, table, verdict
from .seating import venue
from .stack import Stack, host_port, unique_event_id
from .system import capacity_warnings

TARGET_KIB = 10.0
REFERENCES = {"websockets": BareWebsockets, "starlette": BareStarlette}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=10_000, help="idle connections (default 10000)")
    parser.add_argument("--processes", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--seats", type=int, default=100, help="venue size (default 100)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait before each reading")
    parser.add_argument(
        "--references",
        default="websockets,starlette",
        help="reference servers to measure too (default websockets,starlette; '' for none)",
    )


class IdleClients:
    """Connections that take their first frame and then only answer pings."""

    def __init__(self, index: int) -> None:
        self.clients: list[wsclient.WsClient] = []
        self.opened = 0

    async def connect(self, host: str, port: int, path: str, count: int) -> dict[str, int]:
        def opened(index: int, client: wsclient.WsClient) -> None:
            self.opened += 1

        self.opened = 0
        clients, failed = await wsclient.connect_many(
            count, host, port, lambda i: path, on_each=opened, parallel=50
        )
        self.clients += clients
        return {"connected": len(clients), "failed": failed}

    async def progress(self) -> int:
        return self.opened

    async def status(self) -> dict[str, int]:
        return {
            "open": sum(1 for c in self.clients if c.is_open),
            "with_first_frame": sum(1 for c in self.clients if c.frames > 0),
        }

    async def first_payload(self, host: str, port: int, path: str) -> str:
        """The text of the first frame the server sends a new client."""
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def on_frame(client: wsclient.WsClient, payload: bytes, received: float) -> None:
            if not got.done():
                got.set_result(payload)

        client = await wsclient.connect(host, port, path, on_frame)
        try:
            return (await asyncio.wait_for(got, 30)).decode()
        finally:
            client.close()

    async def disconnect(self) -> int:
        count = await wsclient.close_all(self.clients)
        self.clients = []
        return count

    async def aclose(self) -> None:
        for client in self.clients:
            client.abort()


async def _measure(
    label: str,
    clients: Workers,
    pid: int,
    host: str,
    port: int,
    path: str,
    count: int,
    settle: float,
    progress: Progress,
) -> dict[str, Any]:
    await clients.call_one(0, "connect", host=host, port=port, path=path, count=1)  # warm-up client
    await asyncio.sleep(settle)
    before = memory(pid)
    per = split(count, len(clients))
    task = asyncio.ensure_future(
        clients.call_each("connect", [{"host": host, "port": port, "path": path, "count": n} for n in per])
    )
    while not task.done():
        await asyncio.wait([task], timeout=2.0)
        if not task.done():
            progress(f"{label}: {sum(await clients.call('progress')):,}/{count:,} connected")
    connected = sum(r["connected"] for r in task.result())
    await asyncio.sleep(settle)
    after = memory(pid)
    status = await clients.call("status")
    still_open = sum(s["open"] for s in status) - 1
    fed = sum(s["with_first_frame"] for s in status) - 1
    result: dict[str, Any] = {
        "connected": connected,
        "open_after_settle": still_open,
        "received_first_frame": fed,
        "rss_before": before["rss"],
        "rss_after": after["rss"],
        "uss_before": before["uss"],
        "uss_after": after["uss"],
        "rss_per_connection_kib": (after["rss"] - before["rss"]) / connected / 1024 if connected else None,
        "uss_per_connection_kib": (after["uss"] - before["uss"]) / connected / 1024
        if connected and after["uss"] is not None and before["uss"] is not None
        else None,
    }
    progress(
        f"{label}: {connected:,} connected ({still_open:,} open, {fed:,} got their snapshot), "
        f"RSS +{fmt(result['rss_per_connection_kib'], 1)} KiB/connection, "
        f"USS +{fmt(result['uss_per_connection_kib'], 1)} KiB/connection"
    )
    started = time.monotonic()
    await clients.call("disconnect", timeout=120)
    result["disconnect_s"] = time.monotonic() - started
    return result


async def run(args: argparse.Namespace, stack: Stack, progress: Progress) -> dict[str, Any]:
    warnings = capacity_warnings(args.clients, args.processes)
    for warning in warnings:
        progress(f"warning: {warning}")
    await asyncio.to_thread(stack.start_server)
    assert stack.server_url is not None
    if stack.server_pid is None:
        raise SystemExit("connections needs the server's pid (--server-pid) to read its memory")
    event_id = await stack.create_event(venue(args.seats, unique_event_id("conn")))
    host, port = host_port(stack.server_url)
    path = f"/ws/events/{event_id}"
    clients = Workers(IdleClients, args.processes)
    found: dict[str, Any] = {}
    try:
        snapshot = await clients.call_one(0, "first_payload", host=host, port=port, path=path)
        found["seatmap"] = await _measure(
            "seatmap", clients, stack.server_pid, host, port, path, args.clients, args.settle, progress
        )
        for name in [n.strip() for n in args.references.split(",") if n.strip()]:
            reference = Workers(REFERENCES[name], 1)
            try:
                ref_port = await reference.call_one(0, "listen", payload=snapshot, timeout=60)
                found[name] = await _measure(
                    name,
                    clients,
                    reference.pids[0],
                    "127.0.0.1",
                    ref_port,
                    path,
                    args.clients,
                    args.settle,
                    progress,
                )
            finally:
                await reference.aclose()
    finally:
        await clients.aclose()
    kib = found["seatmap"]["rss_per_connection_kib"]
    return {
        "params": {
            "clients": args.clients,
            "client_processes": args.processes,
            "seats": args.seats,
            "snapshot_bytes": len(snapshot.encode()),
            "settle_s": args.settle,
        },
        "warnings": warnings,
        "results": found,
        "targets": {
            "rss_per_connection_kib": {
                "at_most": TARGET_KIB,
                "value": kib,
                "verdict": verdict(kib, TARGET_KIB, at_most=True),
            }
        },
    }


LABELS = {
    "seatmap": "Seatmap (Starlette on uvicorn + hub)",
    "websockets": "bare websockets server",
    "starlette": "bare Starlette endpoint on uvicorn",
}


def render(result: dict[str, Any]) -> str:
    rows = []
    for name, row in result["results"].items():
        rows.append(
            [
                LABELS.get(name, name),
                row["connected"],
                row["open_after_settle"],
                fmt(row["rss_before"] / 2**20, 1),
                fmt(row["rss_after"] / 2**20, 1),
                fmt(row["rss_per_connection_kib"], 1),
                fmt(row["uss_per_connection_kib"], 1),
            ]
        )
    target = result["targets"]["rss_per_connection_kib"]
    return "\n".join(
        [
            table(
                [
                    "server",
                    "connected",
                    "open",
                    "RSS before MiB",
                    "RSS after MiB",
                    "RSS KiB/conn",
                    "USS KiB/conn",
                ],
                rows,
            ),
            "",
            f"Seatmap {fmt(target['value'], 1)} KiB per idle connection, "
            f"target ≤ {TARGET_KIB:g} KiB: {target['verdict']}",
        ]
    )
