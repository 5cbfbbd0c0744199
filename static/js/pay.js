// `/pay/{order_id}`: Seatmap's own payment page, used with real Stripe
// (with the bundled test gateway the server redirects this address to the
// gateway's page instead).
//
// It reads `GET /api/orders/{id}` with the buyer's session from localStorage:
// only the order's own buyer gets its `client_secret` and the
// `stripe_publishable_key`, and only while the order awaits payment. Then it
// loads Stripe.js from https://js.stripe.com/v3 (Stripe requires that it be
// loaded from there, never bundled), mounts the Payment Element with the
// order's `client_secret` and, on "Pay", confirms. Stripe sends the browser to
// `/orders/{id}?payment_intent=…&redirect_status=…` (order.js takes it from
// there) whenever the payment goes through, with or without a bank's own
// check on the way. A refusal that stays on this page (a declined card, an
// incomplete form) is said here, and the buyer may try again until the
// checkout's time runs out.

import { Api, ApiError, NetworkError } from "./api.js";
import { clock, eventDate, money, plural, seatName, tierName } from "./format.js";

const STRIPE_JS = "https://js.stripe.com/v3";
const $ = (id) => document.getElementById(id);

function orderIdFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return parts[0] === "pay" && parts[1] ? decodeURIComponent(parts[1]) : null;
}

/** Stripe.js, loaded once from Stripe's own address. */
function loadStripe() {
  if (window.Stripe) return Promise.resolve(window.Stripe);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = STRIPE_JS;
    script.onload = () => (window.Stripe ? resolve(window.Stripe) : reject(new Error("Stripe.js did not start")));
    script.onerror = () => {
      script.remove(); // a retry adds a fresh tag
      reject(new NetworkError("Stripe.js could not be loaded"));
    };
    document.head.append(script);
  });
}

