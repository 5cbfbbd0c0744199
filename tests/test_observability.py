"""Metrics move when the things they count happen; logs carry request and
connection ids."""

from __future__ import annotations

import io
import json
import logging
import re

from server import logs
from server.venues import grid_venue
from tests.payflow import confirm, hold_and_checkout, wait_for_status
from tests.support import receive_json, unique_id


async def scrape(server) -> dict[str, float]:
    async with server.http() as client:
        response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


async def test_metrics_move_with_holds_sockets_payments_and_queries(server):
    event_id = await server.create_event(grid_venue(2, 5, event_id=unique_id()))
    before = await scrape(server)
    _, ann = await server.buyer()
    _, bob = await server.buyer()
    async with server.socket(event_id) as ws:
        await receive_json(ws)
        during = await scrape(server)
        async with server.http(ann) as client:
            assert (await client.post(f"/api/events/{event_id}/holds", json={"seats": ["A-1"]})).status_code == 201
        async with server.http(bob) as client:
            assert (await client.post(f"/api/events/{event_id}/holds", json={"seats": ["A-1"]})).status_code == 409
        await receive_json(ws)  # the diff
        _, checkout = await hold_and_checkout(server, event_id, ["B-1"])
        await confirm(server, checkout["payment_intent_id"])
        await wait_for_status(server, checkout["order_id"], "confirmed")
        after = await scrape(server)

    assert delta(before, during, "seatmap_ws_connections") >= 1
    assert delta(before, after, 'seatmap_holds_total{outcome="granted"}') >= 2
    assert delta(before, after, 'seatmap_holds_total{outcome="seats_unavailable"}') >= 1
    assert delta(before, after, 'seatmap_hold_seconds_count{path="http"}') >= 2
    assert delta(before, after, "seatmap_ws_frames_sent_total") >= 1
    assert delta(before, after, "seatmap_ws_bytes_sent_total") > 0
    assert delta(before, after, "seatmap_redis_seconds_count") >= 3
    assert delta(before, after, "seatmap_postgres_seconds_count") >= 1
    assert delta(before, after, 'seatmap_http_requests_total{status="2xx"}') >= 3
    assert delta(before, after, 'seatmap_http_requests_total{status="4xx"}') >= 1
    booked = [k for k in after if k.startswith("seatmap_webhook_events_total") and 'outcome="booked"' in k]
    assert booked and sum(delta(before, after, k) for k in booked) >= 1
    assert "seatmap_stream_lag_seconds" in after


async def test_requests_carry_an_id_back(server):
    async with server.http() as client:
        given = await client.get("/health/live", headers={"X-Request-Id": "trace-123"})
        assert given.headers["x-request-id"] == "trace-123"
        made = await client.get("/health/live", headers={"X-Request-Id": "bad id with spaces"})
        assert re.fullmatch(r"r[0-9a-f]+-\d+", made.headers["x-request-id"])


def test_json_log_lines_carry_the_context_id():
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("info", "json")
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    token = logs.context_id.set("r-abc")
    try:
        logging.getLogger("seatmap.test").warning("something %s", "happened")
    finally:
        logs.context_id.reset(token)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["msg"] == "something happened" and entry["id"] == "r-abc" and entry["level"] == "warning"
