// Keyboard operation and screen-reader words for the map.
//
// The map is one focusable listbox. Its canvases are hidden from assistive
// technology; instead a single option element stands for the focused seat,
// and `aria-activedescendant` points at it. Each move gives the option a new
// id, so screen readers announce the new seat ("Stalls Centre, row C, seat
// 12, VIP, $150, available") without 20,000 DOM nodes. Arrow keys move
// between neighbouring seats (along the row, or to the nearest seat of the
// row above or below), Enter or Space holds or releases, + / - zoom, 0 fits
// the whole venue, Shift+arrows pan, Home/End jump to the row's ends.

export class Announcer {
  /** A polite live region: routine news (a seat held, a minute left). */
  constructor(element) {
    this.element = element;
    this.timer = 0;
  }

  say(text) {
    // Clear first so the same words twice are still announced.
    this.element.textContent = "";
    clearTimeout(this.timer);
    this.timer = setTimeout(() => (this.element.textContent = text), 60);
  }
}

const MOVES = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "up", ArrowDown: "down" };
const PAN_STEP = 80;

export class KeyboardNav {
  /**
   * `viewport`: the focusable map element. `labelOf(i)` the seat's words,
   * `isMine(i)`, `isAvailable(i)`, `onActivate(i)` for Enter/Space.
   */
  constructor(viewport, map, venue, { labelOf, isMine, isAvailable, onActivate }) {
    this.viewport = viewport;
    this.map = map;
    this.venue = venue;
    this.labelOf = labelOf;
    this.isMine = isMine;
    this.isAvailable = isAvailable;
    this.onActivate = onActivate;
    this.current = -1;
    this.option = document.createElement("div");
    this.option.setAttribute("role", "option");
    this.option.className = "visually-hidden";
    viewport.append(this.option);
    viewport.addEventListener("focus", () => this._focused());
    viewport.addEventListener("blur", () => {
      this.map.setFocus(this.current, false);
      if (this.map.hover < 0) this.map.showTip(-1);
    });
    viewport.addEventListener("keydown", (e) => this._key(e));
  }

  get focused() {
    return document.activeElement === this.viewport;
  }

  _focused() {
    if (this.current < 0) this.current = this.venue.startSeat(this.isAvailable);
    const visible = this.viewport.matches(":focus-visible");
    this._show(visible);
    if (visible) this.map.ensureVisible(this.current);
  }

  /** The pointer picked seat i: keyboard moves go on from there. */
  follow(i) {
    this.current = i;
    this._show(false);
  }

  moveTo(i, { visible = true } = {}) {
    if (i < 0) return;
    this.current = i;
    this._show(visible);
    this.map.ensureVisible(i);
  }

  /** The focused seat's state may have changed: refresh its words. */
  refresh() {
    if (this.current >= 0) this._describe();
  }

  _show(visible) {
    this._describe();
    this.map.setFocus(this.current, visible && this.focused);
    if (visible && this.focused) this.map.showTip(this.current);
  }

  _describe() {
    const i = this.current;
    if (i < 0) return;
    this.option.id = `seat-${i}`;
    this.option.textContent = this.labelOf(i);
    this.option.setAttribute("aria-selected", this.isMine(i) ? "true" : "false");
    this.viewport.setAttribute("aria-activedescendant", this.option.id);
  }

  _key(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const map = this.map;
    const move = MOVES[e.key];
    let handled = true;
    if (move && e.shiftKey) {
      const d = { left: [PAN_STEP, 0], right: [-PAN_STEP, 0], up: [0, PAN_STEP], down: [0, -PAN_STEP] }[move];
      map.panBy(d[0], d[1]);
    } else if (move) {
      if (this.current < 0) this.current = this.venue.startSeat(this.isAvailable);
      else {
        const next = this.venue.neighbour(this.current, move);
        if (next >= 0) this.current = next;
      }
      this.moveTo(this.current);
    } else if (e.key === "Home" || e.key === "End") {
      if (this.current >= 0) this.moveTo(this.venue.rowEnd(this.current, e.key === "End"));
    } else if (e.key === "Enter" || e.key === " ") {
      if (this.current >= 0) {
        this._show(true);
        this.onActivate(this.current);
      }
    } else if (e.key === "+" || e.key === "=" || e.key === "-" || e.key === "_") {
      // Zoom about the focused seat when it is on screen, else about the centre.
      let anchor = [undefined, undefined];
      if (this.current >= 0) {
        const view = map.targetView;
        const p = { x: this.venue.xs[this.current] * view.scale + view.tx, y: this.venue.ys[this.current] * view.scale + view.ty };
        if (p.x >= 0 && p.y >= 0 && p.x <= map.width && p.y <= map.height) anchor = [p.x, p.y];
      }
      map.zoomBy(e.key === "+" || e.key === "=" ? 1.4 : 1 / 1.4, anchor[0], anchor[1], { animate: true });
    } else if (e.key === "0") {
      map.fit();
    } else if (e.key === "Escape") {
      map.showTip(-1);
    } else {
      handled = false;
    }
    if (handled) e.preventDefault();
  }
}
