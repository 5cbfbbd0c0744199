"""The payment state machine: what each API call does to PaymentIntents, Charges and Refunds.

This module owns every decision the gateway makes: validating a call's
parameters, which status a PaymentIntent moves to, whether a card is approved
(the test card's behaviour, then the success-rate roll), what a refund may
take, and which events each change emits. It is sans-I/O: each operation takes
the parameters and a `Context` (a read-only lookup of stored objects, the
`Bank`'s answer for this call, the time), and returns an `Outcome` (objects to store, events to
emit, the answer) or raises a `GatewayError` having changed nothing. Objects
are copied on write, so an event's snapshot is the object at that moment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from server.gateway import objects
from server.gateway.errors import CardDeclined, GatewayError, InvalidRequest, ResourceMissing, UnexpectedState
from server.gateway.forms import Params, merge_metadata

Obj = dict[str, Any]
Lookup = Callable[[str], Obj | None]

MIN_AMOUNT = 50  # Stripe's floor in the smallest unit (50 cents for usd).
MAX_AMOUNT = 99_999_999


class Status(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


_S = Status
# Every move a PaymentIntent may make, written once. A decline moves an
# intent back to requires_payment_method so the buyer can retry.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    _S.REQUIRES_PAYMENT_METHOD: frozenset(
        {_S.REQUIRES_CONFIRMATION, _S.REQUIRES_PAYMENT_METHOD, _S.REQUIRES_CAPTURE, _S.SUCCEEDED, _S.CANCELED}
    ),
    _S.REQUIRES_CONFIRMATION: frozenset({_S.REQUIRES_PAYMENT_METHOD, _S.REQUIRES_CAPTURE, _S.SUCCEEDED, _S.CANCELED}),
    _S.REQUIRES_ACTION: frozenset({_S.REQUIRES_PAYMENT_METHOD, _S.REQUIRES_CAPTURE, _S.SUCCEEDED, _S.CANCELED}),
    _S.PROCESSING: frozenset({_S.REQUIRES_PAYMENT_METHOD, _S.SUCCEEDED, _S.CANCELED}),
    _S.REQUIRES_CAPTURE: frozenset({_S.SUCCEEDED, _S.CANCELED}),
    _S.SUCCEEDED: frozenset(),
    _S.CANCELED: frozenset(),
}
# The statuses each call accepts, in the order Stripe's messages list them.
CONFIRMABLE = (_S.REQUIRES_PAYMENT_METHOD, _S.REQUIRES_CONFIRMATION, _S.REQUIRES_ACTION)
CAPTURABLE = (_S.REQUIRES_CAPTURE,)
CANCELABLE = (
    _S.REQUIRES_PAYMENT_METHOD,
    _S.REQUIRES_CAPTURE,
    _S.REQUIRES_CONFIRMATION,
    _S.REQUIRES_ACTION,
    _S.PROCESSING,
)

CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

_MISSING_PAYMENT_METHOD = (
    "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update "
    "the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with "
    "a payment method."
)


@dataclass(frozen=True)
class Bank:
    """How the bank answers this call: a good card is approved when `roll` < `success_rate`."""

    success_rate: float = 1.0
    roll: float = 0.0

    def judge(self, card: objects.Card) -> objects.Card:
        if card.approves and self.roll >= self.success_rate:
            return dataclasses.replace(card, decline_code=objects.BANK_DECLINE)
        return card


@dataclass(frozen=True)
class Context:
    """What an operation may know besides its parameters: stored objects (read-only), the bank, the time."""

    lookup: Lookup
    bank: Bank
    now: int


@dataclass(frozen=True)
class Emitted:
    type: str
    snapshot: Obj
    previous_attributes: Obj | None = None


@dataclass(frozen=True)
class Outcome:
    """What a call did: `result` answers it unless `error` (a decline that still changed state) is set."""

    result: Obj
    saved: tuple[Obj, ...] = ()
    events: tuple[Emitted, ...] = ()
    error: CardDeclined | None = None


def move(intent: Obj, to: Status, **changes: Any) -> Obj:
    """A copy of `intent` in status `to`; a move the table forbids is a gateway bug."""
    current = Status(intent["status"])
    if to not in TRANSITIONS[current]:
        raise GatewayError(f"illegal PaymentIntent transition {current} -> {to}")
    return {**intent, **changes, "status": str(to)}


def _state_error(verb: str, intent: Obj, allowed: tuple[Status, ...]) -> UnexpectedState:
    statuses = ", ".join(allowed)
    if verb == "capture":
        message = (
            f"This PaymentIntent could not be captured because it has a status of {intent['status']}. "
            f"Only a PaymentIntent with one of the following statuses may be captured: {statuses}."
        )
    else:
        message = (
            f"You cannot {verb} this PaymentIntent because it has a status of {intent['status']}. "
            f"Only a PaymentIntent with one of the following statuses may be {verb}ed: {statuses}."
        )
    return UnexpectedState(message, payment_intent=intent)


def need(lookup: Lookup, obj_id: str, kind: str, param: str = "id") -> Obj:
    """The stored object `obj_id` of this kind, or Stripe's 404."""
    found = lookup(obj_id)
    if found is None or found.get("object") != kind:
        raise ResourceMissing(f"No such {kind}: '{obj_id}'", param=param)
    return found


