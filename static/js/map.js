// Drawing the seat map on canvas, hit testing, zoom and pan.
//
// Two stacked canvases: the base (stage, seats, section labels) and an
// overlay (hover and focus rings). A change of view redraws the base once per
// animation frame; a diff only repaints the seats it changed, so a stream of
// diffs costs in proportion to the seats that changed, not to the venue.
// Each seat style is drawn once into a small sprite at the current zoom and
// stamped with drawImage. docs/ui.md has the measurements behind choosing
// canvas over SVG.

// Seat styles: what the buyer sees, state plus whose it is.
export const STYLE = { AVAILABLE: 0, HELD: 1, BOOKED: 2, MINE: 3, CHECKOUT: 4, PENDING: 5 };
export const STYLE_NAMES = ["available", "held", "booked", "mine", "checkout", "pending"];

// Okabe–Ito colours (safe for the common colour-vision deficiencies), each
// style with a second cue besides colour: disc, ring, cross, check, square.
export const COLOURS = {
  background: "#fbfbf9",
  available: "#009E73", // bluish green, solid disc
  held: "#D55E00", // vermillion, hollow ring
  booked: "#9a9a9a", // grey disc with a dark cross
  bookedMark: "#2f2f2f",
  mine: "#0072B2", // blue disc with a white check
  checkout: "#CC79A7", // reddish purple rounded square with a white check
  stage: "#3b3b3b",
  label: "#1d1d1d",
};

const MIN_SPRITE_RADIUS = 1.6; // device pixels; below it seats are plain squares
const CLICK_SLOP = 5; // CSS pixels a pointer may move and still click

/** Draw one seat of `style` centred at (cx, cy) with radius r (device pixels). */
export function drawSeat(ctx, style, cx, cy, r) {
  ctx.save();
  const mark = Math.max(1, r * 0.2);
  switch (style) {
    case STYLE.AVAILABLE:
      ctx.fillStyle = COLOURS.available;
      disc(ctx, cx, cy, r);
      break;
    case STYLE.HELD: {
      const w = Math.max(1, r * 0.38);
      ctx.strokeStyle = COLOURS.held;
      ctx.lineWidth = w;
      ctx.beginPath();
      ctx.arc(cx, cy, Math.max(0.5, r - w / 2), 0, Math.PI * 2);
      ctx.stroke();
      break;
    }
    case STYLE.BOOKED:
      ctx.fillStyle = COLOURS.booked;
      disc(ctx, cx, cy, r);
      if (r >= 3.5) {
        const k = r * 0.42;
        ctx.strokeStyle = COLOURS.bookedMark;
        ctx.lineWidth = mark;
        ctx.lineCap = "round";
        ctx.beginPath();
        ctx.moveTo(cx - k, cy - k);
        ctx.lineTo(cx + k, cy + k);
        ctx.moveTo(cx + k, cy - k);
        ctx.lineTo(cx - k, cy + k);
        ctx.stroke();
      }
      break;
    case STYLE.MINE:
    case STYLE.CHECKOUT:
      ctx.fillStyle = style === STYLE.MINE ? COLOURS.mine : COLOURS.checkout;
      if (style === STYLE.MINE) disc(ctx, cx, cy, r);
      else roundedSquare(ctx, cx, cy, r * 0.92);
      if (r >= 3.5) {
        ctx.strokeStyle = "#ffffff";
        ctx.lineWidth = Math.max(1.2, r * 0.24);
        ctx.lineCap = "round";
        ctx.lineJoin = "round";
        ctx.beginPath();
        ctx.moveTo(cx - r * 0.45, cy + r * 0.02);
        ctx.lineTo(cx - r * 0.12, cy + r * 0.35);
        ctx.lineTo(cx + r * 0.48, cy - r * 0.32);
        ctx.stroke();
      }
      break;
    case STYLE.PENDING: {
      const w = Math.max(1, r * 0.3);
      ctx.strokeStyle = COLOURS.mine;
      ctx.lineWidth = w;
      ctx.setLineDash([Math.max(1, r * 0.5), Math.max(1, r * 0.35)]);
      ctx.beginPath();
      ctx.arc(cx, cy, Math.max(0.5, r - w / 2), 0, Math.PI * 2);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = COLOURS.mine;
      disc(ctx, cx, cy, r * 0.3);
      break;
    }
  }
  ctx.restore();
}