class PayPage {
  constructor(api, orderId) {
    this.api = api;
    this.orderId = orderId;
    this.order = null;
    this.stripe = null;
    this.elements = null;
    this.busy = false;
    this.checking = false;
    this.orderUrl = orderId ? `/orders/${encodeURIComponent(orderId)}` : "/";
    $("pay-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.pay();
    });
    $("pay-retry").addEventListener("click", () => {
      $("pay-retry").hidden = true;
      this.load();
    });
    setInterval(() => this._tick(), 250);
  }

  async load() {
    if (!this.orderId) return this._say("error", "No such order", "This address names no order.", { home: true });
    if (!this.api.storedSession()) {
      return this._say(
        "error",
        "This order isn't in this browser",
        "An order can be paid only in the browser it was started in. Open this page there, or go back to the events.",
        { home: true },
      );
    }
    let order;
    try {
      order = await this.api.getOrder(this.orderId);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        return this._say("error", "No such order", "We found no order of yours at this address.", { home: true });
      }
      const why = error instanceof NetworkError ? "Couldn't reach the box office." : `Couldn't load the order: ${error.message}.`;
      return this._say("error", "Your order could not load", `${why} Nothing was charged.`, { retry: true });
    }
    if (order.status !== "pending") {
      location.replace(this.orderUrl); // paid, lapsed or given back: its page says which
      return;
    }
    this.order = order;
    this._renderOrder();
    this._tick();
    if (!order.client_secret || !order.stripe_publishable_key) {
      return this._say(
        "error",
        "Card payment isn't available here",
        "This box office isn't set up to take card payments on this page. Nothing was charged; your seats stay reserved until the time runs out.",
        { details: true },
      );
    }
    if (!this.elements) {
      let Stripe;
      try {
        Stripe = await loadStripe();
      } catch {
        return this._say(
          "error",
          "The payment form could not load",
          "Stripe's payment form did not load. Check your connection and try again. Nothing was charged.",
          { retry: true, details: true },
        );
      }
      this.stripe = Stripe(order.stripe_publishable_key);
      this.elements = this.stripe.elements({ clientSecret: order.client_secret });
      this.elements.create("payment").mount("#payment-element");
    }
    $("pay-form").hidden = false;
    const submit = $("pay-submit");
    submit.disabled = false;
    submit.textContent = `Pay ${money(order.amount_cents, order.currency)}`;
    const count = order.seats.length;
    this._say(
      "info",
      "Pay for your seats",
      `Your ${plural(count, "seat")} (${money(order.amount_cents, order.currency)}) ${count === 1 ? "is" : "are"} reserved for you until the time runs out. Pay before then; if you don't, the seats are released and nothing is charged.`,
      { details: true },
    );
  }

  async pay() {
    if (this.busy || !this.stripe) return;
    this.busy = true;
    const submit = $("pay-submit");
    submit.disabled = true;
    submit.textContent = "Paying…";
    $("pay-error").hidden = true;
    let error;
    try {
      // Goes on to return_url when the payment goes through; answers only when it did not.
      ({ error } = await this.stripe.confirmPayment({
        elements: this.elements,
        confirmParams: { return_url: `${location.origin}${this.orderUrl}` },
      }));
    } catch (thrown) {
      error = { type: "network_error", message: String(thrown?.message || thrown) };
    }
    this.busy = false;
    submit.disabled = false;
    submit.textContent = `Pay ${money(this.order.amount_cents, this.order.currency)}`;
    if (!error) return;
    // Card and form errors carry words meant for the buyer; others do not.
    const shown =
      error.type === "card_error" || error.type === "validation_error"
        ? `${error.message} Nothing was charged: try again, with the same or another card.`
        : "The payment could not be made, and nothing was charged. Check your connection and try again.";
    $("pay-error").textContent = shown;
    $("pay-error").hidden = false;
  }

  _tick() {
    const order = this.order;
    if (!order) return;
    const left = (Date.parse(order.expires_at) - this.api.serverNow()) / 1000;
    const countdown = $("pay-countdown");
    countdown.hidden = false;
    countdown.classList.toggle("warning", left <= 60);
    countdown.textContent = left > 0 ? `Reserved for you for ${clock(left)}` : "Time is up: releasing the seats…";
    // At zero the server lets the checkout lapse; once it has, the order's page says so.
    if (left <= 0 && !this.checking && !this.busy) {
      this.checking = true;
      this.api
        .getOrder(this.orderId)
        .then((now) => now.status !== "pending" && location.replace(this.orderUrl))
        .catch(() => {})
        .finally(() => setTimeout(() => (this.checking = false), 2000));
    }
  }

  // ------------------------------------------------------------ view

  _renderOrder() {
    const order = this.order;
    if (order.event) {
      document.title = `Pay · ${order.event.name} · Seatmap`;
      $("event-name").textContent = order.event.name;
      $("event-date").textContent = eventDate(order.event.starts_at);
    }
    $("map-link").href = `/events/${encodeURIComponent(order.event_id)}`;
    $("map-crumb").hidden = false;
    $("summary").hidden = false;
    $("order-number").textContent = order.order_id;
    $("order-count").textContent = plural(order.seats.length, "seat");
    $("order-total").textContent = money(order.amount_cents, order.currency);
    const seats = order.seat_details || order.seats.map((seat) => ({ seat }));
    $("seats").replaceChildren(
      ...seats.map((seat) => {
        const item = document.createElement("li");
        item.className = "cart-seat";
        item.dataset.seatId = seat.seat;
        const name = document.createElement("span");
        name.className = "cart-seat-name";
        name.textContent = seat.section ? seatName(seat) : `Seat ${seat.seat}`;
        item.append(name);
        if (seat.tier) {
          const tier = document.createElement("span");
          tier.className = "tier";
          tier.textContent = tierName(seat.tier);
          const price = document.createElement("span");
          price.className = "cart-seat-price";
          price.textContent = money(seat.price_cents, order.currency);
          item.append(tier, price);
        }
        return item;
      }),
    );
  }

  _say(tone, title, text, { retry = false, details = false, home = false } = {}) {
    $("pay-state").dataset.tone = tone;
    $("pay-title").textContent = title;
    $("pay-text").textContent = text;
    $("pay-retry").hidden = !retry;
    const link = $("order-link");
    link.hidden = !(details || home);
    link.href = home ? "/" : this.orderUrl;
    link.textContent = home ? "See the events" : "Order details";
    if (tone === "error") $("pay-form").hidden = true;
  }
}

const page = new PayPage(new Api(), orderIdFromPath());
window.seatmapPay = page; // for tests and curious developers
page.load();
