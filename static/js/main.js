// `/events/{id}`: wires the parts of the seat map page together.
//
//   api.js      HTTP and the buyer session
//   venue.js    the layout: geometry, neighbours, hit testing (pure)
//   live.js     websocket: snapshot + diffs, resume, reconnect
//   map.js      canvas drawing, zoom and pan
//   a11y.js     keyboard operation and screen-reader words
//   cart.js     the hold: seats, countdown, refusals
//   checkout.js the order awaiting payment, "Your orders"
//
// Seat state lives in three places: the live feed (available / held / booked
// for everyone), the cart (which of the held seats are this buyer's hold) and
// the checkout (which are reserved for this buyer's order awaiting payment).
// `styleOf` combines them for drawing and `stateOf` for words.

import { Announcer, KeyboardNav } from "./a11y.js";
import { Api, ApiError } from "./api.js";
import { Cart } from "./cart.js";
import { Checkout } from "./checkout.js";
import { eventDate, money, plural, seatLabel, seatName, tierName } from "./format.js";
import { BOOKED, HELD, LiveConnection, STATE_NAMES } from "./live.js";
import { SeatMap, STYLE } from "./map.js";
import { Venue } from "./venue.js";

const $ = (id) => document.getElementById(id);

function eventIdFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return parts[0] === "events" && parts[1] ? decodeURIComponent(parts[1]) : null;
}

function messenger() {
  const box = $("message"), text = $("message-text");
  let timer = 0;
  $("message-close").addEventListener("click", () => (box.hidden = true));
  return (kind, words) => {
    clearTimeout(timer);
    box.dataset.kind = kind;
    text.textContent = words;
    box.hidden = false;
    // Errors stay until dismissed or replaced; news fades.
    if (kind !== "error") timer = setTimeout(() => (box.hidden = true), 10000);
  };
}