function disc(ctx, cx, cy, r) {
  ctx.beginPath();
  ctx.arc(cx, cy, r, 0, Math.PI * 2);
  ctx.fill();
}

function roundedSquare(ctx, cx, cy, half) {
  ctx.beginPath();
  ctx.roundRect(cx - half, cy - half, half * 2, half * 2, half * 0.35);
  ctx.fill();
}

const prefersReducedMotion = () => matchMedia("(prefers-reduced-motion: reduce)").matches;

export class SeatMap {
  /**
   * `host`: the element the canvases fill (positioned). `styleOf(i)`: the
   * STYLE of seat i. `describe(i)`: {title, lines[]} for the tooltip.
   * Callbacks: onSeatClick(i, how), onRender({kind, ms}).
   */
  constructor(host, venue, { styleOf, describe, onSeatClick, onRender } = {}) {
    this.host = host;
    this.venue = venue;
    this.styleOf = styleOf;
    this.describe = describe;
    this.onSeatClick = onSeatClick || (() => {});
    this.onRender = onRender || (() => {});
    this.base = this._canvas("map-base");
    this.overlay = this._canvas("map-overlay");
    this.tip = document.createElement("div");
    this.tip.className = "map-tip";
    this.tip.hidden = true;
    this.tip.setAttribute("aria-hidden", "true"); // the focused seat's option carries the same words
    host.append(this.base, this.overlay, this.tip);
    this.ctx = this.base.getContext("2d", { alpha: false });
    this.octx = this.overlay.getContext("2d");

    this.dpr = 1;
    this.width = 0;
    this.height = 0;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.fitted = false;
    this.hover = -1;
    this.focus = -1;
    this.showFocus = false;
    this.tipSeat = -1;

    this.dirtyAll = true;
    this.dirtySeats = new Set();
    this.overlayDirty = true;
    this.raf = 0;
    this.sprites = null;
    this.spriteRadius = -1;
    this.animation = null;
    this.stats = { full: [], patch: [], fullCount: 0, patchCount: 0 };

    this._setupInput();
    new ResizeObserver(() => this._resize()).observe(host);
    this._resize();
  }

  _canvas(className) {
    const canvas = document.createElement("canvas");
    canvas.className = className;
    canvas.setAttribute("aria-hidden", "true");
    return canvas;
  }

  // ------------------------------------------------------------ view

  /** Seat radius in CSS pixels at the current zoom. */
  get seatRadius() {
    return this.venue.pitch * this.scale * 0.4;
  }

  get minScale() {
    return this.fitScale * 0.6;
  }

  get maxScale() {
    return 90 / this.venue.pitch;
  }

  _contentBounds() {
    const b = this.venue.bounds, p = this.venue.pitch;
    let { minX, minY, maxX, maxY } = b;
    for (const c of this.venue.stage.corners) {
      minX = Math.min(minX, c.x);
      maxX = Math.max(maxX, c.x);
      minY = Math.min(minY, c.y);
      maxY = Math.max(maxY, c.y);
    }
    for (const l of this.venue.sectionLabels) {
      minY = Math.min(minY, l.y - p);
      maxY = Math.max(maxY, l.y + p);
    }
    return { minX: minX - p, minY: minY - p, maxX: maxX + p, maxY: maxY + p };
  }

