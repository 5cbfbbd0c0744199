"""Measure the seat map with 20,000 seats in headless Chromium, and take the
screenshots in docs/img/. Not a test: it asserts nothing, it prints numbers.

    .venv/bin/python -m tests.browser.measure [--seats 20000] [--json out.json] [--no-screenshots]

It starts embedded Redis and Postgres in a temporary directory and a real
server, creates a `fan_venue(20000)` event, and measures:

1. A bake-off of the two ways to draw the map, on the same layout in the
   same page: the page's own canvas renderer (static/js/map.js) against an
   SVG rendering of the same seats (one <circle> per seat, state as a CSS
   class, zoom and pan as a transform on the group: the cheapest honest SVG
   version, with fewer marks than the canvas draws). For each: time to the
   first painted frame, frame intervals while diffs arrive (20 seats every
   50 ms), and frame intervals while zooming and panning every frame.
2. The real page: navigation to first drawn map (event layout, snapshot,
   first render), then frame intervals and repaint cost while the server
   streams diffs made by buyers holding and releasing seats over HTTP.

Chromium runs with --disable-gpu (as in the tests), so canvas and SVG are
both rasterised in software: numbers on a desktop with a GPU are lower.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import apply_migrations
from server.venues import fan_venue
from tests.browser.conftest import CHROMIUM, LAUNCH_ARGS
from tests.support import running_server, test_settings, unique_id

FIRST_RENDER = "window.seatmap && window.seatmap.timings.firstRender !== undefined"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

# Runs in the page: both renderers, driven the same way.
BAKEOFF_JS = r"""
async ([renderer, layout]) => {
  const { Venue } = await import('/static/js/venue.js');
  const { SeatMap } = await import('/static/js/map.js');
  document.body.innerHTML = '';
  document.body.style.margin = '0';
  const host = document.createElement('div');
  host.style.cssText = 'position:relative;width:1280px;height:800px;overflow:hidden;background:#fbfbf9';
  document.body.append(host);
  const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
  const painted = () =>
    new Promise((r) => requestAnimationFrame(() => setTimeout(() => r(performance.now()), 0)));
  const venue = new Venue(layout);
  const states = new Uint8Array(venue.size);
  let apply, setView;

  const t0 = performance.now();
  if (renderer === 'canvas') {
    const map = new SeatMap(host, venue, {
      styleOf: (i) => states[i],
      describe: () => ({ title: '', lines: [] }),
    });
    apply = (changed) => map.invalidateSeats(changed);
    setView = (scale, tx, ty) => map._setView({ scale, tx, ty });
    window.__view = () => ({ scale: map.scale, tx: map.tx, ty: map.ty });
  } else {
    const NS = 'http://www.w3.org/2000/svg';
    const style = document.createElement('style');
    style.textContent = `
      .s0 { fill: #009E73 } .s1 { fill: none; stroke: #D55E00; stroke-width: 0.15 }
      .s2 { fill: #9a9a9a } .s3 { fill: #0072B2 }`;
    document.head.append(style);
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('width', '1280');
    svg.setAttribute('height', '800');
    const g = document.createElementNS(NS, 'g');
    const circles = new Array(venue.size);
    const r = String(venue.pitch * 0.4);
    for (let i = 0; i < venue.size; i++) {
      const c = document.createElementNS(NS, 'circle');
      c.setAttribute('cx', venue.xs[i]);
      c.setAttribute('cy', venue.ys[i]);
      c.setAttribute('r', r);
      c.setAttribute('class', 's0');
      circles[i] = c;
    }
    g.append(...circles);
    svg.append(g);
    host.append(svg);
    const b = venue.bounds;
    const scale = Math.min(1240 / (b.maxX - b.minX), 760 / (b.maxY - b.minY));
    let view = {
      scale,
      tx: 640 - ((b.minX + b.maxX) / 2) * scale,
      ty: 400 - ((b.minY + b.maxY) / 2) * scale,
    };
    setView = (s, tx, ty) => {
      view = { scale: s, tx, ty };
      g.setAttribute('transform', `translate(${tx} ${ty}) scale(${s})`);
    };
    setView(view.scale, view.tx, view.ty);
    apply = (changed) => { for (const i of changed) circles[i].setAttribute('class', 's' + states[i]); };
    window.__view = () => view;
  }
  const firstPaint = (await painted()) - t0;

  const intervals = async (ms, step) => {
    const out = [];
    let last = await frame();
    const end = last + ms;
    while (last < end) {
      step && step(last);
      const now = await frame();
      out.push(now - last);
      last = now;
    }
    return out;
  };

  // Diffs: 20 random seats every 50 ms (400 changes a second).
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const withDiffs = async (ms) => {
    const timer = setInterval(() => {
      const changed = [];
      for (let k = 0; k < 20; k++) {
        const i = Math.floor(rand() * venue.size);
        states[i] = [0, 1, 2, 3][Math.floor(rand() * 4)];
        changed.push(i);
      }
      apply(changed);
    }, 50);
    const frames = await intervals(ms);
    clearInterval(timer);
    return frames;
  };
  const start = window.__view();
  const diffFrames = await withDiffs(3000);
  // The same, zoomed in where a buyer picks seats (seats 20 px apart, centre of the venue).
  const zoom = 20 / venue.pitch;
  const vb = venue.bounds;
  const mid = { x: (vb.minX + vb.maxX) / 2, y: (vb.minY + vb.maxY) / 2 };
  setView(zoom, 640 - mid.x * zoom, 400 - mid.y * zoom);
  await painted();
  const zoomedDiffFrames = await withDiffs(3000);
  setView(start.scale, start.tx, start.ty);
  await painted();

  // Zoom and pan: a new view every frame, for 3 s.
  const panFrames = await intervals(3000, (t) => {
    const k = 1 + 0.5 * Math.sin(t / 300);
    setView(
      start.scale * k,
      start.tx + 80 * Math.sin(t / 200) - 640 * (k - 1),
      start.ty + 60 * Math.cos(t / 250) - 400 * (k - 1),
    );
  });
  return { firstPaint, diffFrames, zoomedDiffFrames, panFrames };
}
"""


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {
        "frames": len(ordered),
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
        "max_ms": round(ordered[-1], 1),
        "fps": round(1000 * len(ordered) / sum(ordered), 1),
    }


async def bakeoff(browser: Any, url: str, layout: dict[str, Any], rounds: int = 3) -> dict[str, Any]:
    """Each renderer `rounds` times, interleaved, in a fresh page each time; samples pooled."""
    pooled: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for renderer in ("canvas", "svg"):
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(f"{url}/static/css/seatmap.css")  # any page of the server's origin
            raw = await page.evaluate(BAKEOFF_JS, [renderer, layout])
            await page.close()
            into = pooled.setdefault(renderer, {})
            into.setdefault("firstPaint", []).append(raw["firstPaint"])
            for key in ("diffFrames", "zoomedDiffFrames", "panFrames"):
                into.setdefault(key, []).extend(raw[key])
    return {
        renderer: {
            "first_paint_ms": [round(ms, 1) for ms in data["firstPaint"]],
            "while_diffs": summary(data["diffFrames"]),
            "while_diffs_zoomed_in": summary(data["zoomedDiffFrames"]),
            "while_zooming": summary(data["panFrames"]),
        }
        for renderer, data in pooled.items()
    }


async def stream_holds(server: Any, event_id: str, seat_ids: list[str], seconds: float) -> int:
    """Buyers hold and release seats over HTTP for `seconds`; returns the number of changes made."""
    made = 0
    deadline = time.monotonic() + seconds
    rng = random.Random(3)

    async def buyer_loop() -> None:
        nonlocal made
        _buyer, token = await server.buyer()
        async with server.http(token) as client:
            hold_id = None
            held = 0
            while time.monotonic() < deadline:
                if held >= 6 and hold_id:
                    response = await client.delete(f"/api/holds/{hold_id}")
                    made += held if response.status_code == 204 else 0
                    held, hold_id = 0, None
                    continue
                seats = rng.sample(seat_ids, 2)
                response = await client.post(f"/api/events/{event_id}/holds", json={"seats": seats})
                if response.status_code == 201:
                    hold_id = response.json()["hold_id"]
                    held = len(response.json()["seats"])
                    made += 2

    await asyncio.gather(*(buyer_loop() for _ in range(12)))
    return made


async def real_page(browser: Any, server: Any, event_id: str, seat_ids: list[str]) -> dict[str, Any]:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{server.url}/events/{event_id}")
    await page.wait_for_function(FIRST_RENDER, timeout=60_000)
    timings = await page.evaluate(
        """() => {
            const t = window.seatmap.timings;
            const layout = performance.getEntriesByType('resource')
                .find(e => /\\/api\\/events\\/[^/]+$/.test(e.name));
            return {eventLoaded: t.eventLoaded, snapshot: t.snapshot, firstRender: t.firstRender,
                    layoutFetch: layout ? layout.duration : null,
                    layoutBytes: layout ? layout.encodedBodySize : null,
                    fullRender: window.seatmap.map.stats.full.at(-1)};
        }"""
    )
    # Full redraw cost at the fitted view: force a few.
    full = await page.evaluate(
        """async () => {
            const m = window.seatmap.map, out = [];
            for (let k = 0; k < 10; k++) {
                m.invalidate();
                await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
                out.push(m.stats.full.at(-1));
            }
            return out;
        }"""
    )
    await page.evaluate(
        """() => {
            window.__frames = [];
            let last = performance.now();
            const tick = (now) => {
                window.__frames.push(now - last);
                last = now;
                if (!window.__stop) requestAnimationFrame(tick);
            };
            requestAnimationFrame(tick);
            window.__patchesBefore = window.seatmap.map.stats.patch.length;
            window.__diffsBefore = window.seatmap.live.stats.diffs;
        }"""
    )
    made = await stream_holds(server, event_id, seat_ids, 5.0)
    await asyncio.sleep(0.5)
    stream = await page.evaluate(
        """() => {
            window.__stop = true;
            const m = window.seatmap.map;
            return {frames: window.__frames, patches: m.stats.patch.slice(window.__patchesBefore),
                    diffs: window.seatmap.live.stats.diffs - window.__diffsBefore};
        }"""
    )
    await page.close()
    return {
        "seats": len(seat_ids),
        "layout_fetch_ms": round(timings["layoutFetch"] or 0, 1),
        "layout_bytes": timings["layoutBytes"],
        "event_loaded_ms": round(timings["eventLoaded"], 1),
        "snapshot_ms": round(timings["snapshot"], 1),
        "first_render_ms": round(timings["firstRender"], 1),
        "full_redraw": summary(full),
        "changes_made": made,
        "diffs_received": stream["diffs"],
        "frames_while_streaming": summary(stream["frames"]),
        "repaint_per_diff": summary(stream["patches"]),
    }


async def screenshots(browser: Any, server: Any, event_id: str, seat_ids: list[str]) -> list[str]:
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    # Some seats held by others, so the map shows more than one colour.
    rng = random.Random(5)
    for _ in range(60):
        _buyer, token = await server.buyer()
        async with server.http(token) as client:
            start = rng.randrange(0, len(seat_ids) - 8)
            await client.post(f"/api/events/{event_id}/holds", json={"count": rng.randint(2, 8)})
            await client.post(f"/api/events/{event_id}/holds", json={"seats": [seat_ids[start]]})
    written = []
    desktop = await browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = await desktop.new_page()
    await page.goto(f"{server.url}/events/{event_id}")
    await page.wait_for_function(FIRST_RENDER, timeout=60_000)
    await page.select_option("#best-count", "4")
    await page.click("#best button[type=submit]")
    await page.wait_for_function("document.querySelectorAll('#cart-list li').length === 4")
    await page.click("#message-close")
    await page.evaluate("window.seatmap.map.fit({animate: false})")
    await page.wait_for_timeout(300)
    path = DOCS_IMG / "map-20k-desktop.png"
    await page.screenshot(path=str(path))
    written.append(path.name)
    # Zoomed in at the front, keyboard focus on a seat: marks, focus ring, tooltip.
    await page.focus("#seat-map")
    await page.keyboard.press("ArrowRight")
    await page.wait_for_timeout(400)
    await page.keyboard.press("ArrowDown")
    await page.wait_for_timeout(400)
    path = DOCS_IMG / "map-20k-zoomed.png"
    await page.screenshot(path=str(path))
    written.append(path.name)
    await desktop.close()

    phone = await browser.new_context(
        viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = await phone.new_page()
    await page.goto(f"{server.url}/events/{event_id}")
    await page.wait_for_function(FIRST_RENDER, timeout=60_000)
    await page.wait_for_timeout(300)
    path = DOCS_IMG / "map-20k-phone.png"
    await page.screenshot(path=str(path))
    written.append(path.name)
    await phone.close()
    return written


async def main(seats: int, take_screenshots: bool) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="seatmap-measure-")))
        redis = stack.enter_context(EmbeddedRedis(tmp / "redis"))
        postgres = stack.enter_context(EmbeddedPostgres(tmp / "postgres"))
        await apply_migrations(postgres.url)
        settings = test_settings(redis.url, postgres.url, tmp / "server", max_seats_per_buyer=8)
        async with running_server(settings) as server:
            body = fan_venue(seats, event_id=unique_id("measure"), name=f"Seatmap Hall ({seats:,} seats)")
            event_id = await server.create_event(body)
            seat_ids = [seat["id"] for seat in body["seats"]]
            async with server.http() as client:
                layout = (await client.get(f"/api/events/{event_id}")).json()
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
                )
                results: dict[str, Any] = {"chromium": browser.version, "seats": len(seat_ids)}
                results["bakeoff"] = await bakeoff(browser, server.url, layout)
                results["page"] = await real_page(browser, server, event_id, seat_ids)
                if take_screenshots:
                    results["screenshots"] = await screenshots(browser, server, event_id, seat_ids)
                await browser.close()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seats", type=int, default=20_000)
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args()
    text = json.dumps(asyncio.run(main(args.seats, not args.no_screenshots)), indent=2)
    print(text)
    if args.json_path:
        Path(args.json_path).write_text(text + "\n")