async function main() {
  performance.mark("seatmap:start");
  const api = new Api();
  const notify = messenger();
  const announcer = new Announcer($("announcer"));
  const eventId = eventIdFromPath();

  let event;
  try {
    event = await api.getEvent(eventId);
  } catch (error) {
    const missing = error instanceof ApiError && error.status === 404;
    $("event-name").textContent = missing ? "No such event" : "The seat map could not load";
    notify("error", missing ? "This event does not exist. Go back to the list of events." : "Couldn't reach the box office. Check your connection and reload the page.");
    $("connection").hidden = true;
    return;
  }
  performance.mark("seatmap:event-loaded");
  const venue = new Venue(event);
  document.title = `${venue.name} · Seatmap`;
  $("event-name").textContent = venue.name;
  $("event-date").textContent = eventDate(venue.startsAt);

  const viewport = $("seat-map");
  const panel = viewport.closest(".map-panel");
  panel.classList.add("loading");

  let live = null;
  let cart = null;
  let checkout = null;
  let nav = null;

  const stateOf = (i) => {
    if (checkout?.has(i)) return "checkout";
    if (cart?.isPending(i)) return "pending";
    if (cart?.isMine(i)) return "mine";
    return STATE_NAMES[live ? live.feed.states[i] : 0];
  };
  const styleOf = (i) => {
    if (checkout?.has(i)) return STYLE.CHECKOUT;
    if (cart.isPending(i)) return STYLE.PENDING;
    if (cart.isMine(i)) return STYLE.MINE;
    return live.feed.states[i]; // AVAILABLE, HELD, BOOKED share their numbers with STYLE
  };
  const describe = (i) => {
    const seat = venue.seats[i];
    const state = stateOf(i);
    const action = {
      available: "Available: click to hold",
      held: "Held by another buyer",
      booked: "Sold",
      mine: "Held by you: click to release",
      pending: "Holding for you…",
      checkout: "In your checkout: awaiting payment",
    }[state];
    return {
      title: `${seat.section} · Row ${seat.row} · Seat ${seat.number}`,
      lines: [`${tierName(seat.tier)} · ${money(seat.price_cents, venue.currency)}`, action],
    };
  };

  const timings = { eventLoaded: performance.now() };
  const map = new SeatMap(viewport, venue, {
    styleOf,
    describe,
    onSeatClick: (i) => {
      nav.follow(i);
      cart.toggle(i, { state: stateOf(i) });
    },
    onRender: ({ kind }) => {
      if (kind === "full" && live?.feed.synced && !timings.firstRender) {
        performance.mark("seatmap:first-render");
        timings.firstRender = performance.now();
      }
    },
  });

  cart = new Cart({
    api,
    venue,
    elements: {
      section: $("cart"),
      list: $("cart-list"),
      empty: $("cart-empty"),
      total: $("cart-total"),
      timer: $("cart-timer"),
      releaseAll: $("release-all"),
    },
    notify,
    announce: (words) => announcer.say(words),
    onSeats: (indices) => {
      map.invalidateSeats(indices);
      if (indices.includes(nav?.current)) nav.refresh();
    },
  });

  nav = new KeyboardNav(viewport, map, venue, {
    labelOf: (i) => seatLabel(venue.seats[i], stateOf(i), venue.currency),
    isMine: (i) => cart.isMine(i) || checkout.has(i),
    isAvailable: (i) => stateOf(i) === "available",
    onActivate: (i) => cart.toggle(i, { state: stateOf(i) }),
  });

  // ------------------------------------------------------------ live feed

  const summary = $("map-summary");
  let summaryTimer = 0;
  const updateSummary = () => {
    summaryTimer = 0;
    const states = live.feed.states;
    let available = 0;
    for (let i = 0; i < states.length; i++) if (states[i] === 0) available++;
    summary.textContent = `${available.toLocaleString()} of ${plural(states.length, "seat").replace(/^\d+/, states.length.toLocaleString())} available`;
  };
  let verifyTimer = 0;
  const verifySoon = () => {
    clearTimeout(verifyTimer);
    verifyTimer = setTimeout(() => cart.verify(), 300);
  };
  let checkoutTimer = 0;
  const checkoutSoon = () => {
    clearTimeout(checkoutTimer);
    checkoutTimer = setTimeout(() => checkout.verify(), 300);
  };

  let snapshots = 0;
  live = new LiveConnection(api, venue, {
    onSeats: (changed) => {
      if (changed === null) map.invalidate();
      else {
        map.invalidateSeats(changed);
        const focusChanged = nav.current >= 0 && changed.includes(nav.current);
        if (focusChanged) {
          nav.refresh();
          if (nav.focused && !cart.isMine(nav.current)) {
            announcer.say(`${seatName(venue.seats[nav.current])} is now ${{ available: "available", held: "held by another buyer", booked: "sold" }[stateOf(nav.current)] || stateOf(nav.current)}.`);
          }
        }
        // One of our seats became free: the hold expired or was released elsewhere.
        if (changed.some((i) => cart.isMine(i) && live.feed.states[i] !== HELD && live.feed.states[i] !== BOOKED)) verifySoon();
        // A seat of our checkout was booked (paid, maybe in another tab) or freed (lapsed).
        if (changed.some((i) => checkout.has(i) && live.feed.states[i] !== HELD)) checkoutSoon();
      }
      if (!summaryTimer) summaryTimer = setTimeout(updateSummary, 500);
    },
    onSnapshot: () => {
      snapshots++;
      if (snapshots === 1) {
        timings.snapshot = performance.now();
        panel.classList.remove("loading");
        updateSummary();
      } else {
        verifySoon(); // history was lost (e.g. the server rebuilt its state): is our hold still there?
        checkoutSoon();
      }
    },
    onStatus: ({ status, reason, retryAt }) => {
      const box = $("connection");
      box.dataset.status = status;
      panel.classList.toggle("stale", status === "reconnecting" || status === "offline");
      const seconds = retryAt ? Math.max(1, Math.round((retryAt - Date.now()) / 1000)) : null;
      $("connection-text").textContent = {
        connecting: "Connecting…",
        live: "Live",
        reconnecting: `Reconnecting: ${reason || "the connection was lost"}…`,
        offline: `Offline: can't reach the box office${reason ? ` (${reason})` : ""}. Retrying${seconds ? ` in ${seconds} s` : ""}.`,
      }[status];
      $("retry-now").hidden = status !== "offline";
    },
  });
  $("retry-now").addEventListener("click", () => live.reconnectNow());

  // ------------------------------------------------------------ controls

  $("zoom-in").addEventListener("click", () => map.zoomBy(1.5, undefined, undefined, { animate: true }));
  $("zoom-out").addEventListener("click", () => map.zoomBy(1 / 1.5, undefined, undefined, { animate: true }));
  $("zoom-fit").addEventListener("click", () => map.fit());

  // The picker offers no more seats than one buyer may hold.
  const maxSeats = venue.limits.max_seats_per_buyer;
  if (maxSeats) for (const option of [...$("best-count").options]) if (Number(option.value) > maxSeats) option.remove();
  const tierSelect = $("best-tier");
  for (const { tier, min, max } of venue.tiers()) {
    const price = min === max ? money(min, venue.currency) : `${money(min, venue.currency)}–${money(max, venue.currency)}`;
    tierSelect.append(new Option(`${tierName(tier)} (${price})`, tier));
  }
  const sectionSelect = $("best-section");
  for (const name of venue.sections) sectionSelect.append(new Option(name, name));
  $("best").addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = e.submitter || $("best").querySelector("button");
    button.disabled = true;
    try {
      const picked = await cart.holdBest({
        count: Number($("best-count").value),
        tier: tierSelect.value || undefined,
        section: sectionSelect.value || undefined,
      });
      if (picked.length) {
        const first = venue.index.get(picked[0]);
        nav.follow(first);
        map.ensureVisible(first);
      }
    } finally {
      button.disabled = false;
    }
  });

  checkout = new Checkout({
    api,
    venue,
    cart,
    elements: {
      button: $("checkout"),
      hint: $("checkout-note"),
      panel: $("order-panel"),
      timer: $("order-timer"),
      list: $("order-list"),
      total: $("order-total"),
      pay: $("order-pay"),
      details: $("order-details"),
      legend: $("legend-checkout"),
      ordersSection: $("my-orders"),
      orders: $("my-orders-list"),
    },
    notify,
    announce: (words) => announcer.say(words),
    onSeats: (indices) => {
      map.invalidateSeats(indices);
      if (indices.includes(nav?.current)) nav.refresh();
    },
  });

  // For tests and curious developers: the page's parts.
  window.seatmap = {
    api,
    venue,
    map,
    live,
    cart,
    checkout,
    nav,
    timings,
    stateOf: (id) => stateOf(venue.index.get(id)),
    clientPositionOf: (id) => map.clientPositionOf(venue.index.get(id)),
  };

  await api.ensureSession().catch(() => {});
  live.start();
  await Promise.all([cart.restore(), checkout.restore()]);
}

main();
