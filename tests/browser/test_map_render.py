"""The canvas renderer repaints only the seats a diff changed; those repaints
must leave exactly the pixels a full redraw would, at every zoom, whatever
the seats' styles and however closely seats sit (the fan venue's front rows
sit closer than two seat radii)."""

from __future__ import annotations

from server.venues import fan_venue
from tests.support import unique_id

COMPARE_JS = r"""
async (layout) => {
  const { Venue } = await import('/static/js/venue.js');
  const { SeatMap } = await import('/static/js/map.js');
  document.body.innerHTML = '';
  const host = document.createElement('div');
  host.style.cssText = 'position:relative;width:800px;height:600px';
  document.body.append(host);
  const venue = new Venue(layout);
  const states = new Uint8Array(venue.size);
  const map = new SeatMap(host, venue, {
    styleOf: (i) => states[i],
    describe: () => ({ title: '', lines: [] }),
  });
  const painted = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const results = [];
  // Zoomed on the front rows, then on the back row by a section label.
  const back = venue.size - 1;
  for (const [pitchPixels, centre] of [[8, 50], [20, 50], [40, 50], [20, back], [40, back]]) {
    const scale = pitchPixels / venue.pitch;
    map._setView({ scale, tx: 400 - venue.xs[centre] * scale, ty: 300 - venue.ys[centre] * scale });
    await painted();
    const patchesBefore = map.stats.patchCount;
    for (let round = 0; round < 15; round++) {
      const changed = [];
      for (let k = 0; k < 150; k++) {
        const i = Math.max(0, Math.min(venue.size - 1, centre + Math.floor((rand() - 0.5) * 800)));
        states[i] = Math.floor(rand() * 6);
        changed.push(i);
      }
      map.invalidateSeats(changed);
      await painted();
    }
    const read = () => map.ctx.getImageData(0, 0, map.base.width, map.base.height).data;
    const patched = read();
    map.invalidate();
    await painted();
    const full = read();
    let differing = 0;
    for (let k = 0; k < patched.length; k++) if (patched[k] !== full[k]) differing++;
    results.push({ pitchPixels, centre, differing, patches: map.stats.patchCount - patchesBefore });
  }
  return results;
}
"""


async def test_repainting_changed_seats_matches_a_full_redraw(server, new_context):
    event_id = await server.create_event(fan_venue(3000, event_id=unique_id()))
    async with server.http() as client:
        layout = (await client.get(f"/api/events/{event_id}")).json()
    page = await (await new_context()).new_page()
    await page.goto(f"{server.url}/static/css/seatmap.css")  # a page of the server's origin
    results = await page.evaluate(COMPARE_JS, layout)
    assert all(result["patches"] > 0 for result in results), results
    assert [result["differing"] for result in results] == [0] * len(results), results
