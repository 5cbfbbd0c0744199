"""Seat maps as many clients of one process see them, kept cheaply.

Per connection only its snapshot (interned: clients that joined at the same
version share one), the versions of the diffs it applied and the first break
in its chain are kept; each distinct diff is kept once per process, keyed by
`(prev, version)` (clients of different server workers may see differently
coalesced diffs, so `prev` alone is not a key). A client's map is rebuilt
from those at the end and compared with the server's `GET …/availability`.

The process also keeps one *current* map, advanced by whichever client
first receives each diff, with the time every seat last changed and an
index of available seats: what simulated buyers look at to choose seats,
and what the replayer waits on.

Fan-out timing: for each diff, the first arrival in this process and a count
of arrivals by whole milliseconds after it, so the parent can compute, for
every grant, the delay to every client's receipt without keeping one float
per client per diff.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from typing import Any

import msgspec

STATE_NAMES = {"a": "available", "h": "held", "b": "booked"}
DIFF_PREFIX = b'{"type":"diff"'
SNAPSHOT_PREFIX = b'{"type":"snapshot"'


class AvailableIndex:
    """The available seats as a list with O(1) add, remove and random choice."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.where: dict[str, int] = {}

    def add(self, seat: str) -> None:
        if seat not in self.where:
            self.where[seat] = len(self.items)
            self.items.append(seat)

    def discard(self, seat: str) -> None:
        index = self.where.pop(seat, None)
        if index is None:
            return
        last = self.items.pop()
        if index < len(self.items):
            self.items[index] = last
            self.where[last] = index

    def __contains__(self, seat: str) -> bool:
        return seat in self.where

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, rng: random.Random, count: int) -> list[str]:
        return rng.sample(self.items, min(count, len(self.items)))


class ClientMap:
    """One connection's view: its snapshot, the diff versions it applied, its first chain break."""

    __slots__ = ("broken", "epoch", "path", "snapshot", "version")

    def __init__(self) -> None:
        self.snapshot: bytes = b""
        self.epoch: str = ""
        self.version = -1
        self.path = array("q")
        self.broken: str | None = None


