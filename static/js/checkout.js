// Checkout on the seat map page: the Checkout button, the order awaiting
// payment (its seats, countdown and "Pay now"), and "Your orders".
//
// `POST /api/holds/{hold_id}/checkout` turns the whole hold into an order:
// the hold ends, its seats stay reserved for the order until the order's
// `expires_at`, and the buyer pays at `payment_url` (the payment page sends
// the browser back to `/orders/{order_id}`, see order.js). The order id is
// kept in localStorage (orders.js), so a reload, another tab, or the Back
// button from the payment page finds the checkout again. There is no route
// to cancel a checkout: an unpaid one simply lapses at `expires_at` and its
// seats go back on sale, which is what the page says.

import { ApiError, NetworkError } from "./api.js";
import { clock, clockWords, money, plural, seatItem, seatsInOrder } from "./format.js";
import { describeOrder, forgetOrder, isOrderKey, rememberOrder, STATUS_NAMES, storedOrderId } from "./orders.js";

const WARN_AT_SECONDS = 60;

export class Checkout {
  /**
   * `elements`: {button, hint, panel, timer, list, total, pay, details, legend, ordersSection, orders}.
   * `cart`: the Cart (its hold is what checkout buys). `notify(kind, text)`,
   * `announce(text)`; `onSeats(indices)`: these seats entered or left the checkout.
   */
  constructor({ api, venue, cart, elements, notify, announce, onSeats }) {
    this.api = api;
    this.venue = venue;
    this.cart = cart;
    this.el = elements;
    this.notify = notify;
    this.announce = announce;
    this.onSeats = onSeats || (() => {});
    this.order = null; // the pending order this browser started (or found), as last read
    this.seats = new Set(); // layout indices of its seats
    this.otherSeats = new Set(); // seats of the buyer's other orders awaiting payment, if any
    this.busy = false;
    this.warned = false;
    this.checking = false;
    this.orders = [];

    this.el.button.addEventListener("click", () => this.start());
    cart.subscribe(() => this._renderButton());
    addEventListener("storage", (e) => {
      if (isOrderKey(e.key, venue.id)) this.restore(); // another tab started or finished a checkout
    });
    this.timer = setInterval(() => this._tick(), 250);
    // Back from the payment page out of the back-forward cache: the page is as it was left.
    addEventListener("pageshow", (e) => {
      if (!e.persisted) return;
      this.busy = false;
      this._renderButton();
      this.restore();
    });
  }

  /** Is seat `i` in the buyer's order awaiting payment? */
  has(i) {
    return this.seats.has(i) || this.otherSeats.has(i);
  }

  secondsLeft() {
    return this.order ? (Date.parse(this.order.expires_at) - this.api.serverNow()) / 1000 : null;
  }

  // ------------------------------------------------------------ actions

