// `/orders/{order_id}`: one order, and the page the payment page returns to
// (`?payment_intent=…&redirect_status=succeeded|failed`).
//
// It reads `GET /api/orders/{id}` with the buyer's session from localStorage
// (an order is only shown to the browser that bought it); the answer carries
// the event's name and date and each seat's section, row, number, tier and
// price (on its ticket, and in `seat_details`), so the page needs no layout.
// While payment is being confirmed (the
// webhook usually lands within a second) it polls quickly; while the order
// awaits payment, slowly (the buyer may pay in another tab) and again when
// the checkout's time is up. Once confirmed it shows one ticket per seat with
// the ticket's `code` as a QR code, ready to print.

import { Api, ApiError, NetworkError } from "./api.js";
import { clock, eventDate, money, plural, seatName, tierName } from "./format.js";
import { describeOrder, forgetOrder, paymentReturn, STATUS_NAMES } from "./orders.js";
import { qrSvg } from "./qr.js";

const $ = (id) => document.getElementById(id);
const FAST_MS = 500;
const SLOW_MS = 5000;

function orderIdFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return parts[0] === "orders" && parts[1] ? decodeURIComponent(parts[1]) : null;
}

class OrderPage {
  constructor(api, orderId, params) {
    this.api = api;
    this.orderId = orderId;
    this.params = params;
    this.order = null;
    this.event = null;
    this.seatsById = new Map();
    this.started = performance.now();
    this.pollTimer = 0;
    this.shownKey = "";
    this.ticketsKey = "";
    setInterval(() => this._tick(), 250);
    $("print").addEventListener("click", () => print());
  }

  async load() {
    if (!this.orderId) return this._fail("No such order", "This address names no order.");
    if (!this.api.storedSession()) {
      return this._fail(
        "This order isn't in this browser",
        "An order can be seen only in the browser it was bought in. Open this page there, or go back to the events.",
      );
    }
    await this._refresh();
  }

