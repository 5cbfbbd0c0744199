"""Prometheus metrics of this process, rendered in the text exposition format.

Deliberately tiny (no client library): counters, gauges and histograms with
optional labels, updated with plain attribute arithmetic on hot paths.
Each server process exposes its own figures at `/metrics`, labelled with its
pid, so a scraper can sum over workers. This module owns the metric names.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable


class Counter:
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.values: dict[tuple[str, ...], float] = {} if labels else {(): 0.0}

    def inc(self, amount: float = 1.0, *label_values: str) -> None:
        key = tuple(label_values)
        self.values[key] = self.values.get(key, 0.0) + amount

    def lines(self) -> Iterable[str]:
        for key, value in self.values.items():
            yield f"{self.name}{_labels(self.labels, key)} {_num(value)}"


class Gauge(Counter):
    kind = "gauge"

    def dec(self, amount: float = 1.0, *label_values: str) -> None:
        self.inc(-amount, *label_values)

    def set(self, value: float, *label_values: str) -> None:
        self.values[tuple(label_values)] = value


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels, self.buckets = name, help_text, labels, buckets
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, *label_values: str) -> None:
        series = self.series.get(label_values)
        if series is None:
            # bucket counts, then sum, then count
            series = self.series[label_values] = [0.0] * (len(self.buckets) + 2)
        bucket = bisect.bisect_left(self.buckets, value)
        if bucket < len(self.buckets):
            series[bucket] += 1
        series[-2] += value
        series[-1] += 1

    def lines(self) -> Iterable[str]:
        for key, series in self.series.items():
            running = 0.0
            names = (*self.labels, "le")
            for bound, count in zip(self.buckets, series, strict=False):
                running += count
                yield f"{self.name}_bucket{_labels(names, (*key, _num(bound)))} {_num(running)}"
            yield f"{self.name}_bucket{_labels(names, (*key, '+Inf'))} {_num(series[-1])}"
            yield f"{self.name}_sum{_labels(self.labels, key)} {series[-2]!r}"
            yield f"{self.name}_count{_labels(self.labels, key)} {_num(series[-1])}"


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.ws_connections = Gauge("seatmap_ws_connections", "Open websocket connections.")
        self.ws_subscribers = Gauge("seatmap_ws_subscribers", "Websocket clients following an event.")
        self.frames_sent = Counter("seatmap_ws_frames_sent_total", "Diff frames written to clients.")
        self.bytes_sent = Counter("seatmap_ws_bytes_sent_total", "Bytes of diff frames written to clients.")
        self.slow_clients_closed = Counter(
            "seatmap_ws_slow_clients_closed_total", "Clients cut off for falling behind."
        )
        self.holds = Counter("seatmap_holds_total", "Hold requests by outcome.", ("outcome",))
        self.hold_latency = Histogram(
            "seatmap_hold_seconds", "Time to answer a hold request.", LATENCY_BUCKETS, ("path",)
        )
        self.redis_latency = Histogram("seatmap_redis_seconds", "Redis script call latency.", LATENCY_BUCKETS)
        self.postgres_latency = Histogram("seatmap_postgres_seconds", "Postgres query latency.", LATENCY_BUCKETS)
        self.stream_lag = Gauge("seatmap_stream_lag_seconds", "Age of the newest diff when relayed.")
        self.webhooks = Counter(
            "seatmap_webhook_events_total", "Stripe events by type and outcome.", ("type", "outcome")
        )
        self.rebuilds = Counter("seatmap_live_state_rebuilds_total", "Events rebuilt from Postgres.")
        self.http_requests = Counter("seatmap_http_requests_total", "HTTP requests by status class.", ("status",))
        self.rate_limited = Counter(
            "seatmap_rate_limited_total", "Requests refused by a rate limit, by rule.", ("rule",)
        )
        self.ws_refused = Counter(
            "seatmap_ws_refused_total", "Websocket connections refused, by error code.", ("code",)
        )

    def render(self) -> str:
        pid = str(os.getpid())
        out = [
            "# HELP seatmap_process_info This process.",
            "# TYPE seatmap_process_info gauge",
            f'seatmap_process_info{{pid="{pid}"}} 1',
        ]
        for metric in vars(self).values():
            out.append(f"# HELP {metric.name} {metric.help}\n# TYPE {metric.name} {metric.kind}")
            out.extend(metric.lines())
        return "\n".join(out) + "\n"


METRICS = Metrics()
