"""The fan-out hub: each server process follows the Redis streams of the
events its clients watch and writes every diff to those clients.

Per watched event a `Feed` mirrors the seat states (one byte per seat), so a
new client's snapshot comes from memory, encoded once per version, and a
reconnect storm costs Redis nothing. One reader task does a blocking XREAD
over all followed streams; whatever entries arrived since the last read are
merged into one diff (bursts coalesce by themselves, `prev`/`version` stay
exact), encoded once, framed once and written to every client's transport.
A client whose unsent bytes pass its allowance is cut off with
`CLOSE_TOO_SLOW`, never waited on.

The hub never changes seat state; it only relays what the Lua scripts wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .catalog import Event
from .keys import event_keys
from .live import LiveSnapshot, LiveState
from .metrics import METRICS
from .protocol import DiffFrame, ResumedFrame, SnapshotFrame, encoder
from .wire import CLOSE_TOO_SLOW, Sink, TransportSink, text_frame

log = logging.getLogger("seatmap.hub")

STATE_CODE = {"available": ord("a"), "held": ord("h"), "booked": ord("b")}
CODE_STATE = {code: state for state, code in STATE_CODE.items()}
_changes_decoder = msgspec.json.Decoder(dict[str, str])

RECENT_FRAMES = 512  # encoded diffs kept per feed for quick resumes
COALESCE_MIN_BUSY = 0.002  # seconds of relaying below which the reader does not rest
COALESCE_REST_RATIO = 1.0  # rest / busy: 1.0 caps fan-out at half of the process's time
IDLE_FEED_SECONDS = 60.0


@dataclass(eq=False, slots=True)
class Subscriber:
    sink: Sink
    compact: bool
    feed: Feed | None = None

    def fast_target(self) -> tuple[Any, Any, int] | None:
        """(write, buffered size, allowance) of the transport, pre-bound for the
        broadcast loop; None for a sink that is not a transport."""
        if isinstance(self.sink, TransportSink):
            transport = self.sink.transport
            return transport.write, transport.get_write_buffer_size, self.sink.limit
        return None


@dataclass(slots=True)
class RecentDiff:
    prev: int
    version: int
    changes: dict[str, str]
    frame: bytes


@dataclass(eq=False)
class Feed:
    """One event's mirror in this process, with its subscribers."""

    event: Event
    epoch: str
    version: int
    states: bytearray
    subscribers: dict[Subscriber, tuple[Any, Any, int] | None] = field(default_factory=dict)
    recent: deque[RecentDiff] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    idle_since: float | None = None
    stale: bool = False
    _snapshots: dict[bool, tuple[str, int, bytes]] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, event: Event, snap: LiveSnapshot) -> Feed:
        feed = cls(event, snap.epoch, snap.version, bytearray())
        feed.reset(snap)
        return feed

    def reset(self, snap: LiveSnapshot) -> None:
        states = bytearray(b"a" * len(self.event.seats))
        index = self.event.index
        for seat, state in snap.taken.items():
            position = index.get(seat)
            if position is not None:
                states[position] = STATE_CODE[state]
        self.states = states
        self.epoch = snap.epoch
        self.version = snap.version
        self.recent.clear()
        self._snapshots.clear()
        self.stale = False

    def snapshot_frame(self, compact: bool) -> bytes:
        cached = self._snapshots.get(compact)
        if cached is not None and cached[0] == self.epoch and cached[1] == self.version:
            return cached[2]
        if compact:
            frame = SnapshotFrame(self.event.id, self.epoch, self.version, states=self.states.decode("ascii"))
        else:
            names = CODE_STATE
            seats = {seat.id: names[code] for seat, code in zip(self.event.seats, self.states, strict=True)}
            frame = SnapshotFrame(self.event.id, self.epoch, self.version, seats=seats)
        framed = text_frame(encoder.encode(frame))
        self._snapshots[compact] = (self.epoch, self.version, framed)
        return framed

    def apply(self, entries: Iterable[tuple[str, dict[str, str]]]) -> RecentDiff | None:
        """Apply stream entries in order; returns the merged diff, or None.

        An entry of another epoch or out of sequence marks the feed stale:
        the caller resynchronises it from a fresh snapshot."""
        prev = self.version
        merged: dict[str, str] = {}
        index, states = self.event.index, self.states
        for entry_id, fields in entries:
            version = int(entry_id.partition("-")[0])
            if version <= self.version:
                continue  # already applied (a re-read after a resync)
            if fields.get("e") != self.epoch or version != self.version + 1:
                self.stale = True
                break
            changes = _changes_decoder.decode(fields["c"])
            for seat, state in changes.items():
                position = index.get(seat)
                if position is not None:
                    states[position] = STATE_CODE[state]
            merged.update(changes)
            self.version = version
        if not merged:
            return None
        frame = text_frame(encoder.encode(DiffFrame(self.event.id, self.epoch, prev, self.version, merged)))
        diff = RecentDiff(prev, self.version, merged, frame)
        self.recent.append(diff)
        return diff

    def frames_since(self, since: int) -> list[bytes] | None:
        """Encoded diffs taking a client from `since` to the current version, if kept."""
        if since == self.version:
            return []
        frames: list[bytes] = []
        for diff in self.recent:
            if frames:
                frames.append(diff.frame)
            elif diff.prev == since:
                frames.append(diff.frame)
        if frames and self.recent[-1].version == self.version:
            return frames
        return None


