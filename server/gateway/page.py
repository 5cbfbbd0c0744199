"""The checkout page: where a person pays (or declines) a PaymentIntent with a test card.

This module owns ``GET /pay/{payment_intent_id}?return_url=…`` (a plain,
self-contained HTML page: the merchant, the amount, two buttons) and
``POST /pay/{payment_intent_id}``, which confirms server-side with
``pm_card_visa`` or ``pm_card_chargeDeclined`` through the same core as the
REST API (so the browser never needs an API key, and the success rate and
webhooks apply as for any confirm), then sends the browser to ``return_url``
with ``payment_intent``, ``payment_intent_client_secret`` and
``redirect_status=succeeded|failed`` added, as Stripe does.

The page has no script and no external asset: native buttons in a form,
with visible focus, so it works by keyboard and screen reader. It is a test
page: anyone who knows a PaymentIntent id can pay it with a test card, and
`return_url` is only accepted as an http(s) URL.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from server.gateway.objects import ZERO_DECIMAL_CURRENCIES
from server.gateway.service import Call, Gateway
from server.gateway.transitions import CONFIRMABLE

log = logging.getLogger("seatmap.gateway.page")

CHOICES = {"pay": "pm_card_visa", "decline": "pm_card_chargeDeclined"}

# No script, no external asset, no framing; inline styles only.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1a1a1a; }
main { max-width: 28rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: 8px;
       box-shadow: 0 1px 4px rgba(0,0,0,.15); }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 4px; background: #fff3cd;
         color: #5c4400; font-size: .875rem; }
.amount { font-size: 2rem; font-weight: 600; margin: .25rem 0 1rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 1.5rem; }
dt { color: #4a4a4a; }
dd { margin: 0; overflow-wrap: anywhere; }
fieldset { border: 0; padding: 0; margin: 0; display: grid; gap: .75rem; }
legend { font-weight: 600; margin-bottom: .5rem; }
button { font: inherit; padding: .75rem 1rem; border-radius: 6px; border: 2px solid transparent;
         cursor: pointer; }
.pay { background: #0a5cd5; color: #fff; }
.decline { background: #fff; color: #8a1c1c; border-color: #8a1c1c; }
button:focus-visible, a:focus-visible { outline: 3px solid #1a1a1a; outline-offset: 2px; }
.alert { padding: .75rem 1rem; border-radius: 6px; background: #fde8e8; color: #7a1212; }
.done { padding: .75rem 1rem; border-radius: 6px; background: #e6f4ea; color: #10502a; }
a { color: #0a4fb8; }
"""


def format_amount(amount: int, currency: str) -> str:
    """`5000, "usd"` → "50.00 USD"; zero-decimal currencies stay whole ("500 JPY")."""
    code = currency.upper()
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount:,} {code}"
    return f"{amount // 100:,}.{amount % 100:02d} {code}"


def safe_return_url(url: str | None) -> str | None:
    """`url` if it is an absolute http(s) URL, else None (never a javascript: or relative URL)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


def return_to(url: str, intent: dict[str, Any], redirect_status: str) -> str:
    """`url` with Stripe's redirect parameters added to its query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [
        ("payment_intent", intent["id"]),
        ("payment_intent_client_secret", intent["client_secret"]),
        ("redirect_status", redirect_status),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect_status(intent: dict[str, Any]) -> str:
    if intent["status"] in ("succeeded", "requires_capture"):
        return "succeeded"
    if intent["status"] == "processing":
        return "processing"
    return "failed"


