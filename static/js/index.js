// `/`: the list of events, each a link to its seat map, and the orders
// this browser bought (only when it already has a session: a visit to the
// list does not make one).

import { Api, NetworkError } from "./api.js";
import { orderItem } from "./checkout.js";
import { eventDate, plural } from "./format.js";

async function showOrders(api, events) {
  if (!api.storedSession()) return;
  let orders;
  try {
    ({ orders } = await api.listOrders());
  } catch {
    return;
  }
  if (!orders.length) return;
  const names = new Map(events.map((event) => [event.id, event.name]));
  orders.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  document.getElementById("my-orders-list").replaceChildren(
    ...orders.map((order) => orderItem(order, { eventName: order.event?.name || names.get(order.event_id) || order.event_id })),
  );
  document.getElementById("my-orders").hidden = false;
}

async function main() {
  const status = document.getElementById("events-status");
  const list = document.getElementById("events");
  const api = new Api();
  let events;
  try {
    ({ events } = await api.listEvents());
  } catch (error) {
    status.textContent =
      error instanceof NetworkError
        ? "Couldn't reach the box office. Check your connection and reload the page."
        : `Couldn't load the events: ${error.message}`;
    return;
  }
  if (!events.length) {
    status.textContent = "No events yet.";
    return;
  }
  events.sort((a, b) => String(a.starts_at || "").localeCompare(String(b.starts_at || "")));
  list.replaceChildren(
    ...events.map((event) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/events/${encodeURIComponent(event.id)}`;
      link.textContent = event.name;
      const details = document.createElement("span");
      details.className = "event-details";
      details.textContent = [eventDate(event.starts_at), plural(event.seats, "seat")].filter(Boolean).join(" · ");
      item.append(link, details);
      return item;
    }),
  );
  status.textContent = `${plural(events.length, "event")}.`;
  await showOrders(api, events);
}

main();