# -- payment intents ---------------------------------------------------------


def create_payment_intent(p: Params, ctx: Context) -> Outcome:
    amount = p.integer("amount", required=True)
    assert amount is not None
    currency = (p.text("currency", required=True) or "").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidRequest(f"Invalid currency: {currency}", param="currency")
    if amount < MIN_AMOUNT:
        raise InvalidRequest(
            f"Amount must be at least {MIN_AMOUNT} in the smallest currency unit",
            code="amount_too_small",
            param="amount",
        )
    if amount > MAX_AMOUNT:
        raise InvalidRequest(
            f"Amount must be no more than {MAX_AMOUNT} in the smallest currency unit",
            code="amount_too_large",
            param="amount",
        )
    types = p.strings("payment_method_types")
    automatic = p.mapping("automatic_payment_methods")
    if types and automatic and automatic.get("enabled") == "true":
        raise InvalidRequest(
            "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
            param="automatic_payment_methods",
        )
    if types:
        automatic_payment_methods = None
    else:
        # Since API version 2023-08-16 automatic payment methods are on by default.
        enabled = automatic is None or automatic.get("enabled", "true") == "true"
        automatic_payment_methods = (
            {
                "allow_redirects": automatic.get("allow_redirects", "always") if automatic else "always",
                "enabled": True,
            }
            if enabled
            else None
        )
        types = ["card"]
    extra: Obj = {
        name: value
        for name in (
            "description",
            "receipt_email",
            "customer",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "transfer_group",
            "return_url",
        )
        if (value := p.text(name)) is not None
    }
    future_usage = p.choice("setup_future_usage", ("on_session", "off_session"))
    if future_usage:
        extra["setup_future_usage"] = future_usage
    for name in ("payment_method_options", "shipping"):
        if (nested := p.mapping(name)) is not None:
            extra[name] = nested
    intent = objects.payment_intent(
        amount=amount,
        currency=currency,
        capture_method=p.choice("capture_method", CAPTURE_METHODS) or "automatic_async",
        metadata=merge_metadata({}, p.metadata()),
        payment_method_types=types,
        automatic_payment_methods=automatic_payment_methods,
        now=ctx.now,
        extra=extra,
    )
    confirm = p.boolean("confirm") or False
    pm_param = p.text("payment_method")
    for flag in ("off_session", "error_on_requires_action", "use_stripe_sdk"):
        p.boolean(flag)  # accepted; test cards never need an action
    p.reject_unknown()

    if confirm and pm_param is None:
        raise InvalidRequest(_MISSING_PAYMENT_METHOD, param="payment_method")
    created = Outcome(result=intent, saved=(intent,), events=(Emitted("payment_intent.created", intent),))
    if pm_param is None:
        return created
    method, method_is_new = _resolve_payment_method(pm_param, ctx)
    if not confirm:
        intent = move(intent, Status.REQUIRES_CONFIRMATION, payment_method=method["id"])
        saved = (method, intent) if method_is_new else (intent,)
        return Outcome(result=intent, saved=saved, events=created.events)
    attempt = _attempt(intent, method, method_is_new, ctx)
    return Outcome(
        result=attempt.result,
        saved=attempt.saved,
        events=created.events + attempt.events,
        error=attempt.error,
    )


