"""server/traffic_log.py: the HTTP middleware and the websocket hook write the
recording format, without secrets; the load tester reads such a log back and
replays it (an access log is a recording without meta lines)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from loadtest.recording import load
from server.auth import TokenSigner
from server.traffic_log import REDACTED, SocketLog, TrafficLog, TrafficLogMiddleware, path_without_token, socket_log
from server.venues import grid_venue

REPO = Path(__file__).resolve().parent.parent
SIGNER = TokenSigner("secret", "admin-token")


class _Services:
    signer = SIGNER


def _app(log_path: Path) -> object:
    async def sessions(request: Request) -> JSONResponse:
        buyer, token = SIGNER.issue()
        return JSONResponse({"buyer_id": buyer, "token": token}, 201)

    async def hold(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"hold_id": "h1.ev", "event_id": "ev", "seats": body["seats"],
                             "expires_at": "2030-01-01T00:00:00.000Z", "picked": body["seats"]}, 201)  # fmt: skip

    app = Starlette(routes=[Route("/api/sessions", sessions, methods=["POST"]),
                            Route("/api/events/{e}/holds", hold, methods=["POST"])])  # fmt: skip
    logged = TrafficLogMiddleware(app, path=log_path)

    async def with_state(scope, receive, send):  # what uvicorn does with the lifespan's state
        scope["state"] = {"services": _Services()}
        await logged(scope, receive, send)

    return with_state


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_http_requests_are_logged_with_the_buyer_and_no_secret(tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    transport = httpx.ASGITransport(app=_app(log))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        session = (await client.post("/api/sessions")).json()
        headers = {"Authorization": f"Bearer {session['token']}"}
        held = await client.post("/api/events/ev/holds", json={"seats": ["A-1"]}, headers=headers)
        assert held.status_code == 201
        await client.post(
            "/api/events/ev/holds", json={"seats": ["A-2"]}, headers={"Authorization": "Bearer admin-token"}
        )
        await client.post("/api/events/ev/holds", json={"seats": ["A-3"]}, headers={"Authorization": "Bearer x.forged"})
    made, took, by_admin, forged = lines(log)
    assert made["client"] == session["buyer_id"] and made["status"] == 201
    assert made["response"]["token"] == REDACTED and session["token"] not in log.read_text()
    assert took["client"] == session["buyer_id"] and took["dir"] == "in" and took["kind"] == "http"
    assert took["method"] == "POST" and took["path"] == "/api/events/ev/holds"
    assert took["body"] == {"seats": ["A-1"]} and took["response"]["picked"] == ["A-1"] and took["ms"] >= 0
    assert by_admin["client"] == "admin" and "admin-token" not in log.read_text()
    assert forged["client"] not in ("admin", "x") and "-" in forged["client"]  # a connection id, not a claim


def test_socket_hook_lines(tmp_path: Path) -> None:
    log = TrafficLog(tmp_path / "t.jsonl")
    scope = {"path": "/ws/events/ev", "query_string": b"token=b_x.sig&compact=1", "seatmap.traffic": log}
    hook = socket_log(scope, "b_x")
    hook.frame_in('{"type":"hold","ref":"r1","seats":["A-1"]}')
    hook.frame_out(b'{"type":"hold_ok","ref":"r1","hold_id":"h1.ev","seats":["A-1"],"expires_at":"x"}')
    hook.frame_in("not json")
    hook.closed(1000)
    anonymous = socket_log({"path": "/ws/events/ev", "query_string": b"", "seatmap.traffic": log}, None)
    log.close()
    opened, sent, replied, junk, closed, other = lines(tmp_path / "t.jsonl")
    assert opened["kind"] == "open" and opened["path"] == "/ws/events/ev?compact=1"
    assert "sig" not in (tmp_path / "t.jsonl").read_text()
    assert sent["frame"]["type"] == "hold" and sent["dir"] == "in" and sent["conn"] == opened["conn"]
    assert replied["frame"]["hold_id"] == "h1.ev" and replied["dir"] == "out"
    assert junk["text"] == "not json" and closed["kind"] == "close" and closed["code"] == 1000
    assert other["client"] == anonymous.conn  # no buyer: the connection id
    assert socket_log({"path": "/"}, "b_x") is socket_log({"path": "/x"}, None)  # logging off: one no-op hook
    assert path_without_token("/p", "a=1&token=t") == "/p?a=1"


@pytest.mark.slow
def test_an_access_log_replays(tmp_path: Path, redis_url: str, database_url: str) -> None:
    """Two buyers race for A-1 over HTTP, a third over a websocket, as the
    server would log it; the replay reproduces who won."""
    path = tmp_path / "access.jsonl"
    log = TrafficLog(path)
    body = grid_venue(1, 4, event_id="ev-logged")
    log.write(
        {
            "t": 1.0,
            "client": "admin",
            "dir": "in",
            "kind": "http",
            "method": "POST",
            "path": "/api/events",
            "body": body,
            "status": 201,
            "response": {"id": "ev-logged", "seats": 4},
            "ms": 1,
        }
    )
    for n, (buyer, t) in enumerate((("b_one", 1.1), ("b_two", 1.15))):
        log.write(
            {
                "t": t,
                "client": buyer,
                "dir": "in",
                "kind": "http",
                "method": "POST",
                "path": "/api/sessions",
                "status": 201,
                "response": {"buyer_id": buyer, "token": REDACTED},
                "ms": 1,
            }
        )
        won = n == 0
        log.write(
            {
                "t": 1.3 + n * 0.05,
                "client": buyer,
                "dir": "in",
                "kind": "http",
                "method": "POST",
                "path": "/api/events/ev-logged/holds",
                "body": {"seats": ["A-1", "A-2"]},
                "status": 201 if won else 409,
                "response": {
                    "hold_id": "hOLD.ev-logged",
                    "event_id": "ev-logged",
                    "seats": ["A-1", "A-2"],
                    "expires_at": "2030-01-01T00:00:00.000Z",
                    "picked": ["A-1", "A-2"],
                }
                if won
                else {"error": "seats_unavailable", "details": "taken", "seats": ["A-1"]},
                "ms": 2,
            }
        )
    log.write(
        {
            "t": 1.5,
            "client": "b_one",
            "dir": "in",
            "kind": "http",
            "method": "DELETE",
            "path": "/api/holds/hOLD.ev-logged?seats=A-2",
            "status": 204,
            "ms": 1,
        }
    )
    hook = SocketLog(log, "/ws/events/ev-logged?compact=1", "b_three")
    hook.frame_in(json.dumps({"type": "hold", "ref": "r1", "seats": ["A-2"]}))
    hook.frame_out(
        json.dumps(
            {
                "type": "hold_ok",
                "ref": "r1",
                "hold_id": "hTHREE.ev-logged",
                "seats": ["A-2"],
                "expires_at": "2030-01-01T00:00:00.000Z",
                "picked": ["A-2"],
            }
        ).encode()
    )
    log.close()
    recording = load(str(path))
    assert recording.source == "access-log" and recording.event_id == "ev-logged"
    assert [op.kind for op in recording.clients["b_two"]] == ["session", "hold"]
    assert recording.clients["b_two"][1].refused == ["A-1"]

    result_path = tmp_path / "replay.json"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest", "replay", str(path), "--speed", "max", "--strict",
         "--redis-url", redis_url, "--database-url", database_url, "--json", str(result_path), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(result_path.read_text())
    assert result["comparison"]["outcomes_different"] == 0, result["comparison"]["differences"]
    assert result["comparison"]["outcomes_same"] >= 5
    assert result["violations"] == []
