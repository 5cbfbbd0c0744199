"""Stripe-shaped objects: ids, test cards, and the JSON the API and webhooks carry.

This module owns what a PaymentIntent, Charge, Refund, PaymentMethod and
Event look like (the fields Stripe returns, in Stripe's names, at the API
version in `config.DEFAULT_API_VERSION`). It builds plain dicts and decides
nothing: which object moves where is `transitions`' job. It never does I/O;
its only impurity is drawing random ids.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

_ID_ALPHABET = string.ascii_letters + string.digits

# Currencies Stripe counts in whole units (amount 500 is ¥500, not ¥5.00).
ZERO_DECIMAL_CURRENCIES = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


def new_id(prefix: str) -> str:
    """A fresh Stripe-style id: `pi_`, `ch_`, `re_`, `evt_`, `req_`, ... then 24 random characters."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


@dataclass(frozen=True)
class Card:
    """What one of Stripe's test PaymentMethods does at the bank.

    `decline_code` None means the bank approves (subject to the gateway's
    success rate, like any bank); otherwise the charge fails with it.
    """

    brand: str
    last4: str
    funding: str = "credit"
    decline_code: str | None = None
    error_code: str = "card_declined"
    message: str = "Your card was declined."

    @property
    def approves(self) -> bool:
        return self.decline_code is None


# Stripe's test PaymentMethod ids (https://docs.stripe.com/testing), the
# subset a seat map needs: good cards and the common declines.
TEST_CARDS: dict[str, Card] = {
    "pm_card_visa": Card("visa", "4242"),
    "pm_card_visa_debit": Card("visa", "5556", funding="debit"),
    "pm_card_mastercard": Card("mastercard", "4444"),
    "pm_card_amex": Card("amex", "8431"),
    "pm_card_chargeDeclined": Card("visa", "0002", decline_code="generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": Card(
        "visa", "9995", decline_code="insufficient_funds", message="Your card has insufficient funds."
    ),
    "pm_card_chargeDeclinedFraudulent": Card("visa", "0019", decline_code="fraudulent"),
    "pm_card_chargeDeclinedExpiredCard": Card(
        "visa",
        "0069",
        decline_code="expired_card",
        error_code="expired_card",
        message="Your card has expired.",
    ),
}

# What a good card gets when the success-rate roll says "declined".
BANK_DECLINE = "generic_decline"


def payment_method(pm_id: str, card: Card, now: int) -> dict[str, Any]:
    return {
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "card": _card_details(card),
        "created": now,
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def fingerprint(card: Card) -> str:
    """Stripe's card-number fingerprint; the gateway also finds a stored PaymentMethod's test card by it."""
    return f"gw{card.brand[:4]}{card.last4}{card.funding[:1]}"


def _card_details(card: Card) -> dict[str, Any]:
    return {
        "brand": card.brand,
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
        "country": "US",
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": fingerprint(card),
        "funding": card.funding,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
    }


def payment_intent(
    *,
    amount: int,
    currency: str,
    capture_method: str,
    metadata: dict[str, str],
    payment_method_types: list[str],
    automatic_payment_methods: dict[str, Any] | None,
    now: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    pi_id = new_id("pi")
    intent: dict[str, Any] = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic_payment_methods,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{pi_id}_secret_{new_id('s')[2:]}",
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": payment_method_types,
        "processing": None,
        "receipt_email": None,
        "return_url": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    intent.update(extra)
    return intent


def charge(intent: dict[str, Any], *, pm_id: str, card: Card, captured: bool, now: int) -> dict[str, Any]:
    """The Charge one confirm attempt makes: failed if `card` declines, else succeeded (maybe uncaptured)."""
    ch_id = new_id("ch")
    paid = card.approves
    if paid:
        outcome = {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    else:
        outcome = {
            "network_status": "declined_by_network",
            "reason": card.decline_code,
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    return {
        "id": ch_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if paid and captured else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "balance_transaction": new_id("txn") if paid and captured else None,
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "calculated_statement_descriptor": "SEATMAP",
        "captured": paid and captured,
        "created": now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if paid else card.error_code,
        "failure_message": None if paid else card.message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "outcome": outcome,
        "paid": paid,
        "payment_intent": intent["id"],
        "payment_method": pm_id,
        "payment_method_details": {"card": _card_details(card), "type": "card"},
        "receipt_email": intent["receipt_email"],
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{ch_id}",
        "refunded": False,
        "refunds": list_of([], f"/v1/charges/{ch_id}/refunds"),
        "review": None,
        "status": "succeeded" if paid else "failed",
        "transfer_data": None,
        "transfer_group": intent["transfer_group"],
    }


def refund(
    charge_: dict[str, Any], *, amount: int, reason: str | None, metadata: dict[str, str], now: int
) -> dict[str, Any]:
    return {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge_["id"],
        "created": now,
        "currency": charge_["currency"],
        "destination_details": {
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge_["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def list_of(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


def event(
    event_type: str,
    snapshot: dict[str, Any],
    *,
    now: int,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
    pending_webhooks: int,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": snapshot}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": now,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
