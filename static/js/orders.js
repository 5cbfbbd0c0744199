// Orders as a buyer sees them: which order this browser is paying for, and
// what each order state means in words. Shared by the seat map page
// (checkout.js) and the order page (order.js); no DOM here.
//
// The order id of a checkout is kept in localStorage per event
// (`seatmap:order:{event_id}`), beside the session, so a reload of the seat
// map or the return from the payment page finds it. localStorage is per
// origin, like the session it belongs to.

import { money, plural } from "./format.js";

const orderKey = (eventId) => `seatmap:order:${eventId}`;

export function storedOrderId(eventId) {
  return localStorage.getItem(orderKey(eventId));
}

export function rememberOrder(eventId, orderId) {
  localStorage.setItem(orderKey(eventId), orderId);
}

export function forgetOrder(eventId, orderId) {
  // Only the order we were told to forget: another tab may have started a newer one.
  if (!orderId || localStorage.getItem(orderKey(eventId)) === orderId) localStorage.removeItem(orderKey(eventId));
}

export function isOrderKey(key, eventId) {
  return key === orderKey(eventId);
}

/** Has the buyer's browser been sent back from the payment page after paying? */
export function paymentReturn(order, params) {
  const status = params.get("redirect_status");
  const intent = params.get("payment_intent");
  // A return for another PaymentIntent (an old link) says nothing about this order.
  if (!status || (intent && order.payment_intent_id && intent !== order.payment_intent_id)) return null;
  return status; // "succeeded" | "failed" | "processing"
}

export const STATUS_NAMES = {
  pending: "Awaiting payment",
  confirmed: "Confirmed",
  expired: "Checkout ended",
  cancelled: "Cancelled",
  refunded: "Refunded",
  partially_refunded: "Partly refunded",
};

/** Money on its way to or from the buyer's card, per the order's `payment` (server extension). */
const MONEY_HELD = new Set(["authorized", "captured"]);

/**
 * What to tell the buyer about `order`, and what the page should do:
 * `{tone: "success"|"info"|"error", title, text, tickets, pay, poll, backToMap}`.
 * `returned`: "succeeded" | "failed" | null from the payment page's redirect;
 * `waited`: seconds spent waiting for the payment to be confirmed. The
 * words never hold the countdown (pages show it apart, outside live regions,
 * so screen readers are not told every second).
 *
 * `order.payment` says where the money is ("none", "authorized", "captured",
 * "released", "refunded", "partially_refunded"), so an order that ended
 * without seats says exactly whether anything was charged; while a payment is
 * still being given back the page says so and keeps asking.
 */
export function describeOrder(order, { returned = null, waited = 0 } = {}) {
  const count = order.seats.length;
  const total = money(order.amount_cents, order.currency);
  const refunded = money(order.refunded_cents || 0, order.currency);
  const payment = order.payment; // undefined from a server without the field: the words hedge
  const paid = returned === "succeeded" || returned === "processing" || MONEY_HELD.has(payment);
  const late = "Your payment came after your checkout ended, and someone else had taken a seat meanwhile";
  const again = "Choose your seats again on the seat map.";
  switch (order.status) {
    case "pending":
      if (paid) {
        return {
          tone: "info",
          title: "Payment received: confirming your seats…",
          text:
            waited > 20
              ? "This is taking longer than usual. This page updates by itself; you don't need to pay again."
              : `We are booking your ${plural(count, "seat")}. This takes a moment.`,
          poll: waited > 20 ? "slow" : "fast",
        };
      }
      if (returned === "failed") {
        return {
          tone: "error",
          title: "Your payment was declined",
          text: `Nothing was charged. Your ${plural(count, "seat")} ${count === 1 ? "stays" : "stay"} reserved for you until the time runs out: try again before then, with the same or another card.`,
          pay: "Try again",
          poll: "slow",
        };
      }
      return {
        tone: "info",
        title: "Awaiting payment",
        text: `Your ${plural(count, "seat")} (${total}) ${count === 1 ? "is" : "are"} reserved for you until the time runs out. Pay before then; if you don't, the seats are released and nothing is charged.`,
        pay: "Pay now",
        poll: "slow",
      };
    case "confirmed":
      return {
        tone: "success",
        title: "You're going!",
        text: `Payment of ${total} received. Here ${count === 1 ? "is your ticket" : `are your ${count} tickets`}: show each QR code at the door, on your phone or printed.`,
        tickets: true,
      };
    case "partially_refunded":
      return {
        tone: "success",
        title: "Your tickets",
        text: `${refunded} of ${total} was refunded to your card. The tickets below are still valid.`,
        tickets: true,
      };
    case "expired":
      if (paid) {
        // A late payment: the server books the seats if they are still free, else gives it back.
        return {
          tone: "info",
          title: "Your payment came after your checkout ended",
          text:
            waited > 30
              ? "We are still waiting to hear about your payment. If your seats were taken meanwhile, the payment is given back. This page updates by itself."
              : "Checking whether your seats are still free… If they are, they are yours; if not, the payment is given back.",
          poll: waited > 30 ? "slow" : "fast",
        };
      }
      return {
        tone: "error",
        title: "Your checkout ended before payment",
        text: "Its seats were released and nothing was charged. Choose your seats again on the seat map.",
        backToMap: true,
      };
    case "cancelled": {
      if (order.confirmed_at) {
        return {
          tone: "error",
          title: "This order was cancelled",
          text: "The payment could not be collected, so the order was cancelled and its seats went back on sale. Nothing was charged.",
          backToMap: true,
        };
      }
      if (MONEY_HELD.has(payment)) {
        // Decided, not yet done by Stripe: say so, and ask again until it is.
        return {
          tone: "info",
          title: "Giving your payment back…",
          text:
            payment === "authorized"
              ? `${late}, so the payment is being released: nothing will be charged.`
              : `${late}, so the ${total} you paid is being refunded in full.`,
          poll: waited > 30 ? "slow" : "fast",
          backToMap: true,
        };
      }
      let text;
      if (payment === "released") text = `${late}, so the payment was released: nothing was charged. ${again}`;
      else if (payment === "refunded" || payment === "partially_refunded") text = `${late}, so the ${total} you paid was refunded in full. ${again}`;
      else if (payment === "none") text = `Its seats went back on sale. No payment was taken, so nothing was charged. ${again}`;
      else if (returned === "succeeded") text = `${late}, so the payment was released: nothing was charged. ${again}`;
      else text = "Its seats went back on sale and nothing was charged: if you paid after your checkout ended and a seat had been taken meanwhile, the payment was released.";
      return { tone: "error", title: "This order was cancelled", text, backToMap: true };
    }
    case "refunded":
      if (!order.confirmed_at) {
        if (MONEY_HELD.has(payment)) {
          return {
            tone: "info",
            title: "Giving your payment back…",
            text: `${late}, so the ${total} you paid is being refunded in full.`,
            poll: waited > 30 ? "slow" : "fast",
            backToMap: true,
          };
        }
        return {
          tone: "error",
          title: "Your payment was refunded",
          text: `${late}, so the ${order.refunded_cents ? refunded : total} you paid was refunded in full. ${again}`,
          backToMap: true,
        };
      }
      return {
        tone: "info",
        title: "This order was refunded",
        text: `${refunded} was refunded to your card. Its tickets are no longer valid.`,
        backToMap: true,
      };
    default:
      return { tone: "info", title: STATUS_NAMES[order.status] || order.status, text: "" };
  }
}