  _fitView() {
    const c = this._contentBounds();
    const pad = 20;
    const scale = Math.min(
      (this.width - 2 * pad) / Math.max(1e-9, c.maxX - c.minX),
      (this.height - 2 * pad) / Math.max(1e-9, c.maxY - c.minY),
    );
    return {
      scale,
      tx: this.width / 2 - ((c.minX + c.maxX) / 2) * scale,
      ty: this.height / 2 - ((c.minY + c.maxY) / 2) * scale,
    };
  }

  fit({ animate = true } = {}) {
    const view = this._fitView();
    this.fitScale = view.scale;
    this._moveTo(view, animate);
  }

  _resize() {
    const rect = this.host.getBoundingClientRect();
    const width = Math.max(1, Math.round(rect.width));
    const height = Math.max(1, Math.round(rect.height));
    const dpr = Math.min(3, window.devicePixelRatio || 1);
    if (width === this.width && height === this.height && dpr === this.dpr) return;
    const centre = this.fitted ? this.toVenue(this.width / 2, this.height / 2) : null;
    this.width = width;
    this.height = height;
    this.dpr = dpr;
    for (const canvas of [this.base, this.overlay]) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    this.fitScale = this._fitView().scale;
    if (!this.fitted) {
      this.fitted = true;
      this._setView(this._fitView());
    } else {
      this._setView({ scale: this.scale, tx: width / 2 - centre.x * this.scale, ty: height / 2 - centre.y * this.scale });
    }
    this.invalidate();
  }

  toVenue(sx, sy) {
    return { x: (sx - this.tx) / this.scale, y: (sy - this.ty) / this.scale };
  }

  toScreen(i) {
    return { x: this.venue.xs[i] * this.scale + this.tx, y: this.venue.ys[i] * this.scale + this.ty };
  }

  /** Where seat i is drawn, in client (viewport) coordinates: for tests and the tooltip. */
  clientPositionOf(i) {
    const rect = this.base.getBoundingClientRect();
    const p = this.toScreen(i);
    return { x: rect.left + p.x, y: rect.top + p.y };
  }

  _setView({ scale, tx, ty }) {
    const s = Math.min(this.maxScale, Math.max(this.minScale || 0, scale));
    // Zoom limits keep the point that was asked for where it was.
    if (s !== scale) {
      const cx = this.width / 2, cy = this.height / 2;
      const vx = (cx - tx) / scale, vy = (cy - ty) / scale;
      tx = cx - vx * s;
      ty = cy - vy * s;
    }
    // Keep some of the venue on screen.
    const c = this._contentBounds();
    const margin = 40;
    tx = Math.min(this.width - margin - c.minX * s, Math.max(margin - c.maxX * s, tx));
    ty = Math.min(this.height - margin - c.minY * s, Math.max(margin - c.maxY * s, ty));
    if (s === this.scale && tx === this.tx && ty === this.ty) return;
    this.scale = s;
    this.tx = tx;
    this.ty = ty;
    this.invalidate();
    this._placeTip();
  }

  /** Where the view is going: the end of a running animation, else where it is. */
  get targetView() {
    return this.animation ? this.animationTarget : { scale: this.scale, tx: this.tx, ty: this.ty };
  }

  _moveTo(view, animate) {
    this.animation = null;
    this.animationTarget = view;
    if (!animate || prefersReducedMotion()) {
      this._setView(view);
      return;
    }
    const from = { scale: this.scale, tx: this.tx, ty: this.ty };
    const start = performance.now();
    const duration = 180;
    const step = (now) => {
      if (this.animation !== step) return;
      const t = Math.min(1, (now - start) / duration);
      const e = t * (2 - t);
      this._setView({
        scale: from.scale + (view.scale - from.scale) * e,
        tx: from.tx + (view.tx - from.tx) * e,
        ty: from.ty + (view.ty - from.ty) * e,
      });
      if (t < 1) requestAnimationFrame(step);
      else this.animation = null;
    };
    this.animation = step;
    requestAnimationFrame(step);
  }

