"""`drop`, `record`/`replay` end to end, small: real servers, real client
processes. Outcomes and invariants are asserted, never timings."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtest import drop
from loadtest.report import Progress
from loadtest.stack import Stack
from server.errors import SeatsUnavailable
from server.holds import HoldEngine, HoldGranted, new_hold_id
from tests.support import ADMIN_TOKEN, running_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def loadtest(tmp_path: Path, redis_url: str, database_url: str, *args: str) -> tuple[int, dict[str, Any], str]:
    """`python -m loadtest <args>` in its own process; (exit status, JSON result, output)."""
    result_path = tmp_path / f"{args[0]}-{len(list(tmp_path.iterdir()))}.json"
    command = [sys.executable, "-m", "loadtest", *args, "--redis-url", redis_url, "--database-url", database_url,
               "--json", str(result_path), "--quiet"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150)
    output = done.stdout + done.stderr
    assert result_path.exists(), f"{' '.join(args)} wrote no result:\n{output[-4000:]}"
    return done.returncode, json.loads(result_path.read_text()), output


SMALL_DROP = ("--clients", "40", "--processes", "2", "--seats", "120", "--ramp", "1", "--watch", "0.5",
              "--jitter", "0", "--hot-share", "0.05", "--hold-seconds", "4", "--checkout-seconds", "4",
              "--duration", "10",
              "--settle", "15", "--pay-share", "0.4", "--decline-share", "0.25")  # fmt: skip


def test_small_drop_holds_its_invariants_and_replays_to_the_same_map(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    recording = tmp_path / "drop.jsonl"
    html = tmp_path / "drop.html"
    status, result, output = loadtest(
        tmp_path, redis_url, database_url, "drop", *SMALL_DROP, "--record", str(recording), "--html", str(html)
    )
    assert status == 0, output[-4000:]
    assert result["violations"] == []
    summary = result["summary"]
    assert summary["connected"] == 40
    assert summary["holds_granted"] > 0 and summary["holds_refused"] > 0  # they really raced
    assert summary["paid"] > 0 and summary["orders_confirmed"] > 0
    maps = result["checked"]["maps"]["counts"]
    assert maps.get("converged") == 40, maps
    assert result["latency"]["hold (request to reply)"]["summary"]["count"] >= summary["holds_granted"]
    assert result["latency"]["fan-out (grant to each client's receipt)"]["summary"]["count"] > 0
    assert result["series"]["t"] and result["resources"]["server"]["cpu"]
    page = html.read_text()
    assert "<svg" in page and "<script" not in page and "src=" not in page

    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert lines[0]["kind"] == "meta" and lines[0]["event"]["seats"] and lines[-1]["final"]["seats"]
    kinds = {(line.get("kind"), line.get("dir")) for line in lines}
    assert {("http", "in"), ("open", "in"), ("ws", "in"), ("ws", "out")} <= kinds
    assert any(line.get("target") == "gateway" for line in lines)
    assert not any(line.get("response", {}).get("token", "<redacted>") != "<redacted>"
                   for line in lines if isinstance(line.get("response"), dict))  # fmt: skip

    status, replayed, output = loadtest(tmp_path, redis_url, database_url, "replay", str(recording), "--strict")
    assert status == 0, output[-4000:]
    comparison = replayed["comparison"]
    assert comparison["final_map_same"] is True, comparison
    assert comparison["outcomes_different"] == 0, comparison["differences"]
    assert comparison["outcomes_same"] > 40
    assert replayed["violations"] == []


async def test_a_server_granting_a_seat_twice_fails_the_run(
    tmp_path: Path, server_settings: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold path that, when the seats are taken, grants them anyway."""
    real = HoldEngine.hold_seats

    async def double_granting(self: HoldEngine, event: Any, buyer_id: str, seats: Any) -> HoldGranted:
        try:
            return await real(self, event, buyer_id, seats)
        except SeatsUnavailable:
            now_ms = int((await self.redis.time())[0]) * 1000
            return HoldGranted(new_hold_id(event.id), event.id, list(seats), now_ms + self.hold_ms, 0,
                               list(seats), None)  # fmt: skip

    monkeypatch.setattr(HoldEngine, "hold_seats", double_granting)
    async with running_server(server_settings(hold_seconds=30)) as running:
        stack = Stack(redis_url, running.settings.database_url or "", tmp_path, server_url=running.url,
                      server_pid=os.getpid(),
                      admin_token=ADMIN_TOKEN)  # fmt: skip
        parser = argparse.ArgumentParser()
        drop.add_arguments(parser)
        args = parser.parse_args(
            ["--clients", "30", "--processes", "2", "--seats", "60", "--ramp", "0.5", "--watch", "0.3",
             "--jitter", "0.2", "--hot-share", "0.2", "--pay-share", "0", "--duration", "10", "--settle", "2"]
        )  # fmt: skip
        args.command = "drop"
        result = await drop.run(args, stack, Progress("drop", quiet=True))
    assert result["exit_code"] == 1
    doubles = [v for v in result["violations"] if v["invariant"] == "no seat granted to two live holds at once"]
    assert doubles, result["violations"]
    evidence = doubles[0]
    assert evidence["seat"] and evidence["granted_to"]["hold_id"] != evidence["while_owned_by"]["hold_id"]
    assert evidence["granted_to"]["client"] != evidence["while_owned_by"]["client"]
    assert evidence["while_owned_by"]["from"] <= evidence["granted_to"]["at"] <= evidence["while_owned_by"]["until"]
    assert "VIOLATION" in drop.render({"command": "drop", **result})
