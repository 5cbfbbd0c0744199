// The venue model: an event's seat layout in typed arrays, with the
// questions the page asks of it (which seat is under this point, which seat
// is to the left of this one, what do we call it). Pure: no DOM, no network.
//
// Seats are addressed by their *layout index* (their position in
// `GET /api/events/{id}`), the order the compact snapshot follows, so live
// state is a Uint8Array indexed the same way.

export const TIERS = ["REGULAR", "PREMIUM", "VIP"];

export class Venue {
  constructor(event) {
    this.id = event.id;
    this.name = event.name;
    this.startsAt = event.starts_at;
    this.currency = event.currency || "usd";
    // {max_seats_per_buyer, hold_seconds, checkout_seconds}; older servers sent none.
    this.limits = event.limits || {};
    this.seats = event.seats; // the seat objects as served, for labels
    const n = event.seats.length;
    this.size = n;
    this.index = new Map();
    this.xs = new Float64Array(n);
    this.ys = new Float64Array(n);
    this.rowOf = new Int32Array(n); // index into this.rows
    this.posInRow = new Int32Array(n); // position in the row, left to right on screen
    this.sections = []; // names, in order of first appearance
    this.sectionOf = new Uint16Array(n);
    this.rows = []; // {section, label, seats: [layout indices, left to right], meanY}

    const sectionIds = new Map();
    const rowIds = new Map();
    for (let i = 0; i < n; i++) {
      const seat = event.seats[i];
      this.index.set(seat.id, i);
      this.xs[i] = seat.x;
      this.ys[i] = seat.y;
      let s = sectionIds.get(seat.section);
      if (s === undefined) {
        s = this.sections.length;
        sectionIds.set(seat.section, s);
        this.sections.push(seat.section);
      }
      this.sectionOf[i] = s;
      const rowKey = seat.section + "\u0000" + seat.row;
      let r = rowIds.get(rowKey);
      if (r === undefined) {
        r = this.rows.length;
        rowIds.set(rowKey, r);
        this.rows.push({ section: s, label: seat.row, seats: [], meanY: 0 });
      }
      this.rowOf[i] = r;
      this.rows[r].seats.push(i);
    }
    for (const row of this.rows) {
      row.seats.sort((a, b) => this.xs[a] - this.xs[b]);
      row.seats.forEach((seat, pos) => (this.posInRow[seat] = pos));
      row.meanY = row.seats.reduce((sum, i) => sum + this.ys[i], 0) / row.seats.length;
    }
    // Rows of each section from the top of the screen down, for up/down moves.
    this.sectionRows = this.sections.map(() => []);
    this.rows.forEach((row, r) => this.sectionRows[row.section].push(r));
    for (const list of this.sectionRows) list.sort((a, b) => this.rows[a].meanY - this.rows[b].meanY);
    this.rowRank = new Int32Array(this.rows.length);
    for (const list of this.sectionRows) list.forEach((r, rank) => (this.rowRank[r] = rank));

    this.pitch = this._pitch();
    this.bounds = this._bounds();
    const focal = event.focal_point;
    this.focal = focal ? { x: focal.x, y: focal.y } : { x: (this.bounds.minX + this.bounds.maxX) / 2, y: this.bounds.minY };
    this.sectionLabels = this._sectionLabels();
    this._buildGrid();
    this.stage = this._stage();
  }

  /**
   * The stage: a rectangle whose front edge is the focal point, on the side
   * away from the seats, shrunk until it covers no seat. Four corners in
   * venue coordinates, its centre and the angle its text is drawn along.
   */
  _stage() {
    const { minX, minY, maxX, maxY } = this.bounds;
    let cx = 0, cy = 0;
    for (let i = 0; i < this.size; i++) {
      cx += this.xs[i];
      cy += this.ys[i];
    }
    cx /= this.size;
    cy /= this.size;
    // Pointing from the seats to the stage, snapped to 15° steps so that an
    // uneven last row does not tilt it.
    const step = Math.PI / 12;
    const len = Math.hypot(this.focal.x - cx, this.focal.y - cy);
    const raw = len < 1e-9 ? -Math.PI / 2 : Math.atan2(this.focal.y - cy, this.focal.x - cx);
    const snapped = Math.round(raw / step) * step;
    const ux = Math.cos(snapped), uy = Math.sin(snapped);
    const across = { x: -uy, y: ux };
    const p = this.pitch;
    let depth = Math.max(2 * p, 0.05 * Math.max(maxX - minX, maxY - minY));
    let width = Math.max(4 * p, 0.4 * (maxX - minX));
    const corners = () => {
      const gap = 0.3 * p;
      const near = { x: this.focal.x + ux * gap, y: this.focal.y + uy * gap };
      const far = { x: near.x + ux * depth, y: near.y + uy * depth };
      const h = width / 2;
      return [
        { x: near.x + across.x * h, y: near.y + across.y * h },
        { x: far.x + across.x * h, y: far.y + across.y * h },
        { x: far.x - across.x * h, y: far.y - across.y * h },
        { x: near.x - across.x * h, y: near.y - across.y * h },
      ];
    };
    const coversSeat = () => {
      for (let i = 0; i < this.size; i++) {
        const dx = this.xs[i] - this.focal.x, dy = this.ys[i] - this.focal.y;
        const a = dx * ux + dy * uy; // along, away from the seats
        const b = Math.abs(dx * across.x + dy * across.y);
        if (a > 0 && a < depth + 0.3 * p + p / 2 && b < width / 2 + p / 2) return true;
      }
      return false;
    };
    for (let tries = 0; tries < 8 && coversSeat(); tries++) {
      width *= 0.7;
      depth *= 0.8;
    }
    const box = corners();
    return {
      corners: box,
      centre: { x: (box[0].x + box[2].x) / 2, y: (box[0].y + box[2].y) / 2 },
      width,
      depth,
      angle: Math.atan2(across.y, across.x),
    };
  }

