// `/`: the list of events, each a link to its seat map.

import { Api, NetworkError } from "./api.js";
import { eventDate, plural } from "./format.js";

async function main() {
  const status = document.getElementById("events-status");
  const list = document.getElementById("events");
  let events;
  try {
    ({ events } = await new Api().listEvents());
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
}

main();