  /** Zoom by `factor` about the point (sx, sy) in CSS pixels of the map (default: its centre). */
  zoomBy(factor, sx = this.width / 2, sy = this.height / 2, { animate = false } = {}) {
    // From where a running animation is heading, so quick presses add up.
    const from = this.targetView;
    const scale = Math.min(this.maxScale, Math.max(this.minScale, from.scale * factor));
    const v = { x: (sx - from.tx) / from.scale, y: (sy - from.ty) / from.scale };
    this._moveTo({ scale, tx: sx - v.x * scale, ty: sy - v.y * scale }, animate);
  }

  panBy(dx, dy) {
    this.animation = null;
    this._setView({ scale: this.scale, tx: this.tx + dx, ty: this.ty + dy });
  }

  /** Bring seat i into view (zooming in if seats are too small to tell apart). */
  ensureVisible(i) {
    const view = this.targetView;
    let scale = view.scale;
    if (this.venue.pitch * scale < 14) scale = Math.min(this.maxScale, 22 / this.venue.pitch);
    const p = { x: this.venue.xs[i] * scale + view.tx, y: this.venue.ys[i] * scale + view.ty };
    const margin = Math.min(60, this.width / 4, this.height / 4);
    if (scale === view.scale && p.x >= margin && p.x <= this.width - margin && p.y >= margin && p.y <= this.height - margin) {
      return;
    }
    this._moveTo(
      { scale, tx: this.width / 2 - this.venue.xs[i] * scale, ty: this.height / 2 - this.venue.ys[i] * scale },
      true,
    );
  }

  // ------------------------------------------------------------ state

  invalidate() {
    this.dirtyAll = true;
    this._schedule();
  }

  /** Seats whose style changed: repainted alone on the next frame. */
  invalidateSeats(indices) {
    if (this.dirtyAll) return;
    for (const i of indices) this.dirtySeats.add(i);
    if (this.dirtySeats.size > this.venue.size / 4) this.dirtyAll = true;
    this._schedule();
    if (this.tipSeat >= 0 && this.dirtySeats.has(this.tipSeat)) this._fillTip(this.tipSeat);
  }

  setHover(i) {
    if (i === this.hover) return;
    this.hover = i;
    this.overlayDirty = true;
    this._schedule();
    this.base.style.cursor = i >= 0 ? "pointer" : "";
  }

  setFocus(i, visible = true) {
    this.focus = i;
    this.showFocus = visible;
    this.overlayDirty = true;
    this._schedule();
  }

  // ------------------------------------------------------------ tooltip

  showTip(i) {
    this.tipSeat = i;
    if (i < 0 || !this.describe) {
      this.tip.hidden = true;
      return;
    }
    this._fillTip(i);
    this.tip.hidden = false;
    this._placeTip();
  }

  _fillTip(i) {
    const { title, lines } = this.describe(i);
    const strong = document.createElement("strong");
    strong.textContent = title;
    this.tip.replaceChildren(strong, ...lines.map((line) => Object.assign(document.createElement("span"), { textContent: line })));
  }

  _placeTip() {
    if (this.tip.hidden || this.tipSeat < 0) return;
    const p = this.toScreen(this.tipSeat);
    const r = this.seatRadius;
    const w = this.tip.offsetWidth, h = this.tip.offsetHeight;
    let x = p.x - w / 2;
    let y = p.y - r - 10 - h;
    if (y < 4) y = p.y + r + 10;
    x = Math.max(4, Math.min(this.width - w - 4, x));
    y = Math.max(4, Math.min(this.height - h - 4, y));
    this.tip.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
  }

  // ------------------------------------------------------------ drawing

  _schedule() {
    if (!this.raf) this.raf = requestAnimationFrame(() => this._frame());
  }

