"""Seatmap's own payment page (`/pay/{order_id}`, used with real Stripe) in
a real browser, and the order page that needs no layout.

Stripe.js cannot be loaded here (no internet), so the browser is given a
stand-in at https://js.stripe.com/v3 that records how the page uses it —
the publishable key, the Payment Element mounted with the order's
`client_secret`, `confirmPayment` with the order's page as `return_url` —
and answers as Stripe.js does: an error object for a declined card, or, for
a payment that went through, a redirect to `return_url`. The money itself
moves through the bundled gateway with the real stripe SDK, and its signed
webhooks confirm the order, as Stripe's would."""

from __future__ import annotations

import re
from typing import Any

from server.venues import grid_venue
from tests.browser.conftest import click_seat, open_map, wait_seat_state
from tests.browser.servers import STRIPE_PUBLISHABLE_KEY, stripe_mode_server
from tests.payflow import confirm, order, wait_for_status
from tests.support import unique_id

PAY_PAGE = re.compile(r".*/pay/ord_[^/?]+$")
STRIPE_JS_STAND_IN = """
window.stripeStandIn = { confirms: [] };
window.Stripe = function (key) {
  const seen = window.stripeStandIn;
  seen.key = key;
  return {
    elements(options) {
      seen.elementsOptions = options;
      return {
        create(type) {
          seen.created = type;
          return {
            mount(selector) {
              seen.mounted = selector;
              const field = document.createElement("input");
              field.setAttribute("aria-label", "Card number");
              document.querySelector(selector).append(field);
            },
          };
        },
      };
    },
    confirmPayment(options) {
      seen.confirms.push({ returnUrl: options.confirmParams.return_url, withElements: options.elements !== undefined });
      return new Promise((resolve) => (seen.answer = resolve));
    },
  };
};
"""


async def with_stripe_stand_in(context: Any) -> list[str]:
    """Serve the stand-in for Stripe.js in `context`; the list of its loads."""
    loads: list[str] = []

    async def serve(route: Any) -> None:
        loads.append(route.request.url)
        await route.fulfill(status=200, content_type="application/javascript", body=STRIPE_JS_STAND_IN)

    await context.route("https://js.stripe.com/**", serve)
    return loads


async def test_the_stripe_payment_page_pays_and_returns_to_the_order(server_settings, new_context):
    async with stripe_mode_server(server_settings()) as server:
        body = grid_venue(2, 8, event_id=unique_id(), tier_of_row={0: "VIP"})
        body["name"] = "Spring Quartet"
        body["starts_at"] = "2026-04-11T18:00:00Z"
        event_id = await server.create_event(body)
        context = await new_context()
        stripe_loads = await with_stripe_stand_in(context)
        page = await open_map(context, server.url, event_id)
        await click_seat(page, "A-5")
        await wait_seat_state(page, "A-5", "mine")
        await page.click("#checkout")
        await page.wait_for_url(PAY_PAGE)
        order_id = page.url.rsplit("/", 1)[1]
        assert page.url == f"{server.url}/pay/{order_id}"

        # The Payment Element is mounted with this order's client_secret and the publishable key.
        await page.wait_for_function("window.stripeStandIn && window.stripeStandIn.mounted")
        seen = await page.evaluate("window.stripeStandIn")
        pending = await order(server, order_id)
        assert stripe_loads == ["https://js.stripe.com/v3"]
        assert seen["key"] == STRIPE_PUBLISHABLE_KEY and seen["created"] == "payment"
        assert seen["elementsOptions"]["clientSecret"].startswith(pending["payment_intent_id"] + "_secret_")
        assert seen["mounted"] == "#payment-element"
        assert await page.inner_text("#event-name") == "Spring Quartet"
        assert "row A, seat 5" in await page.inner_text("#seats")
        assert await page.inner_text("#pay-submit") == "Pay $150"
        assert re.fullmatch(r"Reserved for you for 1[0-5]:\d\d", await page.inner_text("#pay-countdown"))

        # A declined card: Stripe.js answers with an error, the page says so and stays.
        await page.click("#pay-submit")
        await page.wait_for_function("window.stripeStandIn.confirms.length === 1")
        first = (await page.evaluate("window.stripeStandIn.confirms"))[0]
        assert first == {"returnUrl": f"{server.url}/orders/{order_id}", "withElements": True}
        await page.evaluate(
            "window.stripeStandIn.answer({error: {type: 'card_error', message: 'Your card was declined.'}})"
        )
        await page.wait_for_selector("#pay-error:has-text('Your card was declined.')")
        assert "Nothing was charged" in await page.inner_text("#pay-error")
        assert await page.is_enabled("#pay-submit")

        # Paid: the money moves (gateway, real webhooks) and Stripe.js goes on to return_url.
        await page.click("#pay-submit")
        await page.wait_for_function("window.stripeStandIn.confirms.length === 2")
        await confirm(server, pending["payment_intent_id"])
        layout_reads: list[str] = []
        page.on("request", lambda r: layout_reads.append(r.url) if f"/api/events/{event_id}" in r.url else None)
        await page.evaluate(
            "([url, pi]) => location.assign(`${url}?payment_intent=${pi}&redirect_status=succeeded`)",
            [first["returnUrl"], pending["payment_intent_id"]],
        )
        await page.wait_for_selector('#state-title:has-text("You\'re going!")')
        await wait_for_status(server, order_id, "confirmed")
        await page.wait_for_function("document.querySelectorAll('#tickets .ticket').length === 1")
        ticket = await page.inner_text("#tickets")
        for words in ("Spring Quartet", "Stalls", "VIP", "$150", "Ticket 1 of 1"):
            assert words in ticket, words
        assert layout_reads == []  # the order answer carried everything the page shows

        # Nothing left to pay: the payment page hands over to the order's page.
        await page.goto(f"{server.url}/pay/{order_id}")
        await page.wait_for_url(f"{server.url}/orders/{order_id}")
        assert page.errors == []

        # Another browser has no session for this order: no Stripe.js, no secret.
        elsewhere = await new_context()
        elsewhere_loads = await with_stripe_stand_in(elsewhere)
        stranger = await elsewhere.new_page()
        await stranger.goto(f"{server.url}/pay/{order_id}")
        await stranger.wait_for_selector('#pay-title:has-text("This order isn\'t in this browser")')
        assert await stranger.is_hidden("#pay-form")
        assert elsewhere_loads == []
