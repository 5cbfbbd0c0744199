"""A run's report as one self-contained HTML page: tables and inline SVG
plots (latency over time, latency histograms, throughput, server CPU and
memory). No script, no stylesheet or font from elsewhere: it opens from a
file, offline, and can be attached to an issue as it is."""

from __future__ import annotations

import html
import json
import math
from typing import Any

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
WIDTH, HEIGHT = 760, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 40


def _nice(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def _finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and isinstance(v, int | float) and math.isfinite(v)]


def line_chart(title: str, xs: list[float], series: dict[str, list[Any]], unit: str, log: bool = False) -> str:
    """Lines over a shared x axis (seconds); `None`/NaN points leave gaps."""
    ys_all = [y for ys in series.values() for y in _finite(ys)]
    if not xs or not ys_all:
        return f"<p><em>{html.escape(title)}: no data</em></p>"
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1
    if log:
        low = min(y for y in ys_all if y > 0) if any(y > 0 for y in ys_all) else 0.001
        y0, y1 = math.log10(low), math.log10(max(ys_all) if max(ys_all) > low else low * 10)
    else:
        y0, y1 = 0.0, max(ys_all) * 1.08 or 1.0
    if y1 <= y0:
        y1 = y0 + 1

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        v = math.log10(y) if log else y
        return HEIGHT - BOTTOM - (v - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM)

    parts = [_frame(title)]
    for i in range(5):
        v = y0 + (y1 - y0) * i / 4
        value = 10**v if log else v
        y = py(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_nice(value)}</text>')
    for i in range(6):
        x = x0 + (x1 - x0) * i / 5
        parts.append(f'<text x="{px(x):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{_nice(x)}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">seconds</text>')
    parts.append(f'<text x="12" y="{TOP - 10}">{html.escape(unit)}</text>')
    for n, (name, ys) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        path, pen_down = [], False
        for x, y in zip(xs, ys, strict=False):
            ok = y is not None and isinstance(y, int | float) and math.isfinite(y) and (y > 0 or not log)
            if not ok:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{px(x):.1f},{py(y):.1f}")
            pen_down = True
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        parts.append(f'<text x="{LEFT + 8 + 120 * n}" y="{TOP - 10}" fill="{colour}">■ {html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(title: str, buckets: list[list[float]], unit: str = "ms") -> str:
    """Bars over logarithmic latency buckets ([[upper bound, count], …])."""
    if not buckets:
        return f"<p><em>{html.escape(title)}: no data</em></p>"
    top = max(count for _, count in buckets)
    lows = [b[0] for b in buckets]
    x0, x1 = math.log10(min(lows)) - 0.1, math.log10(max(lows)) + 0.05
    span = x1 - x0 or 1

    def px(value: float) -> float:
        return LEFT + (math.log10(value) - x0) / span * (WIDTH - LEFT - RIGHT)

    parts = [_frame(title)]
    bar = max(2.0, (WIDTH - LEFT - RIGHT) / max(10, len(buckets) * 1.6))
    for upper, count in buckets:
        h = count / top * (HEIGHT - TOP - BOTTOM)
        parts.append(
            f'<rect x="{px(upper) - bar:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'fill="{COLOURS[0]}"><title>≤ {_nice(upper)} {unit}: {count:,}</title></rect>'
        )
    decade = math.floor(x0)
    while decade <= x1:
        if decade >= x0:
            x = px(10**decade)
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#eee"/>')
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{_nice(10**decade)}</text>'
            )
        decade += 1
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">{unit} (log scale)</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _frame(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>'
        f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>'
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>'
    )


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def render(result: dict[str, Any]) -> str:
    """The page for a `drop`, `replay` or `checkout` result."""
    title = f"Seatmap loadtest {result.get('command', '')}: {result.get('date', '')}"
    violations = result.get("violations", [])
    verdict = (
        '<p class="ok">All invariants held.</p>'
        if not violations
        else f'<p class="bad">{len(violations)} invariant violation(s):</p><pre>'
        + html.escape(json.dumps(violations[:50], indent=1))
        + "</pre>"
    )
    body = [f"<h1>{html.escape(title)}</h1>", verdict]
    machine = result.get("machine", {})
    body.append("<h2>Run</h2>")
    body.append(
        _table(
            [("commit", result.get("commit")), ("server code modified", result.get("server_code_modified")),
             ("cores", machine.get("cores")), ("CPU", machine.get("cpu")), ("RAM GiB", machine.get("ram_gib")),
             *sorted((result.get("params") or {}).items())]
        )
    )  # fmt: skip
    summary = result.get("summary") or {}
    if summary:
        body.append("<h2>Summary</h2>")
        body.append(_table(sorted(summary.items())))
    for name, block in (result.get("latency") or {}).items():
        body.append(f"<h3>{html.escape(name)}</h3>")
        body.append(_table([(k, v) for k, v in block.get("summary", {}).items()]))
        body.append(histogram_chart(f"{name}: histogram", block.get("buckets", [])))
    if result.get("errors"):
        body.append("<h2>Errors by code</h2>")
        body.append(_table(sorted(result["errors"].items(), key=lambda kv: -kv[1])))
    series = result.get("series") or {}
    xs = series.get("t", [])
    if xs:
        body.append("<h2>Over time</h2>")
        body.append(
            line_chart(
                "hold latency", xs, {k: series.get(k, []) for k in ("p50_ms", "p99_ms", "max_ms")}, "ms", log=True
            )
        )
        body.append(
            line_chart(
                "throughput",
                xs,
                {"holds/s": series.get("holds_per_s", []), "errors/s": series.get("errors_per_s", [])},
                "per second",
            )
        )
        body.append(line_chart("frames received", xs, {"frames/s": series.get("frames_per_s", [])}, "per second"))
        body.append(line_chart("connected clients", xs, {"connected": series.get("connected", [])}, "clients"))
    resources = result.get("resources") or {}
    if resources.get("t"):
        t0 = xs[0] if xs else resources["t"][0]
        rx = [t - t0 for t in resources["t"]]
        names = [k for k in resources if k != "t"]
        body.append(line_chart("CPU (cores busy)", rx, {n: resources[n]["cpu"] for n in names}, "cores"))
        body.append(line_chart("memory (RSS)", rx, {n: resources[n]["rss_mib"] for n in names}, "MiB"))
    for name, value in (result.get("tables") or {}).items():
        body.append(f"<h2>{html.escape(name)}</h2>")
        body.append(_table(value))
    style = (
        "body{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:3px 8px;"
        "text-align:left;font-size:13px}th{background:#f6f6f6}.ok{color:#1a7f37;font-weight:bold}"
        ".bad{color:#c00;font-weight:bold}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}"
        "svg{display:block;margin:.5em 0}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
