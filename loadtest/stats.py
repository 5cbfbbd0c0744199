"""Small statistics: percentiles of latency samples and ratios, as plain functions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def summarize(samples: Iterable[float]) -> dict[str, float]:
    """count, mean, p50, p90, p99, max of the samples (same unit as given)."""
    ordered = sorted(samples)
    count = len(ordered)
    return {
        "count": count,
        "mean": sum(ordered) / count if count else math.nan,
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else math.nan,
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return numerator / denominator


# ---------------------------------------------------------------------------- HDR histograms

HDR_LOWEST_US = 1
HDR_HIGHEST_US = 3_600_000_000  # an hour, in microseconds
HDR_DIGITS = 3


def histogram() -> Any:
    """An empty HDR histogram of latencies in microseconds (1 µs to 1 h, 3 significant digits)."""
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_DIGITS)


def record_ms(hist: Any, value_ms: float, count: int = 1) -> None:
    """Record a latency given in ms (clamped into the histogram's range)."""
    micros = min(HDR_HIGHEST_US, max(HDR_LOWEST_US, round(value_ms * 1000)))
    hist.record_value(micros, count)


def hdr_summary(hist: Any) -> dict[str, float]:
    """count, mean, p50, p90, p95, p99, p99.9, max of an HDR histogram, in ms (NaN when empty)."""
    count = hist.get_total_count()
    if not count:
        return {key: math.nan for key in ("mean", "p50", "p90", "p95", "p99", "p99.9", "max")} | {"count": 0}
    return {
        "count": count,
        "mean": hist.get_mean_value() / 1000,
        "p50": hist.get_value_at_percentile(50) / 1000,
        "p90": hist.get_value_at_percentile(90) / 1000,
        "p95": hist.get_value_at_percentile(95) / 1000,
        "p99": hist.get_value_at_percentile(99) / 1000,
        "p99.9": hist.get_value_at_percentile(99.9) / 1000,
        "max": hist.get_max_value() / 1000,
    }


def hdr_buckets(hist: Any, per_decade: int = 10) -> list[list[float]]:
    """Counts in logarithmic buckets: [[upper bound ms, count], …] for plotting."""
    if not hist.get_total_count():
        return []
    buckets: dict[int, int] = {}
    for item in hist.get_recorded_iterator():
        value_ms = max(item.value_iterated_to / 1000, 0.001)
        index = math.ceil(math.log10(value_ms) * per_decade)
        buckets[index] = buckets.get(index, 0) + item.count_added_in_this_iter_step
    return [[10 ** (index / per_decade), count] for index, count in sorted(buckets.items())]