def confirm_payment_intent(pi_id: str, p: Params, ctx: Context) -> Outcome:
    intent = need(ctx.lookup, pi_id, "payment_intent", param="intent")
    pm_param = p.text("payment_method")
    changes: Obj = {}
    if (capture_method := p.choice("capture_method", CAPTURE_METHODS)) is not None:
        changes["capture_method"] = capture_method
    for name in ("return_url", "receipt_email"):
        if (value := p.text(name)) is not None:
            changes[name] = value
    for name in ("payment_method_options", "shipping"):
        if (nested := p.mapping(name)) is not None:
            changes[name] = nested
    for flag in ("off_session", "error_on_requires_action", "use_stripe_sdk"):
        p.boolean(flag)
    p.reject_unknown()

    if Status(intent["status"]) not in CONFIRMABLE:
        raise _state_error("confirm", intent, (_S.REQUIRES_CONFIRMATION, _S.REQUIRES_ACTION))
    pm_id = pm_param or intent["payment_method"]
    if pm_id is None:
        raise UnexpectedState(_MISSING_PAYMENT_METHOD, payment_intent=intent)
    method, method_is_new = _resolve_payment_method(pm_id, ctx)
    return _attempt({**intent, **changes}, method, method_is_new, ctx)


def _resolve_payment_method(pm_id: str, ctx: Context) -> tuple[Obj, bool]:
    """A test id (`pm_card_visa`) becomes a new PaymentMethod, as in Stripe; a stored one is reused."""
    if (card := objects.TEST_CARDS.get(pm_id)) is not None:
        return objects.payment_method(objects.new_id("pm"), card, ctx.now), True
    return need(ctx.lookup, pm_id, "payment_method", param="payment_method"), False


def card_of(method: Obj) -> objects.Card:
    fingerprint = method["card"]["fingerprint"]
    for card in objects.TEST_CARDS.values():
        if objects.fingerprint(card) == fingerprint:
            return card
    raise GatewayError(f"payment method {method['id']} is no test card")


def _attempt(intent: Obj, method: Obj, method_is_new: bool, ctx: Context) -> Outcome:
    """One confirm at the bank: a Charge, and the intent succeeded, authorized or back to square one."""
    card = ctx.bank.judge(card_of(method))
    manual = intent["capture_method"] == "manual"
    charge = objects.charge(intent, pm_id=method["id"], card=card, captured=not manual, now=ctx.now)
    stored = (method,) if method_is_new else ()
    if not card.approves:
        declined = CardDeclined(card.message, code=card.error_code, decline_code=card.decline_code, charge=charge["id"])
        last_error = {**declined.body()["error"], "payment_method": method}
        intent = move(
            intent,
            Status.REQUIRES_PAYMENT_METHOD,
            last_payment_error=last_error,
            latest_charge=charge["id"],
            payment_method=None,
        )
        declined.extra.update(payment_intent=intent, payment_method=method)
        return Outcome(
            result=intent,
            saved=(*stored, charge, intent),
            events=(Emitted("charge.failed", charge), Emitted("payment_intent.payment_failed", intent)),
            error=declined,
        )
    common = {"last_payment_error": None, "latest_charge": charge["id"], "payment_method": method["id"]}
    if manual:
        intent = move(intent, Status.REQUIRES_CAPTURE, amount_capturable=intent["amount"], **common)
        event = "payment_intent.amount_capturable_updated"
    else:
        intent = move(intent, Status.SUCCEEDED, amount_received=intent["amount"], **common)
        event = "payment_intent.succeeded"
    return Outcome(
        result=intent,
        saved=(*stored, charge, intent),
        events=(Emitted("charge.succeeded", charge), Emitted(event, intent)),
    )


def capture_payment_intent(pi_id: str, p: Params, ctx: Context) -> Outcome:
    intent = need(ctx.lookup, pi_id, "payment_intent", param="intent")
    amount = p.integer("amount_to_capture")
    metadata = p.metadata()
    p.text("statement_descriptor")
    p.text("statement_descriptor_suffix")
    p.boolean("final_capture")
    p.reject_unknown()
    if Status(intent["status"]) not in CAPTURABLE:
        raise _state_error("capture", intent, CAPTURABLE)
    capturable = intent["amount_capturable"]
    amount = capturable if amount is None else amount
    if amount <= 0:
        raise InvalidRequest("Invalid positive integer", param="amount_to_capture")
    if amount > capturable:
        raise InvalidRequest(
            f"The amount to capture ({amount}) must be less than or equal to the amount capturable ({capturable}).",
            code="amount_too_large",
            param="amount_to_capture",
        )
    charge = need(ctx.lookup, intent["latest_charge"], "charge")
    charge = {
        **charge,
        "captured": True,
        "amount_captured": amount,
        "balance_transaction": objects.new_id("txn"),
    }
    intent = move(
        intent,
        Status.SUCCEEDED,
        amount_capturable=0,
        amount_received=amount,
        metadata=merge_metadata(intent["metadata"], metadata),
    )
    return Outcome(
        result=intent,
        saved=(charge, intent),
        events=(Emitted("charge.captured", charge), Emitted("payment_intent.succeeded", intent)),
    )


