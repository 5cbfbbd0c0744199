"""Buyers and holds over HTTP, through the running server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from server.venues import grid_venue
from tests.support import unique_id


@pytest.fixture
async def event_id(server) -> str:
    tiers = {0: "VIP", 1: "PREMIUM"}
    body = grid_venue(4, 10, event_id=unique_id(), tier_of_row=tiers)
    return await server.create_event(body)


async def hold(server, token, event_id, body, headers=None):
    async with server.http(token) as client:
        return await client.post(f"/api/events/{event_id}/holds", json=body, headers=headers)


async def test_session_tokens_are_signed(server, event_id):
    buyer, token = await server.buyer()
    assert token.startswith(buyer + ".")
    forged = buyer + ".AAAA" + token[-20:]
    for bad in (forged, "nonsense", token + "x", "b_other." + token.split(".")[1]):
        response = await hold(server, bad, event_id, {"seats": ["A-1"]})
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    async with server.http() as anonymous:
        no_token = await anonymous.post(f"/api/events/{event_id}/holds", json={"seats": ["A-1"]})
    assert no_token.status_code == 401
    assert (await server.availability(event_id))["summary"]["held"] == 0


async def test_hold_and_read_it_back(server, event_id):
    buyer, token = await server.buyer()
    response = await hold(server, token, event_id, {"seats": ["A-1", "A-2"]})
    assert response.status_code == 201
    body = response.json()
    assert body["event_id"] == event_id and body["seats"] == ["A-1", "A-2"]
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert 250 < (expires - datetime.now(UTC)).total_seconds() <= 300
    async with server.http(token) as client:
        read = await client.get(f"/api/holds/{body['hold_id']}")
    assert read.status_code == 200
    assert read.json()["seats"] == ["A-1", "A-2"] and read.json()["buyer_id"] == buyer
    availability = await server.availability(event_id)
    assert availability["seats"]["A-1"] == "held" and availability["summary"]["held"] == 2


async def test_cart_keeps_expiry_and_adds_seats(server, event_id):
    _, token = await server.buyer()
    first = (await hold(server, token, event_id, {"seats": ["B-1"]})).json()
    second = (await hold(server, token, event_id, {"seats": ["B-2", "B-3"]})).json()
    assert second["hold_id"] == first["hold_id"] and second["expires_at"] == first["expires_at"]
    assert second["seats"] == ["B-1", "B-2", "B-3"] and second["picked"] == ["B-2", "B-3"]


async def test_conflict_names_the_seats_and_holds_nothing(server, event_id):
    _, ann = await server.buyer()
    _, bob = await server.buyer()
    assert (await hold(server, ann, event_id, {"seats": ["C-4"]})).status_code == 201
    before = await server.availability(event_id)
    refused = await hold(server, bob, event_id, {"seats": ["C-3", "C-4", "C-5"]})
    assert refused.status_code == 409
    assert refused.json()["error"] == "seats_unavailable" and refused.json()["seats"] == ["C-4"]
    after = await server.availability(event_id)
    assert after["seats"] == before["seats"] and after["version"] == before["version"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"seats": ["Z-99"]}, 422, "validation_error"),
        ({"seats": ["A-1", "A-1"]}, 422, "validation_error"),
        ({"seats": []}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"seats": "A-1"}, 422, "validation_error"),
        ({"seats": [1, 2]}, 422, "validation_error"),
        ({"count": 0}, 422, "validation_error"),
        ({"count": 2, "tier": "GOLD"}, 422, "validation_error"),
        ({"count": 2, "seats": ["A-1"]}, 422, "validation_error"),
        ({"seats": ["A-1"], "tier": "VIP"}, 422, "validation_error"),
        ({"count": 2, "section": "Nowhere"}, 422, "validation_error"),
    ],
)
async def test_bad_hold_requests_change_nothing(server, event_id, body, status, code):
    _, token = await server.buyer()
    before = await server.availability(event_id)
    response = await hold(server, token, event_id, body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code and response.json()["details"]
    assert (await server.availability(event_id))["version"] == before["version"]


async def test_malformed_json_and_unknown_event(server, event_id):
    _, token = await server.buyer()
    async with server.http(token) as client:
        garbage = await client.post(f"/api/events/{event_id}/holds", content=b"{seats:")
        assert garbage.status_code == 400 and garbage.json()["error"] == "bad_request"
        empty = await client.post(f"/api/events/{event_id}/holds", content=b"")
        assert empty.status_code == 400
    missing = await hold(server, token, "no-such-event", {"seats": ["A-1"]})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_limit_counts_the_whole_cart(server, event_id):
    _, token = await server.buyer()
    assert (await hold(server, token, event_id, {"seats": [f"D-{n}" for n in range(1, 7)]})).status_code == 201
    over = await hold(server, token, event_id, {"seats": ["D-7", "D-8", "D-9"]})
    assert over.status_code == 429 and over.json()["error"] == "limit_exceeded" and over.json()["limit"] == 8
    assert (await server.availability(event_id))["seats"]["D-7"] == "available"
    assert (await hold(server, token, event_id, {"seats": ["D-7", "D-8"]})).status_code == 201


async def test_best_available_over_http(server, event_id):
    _, token = await server.buyer()
    response = await hold(server, token, event_id, {"count": 3, "tier": "PREMIUM"})
    assert response.status_code == 201
    body = response.json()
    assert body["adjacent"] is True and len(body["picked"]) == 3
    assert all(seat.startswith("B-") for seat in body["picked"])
    # retried with the same Idempotency-Key: the same seats, nothing more
    key = {"Idempotency-Key": "best-1"}
    _, other = await server.buyer()
    first = (await hold(server, other, event_id, {"count": 2}, key)).json()
    again = (await hold(server, other, event_id, {"count": 2}, key)).json()
    assert again["seats"] == first["seats"] and len(again["seats"]) == 2


async def test_best_available_when_none_left(server):
    event_id = await server.create_event(grid_venue(1, 2, event_id=unique_id()))
    _, ann = await server.buyer()
    _, bob = await server.buyer()
    assert (await hold(server, ann, event_id, {"count": 2})).status_code == 201
    none = await hold(server, bob, event_id, {"count": 1})
    assert none.status_code == 409 and none.json() == {
        "error": "seats_unavailable",
        "details": none.json()["details"],
        "seats": [],
    }


async def test_release_part_then_all(server, event_id):
    _, token = await server.buyer()
    held = (await hold(server, token, event_id, {"seats": ["A-5", "A-6", "A-7"]})).json()
    hold_id = held["hold_id"]
    async with server.http(token) as client:
        assert (await client.delete(f"/api/holds/{hold_id}?seats=A-6")).status_code == 204
        assert (await client.get(f"/api/holds/{hold_id}")).json()["seats"] == ["A-5", "A-7"]
        not_in_hold = await client.delete(f"/api/holds/{hold_id}?seats=A-9")
        assert not_in_hold.status_code == 422 and not_in_hold.json()["seats"] == ["A-9"]
        assert (await client.delete(f"/api/holds/{hold_id}")).status_code == 204
        assert (await client.get(f"/api/holds/{hold_id}")).status_code == 404
    seats = (await server.availability(event_id))["seats"]
    assert seats["A-5"] == seats["A-6"] == seats["A-7"] == "available"


async def test_others_cannot_see_or_release_a_hold(server, event_id):
    _, ann = await server.buyer()
    _, bob = await server.buyer()
    hold_id = (await hold(server, ann, event_id, {"seats": ["A-9"]})).json()["hold_id"]
    async with server.http(bob) as client:
        assert (await client.get(f"/api/holds/{hold_id}")).status_code == 404
        assert (await client.delete(f"/api/holds/{hold_id}")).status_code == 404
        assert (await client.get("/api/holds/garbage")).status_code == 404
        assert (await client.delete("/api/holds/x.no-event")).status_code == 404
    assert (await server.availability(event_id))["seats"]["A-9"] == "held"


async def test_fifty_buyers_race_for_one_seat(server, event_id):
    tokens = [(await server.buyer())[1] for _ in range(50)]
    responses = await asyncio.gather(*(hold(server, t, event_id, {"seats": ["D-10"]}) for t in tokens))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1 and statuses.count(409) == 49


async def test_different_seats_in_parallel_all_succeed(server):
    event_id = await server.create_event(grid_venue(5, 20, event_id=unique_id()))
    tokens = [(await server.buyer())[1] for _ in range(50)]
    seats = [f"{row}-{n}" for row in "ABCDE" for n in range(1, 21)]
    responses = await asyncio.gather(
        *(hold(server, t, event_id, {"seats": seats[2 * i : 2 * i + 2]}) for i, t in enumerate(tokens))
    )
    assert all(r.status_code == 201 for r in responses)
    availability = await server.availability(event_id)
    assert availability["summary"]["held"] == 100 and availability["version"] == 50


async def test_expired_hold_frees_its_seats(server_settings):
    from tests.support import running_server

    async with running_server(server_settings(hold_seconds=1)) as short:
        event_id = await short.create_event(grid_venue(1, 4, event_id=unique_id()))
        _, ann = await short.buyer()
        _, bob = await short.buyer()
        hold_id = (await hold(short, ann, event_id, {"seats": ["A-1", "A-2"]})).json()["hold_id"]
        assert (await hold(short, bob, event_id, {"seats": ["A-2"]})).status_code == 409
        for _ in range(100):
            await asyncio.sleep(0.05)
            if (await short.availability(event_id))["summary"]["held"] == 0:
                break
        assert (await short.availability(event_id))["summary"]["held"] == 0
        async with short.http(ann) as client:
            assert (await client.get(f"/api/holds/{hold_id}")).status_code == 404
        assert (await hold(short, bob, event_id, {"seats": ["A-2"]})).status_code == 201


async def test_traffic_log_records_http_and_websocket_for_replay(server_settings, tmp_path):
    import json as jsonlib

    from tests.support import running_server

    log_path = tmp_path / "traffic.jsonl"
    async with running_server(server_settings(traffic_log=log_path)) as logged:
        event_id = await logged.create_event(grid_venue(1, 4, event_id=unique_id()))
        _, token = await logged.buyer()
        assert (await hold(logged, token, event_id, {"seats": ["A-1"]})).status_code == 201
        async with logged.socket(event_id, token=token) as ws:
            await ws.recv()
            await ws.send(jsonlib.dumps({"type": "hold", "ref": "w1", "seats": ["A-2"]}))
            await ws.recv()
    lines = [jsonlib.loads(line) for line in log_path.read_text().splitlines()]
    assert any(line.get("path", "").endswith("/holds") for line in lines)
    assert any(line.get("kind") == "ws" and line.get("dir") == "in" for line in lines)
    assert any(line.get("kind") == "ws" and line.get("dir") == "out" for line in lines)
    assert token not in log_path.read_text()  # tokens are redacted