class Hub:
    def __init__(self, redis_url: str, live: LiveState, catalog_get) -> None:
        self.redis_url = redis_url
        self.live = live
        self.redis = live.scripts.redis
        self.catalog_get = catalog_get
        self.feeds: dict[str, Feed] = {}
        self._creating: dict[str, asyncio.Lock] = {}
        self._reader: Redis | None = None
        self._reader_id: int | None = None
        self._blocked = False
        self._changed = asyncio.Event()

    # ------------------------------------------------------------ subscribing

    async def join(
        self,
        event: Event,
        sink: Sink,
        *,
        compact: bool = False,
        epoch: str | None = None,
        since: int | None = None,
    ) -> Subscriber:
        """Send the client what it needs to be current, then follow the event."""
        feed = await self._feed(event)
        subscriber = Subscriber(sink, compact)
        frames: list[bytes] | None = None
        if epoch == feed.epoch and since is not None:
            frames = feed.frames_since(since)
            if frames is None and 0 <= since < feed.version:
                frames = await self._frames_from_stream(feed, since)
        if frames is None:
            sink.write(feed.snapshot_frame(compact))
        else:
            for frame in frames:
                sink.write(frame)
            sink.write(text_frame(encoder.encode(ResumedFrame(event.id, feed.epoch, feed.version))))
        feed.subscribers[subscriber] = subscriber.fast_target()
        feed.idle_since = None
        subscriber.feed = feed
        METRICS.ws_subscribers.inc()
        return subscriber

    def leave(self, subscriber: Subscriber) -> None:
        feed = subscriber.feed
        if feed is not None and subscriber in feed.subscribers:
            del feed.subscribers[subscriber]
            METRICS.ws_subscribers.dec()
            if not feed.subscribers:
                feed.idle_since = time.monotonic()
        subscriber.feed = None

    async def _frames_from_stream(self, feed: Feed, since: int) -> list[bytes] | None:
        """Older history than the feed keeps: read it from the Redis stream,
        as one merged diff from `since` up to the feed's current version."""
        entries: Any = await self.redis.xrange(event_keys(feed.event.id).stream, min=f"{since + 1}-0", count=100_000)
        if not entries or int(entries[0][0].partition("-")[0]) != since + 1:
            return None  # trimmed away: the client needs a snapshot
        merged: dict[str, str] = {}
        target = feed.version  # the feed may have moved on during the await
        reached = since
        for entry_id, fields in entries:
            version = int(entry_id.partition("-")[0])
            if version > target:
                break
            if fields.get("e") != feed.epoch or version != reached + 1:
                return None
            merged.update(_changes_decoder.decode(fields["c"]))
            reached = version
        if reached != target:
            return None
        return [text_frame(encoder.encode(DiffFrame(feed.event.id, feed.epoch, since, target, merged)))]

    async def _feed(self, event: Event) -> Feed:
        feed = self.feeds.get(event.id)
        if feed is not None:
            return feed
        async with self._creating.setdefault(event.id, asyncio.Lock()):
            feed = self.feeds.get(event.id)
            if feed is None:
                snap = await self._snapshot(event)
                feed = Feed.from_snapshot(event, snap)
                self.feeds[event.id] = feed
                self._wake_reader()
        return feed

    async def _snapshot(self, event: Event) -> LiveSnapshot:
        snap = await self.live.snapshot(event.id)
        if snap is None:
            await self.live.rebuild(event)
            snap = await self.live.snapshot(event.id)
            if snap is None:
                raise RuntimeError(f"live state of {event.id} vanished during its rebuild")
        return snap

    # ------------------------------------------------------------ delivering

    def broadcast(self, feed: Feed, frame: bytes) -> None:
        # The hottest loop of the server: one pass per diff over every client.
        slow: list[Subscriber] | None = None
        for subscriber, target in feed.subscribers.items():
            if target is not None:
                write, buffered, allowance = target
                if buffered() <= allowance:
                    try:
                        write(frame)
                    except RuntimeError:
                        pass  # closed a moment ago (uvloop raises); its receive loop is leaving
                    continue
            elif subscriber.sink.write(frame):
                continue
            if slow is None:
                slow = []
            slow.append(subscriber)
        sent = len(feed.subscribers) - (len(slow) if slow else 0)
        METRICS.frames_sent.inc(sent)
        METRICS.bytes_sent.inc(sent * len(frame))
        if slow:
            for subscriber in slow:
                self.cut_off(subscriber)

    def cut_off(self, subscriber: Subscriber) -> None:
        log.info("closing a client that fell behind (over its send buffer allowance)")
        METRICS.slow_clients_closed.inc()
        self.leave(subscriber)
        subscriber.sink.close(CLOSE_TOO_SLOW, "too slow: reconnect with epoch and since")

    def _send_snapshots(self, feed: Feed) -> None:
        for compact in (False, True):
            members = [s for s in feed.subscribers if s.compact == compact]
            if members:
                frame = feed.snapshot_frame(compact)
                for subscriber in members:
                    if not subscriber.sink.write(frame):
                        self.cut_off(subscriber)

    async def resync(self, feed: Feed) -> None:
        """The feed lost track (new epoch, gap): reload it and resend snapshots."""
        snap = await self._snapshot(feed.event)
        old_epoch = feed.epoch
        feed.reset(snap)
        log.info(
            "event %s resynchronised: epoch %s -> %s, version %d",
            feed.event.id,
            old_epoch,
            feed.epoch,
            feed.version,
        )
        self._send_snapshots(feed)
        self._wake_reader()

    # ------------------------------------------------------------ background

    async def run_reader(self) -> None:
        """Follow every feed's stream; runs until cancelled (supervised by the app)."""
        # No socket timeout: a blocking XREAD waits by design, and a busy event
        # loop must not turn a late reply into an error (redis-py's default is 5 s).
        self._reader = Redis.from_url(
            self.redis_url, decode_responses=True, single_connection_client=True, socket_timeout=None
        )
        try:
            self._reader_id = await self._reader.client_id()
            while True:
                if not self.feeds:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                streams: dict[Any, Any] = {
                    event_keys(eid).stream: f"{feed.version}-0" for eid, feed in self.feeds.items()
                }
                self._blocked = True
                try:
                    result: Any = await self._reader.xread(streams, count=2000, block=2000)
                finally:
                    self._blocked = False
                started = time.perf_counter()
                for stream_key, entries in result or ():
                    event_id = stream_key[stream_key.index("{") + 1 : stream_key.rindex("}")]
                    feed = self.feeds.get(event_id)
                    if feed is None:
                        continue
                    diff = feed.apply(entries)
                    if diff is not None:
                        self.broadcast(feed, diff.frame)
                        changed_at = entries[-1][1].get("t")
                        if changed_at:
                            METRICS.stream_lag.set(max(0.0, time.time() - int(changed_at) / 1000))
                    if feed.stale:
                        await self.resync(feed)
                busy = time.perf_counter() - started
                if busy > COALESCE_MIN_BUSY:
                    # Adaptive coalescing: rest as long as that round took, so fan-out
                    # takes at most half of this process's time however many clients
                    # watch. Changes meanwhile wait in the stream and go out together
                    # as one bigger diff; holds are served in between.
                    await asyncio.sleep(busy * COALESCE_REST_RATIO)
        finally:
            await self._reader.aclose()
            self._reader = None

    def _wake_reader(self) -> None:
        self._changed.set()
        if self._blocked and self._reader_id is not None:
            # Interrupt the blocking XREAD so it picks up the new stream now.
            asyncio.get_running_loop().create_task(self._unblock(self._reader_id))

    async def _unblock(self, client_id: int) -> None:
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
            await self.redis.client_unblock(client_id)

    async def run_watch(self, interval: float) -> None:
        """Every `interval`: resync feeds whose epoch changed (Redis lost data
        and it was rebuilt, here or by another process) and drop idle feeds."""
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for event_id, feed in list(self.feeds.items()):
                if feed.idle_since is not None and now - feed.idle_since > IDLE_FEED_SECONDS:
                    del self.feeds[event_id]
            feeds = list(self.feeds.values())
            if not feeds:
                continue
            async with self.redis.pipeline(transaction=False) as pipe:
                for feed in feeds:
                    pipe.hget(event_keys(feed.event.id).state, "epoch")
                epochs = await pipe.execute()
            for feed, epoch in zip(feeds, epochs, strict=True):
                if epoch != feed.epoch:
                    await self.resync(feed)

    def close_all(self, code: int, reason: str) -> int:
        """Close every client (graceful shutdown); returns how many."""
        closed = 0
        for feed in self.feeds.values():
            for subscriber in list(feed.subscribers):
                self.leave(subscriber)
                subscriber.sink.close(code, reason)
                closed += 1
        return closed