  async _refresh() {
    clearTimeout(this.pollTimer);
    let order;
    try {
      order = await this.api.getOrder(this.orderId);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        return this._fail("No such order", "We found no order of yours at this address. It may have been bought in another browser.");
      }
      this._problem(error instanceof NetworkError ? "Couldn't reach the box office. Retrying…" : `Couldn't load the order: ${error.message}. Retrying…`);
      this.pollTimer = setTimeout(() => this._refresh(), SLOW_MS);
      return;
    }
    this.event = order.event || null;
    this.seatsById = new Map((order.seat_details || []).map((seat) => [seat.seat, seat]));
    this.order = order;
    if (order.status !== "pending") forgetOrder(order.event_id, order.order_id);
    const words = this._render();
    if (words.poll) this.pollTimer = setTimeout(() => this._refresh(), words.poll === "fast" ? FAST_MS : SLOW_MS);
  }

  _words() {
    const waited = (performance.now() - this.started) / 1000;
    return describeOrder(this.order, { returned: paymentReturn(this.order, this.params), waited });
  }

  _secondsLeft() {
    return this.order ? (Date.parse(this.order.expires_at) - this.api.serverNow()) / 1000 : null;
  }

  _tick() {
    const order = this.order;
    if (!order || order.status !== "pending") return;
    const left = this._secondsLeft();
    const countdown = $("order-countdown");
    countdown.hidden = false;
    countdown.classList.toggle("warning", left <= 60);
    countdown.textContent = left > 0 ? `Reserved for you for ${clock(left)}` : "Time is up: releasing the seats…";
    // At zero the server lets the checkout lapse; read the order again then.
    if (left <= 0 && !this.expiring) {
      this.expiring = true;
      setTimeout(() => {
        this.expiring = false;
        this._refresh();
      }, 1000);
    }
  }

  // ------------------------------------------------------------ view

  _render() {
    const order = this.order;
    const event = this.event;
    const words = this._words();
    const currency = order.currency;

    if (event) {
      document.title = `${STATUS_NAMES[order.status] || "Order"} · ${event.name} · Seatmap`;
      $("event-name").textContent = event.name;
      $("event-date").textContent = eventDate(event.starts_at);
    }
    const mapUrl = `/events/${encodeURIComponent(order.event_id)}`;
    $("map-link").href = mapUrl;
    $("map-crumb").hidden = false;

    // The live region changes only when the words do.
    const key = `${words.tone}|${words.title}|${words.text}`;
    if (key !== this.shownKey) {
      this.shownKey = key;
      $("order-state").dataset.tone = words.tone;
      $("state-title").textContent = words.title;
      $("state-text").textContent = words.text;
    }
    $("order-countdown").hidden = order.status !== "pending";
    const pay = $("pay-link");
    pay.hidden = !(words.pay && order.payment_url);
    if (!pay.hidden) {
      pay.textContent = words.pay;
      pay.href = order.payment_url;
    }
    const back = $("back-link");
    back.hidden = false;
    back.href = mapUrl;
    back.textContent = words.backToMap ? "Choose seats again" : "Back to the seat map";
    $("print").hidden = !words.tickets || order.tickets.length === 0;

    $("summary").hidden = false;
    $("order-number").textContent = order.order_id;
    $("order-status").textContent = STATUS_NAMES[order.status] || order.status;
    $("order-count").textContent = plural(order.seats.length, "seat");
    $("order-total").textContent = money(order.amount_cents, currency);
    $("refund-row").hidden = !order.refunded_cents;
    $("order-refunded").textContent = money(order.refunded_cents || 0, currency);

    this._renderTickets(words.tickets ? order.tickets : [], currency);
    this._renderSeats(words.tickets ? [] : order.seats, currency);
    document.body.dataset.status = order.status;
    this._tick();
    return words;
  }

  _seatWords(id) {
    const seat = this.seatsById.get(id);
    return seat ? { name: seatName(seat), seat } : { name: `Seat ${id}`, seat: null };
  }

  _renderTickets(tickets, currency) {
    const key = tickets.map((t) => t.code).join(",") + (this.event ? "+" : "");
    if (key === this.ticketsKey) return;
    this.ticketsKey = key;
    $("tickets-section").hidden = tickets.length === 0;
    // A ticket carries its seat's section, row, number, tier and price.
    const placed = (t) => t.section !== undefined;
    const sorted = [...tickets].sort((a, b) => {
      if (!placed(a) || !placed(b)) return a.seat.localeCompare(b.seat);
      return a.section.localeCompare(b.section) || a.row.localeCompare(b.row, undefined, { numeric: true }) || a.number - b.number;
    });
    $("tickets").replaceChildren(
      ...sorted.map((ticket, k) => {
        const seat = placed(ticket) ? ticket : null;
        const name = seat ? seatName(seat) : `Seat ${ticket.seat}`;
        const item = document.createElement("li");
        item.className = "ticket";
        item.dataset.seat = ticket.seat;
        item.dataset.code = ticket.code;

        const figure = document.createElement("div");
        figure.className = "ticket-qr";
        figure.append(qrSvg(ticket.code, { label: `QR code of the ticket for ${name}` }));

        const body = document.createElement("div");
        body.className = "ticket-body";
        const title = document.createElement("h3");
        title.textContent = `Ticket ${k + 1} of ${tickets.length}`;
        const event = document.createElement("p");
        event.className = "ticket-event";
        event.textContent = this.event ? [this.event.name, eventDate(this.event.starts_at)].filter(Boolean).join(" · ") : "";
        const facts = document.createElement("dl");
        facts.className = "ticket-facts";
        const rows = seat
          ? [["Section", seat.section], ["Row", seat.row], ["Seat", String(seat.number)], ["Tier", tierName(seat.tier)], ["Price", money(seat.price_cents, currency)]]
          : [["Seat", ticket.seat]];
        for (const [term, value] of rows) {
          const pair = document.createElement("div");
          const dt = document.createElement("dt");
          dt.textContent = term;
          const dd = document.createElement("dd");
          dd.textContent = value;
          pair.append(dt, dd);
          facts.append(pair);
        }
        const code = document.createElement("p");
        code.className = "ticket-code";
        code.textContent = ticket.code;
        body.append(title, event, facts, code);
        item.append(figure, body);
        return item;
      }),
    );
  }

  _renderSeats(ids, currency) {
    $("seats-section").hidden = ids.length === 0;
    const list = $("seats");
    const key = ids.join(",") + (this.event ? "+" : "");
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(
      ...ids.map((id) => {
        const { name, seat } = this._seatWords(id);
        const item = document.createElement("li");
        item.className = "cart-seat";
        item.dataset.seatId = id;
        const label = document.createElement("span");
        label.className = "cart-seat-name";
        label.textContent = name;
        item.append(label);
        if (seat) {
          const tier = document.createElement("span");
          tier.className = "tier";
          tier.textContent = tierName(seat.tier);
          const price = document.createElement("span");
          price.className = "cart-seat-price";
          price.textContent = money(seat.price_cents, currency);
          item.append(tier, price);
        }
        return item;
      }),
    );
  }

  _fail(title, text) {
    $("order-state").dataset.tone = "error";
    $("state-title").textContent = title;
    $("state-text").textContent = text;
    $("back-link").hidden = false;
    $("back-link").textContent = "See the events";
    $("back-link").href = "/";
  }

  _problem(text) {
    this.shownKey = ""; // the state's own words come back with the next good read
    if (this.order) {
      $("state-text").textContent = text; // keep the order on screen
    } else {
      $("order-state").dataset.tone = "error";
      $("state-title").textContent = "Your order could not load";
      $("state-text").textContent = text;
    }
  }
}

const page = new OrderPage(new Api(), orderIdFromPath(), new URLSearchParams(location.search));
window.seatmapOrder = page; // for tests and curious developers
page.load();