  /** Typical distance between neighbouring seats of a row (the seat size follows it). */
  _pitch() {
    const gaps = [];
    for (const row of this.rows) {
      for (let k = 1; k < row.seats.length && gaps.length < 4000; k++) {
        const a = row.seats[k - 1], b = row.seats[k];
        const d = Math.hypot(this.xs[a] - this.xs[b], this.ys[a] - this.ys[b]);
        if (d > 0) gaps.push(d);
      }
    }
    if (!gaps.length) {
      const b = this._bounds();
      return Math.max(b.maxX - b.minX, b.maxY - b.minY, 1) / Math.max(1, Math.sqrt(this.size));
    }
    gaps.sort((a, b) => a - b);
    return gaps[Math.floor(gaps.length / 2)];
  }

  _bounds() {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < this.size; i++) {
      const x = this.xs[i], y = this.ys[i];
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
    return { minX, minY, maxX, maxY };
  }

  /**
   * One label per section, just behind its back row (the side away from the
   * stage), where sections spread apart and labels do not cover seats.
   */
  _sectionLabels() {
    return this.sections.map((name, s) => {
      let cx = 0, cy = 0, count = 0;
      for (let i = 0; i < this.size; i++) {
        if (this.sectionOf[i] !== s) continue;
        cx += this.xs[i];
        cy += this.ys[i];
        count++;
      }
      cx /= count;
      cy /= count;
      let dx = cx - this.focal.x, dy = cy - this.focal.y; // away from the stage
      const len = Math.hypot(dx, dy);
      if (len < 1e-9) [dx, dy] = [0, 1];
      else [dx, dy] = [dx / len, dy / len];
      // The seat furthest back along the section's centre line.
      let back = -1, best = -Infinity;
      for (let i = 0; i < this.size; i++) {
        if (this.sectionOf[i] !== s) continue;
        const ox = this.xs[i] - cx, oy = this.ys[i] - cy;
        const along = ox * dx + oy * dy;
        const across = Math.abs(ox * -dy + oy * dx);
        const score = along - 0.5 * across;
        if (score > best) {
          best = score;
          back = i;
        }
      }
      return { name, x: this.xs[back] + dx * this.pitch, y: this.ys[back] + dy * this.pitch, dx, dy };
    });
  }

