// Words and numbers shown to buyers: prices, seat names, dates, countdowns.

const moneyFormats = new Map();

export function money(cents, currency) {
  const code = (currency || "usd").toUpperCase();
  const whole = cents % 100 === 0;
  const key = code + (whole ? ":0" : ":2");
  let format = moneyFormats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(undefined, {
      style: "currency",
      currency: code,
      minimumFractionDigits: whole ? 0 : 2,
      maximumFractionDigits: 2,
    });
    moneyFormats.set(key, format);
  }
  return format.format(cents / 100);
}

export const STATE_WORDS = {
  available: "available",
  held: "held by another buyer",
  booked: "sold",
  mine: "held by you",
  pending: "being held for you",
  checkout: "in your checkout",
};

export function tierName(tier) {
  return { VIP: "VIP", PREMIUM: "Premium", REGULAR: "Regular" }[tier] || tier;
}

/** "Stalls Centre, row C, seat 12" */
export function seatName(seat) {
  return `${seat.section}, row ${seat.row}, seat ${seat.number}`;
}

/** What a screen reader says for a seat: "Stalls Centre, row C, seat 12, VIP, $150, available". */
export function seatLabel(seat, state, currency) {
  return `${seatName(seat)}, ${tierName(seat.tier)}, ${money(seat.price_cents, currency)}, ${STATE_WORDS[state] || state}`;
}

export function eventDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" }).format(date);
}

/** 272 seconds -> "4:32" */
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** 272 seconds -> "4 minutes 32 seconds" (for screen readers) */
export function clockWords(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(s / 60), rest = s % 60;
  const parts = [];
  if (m) parts.push(`${m} minute${m === 1 ? "" : "s"}`);
  if (rest || !m) parts.push(`${rest} second${rest === 1 ? "" : "s"}`);
  return parts.join(" ");
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** The venue's seats for `ids`, in reading order: section, row, number. */
export function seatsInOrder(venue, ids) {
  return [...ids]
    .map((id) => venue.seats[venue.index.get(id)])
    .filter(Boolean)
    .sort((a, b) => a.section.localeCompare(b.section) || a.row.localeCompare(b.row, undefined, { numeric: true }) || a.number - b.number);
}

/** A list item naming a seat with its tier and price (the cart and the checkout panel). */
export function seatItem(seat, currency, className = "cart-seat") {
  const item = document.createElement("li");
  item.className = className;
  item.dataset.seatId = seat.id;
  const name = document.createElement("span");
  name.className = "cart-seat-name";
  name.textContent = seatName(seat);
  const tier = document.createElement("span");
  tier.className = `tier tier-${seat.tier.toLowerCase()}`;
  tier.textContent = tierName(seat.tier);
  const price = document.createElement("span");
  price.className = "cart-seat-price";
  price.textContent = money(seat.price_cents, currency);
  item.append(name, tier, price);
  return item;
}
