// The buyer's cart: their hold on this event, its seats, its countdown.
//
// Holds go over HTTP (POST/DELETE, answers with status codes and a `Date`
// header for the server's clock) while the websocket only carries the map:
// a hold still works while the live feed is reconnecting. Requests run one
// at a time, so answers (each listing *all* seats of the hold) apply in the
// order they were asked. The hold id is kept in localStorage per event, so a
// reload restores the cart from `GET /api/holds/{id}`.

import { ApiError, NetworkError } from "./api.js";
import { clock, clockWords, money, plural, seatItem, seatName, seatsInOrder } from "./format.js";

const WARN_AT_SECONDS = 60;

export class Cart {
  /**
   * `elements`: {section, list, empty, total, timer, releaseAll}.
   * `notify(kind, text)`: show a message ("error" | "info" | "success").
   * `announce(text)`: polite screen-reader news.
   * `onSeats(indices)`: these seats changed owner or pending state, redraw them.
   */
  constructor({ api, venue, elements, notify, announce, onSeats }) {
    this.api = api;
    this.venue = venue;
    this.el = elements;
    this.notify = notify;
    this.announce = announce;
    this.onSeats = onSeats || (() => {});
    this.listeners = [];
    this.holdId = null;
    this.seats = new Set(); // seat ids in the hold
    this.pending = new Set(); // layout indices being asked for or released
    this.expiresAt = null; // server-clock milliseconds
    this.warned = false;
    this.queue = Promise.resolve();
    this.storageKey = `seatmap:hold:${venue.id}`;
    this.timer = setInterval(() => this._tick(), 250);
    this.el.releaseAll.addEventListener("click", () => this.release(null));
    this.el.list.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-seat]");
      if (button) this.release([button.dataset.seat]);
    });
    addEventListener("storage", (e) => {
      if (e.key === this.storageKey) this.verify(); // another tab changed this hold
    });
    this._render();
  }

  /** `listener(cart)` after every change (the checkout button follows the cart). */
  subscribe(listener) {
    this.listeners.push(listener);
    listener(this);
  }

  isMine(i) {
    return this.seats.has(this.venue.seats[i].id);
  }

  isPending(i) {
    return this.pending.has(i);
  }

  get count() {
    return this.seats.size;
  }

  totalCents() {
    let total = 0;
    for (const id of this.seats) total += this.venue.seats[this.venue.index.get(id)].price_cents;
    return total;
  }

  secondsLeft() {
    return this.expiresAt === null ? null : (this.expiresAt - this.api.serverNow()) / 1000;
  }

  // ------------------------------------------------------------ actions

  _enqueue(job) {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => {});
    return run;
  }

  /** After a reload: the hold this browser had, if it is still alive. */
  async restore() {
    const holdId = localStorage.getItem(this.storageKey);
    if (!holdId) return;
    this.holdId = holdId;
    await this._enqueue(async () => {
      try {
        this._apply(await this.api.getHold(holdId));
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          this._clear();
          this.notify("info", "Your earlier hold has expired and its seats were released. Choose your seats again.");
        } else {
          this.notify("error", this._words(error, {}));
        }
      }
    });
  }

  /** Re-read the hold (after a snapshot, an expiry, another tab). */
  verify() {
    const holdId = localStorage.getItem(this.storageKey) || this.holdId;
    if (!holdId) {
      if (this.seats.size) this._clear();
      return Promise.resolve();
    }
    return this._enqueue(async () => {
      try {
        this._apply(await this.api.getHold(holdId));
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) this._expired();
      }
    });
  }

  /** Click, Enter or Space on seat i. */
  toggle(i, { state }) {
    if (this.pending.has(i)) return;
    const id = this.venue.seats[i].id;
    if (this.seats.has(id)) {
      this.release([id]);
    } else if (state === "available") {
      this.hold([id]);
    } else if (state === "checkout") {
      this.notify("info", `${seatName(this.venue.seats[i])} is in your checkout. Pay for it with “Pay now”; unpaid, it is released when the checkout's time runs out.`);
    } else {
      const what = state === "booked" ? "is sold" : "is held by another buyer";
      this.notify("info", `${seatName(this.venue.seats[i])} ${what}. Choose a green seat.`);
    }
  }

  hold(ids) {
    const indices = ids.map((id) => this.venue.index.get(id));
    this._setPending(indices, true);
    return this._enqueue(async () => {
      try {
        const hold = await this.api.holdSeats(this.venue.id, ids);
        this._setPending(indices, false);
        this._apply(hold);
        this.announce(`${ids.length === 1 ? seatName(this.venue.seats[indices[0]]) : plural(ids.length, "seat")} held for you. ${this._summary()}`);
      } catch (error) {
        this._setPending(indices, false);
        this.notify("error", this._words(error, { ids }));
      }
    });
  }

  holdBest({ count, tier, section }) {
    return this._enqueue(async () => {
      try {
        const hold = await this.api.holdBest(this.venue.id, { count, tier, section });
        this._apply(hold);
        const picked = hold.picked || [];
        const names = picked.map((id) => this.venue.seats[this.venue.index.get(id)]);
        const where = describeGroup(names);
        const together = hold.adjacent === false ? ` No ${count} seats side by side were free, so these are the nearest ones.` : "";
        this.notify("success", `Held ${plural(picked.length, "seat")} for you: ${where}.${together}`);
        return picked;
      } catch (error) {
        this.notify("error", this._words(error, { best: { count, tier, section } }));
        return [];
      }
    });
  }

  /** Release `ids`, or the whole hold when `ids` is null. */
  release(ids) {
    if (!this.holdId) return Promise.resolve();
    const all = ids === null || ids.length >= this.seats.size;
    const indices = (all ? [...this.seats] : ids).map((id) => this.venue.index.get(id));
    this._setPending(indices, true);
    return this._enqueue(async () => {
      const holdId = this.holdId;
      try {
        await this.api.release(holdId, all ? null : ids);
        this._setPending(indices, false);
        if (all) this._clear();
        else {
          for (const id of ids) this.seats.delete(id);
          this._changed(indices);
        }
        this.announce(all ? "All your seats were released." : `${plural(ids.length, "seat")} released. ${this._summary()}`);
      } catch (error) {
        this._setPending(indices, false);
        if (error instanceof ApiError && error.status === 404) this._expired();
        else this.notify("error", this._words(error, {}));
      }
    });
  }

  // ------------------------------------------------------------ state

  _apply(hold) {
    const before = new Set(this.seats);
    this.holdId = hold.hold_id;
    this.seats = new Set(hold.seats);
    const expires = Date.parse(hold.expires_at);
    if (expires !== this.expiresAt) this.warned = false;
    this.expiresAt = expires;
    if (this.seats.size) localStorage.setItem(this.storageKey, hold.hold_id);
    else localStorage.removeItem(this.storageKey);
    const changed = [];
    for (const id of new Set([...before, ...this.seats])) {
      if (before.has(id) !== this.seats.has(id)) changed.push(this.venue.index.get(id));
    }
    this._changed(changed);
  }

  _clear() {
    const changed = [...this.seats].map((id) => this.venue.index.get(id));
    this.holdId = null;
    this.seats = new Set();
    this.expiresAt = null;
    localStorage.removeItem(this.storageKey);
    this._changed(changed);
  }

  /** Checkout took the hold `holdId` (it ends on the server): empty the cart, quietly. */
  checkedOut(holdId) {
    if (this.holdId !== holdId) return;
    this._clear();
  }

  _expired() {
    const had = this.seats.size;
    this._clear();
    if (had) this.notify("error", "Your hold expired and its seats were released. Choose your seats again.");
  }

  _setPending(indices, on) {
    for (const i of indices) on ? this.pending.add(i) : this.pending.delete(i);
    this.onSeats(indices);
  }

  _changed(indices) {
    this._render();
    if (indices.length) this.onSeats(indices);
    for (const listener of this.listeners) listener(this);
  }

  _tick() {
    const left = this.secondsLeft();
    if (left === null || !this.seats.size) return;
    this._renderTimer(left);
    if (left <= WARN_AT_SECONDS && !this.warned) {
      this.warned = true;
      this.announce(`${clockWords(left)} left on your hold.`);
    }
    if (left <= 0 && !this.expiring) {
      // The server frees the seats at expiry; ask it, in case our clock estimate is off.
      this.expiring = true;
      this.verify().finally(() => {
        this.expiring = false;
        if ((this.secondsLeft() ?? 1) <= 0) this._expired();
      });
    }
  }

  _summary() {
    return this.seats.size ? `You hold ${plural(this.seats.size, "seat")}, ${money(this.totalCents(), this.venue.currency)} in total.` : "";
  }

  _words(error, { ids, best }) {
    if (error instanceof NetworkError) {
      return "Couldn't reach the box office, so nothing changed. Check your connection and try again.";
    }
    if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
    const body = error.body;
    switch (error.code) {
      case "seats_unavailable": {
        if (best) {
          const kind = [best.tier && tierName(best.tier), best.section].filter(Boolean).join(" ");
          return `There aren't ${best.count} ${kind ? kind + " " : ""}seats left to hold. Try fewer seats${best.tier ? " or another tier" : ""}.`;
        }
        const taken = (body.seats || ids || []).map((id) => this.venue.seats[this.venue.index.get(id)]).filter(Boolean);
        if (taken.length === 1) return `${seatName(taken[0])} was just taken by someone else. Choose another seat.`;
        return `${plural(taken.length, "seat")} you chose were just taken by someone else. Choose others.`;
      }
      case "limit_exceeded":
        return `You can hold at most ${body.limit ?? this.venue.limits.max_seats_per_buyer ?? 8} seats for this event. Release a seat before choosing another.`;
      case "not_found":
        return "Your hold expired and its seats were released. Choose your seats again.";
      case "unavailable":
        return "The box office is busy right now and nothing changed. Wait a moment and try again.";
      case "unauthorized":
        return "Your session ended. Reload the page to start a new one.";
      default:
        return `The request was refused: ${error.message}`;
    }
  }

  // ------------------------------------------------------------ view

  _render() {
    const { list, empty, total, releaseAll, section } = this.el;
    const seats = seatsInOrder(this.venue, this.seats);
    list.replaceChildren(
      ...seats.map((seat) => {
        const item = seatItem(seat, this.venue.currency);
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link-button";
        remove.dataset.seat = seat.id;
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", `Release ${seatName(seat)}`);
        item.append(remove);
        return item;
      }),
    );
    empty.hidden = seats.length > 0;
    releaseAll.hidden = seats.length === 0;
    section.classList.toggle("has-seats", seats.length > 0);
    total.textContent = seats.length ? `${plural(seats.length, "seat")} · Total ${money(this.totalCents(), this.venue.currency)}` : "";
    const left = this.secondsLeft();
    this._renderTimer(left);
  }

  _renderTimer(left) {
    const timer = this.el.timer;
    if (left === null || !this.seats.size) {
      timer.hidden = true;
      return;
    }
    timer.hidden = false;
    timer.classList.toggle("warning", left <= WARN_AT_SECONDS);
    const text = `Held for you for ${clock(left)}`;
    if (timer.textContent !== text) timer.textContent = text;
  }
}

/** "Stalls Centre, row B, seats 11–14" when together; else a list. */
function describeGroup(seats) {
  if (!seats.length) return "";
  const sorted = [...seats].sort((a, b) => a.number - b.number);
  const same = sorted.every((s) => s.section === sorted[0].section && s.row === sorted[0].row);
  if (same) {
    const numbers = sorted.map((s) => s.number);
    const run = numbers.every((n, k) => k === 0 || n === numbers[k - 1] + 1);
    const which = numbers.length === 1 ? `seat ${numbers[0]}` : run ? `seats ${numbers[0]}–${numbers.at(-1)}` : `seats ${numbers.join(", ")}`;
    return `${sorted[0].section}, row ${sorted[0].row}, ${which}`;
  }
  return sorted.map(seatName).join("; ");
}