def cancel_payment_intent(pi_id: str, p: Params, ctx: Context) -> Outcome:
    intent = need(ctx.lookup, pi_id, "payment_intent", param="intent")
    reason = p.choice("cancellation_reason", CANCELLATION_REASONS)
    p.reject_unknown()
    if Status(intent["status"]) not in CANCELABLE:
        raise _state_error("cancel", intent, CANCELABLE)
    saved: tuple[Obj, ...] = ()
    if intent["status"] == Status.REQUIRES_CAPTURE:
        # The authorization is released: the uncaptured charge reads as fully
        # refunded, as Stripe shows it. Only payment_intent.canceled is sent.
        charge = need(ctx.lookup, intent["latest_charge"], "charge")
        saved = ({**charge, "refunded": True, "amount_refunded": charge["amount"]},)
    intent = move(intent, Status.CANCELED, amount_capturable=0, canceled_at=ctx.now, cancellation_reason=reason)
    return Outcome(result=intent, saved=(*saved, intent), events=(Emitted("payment_intent.canceled", intent),))


# -- refunds -----------------------------------------------------------------


def create_refund(p: Params, ctx: Context) -> Outcome:
    pi_id = p.text("payment_intent")
    ch_id = p.text("charge")
    amount = p.integer("amount")
    reason = p.choice("reason", REFUND_REASONS)
    metadata = merge_metadata({}, p.metadata())
    for flag in ("refund_application_fee", "reverse_transfer"):
        p.boolean(flag)
    p.text("instructions_email")
    p.reject_unknown()

    if pi_id is None and ch_id is None:
        raise InvalidRequest(
            "One of the following params should be provided for this request: payment_intent or charge."
        )
    if pi_id is not None:
        intent = need(ctx.lookup, pi_id, "payment_intent", param="payment_intent")
        if intent["status"] != Status.SUCCEEDED:
            raise InvalidRequest(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        if ch_id is not None and ch_id != intent["latest_charge"]:
            raise InvalidRequest(f"Charge {ch_id} does not belong to PaymentIntent {pi_id}.", param="charge")
        ch_id = intent["latest_charge"]
    assert ch_id is not None
    charge = need(ctx.lookup, ch_id, "charge", param="charge")
    if not charge["paid"]:
        raise InvalidRequest(f"Charge {ch_id} did not succeed and cannot be refunded.", param="charge")
    if not charge["captured"]:
        raise InvalidRequest(
            f"Charge {ch_id} has not been captured; cancel its PaymentIntent to release the authorization.",
            param="charge",
        )
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise InvalidRequest(f"Charge {ch_id} has already been refunded.", code="charge_already_refunded")
    amount = remaining if amount is None else amount
    if amount <= 0:
        raise InvalidRequest("Invalid positive integer", code="parameter_invalid_integer", param="amount")
    if amount > remaining:
        raise InvalidRequest(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            code="amount_too_large",
            param="amount",
        )
    refund = objects.refund(charge, amount=amount, reason=reason, metadata=metadata, now=ctx.now)
    refunds = charge["refunds"]
    previous = {
        "amount_refunded": charge["amount_refunded"],
        "refunded": charge["refunded"],
        "refunds": refunds,
    }
    refunded_total = charge["amount_refunded"] + amount
    charge = {
        **charge,
        "amount_refunded": refunded_total,
        "refunded": refunded_total >= charge["amount_captured"],
        "refunds": objects.list_of([refund, *refunds["data"]], refunds["url"]),
    }
    return Outcome(
        result=refund,
        saved=(refund, charge),
        events=(Emitted("charge.refunded", charge, previous), Emitted("refund.created", refund)),
    )