def render(intent: dict[str, Any], *, merchant: str, return_url: str | None, notice: str | None = None) -> str:
    """The page for `intent` in its current status; `notice` is news of the last attempt."""
    e = html.escape
    amount = format_amount(intent["amount"], intent["currency"])
    details = [("Merchant", merchant), ("Payment", intent["id"])]
    if intent.get("description"):
        details.insert(1, ("For", intent["description"]))
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in details)
    parts = [
        '<p class="badge">Test mode: no real money moves</p>',
        f'<h1 id="title">Pay {e(merchant)}</h1>',
        f'<p class="amount" id="amount">{e(amount)}</p>',
        f"<dl>{rows}</dl>",
    ]
    if intent["status"] in CONFIRMABLE:
        error = notice or (intent.get("last_payment_error") or {}).get("message")
        if error:
            parts.append(f'<p class="alert" role="alert">Declined: {e(error)} You can try again.</p>')
        hidden = f'<input type="hidden" name="return_url" value="{e(return_url)}">' if return_url else ""
        parts.append(
            f'<form method="post" action="/pay/{e(intent["id"])}">{hidden}'
            '<fieldset aria-describedby="amount"><legend>Choose a test card</legend>'
            '<button type="submit" class="pay" name="choice" value="pay">Pay with test card 4242…</button>'
            '<button type="submit" class="decline" name="choice" value="decline">'
            "Decline (test card 0002)</button>"
            "</fieldset></form>"
        )
    else:
        if redirect_status(intent) == "succeeded":
            parts.append('<p class="done" role="status">This payment is complete.</p>')
        else:
            parts.append(f'<p class="alert" role="status">This payment is {e(intent["status"])}.</p>')
        if return_url:
            back = return_to(return_url, intent, redirect_status(intent))
            parts.append(f'<p><a href="{e(back)}">Return to {e(merchant)}</a></p>')
    return _document(f"Pay {amount} to {merchant}", "".join(parts))


def render_missing(pi_id: str) -> str:
    body = (
        '<h1 id="title">No such payment</h1>'
        f"<p>The test gateway knows no PaymentIntent <code>{html.escape(pi_id)}</code>.</p>"
    )
    return _document("No such payment", body)


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} (test mode)</title><style>{_STYLE}</style></head>"
        f'<body><main aria-labelledby="title">{body}</main></body></html>'
    )


async def show(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    pi_id = request.path_params["id"]
    intent = gateway.get(pi_id)
    if intent is None or intent.get("object") != "payment_intent":
        return HTMLResponse(render_missing(pi_id), status_code=404, headers=_HEADERS)
    return_url = safe_return_url(request.query_params.get("return_url")) or safe_return_url(intent.get("return_url"))
    page = render(intent, merchant=gateway.config.merchant_name, return_url=return_url)
    return HTMLResponse(page, headers=_HEADERS)


async def pay(request: Request) -> Response:
    gateway: Gateway = request.state.gateway
    pi_id = request.path_params["id"]
    form = dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
    payment_method = CHOICES.get(form.get("choice", ""))
    if payment_method is None:
        return HTMLResponse(
            _document("Bad request", '<h1 id="title">Choose pay or decline</h1>'),
            status_code=400,
            headers=_HEADERS,
        )
    intent = gateway.get(pi_id)
    if intent is None or intent.get("object") != "payment_intent":
        return HTMLResponse(render_missing(pi_id), status_code=404, headers=_HEADERS)
    return_url = safe_return_url(form.get("return_url")) or safe_return_url(intent.get("return_url"))
    notice = None
    if intent["status"] in CONFIRMABLE:
        reply = gateway.confirm_payment_intent(
            Call("POST", f"/pay/{pi_id}", [("payment_method", payment_method)]), pi_id
        )
        if reply.error is not None:
            notice = reply.error.message
        log.info(
            "POST /pay/%s %s -> %d%s %s",
            pi_id,
            payment_method,
            reply.status,
            f" {reply.error.code}" if reply.error else "",
            reply.request_id,
        )
        # Whatever happened (even a double submit that found it already paid),
        # the browser goes back with the intent's status as it now stands.
        intent = gateway.get(pi_id) or intent
    if return_url:
        return RedirectResponse(return_to(return_url, intent, redirect_status(intent)), status_code=303)
    page = render(intent, merchant=gateway.config.merchant_name, return_url=None, notice=notice)
    return HTMLResponse(page, headers=_HEADERS)


def routes() -> list[Route]:
    return [Route("/pay/{id}", show, methods=["GET"]), Route("/pay/{id}", pay, methods=["POST"])]