  async start() {
    if (!this.cart.holdId || this.busy) return;
    this.busy = true;
    this._renderButton();
    try {
      await this.cart.queue; // holds and releases asked for before the click come first
      const holdId = this.cart.holdId;
      if (!holdId || !this.cart.count) throw new Error("your cart is empty");
      const order = await this.api.checkout(holdId);
      rememberOrder(this.venue.id, order.order_id);
      // The hold became the order: its seats move from the cart to the checkout.
      this.cart.checkedOut(holdId);
      this._show({ ...order, event_id: this.venue.id, seats: order.seats || [] });
      if (!order.payment_url) throw new Error("the box office gave no payment page");
      location.assign(order.payment_url);
      // Keep the button disabled while the browser leaves.
      return;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.cart.verify(); // the hold lapsed before checkout: the cart says so
      } else if (error instanceof NetworkError) {
        this.notify("error", "Couldn't reach the box office to start checkout, so nothing changed. Check your connection and try again.");
      } else if (error instanceof ApiError && error.code === "unavailable") {
        this.notify("error", "The box office is busy right now and checkout did not start. Your seats are still held: try again in a moment.");
      } else {
        this.notify("error", `Checkout could not start: ${error.message}`);
      }
    }
    this.busy = false;
    this._renderButton();
  }

  /** After a load or reload: the checkout this browser started, and the buyer's orders. */
  async restore() {
    const orderId = storedOrderId(this.venue.id);
    if (orderId) await this._read(orderId);
    else if (this.order) this._hide();
    await this.refreshOrders();
  }

  /** Re-read the order awaiting payment (its seats changed on the map, its time ran out). */
  async verify() {
    if (this.order) await this._read(this.order.order_id);
    if (this.otherSeats.size) await this.refreshOrders();
  }

  async _read(orderId) {
    try {
      this._settle(await this.api.getOrder(orderId));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        forgetOrder(this.venue.id, orderId); // another buyer's session, or a server that forgot
        this._hide();
      }
      // Network trouble: keep what we show; the countdown asks again.
    }
  }

  async refreshOrders() {
    try {
      const { orders } = await this.api.listOrders({ eventId: this.venue.id });
      this.orders = orders.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at))); // newest first
    } catch {
      return; // the list is a convenience; the next change refreshes it
    }
    const pending = this.orders.filter((o) => o.status === "pending" && Date.parse(o.expires_at) > this.api.serverNow());
    // A checkout this browser lost track of (e.g. storage cleared) is still the buyer's.
    if (!this.order && pending.length) {
      rememberOrder(this.venue.id, pending[0].order_id);
      this._show(pending[0]);
    }
    // A second checkout leaves the first one awaiting payment too (listed, and drawn as the buyer's).
    const before = this.otherSeats;
    this.otherSeats = new Set();
    for (const order of pending) {
      if (order.order_id === this.order?.order_id) continue;
      for (const id of order.seats) {
        const i = this.venue.index.get(id);
        if (i !== undefined) this.otherSeats.add(i);
      }
    }
    const changed = [...before, ...this.otherSeats].filter((i) => before.has(i) !== this.otherSeats.has(i));
    if (changed.length) this.onSeats(changed);
    this._renderOrders();
  }

  // ------------------------------------------------------------ state

  _settle(order) {
    if (order.status === "pending") {
      const first = !this.order;
      this._show(order);
      if (first) {
        const left = this.secondsLeft();
        this.announce(`${plural(order.seats.length, "seat")} awaiting payment, reserved for you for ${clockWords(left)}.`);
      }
      return;
    }
    // The checkout is over: say how it ended, once.
    forgetOrder(this.venue.id, order.order_id);
    this._hide();
    if (order.status === "confirmed" || order.status === "partially_refunded") {
      this.notify("success", `Payment received: your ${plural(order.seats.length, "seat")} ${order.seats.length === 1 ? "is" : "are"} booked. Your tickets are under “Your orders”.`);
    } else {
      const words = describeOrder(order);
      this.notify(words.tone, `${words.title}. ${words.text}`);
    }
    this.refreshOrders();
  }

  _show(order) {
    const before = this.seats;
    if (order.expires_at !== this.order?.expires_at) this.warned = false;
    this.order = order;
    this.seats = new Set(order.seats.map((id) => this.venue.index.get(id)).filter((i) => i !== undefined));
    this._render();
    this._changed(before);
  }

  _hide() {
    const before = this.seats;
    this.order = null;
    this.seats = new Set();
    this._render();
    this._changed(before);
  }

  _changed(before) {
    const changed = [];
    for (const i of before) if (!this.seats.has(i)) changed.push(i);
    for (const i of this.seats) if (!before.has(i)) changed.push(i);
    if (changed.length) this.onSeats(changed);
  }

  _tick() {
    const left = this.secondsLeft();
    if (left === null) return;
    this._renderTimer(left);
    if (left <= WARN_AT_SECONDS && !this.warned) {
      this.warned = true;
      this.announce(`${clockWords(left)} left to pay for your seats.`);
    }
    // At zero the server lets the checkout lapse (within its sweep); ask until it has.
    if (left <= 0 && !this.checking) {
      this.checking = true;
      this.verify().finally(() => setTimeout(() => (this.checking = false), 1000));
    }
  }

  // ------------------------------------------------------------ view

  _renderButton() {
    const { button, hint } = this.el;
    const hasSeats = this.cart.count > 0;
    button.hidden = !hasSeats;
    button.disabled = this.busy;
    button.textContent = this.busy ? "Starting checkout…" : `Checkout · ${money(this.cart.totalCents(), this.venue.currency)}`;
    const minutes = Math.round((this.venue.limits.checkout_seconds || 900) / 60);
    hint.textContent = `Checkout keeps these seats for you for ${plural(minutes, "minute")} while you pay.`;
    hint.hidden = !hasSeats;
  }

  _render() {
    const { panel, list, total, pay, details, legend } = this.el;
    const order = this.order;
    panel.hidden = !order;
    legend.hidden = !order;
    panel.closest(".cart")?.classList.toggle("has-order", Boolean(order));
    if (!order) return;
    const seats = seatsInOrder(this.venue, order.seats);
    list.replaceChildren(...seats.map((seat) => seatItem(seat, this.venue.currency, "cart-seat checkout-seat")));
    total.textContent = `${plural(order.seats.length, "seat")} · Total ${money(order.amount_cents, order.currency || this.venue.currency)}`;
    pay.hidden = !order.payment_url;
    if (order.payment_url) pay.href = order.payment_url;
    details.href = `/orders/${encodeURIComponent(order.order_id)}`;
    this._renderTimer(this.secondsLeft());
  }

  _renderTimer(left) {
    const timer = this.el.timer;
    if (left === null) return;
    timer.classList.toggle("warning", left <= WARN_AT_SECONDS);
    const text = left > 0 ? `Reserved for you for ${clock(left)}` : "Time is up: releasing these seats…";
    if (timer.textContent !== text) timer.textContent = text;
  }

  _renderOrders() {
    const { ordersSection, orders: list } = this.el;
    ordersSection.hidden = this.orders.length === 0;
    list.replaceChildren(...this.orders.map((order) => orderItem(order)));
  }
}

/** One line of "Your orders": a link to the order page with its state, seats and total. */
export function orderItem(order, { eventName } = {}) {
  const item = document.createElement("li");
  item.className = `order-item order-${order.status}`;
  item.dataset.orderId = order.order_id;
  const link = document.createElement("a");
  link.href = `/orders/${encodeURIComponent(order.order_id)}`;
  link.textContent = eventName || `${plural(order.seats.length, "seat")} · ${money(order.amount_cents, order.currency)}`;
  const status = document.createElement("span");
  status.className = "order-status";
  status.textContent = STATUS_NAMES[order.status] || order.status;
  item.append(link, status);
  if (eventName) {
    const details = document.createElement("span");
    details.className = "order-details";
    details.textContent = `${plural(order.seats.length, "seat")} · ${money(order.amount_cents, order.currency)}`;
    item.append(details);
  }
  return item;
}
