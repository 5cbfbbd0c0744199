"""Events over HTTP: creation (admin), layout, availability, and refusals
that change nothing."""

from __future__ import annotations

import pytest

from server.venues import fan_venue, grid_venue
from tests.support import unique_id


def seat(seat_id: str, **overrides):
    body = {"id": seat_id, "section": "S", "row": "A", "number": 1, "x": 0.0, "y": 1.0}
    body.update({"tier": "REGULAR", "price_cents": 1000})
    body.update(overrides)
    return body


async def test_create_and_read_event(server):
    event_id = unique_id()
    body = grid_venue(2, 3, event_id=event_id)
    body["starts_at"] = "2026-12-31T20:00:00Z"
    async with server.admin() as admin:
        created = await admin.post("/api/events", json=body)
        assert created.status_code == 201
        assert created.json() == {"id": event_id, "seats": 6}
        event = (await admin.get(f"/api/events/{event_id}")).json()
    assert event["id"] == event_id and event["currency"] == "usd"
    assert [s["id"] for s in event["seats"]] == [s["id"] for s in body["seats"]]
    assert event["focal_point"] == {"x": 2.0, "y": 0.0}
    assert event["limits"] == {"max_seats_per_buyer": 8, "hold_seconds": 300, "checkout_seconds": 900}
    availability = await server.availability(event_id)
    assert availability["version"] == 0
    assert set(availability["seats"].values()) == {"available"}
    assert availability["summary"] == {"available": 6, "held": 0, "booked": 0}


async def test_id_and_focal_point_are_optional(server):
    body = {"name": "no id", "seats": [seat("A-1", x=4.0, y=3.0), seat("A-2", number=2, x=6.0, y=5.0)]}
    async with server.admin() as admin:
        created = await admin.post("/api/events", json=body)
        assert created.status_code == 201
        event = (await admin.get(f"/api/events/{created.json()['id']}")).json()
    # the stage is at the seats' smallest y, centred on their x range
    assert event["focal_point"] == {"x": 5.0, "y": 3.0}


async def test_events_are_listed(server):
    event_id = await server.create_event(fan_venue(40, event_id=unique_id()))
    async with server.http() as client:
        listed = (await client.get("/api/events")).json()["events"]
    assert {"id": event_id, "seats": 40}.items() <= next(e for e in listed if e["id"] == event_id).items()


async def test_existing_id_is_a_conflict(server):
    event_id = await server.create_event(grid_venue(1, 2, event_id=unique_id()))
    async with server.admin() as admin:
        again = await admin.post("/api/events", json=grid_venue(1, 5, event_id=event_id))
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert len((await server.availability(event_id))["seats"]) == 2


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b: b.update(seats=[]), 422, "validation_error"),
        (lambda b: b["seats"].append(dict(b["seats"][0], number=99)), 422, "validation_error"),
        (lambda b: b["seats"][0].update(price_cents=-1), 422, "validation_error"),
        (lambda b: b["seats"][0].update(tier="GOLD"), 422, "validation_error"),
        (lambda b: b["seats"][0].update(x="left"), 422, "validation_error"),
        (lambda b: b.pop("name"), 422, "validation_error"),
        (lambda b: b.update(id="has spaces"), 422, "validation_error"),
        (lambda b: b["seats"].append(dict(b["seats"][0], id="other")), 422, "validation_error"),
    ],
    ids=[
        "empty",
        "duplicate-id",
        "negative-price",
        "bad-tier",
        "wrong-type",
        "no-name",
        "bad-id",
        "same-place",
    ],
)
async def test_bad_events_are_refused_and_change_nothing(server, mutate, status, code):
    event_id = unique_id()
    body = grid_venue(1, 3, event_id=event_id)
    mutate(body)
    async with server.admin() as admin:
        response = await admin.post("/api/events", json=body)
        assert response.status_code == status, response.text
        assert response.json()["error"] == code and response.json()["details"]
        assert (await admin.get(f"/api/events/{body.get('id', event_id)}")).status_code in (404, 422)


async def test_malformed_json_is_bad_request(server):
    async with server.admin() as admin:
        response = await admin.post(
            "/api/events", content=b'{"name": "x", "seats": [', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


async def test_admin_token_is_required(server):
    body = grid_venue(1, 2, event_id=unique_id())
    async with server.http() as anonymous:
        assert (await anonymous.post("/api/events", json=body)).json()["error"] == "unauthorized"
    _, token = await server.buyer()
    async with server.http(token) as buyer:
        response = await buyer.post("/api/events", json=body)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    async with server.http() as client:
        assert (await client.get(f"/api/events/{body['id']}")).status_code == 404


async def test_unknown_event_and_route(server):
    async with server.http() as client:
        for path in ("/api/events/nope", "/api/events/nope/availability", "/api/nothing-here"):
            response = await client.get(path)
            assert response.status_code == 404 and response.json()["error"] == "not_found", path
        wrong_method = await client.put("/api/events")
        assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "bad_request"


async def test_layout_is_compressed_and_cacheable(server):
    event_id = await server.create_event(fan_venue(2000, event_id=unique_id()))
    async with server.http() as client:
        first = await client.get(f"/api/events/{event_id}")  # httpx asks for gzip and inflates
        assert first.headers["content-encoding"] == "gzip" and len(first.json()["seats"]) == 2000
        raw = await client.get(f"/api/events/{event_id}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and raw.json() == first.json()
        again = await client.get(f"/api/events/{event_id}", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