class MapTracker:
    def __init__(self, seat_ids: list[str]) -> None:
        self.seat_ids = seat_ids
        self.diffs: dict[tuple[int, int], bytes] = {}
        self.snapshots: dict[bytes, bytes] = {}
        self.mismatches = 0
        # the process's current map
        self.current: dict[str, str] = {}
        self.current_version = -1
        self.current_epoch = ""
        self.changed_at: dict[str, float] = {}
        self.available = AvailableIndex()
        # fan-out timing: (prev, version) -> [first arrival, Counter(ms after it -> clients)]
        self.arrivals: dict[tuple[int, int], list[Any]] = {}

    # ------------------------------------------------------------ frames

    def on_frame(self, state: ClientMap, payload: bytes, received: float) -> str | None:
        """Apply a server frame to a client's view; returns 'diff', 'snapshot' or None (another frame)."""
        if payload.startswith(DIFF_PREFIX):
            i = payload.find(b',"prev":', 14)
            j = payload.find(b',"version":', i)
            k = payload.find(b',"changes":', j)
            prev = int(payload[i + 8 : j])
            version = int(payload[j + 11 : k])
            if state.version != prev and state.broken is None:
                state.broken = f"diff prev {prev} after version {state.version}"
            state.version = version
            state.path.append(version)
            key = (prev, version)
            known = self.diffs.get(key)
            if known is None:
                self.diffs[key] = payload
            elif known != payload:
                self.mismatches += 1
            timing = self.arrivals.get(key)
            if timing is None:
                self.arrivals[key] = [received, Counter({0: 1})]
            else:
                timing[1][int((received - timing[0]) * 1000)] += 1
            if prev == self.current_version:
                self._advance(payload, version, received)
            return "diff"
        if payload.startswith(SNAPSHOT_PREFIX):
            payload = self.snapshots.setdefault(payload, payload)
            frame = msgspec.json.decode(payload)
            state.snapshot = payload
            state.epoch = frame["epoch"]
            state.version = frame["version"]
            state.path = array("q")
            state.broken = None
            if frame["epoch"] != self.current_epoch or frame["version"] > self.current_version:
                self._reset(frame, received)
            return "snapshot"
        return None

    def _reset(self, frame: dict[str, Any], received: float) -> None:
        self.current = seats_of(frame, self.seat_ids)
        self.current_version = frame["version"]
        self.current_epoch = frame["epoch"]
        self.available = AvailableIndex()
        for seat, state in self.current.items():
            if state == "available":
                self.available.add(seat)
            self.changed_at.setdefault(seat, 0.0)

    def _advance(self, payload: bytes, version: int, received: float) -> None:
        changes = msgspec.json.decode(payload)["changes"]
        for seat, state in changes.items():
            self.current[seat] = state
            self.changed_at[seat] = received
            if state == "available":
                self.available.add(seat)
            else:
                self.available.discard(seat)
        self.current_version = version

    # ------------------------------------------------------------ checking

    def rebuild(self, state: ClientMap, target: int) -> dict[str, str] | None:
        """The client's map at exactly `target` (None when its diffs skip over `target`)."""
        if not state.snapshot:
            return None
        frame = msgspec.json.decode(state.snapshot)
        seats = seats_of(frame, self.seat_ids)
        at = frame["version"]
        if at > target:
            return None
        for version in state.path:
            if at == target:
                break
            if version > target:
                return None
            payload = self.diffs[(at, version)]
            seats.update(msgspec.json.decode(payload)["changes"])
            at = version
        return seats if at == target else None

    def verify(
        self, states: dict[str, ClientMap], expected: dict[str, str], version: int, epoch: str
    ) -> dict[str, Any]:
        """Compare every client's map with `expected` at `version`; counts and evidence."""
        counts = Counter[str]()
        evidence: list[dict[str, Any]] = []
        cache: dict[tuple[int, bytes], dict[str, str] | None] = {}
        for client, state in states.items():
            if not state.snapshot:
                counts["no_snapshot"] += 1
                continue
            if state.broken is not None:
                counts["broken_chain"] += 1
                if len(evidence) < 5:
                    evidence.append({"client": client, "problem": "broken diff chain", "detail": state.broken})
                continue
            if state.epoch != epoch:
                counts["other_epoch"] += 1
                continue
            if state.version < version:
                counts["behind"] += 1
                if len(evidence) < 5:
                    evidence.append(
                        {"client": client, "problem": "behind", "detail": f"at {state.version}, server at {version}"}
                    )
                continue
            key = (id(state.snapshot), state.path.tobytes())
            if key not in cache:
                cache[key] = self.rebuild(state, version)
            seats = cache[key]
            if seats is None:
                counts["indeterminate"] += 1  # a coalesced diff spans `version`
                continue
            if seats == expected:
                counts["converged"] += 1
                continue
            counts["diverged"] += 1
            if len(evidence) < 5:
                wrong = sorted(s for s in expected if seats.get(s) != expected[s])[:10]
                evidence.append(
                    {
                        "client": client,
                        "problem": "map differs from GET /availability",
                        "version": version,
                        "seats": {s: {"client": seats.get(s), "server": expected[s]} for s in wrong},
                    }
                )
        return {"counts": dict(counts), "evidence": evidence, "mismatched_frames": self.mismatches}

    def fanout_samples(self) -> dict[str, Any]:
        """Per diff: its changes that took seats, first arrival here and the arrival histogram."""
        found = []
        for (prev, version), (first, counter) in self.arrivals.items():
            changes = msgspec.json.decode(self.diffs[(prev, version)])["changes"]
            taken = [seat for seat, state in changes.items() if state != "available"]
            if taken:
                found.append([prev, version, taken, first, list(counter.items())])
        return {"diffs": found}


def seats_of(frame: dict[str, Any], seat_ids: list[str]) -> dict[str, str]:
    """The seat map of a snapshot frame in either form."""
    if "states" in frame:
        return {seat: STATE_NAMES[code] for seat, code in zip(seat_ids, frame["states"], strict=True)}
    return dict(frame["seats"])
