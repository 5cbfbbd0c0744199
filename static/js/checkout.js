// PHASE 2 hook: checkout and the confirmation view.
//
// The contract's route is `POST /api/holds/{hold_id}/checkout` → 201
// {order_id, status, amount_cents, currency, payment_intent_id,
// client_secret, payment_url, expires_at}; the buyer pays at `payment_url`.
// Until the server has that route, the button stays hidden: we ask once
// whether the route exists (a GET on a POST-only route answers 405; on a
// route that does not exist, 404) and hide the button on 404, and a click
// that meets a 404 "no such route" hides it too.
//
// Left for phase 2 (marked PHASE 2 below): the "in your checkout" seat style
// (map.js STYLE.CHECKOUT is ready), the checkout countdown
// (SEATMAP_CHECKOUT_SECONDS), and the confirmation view with tickets and
// their QR codes once `GET /api/orders/{order_id}` says `confirmed`.

import { ApiError, NetworkError } from "./api.js";

const PROBE_PATH = "/api/holds/probe/checkout";

/** Does the server have the checkout route yet? */
export async function checkoutAvailable(api) {
  try {
    const response = await fetch(api.base + PROBE_PATH, { method: "GET" });
    return response.status !== 404;
  } catch {
    return false;
  }
}

export class Checkout {
  /** `button`: the Checkout button; `cart`: the Cart; `notify(kind, text)`. */
  constructor({ api, cart, button, note, notify }) {
    this.api = api;
    this.cart = cart;
    this.button = button;
    this.note = note;
    this.notify = notify;
    this.available = false;
    this.busy = false;
    button.addEventListener("click", () => this.start());
    cart.subscribe(() => this._render());
    checkoutAvailable(api).then((available) => {
      this.available = available;
      this._render();
    });
  }

  _render() {
    const hasSeats = this.cart.count > 0;
    this.button.hidden = !this.available || !hasSeats;
    this.button.disabled = this.busy;
    // Without the route the buyer is told what the hold is for, not shown a dead button.
    this.note.hidden = this.available || !hasSeats;
  }

  async start() {
    if (!this.cart.holdId || this.busy) return;
    this.busy = true;
    this._render();
    try {
      const order = await this.api.checkout(this.cart.holdId);
      // PHASE 2: remember order.order_id (localStorage) so the return from
      // payment_url can show the confirmation view; mark the seats CHECKOUT.
      location.assign(order.payment_url);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && /route/.test(error.message)) {
        this.available = false; // the server has no checkout yet
      } else if (error instanceof ApiError && error.status === 404) {
        this.cart.verify();
      } else if (error instanceof NetworkError) {
        this.notify("error", "Couldn't reach the box office to start checkout. Check your connection and try again.");
      } else {
        this.notify("error", `Checkout could not start: ${error.message}`);
      }
    } finally {
      this.busy = false;
      this._render();
    }
  }
}

/**
 * PHASE 2: the confirmation view, shown when the page is opened as the
 * payment page's return URL (e.g. `/events/{id}?order={order_id}`): poll
 * `GET /api/orders/{order_id}` until it leaves `pending`, then list the
 * tickets with a QR code each (vendor the generator under static/vendor/).
 * Returns true when it took over the page.
 */
export async function showConfirmation(/* api, venue, params */) {
  return false;
}