  _frame() {
    this.raf = 0;
    if (this.dirtyAll) {
      const t0 = performance.now();
      this._drawAll();
      const ms = performance.now() - t0;
      this._record("full", ms);
      this.dirtyAll = false;
      this.dirtySeats.clear();
      this.overlayDirty = true;
      this.onRender({ kind: "full", ms });
    } else if (this.dirtySeats.size) {
      const t0 = performance.now();
      this._patch(this.dirtySeats);
      const ms = performance.now() - t0;
      this._record("patch", ms);
      this.onRender({ kind: "patch", ms, seats: this.dirtySeats.size });
      this.dirtySeats.clear();
    }
    if (this.overlayDirty) {
      this._drawOverlay();
      this.overlayDirty = false;
    }
  }

  _record(kind, ms) {
    const list = this.stats[kind];
    list.push(ms);
    if (list.length > 2000) list.shift();
    this.stats[kind + "Count"]++;
  }

  _makeSprites(r) {
    const size = Math.ceil(2 * r + 4);
    const half = size / 2;
    this.sprites = STYLE_NAMES.map((_, style) => {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = size;
      drawSeat(canvas.getContext("2d"), style, half, half, r);
      return canvas;
    });
    this.spriteHalf = half;
    this.spriteRadius = r;
  }

  _drawAll() {
    const ctx = this.ctx, dpr = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = COLOURS.background;
    ctx.fillRect(0, 0, this.base.width, this.base.height);
    this._drawStage();
    const r = this.seatRadius * dpr;
    const { xs, ys, size } = this.venue;
    const s = this.scale * dpr, ox = this.tx * dpr, oy = this.ty * dpr;
    const W = this.base.width, H = this.base.height;
    const styleOf = this.styleOf;
    if (r < MIN_SPRITE_RADIUS) {
      // Far out: a square per seat, one fill colour at a time.
      const side = Math.max(1, Math.round(r * 2));
      const off = side / 2;
      const colours = [COLOURS.available, COLOURS.held, COLOURS.booked, COLOURS.mine, COLOURS.checkout, COLOURS.mine];
      const byStyle = colours.map(() => []);
      for (let i = 0; i < size; i++) byStyle[styleOf(i)].push(i);
      byStyle.forEach((seats, style) => {
        ctx.fillStyle = colours[style];
        for (const i of seats) {
          const X = xs[i] * s + ox, Y = ys[i] * s + oy;
          if (X < -2 || Y < -2 || X > W + 2 || Y > H + 2) continue;
          ctx.fillRect(Math.round(X - off), Math.round(Y - off), side, side);
        }
      });
    } else {
      if (Math.abs(r - this.spriteRadius) > 1e-6) this._makeSprites(r);
      const sprites = this.sprites, half = this.spriteHalf;
      for (let i = 0; i < size; i++) {
        const X = xs[i] * s + ox, Y = ys[i] * s + oy;
        if (X < -half || Y < -half || X > W + half || Y > H + half) continue;
        ctx.drawImage(sprites[styleOf(i)], Math.round(X - half), Math.round(Y - half));
      }
    }
    this._drawLabels();
  }

  _patch(seats) {
    const ctx = this.ctx, dpr = this.dpr;
    const r = this.seatRadius * dpr;
    const { xs, ys } = this.venue;
    const s = this.scale * dpr, ox = this.tx * dpr, oy = this.ty * dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (r < MIN_SPRITE_RADIUS) {
      this.dirtyAll = true; // squares may overlap: cheaper to redraw than to untangle
      this._drawAll();
      this.dirtyAll = false;
      return;
    }
    // Each changed seat's area is repainted from scratch inside a clip:
    // background, stage, then every seat that reaches into it, in layout
    // order, exactly as a full redraw paints that area.
    const sprites = this.sprites, half = this.spriteHalf;
    const extent = r * 1.32 + 1; // how far a seat's mark reaches (the square's corners)
    const reach = (2.5 * extent) / s; // a mark reaching into the corners of the square
    const near = [];
    for (const i of seats) {
      const X = Math.round(xs[i] * s + ox - half) + half, Y = Math.round(ys[i] * s + oy - half) + half;
      const box = { x: Math.floor(X - extent), y: Math.floor(Y - extent), w: Math.ceil(2 * extent) + 1, h: Math.ceil(2 * extent) + 1 };
      ctx.save();
      ctx.beginPath();
      ctx.rect(box.x, box.y, box.w, box.h);
      ctx.clip();
      ctx.fillStyle = COLOURS.background;
      ctx.fillRect(box.x, box.y, box.w, box.h);
      this._drawStage();
      near.length = 0;
      this.venue.seatsNear(xs[i], ys[i], reach, near);
      near.sort((a, b) => a - b);
      for (const j of near) {
        ctx.drawImage(sprites[this.styleOf(j)], Math.round(xs[j] * s + ox - half), Math.round(ys[j] * s + oy - half));
      }
      this._drawLabels(box);
      ctx.restore();
    }
  }