  // A uniform grid of buckets one pitch wide, for "which seat is here".
  _buildGrid() {
    const cell = this.pitch;
    const { minX, minY, maxX, maxY } = this.bounds;
    this.gridCell = cell;
    this.gridCols = Math.max(1, Math.floor((maxX - minX) / cell) + 1);
    this.gridRows = Math.max(1, Math.floor((maxY - minY) / cell) + 1);
    const cells = this.gridCols * this.gridRows;
    const counts = new Int32Array(cells + 1);
    const cellOf = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const c = this._cellOf(this.xs[i], this.ys[i]);
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < cells; c++) counts[c + 1] += counts[c];
    const fill = counts.slice(0, cells);
    const items = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) items[fill[cellOf[i]]++] = i;
    this.gridStart = counts;
    this.gridItems = items;
  }

  _cellOf(x, y) {
    const col = Math.min(this.gridCols - 1, Math.max(0, Math.floor((x - this.bounds.minX) / this.gridCell)));
    const row = Math.min(this.gridRows - 1, Math.max(0, Math.floor((y - this.bounds.minY) / this.gridCell)));
    return row * this.gridCols + col;
  }

  /** The seat whose centre is nearest (x, y) within `maxDistance`, or -1. */
  seatAt(x, y, maxDistance) {
    const { minX, minY } = this.bounds;
    const reach = Math.ceil(maxDistance / this.gridCell);
    const col = Math.floor((x - minX) / this.gridCell);
    const row = Math.floor((y - minY) / this.gridCell);
    let found = -1, best = maxDistance * maxDistance;
    for (let r = row - reach; r <= row + reach; r++) {
      if (r < 0 || r >= this.gridRows) continue;
      for (let c = col - reach; c <= col + reach; c++) {
        if (c < 0 || c >= this.gridCols) continue;
        const cell = r * this.gridCols + c;
        for (let k = this.gridStart[cell]; k < this.gridStart[cell + 1]; k++) {
          const i = this.gridItems[k];
          const dx = this.xs[i] - x, dy = this.ys[i] - y;
          const d = dx * dx + dy * dy;
          if (d <= best) {
            best = d;
            found = i;
          }
        }
      }
    }
    return found;
  }

  /** Every seat whose centre is within `distance` of (x, y), appended to `out`. */
  seatsNear(x, y, distance, out) {
    const { minX, minY } = this.bounds;
    const reach = Math.ceil(distance / this.gridCell);
    const col = Math.floor((x - minX) / this.gridCell);
    const row = Math.floor((y - minY) / this.gridCell);
    const limit = distance * distance;
    for (let r = Math.max(0, row - reach); r <= Math.min(this.gridRows - 1, row + reach); r++) {
      for (let c = Math.max(0, col - reach); c <= Math.min(this.gridCols - 1, col + reach); c++) {
        const cell = r * this.gridCols + c;
        for (let k = this.gridStart[cell]; k < this.gridStart[cell + 1]; k++) {
          const i = this.gridItems[k];
          const dx = this.xs[i] - x, dy = this.ys[i] - y;
          if (dx * dx + dy * dy <= limit) out.push(i);
        }
      }
    }
    return out;
  }

  /**
   * The seat to move to from `i` for an arrow key (`left`, `right`, `up`,
   * `down`, as drawn on screen), or -1. Left/right walk the row; up/down go
   * to the next row of the section, nearest across; past the end of a row or
   * section, the nearest seat in that direction anywhere.
   */
  neighbour(i, direction) {
    const row = this.rows[this.rowOf[i]];
    const pos = this.posInRow[i];
    if (direction === "left" && pos > 0) return row.seats[pos - 1];
    if (direction === "right" && pos < row.seats.length - 1) return row.seats[pos + 1];
    if (direction === "up" || direction === "down") {
      const ranked = this.sectionRows[row.section];
      const rank = this.rowRank[this.rowOf[i]] + (direction === "up" ? -1 : 1);
      if (rank >= 0 && rank < ranked.length) return this._nearestInRow(ranked[rank], this.xs[i]);
    }
    return this._nearestToward(i, direction);
  }

  /** First or last seat of the row of `i`. */
  rowEnd(i, last) {
    const seats = this.rows[this.rowOf[i]].seats;
    return last ? seats[seats.length - 1] : seats[0];
  }

  _nearestInRow(r, x) {
    let found = -1, best = Infinity;
    for (const j of this.rows[r].seats) {
      const d = Math.abs(this.xs[j] - x);
      if (d < best) {
        best = d;
        found = j;
      }
    }
    return found;
  }

  _nearestToward(i, direction) {
    const x = this.xs[i], y = this.ys[i], min = this.pitch * 0.3;
    let found = -1, best = Infinity;
    for (let j = 0; j < this.size; j++) {
      const dx = this.xs[j] - x, dy = this.ys[j] - y;
      let along, across;
      if (direction === "left") [along, across] = [-dx, dy];
      else if (direction === "right") [along, across] = [dx, dy];
      else if (direction === "up") [along, across] = [-dy, dx];
      else [along, across] = [dy, dx];
      if (along < min) continue;
      const score = along + 2 * Math.abs(across);
      if (score < best) {
        best = score;
        found = j;
      }
    }
    return found;
  }

  /** A good first seat for keyboard focus: the available one nearest the stage. */
  startSeat(isAvailable) {
    let found = -1, best = Infinity;
    for (let pass = 0; pass < 2 && found < 0; pass++) {
      for (let i = 0; i < this.size; i++) {
        if (pass === 0 && !isAvailable(i)) continue;
        const d = Math.hypot(this.xs[i] - this.focal.x, this.ys[i] - this.focal.y);
        if (d < best) {
          best = d;
          found = i;
        }
      }
    }
    return found;
  }

  tiers() {
    const present = new Map();
    for (const seat of this.seats) {
      const range = present.get(seat.tier) || { min: Infinity, max: -Infinity };
      range.min = Math.min(range.min, seat.price_cents);
      range.max = Math.max(range.max, seat.price_cents);
      present.set(seat.tier, range);
    }
    return TIERS.slice().reverse().filter((t) => present.has(t)).map((t) => ({ tier: t, ...present.get(t) }));
  }
}