  _drawStage() {
    const ctx = this.ctx, dpr = this.dpr;
    const stage = this.venue.stage;
    const s = this.scale * dpr, ox = this.tx * dpr, oy = this.ty * dpr;
    ctx.beginPath();
    stage.corners.forEach((c, k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, c.x * s + ox, c.y * s + oy));
    ctx.closePath();
    ctx.fillStyle = COLOURS.stage;
    ctx.fill();
    const width = stage.width * s, depth = stage.depth * s;
    const font = Math.min(depth * 0.5, 14 * dpr);
    if (font >= 7 * dpr && width > font * 4) {
      ctx.save();
      ctx.translate(stage.centre.x * s + ox, stage.centre.y * s + oy);
      let angle = stage.angle;
      if (angle > Math.PI / 2) angle -= Math.PI;
      if (angle < -Math.PI / 2) angle += Math.PI;
      ctx.rotate(angle);
      ctx.fillStyle = "#ffffff";
      ctx.font = `600 ${font}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("STAGE", 0, 0);
      ctx.restore();
    }
  }

  /** Section names; with `clip` ({x, y, w, h}, device pixels) only those crossing it. */
  _drawLabels(clip = null) {
    const ctx = this.ctx, dpr = this.dpr;
    const s = this.scale * dpr, ox = this.tx * dpr, oy = this.ty * dpr;
    const size = 13 * dpr;
    ctx.font = `600 ${size}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.lineJoin = "round";
    ctx.lineWidth = 4 * dpr;
    ctx.strokeStyle = COLOURS.background;
    ctx.fillStyle = COLOURS.label;
    for (const label of this.venue.sectionLabels) {
      // Pushed out (in screen pixels) until the text's box clears the seats.
      const half = ctx.measureText(label.name).width / 2;
      const push = Math.abs(label.dx) * half + Math.abs(label.dy) * 8 * dpr + 2 * dpr;
      const X = label.x * s + ox + label.dx * push, Y = label.y * s + oy + label.dy * push;
      if (clip) {
        const pad = 4 * dpr;
        if (X + half + pad < clip.x || X - half - pad > clip.x + clip.w) continue;
        if (Y + size + pad < clip.y || Y - size - pad > clip.y + clip.h) continue;
      }
      ctx.strokeText(label.name, X, Y);
      ctx.fillText(label.name, X, Y);
    }
  }

  _drawOverlay() {
    const ctx = this.octx, dpr = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    const r = Math.max(this.seatRadius * dpr, 2 * dpr);
    const ring = (i, radius, width, colour) => {
      const p = this.toScreen(i);
      ctx.beginPath();
      ctx.arc(p.x * dpr, p.y * dpr, radius, 0, Math.PI * 2);
      ctx.lineWidth = width;
      ctx.strokeStyle = colour;
      ctx.stroke();
    };
    if (this.hover >= 0 && this.hover !== this.focus) ring(this.hover, r + 2 * dpr, 1.5 * dpr, "#111111");
    if (this.focus >= 0 && this.showFocus) {
      // Two rings, dark outside light, so the focus shows on any colour.
      ring(this.focus, r + 4.5 * dpr, 3 * dpr, "#000000");
      ring(this.focus, r + 2 * dpr, 2 * dpr, "#ffffff");
    }
  }

  // ------------------------------------------------------------ input

  _seatUnder(clientX, clientY) {
    const rect = this.base.getBoundingClientRect();
    const v = this.toVenue(clientX - rect.left, clientY - rect.top);
    // Generous when seats are small: a finger is about 40 px across.
    const reach = Math.max(this.venue.pitch * 0.55, 8 / this.scale);
    return this.venue.seatAt(v.x, v.y, reach);
  }

  _setupInput() {
    const el = this.overlay; // the top canvas receives pointer events
    const pointers = new Map();
    let gesture = null;

    el.addEventListener("pointerdown", (e) => {
      if (e.pointerType === "mouse" && e.button !== 0) return;
      el.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      this.animation = null;
      if (pointers.size === 1) gesture = { kind: "press", x: e.clientX, y: e.clientY, type: e.pointerType };
      else if (pointers.size === 2) gesture = { kind: "pinch", ...this._pinch(pointers) };
    });

    el.addEventListener("pointermove", (e) => {
      const known = pointers.get(e.pointerId);
      if (!known) {
        if (e.pointerType === "mouse") {
          const i = this._seatUnder(e.clientX, e.clientY);
          this.setHover(i);
          if (i !== this.tipSeat || i < 0) this.showTip(i >= 0 ? i : this.showFocus ? this.focus : -1);
        }
        return;
      }
      const dx = e.clientX - known.x, dy = e.clientY - known.y;
      known.x = e.clientX;
      known.y = e.clientY;
      if (gesture?.kind === "press" && Math.hypot(e.clientX - gesture.x, e.clientY - gesture.y) > CLICK_SLOP) {
        gesture.kind = "pan";
        this.showTip(-1);
      }
      if (gesture?.kind === "pan") this.panBy(dx, dy);
      else if (gesture?.kind === "pinch" && pointers.size === 2) {
        const now = this._pinch(pointers);
        const rect = this.base.getBoundingClientRect();
        this.zoomBy(now.distance / gesture.distance, now.x - rect.left, now.y - rect.top);
        this.panBy(now.x - gesture.x, now.y - gesture.y);
        gesture = { kind: "pinch", ...now };
      }
    });

    const end = (e, cancelled) => {
      if (!pointers.has(e.pointerId)) return;
      pointers.delete(e.pointerId);
      if (!cancelled && gesture?.kind === "press") {
        const i = this._seatUnder(e.clientX, e.clientY);
        if (i >= 0) {
          if (gesture.type !== "mouse") {
            this.setHover(i);
            this.showTip(i);
          }
          this.onSeatClick(i, gesture.type);
        }
      }
      // After a pinch, the remaining finger pans from where it is.
      gesture = pointers.size === 1 ? { kind: "pan" } : null;
    };
    el.addEventListener("pointerup", (e) => end(e, false));
    el.addEventListener("pointercancel", (e) => end(e, true));
    el.addEventListener("pointerleave", (e) => {
      if (e.pointerType === "mouse" && !pointers.size) {
        this.setHover(-1);
        this.showTip(this.showFocus ? this.focus : -1);
      }
    });

    el.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const rect = this.base.getBoundingClientRect();
        const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
        // Trackpad pinches arrive as wheel events with ctrlKey: zoom faster.
        const speed = e.ctrlKey ? 0.01 : 0.0018;
        this.zoomBy(Math.exp(-e.deltaY * unit * speed), e.clientX - rect.left, e.clientY - rect.top);
      },
      { passive: false },
    );
  }

  _pinch(pointers) {
    const [a, b] = [...pointers.values()];
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2, distance: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)) };
  }
}
