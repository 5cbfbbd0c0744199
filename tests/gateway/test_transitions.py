"""The payment state machine, driven directly: no network, no database."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from server.gateway.errors import CardDeclined, GatewayError, InvalidRequest, UnexpectedState
from server.gateway.forms import Params, decode
from server.gateway.transitions import (
    TRANSITIONS,
    Bank,
    Context,
    Outcome,
    Status,
    cancel_payment_intent,
    capture_payment_intent,
    confirm_payment_intent,
    create_payment_intent,
    create_refund,
    move,
)

APPROVE = Bank(success_rate=1.0, roll=0.5)


class Ledger:
    """A dict standing in for the store: applies outcomes as the service would."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def ctx(self, bank: Bank = APPROVE) -> Context:
        return Context(self.objects.get, bank, 1_700_000_000)

    def apply(self, outcome: Outcome) -> Outcome:
        for obj in outcome.saved:
            self.objects[obj["id"]] = obj
        return outcome


def p(**fields: Any) -> Params:
    pairs: list[tuple[str, str]] = []
    for key, value in fields.items():
        if isinstance(value, dict):
            pairs += [(f"{key}[{k}]", v) for k, v in value.items()]
        else:
            pairs.append((key, str(value)))
    return Params(decode(pairs))


def new_intent(ledger: Ledger, **fields: Any) -> dict[str, Any]:
    outcome = ledger.apply(create_payment_intent(p(amount=5000, currency="usd", **fields), ledger.ctx()))
    return outcome.result


def test_terminal_statuses_allow_no_move_and_a_forbidden_move_is_a_bug() -> None:
    assert TRANSITIONS[Status.SUCCEEDED] == frozenset()
    assert TRANSITIONS[Status.CANCELED] == frozenset()
    with pytest.raises(GatewayError):
        move({"status": "succeeded"}, Status.REQUIRES_CAPTURE)


def test_create_then_confirm_with_a_good_card_succeeds_and_emits_stripes_events() -> None:
    ledger = Ledger()
    intent = new_intent(ledger, metadata={"order_id": "o-1"})
    assert intent["status"] == "requires_payment_method"
    assert intent["capture_method"] == "automatic_async"
    outcome = ledger.apply(
        confirm_payment_intent(intent["id"], p(payment_method="pm_card_visa"), ledger.ctx())
    )
    assert outcome.error is None
    assert outcome.result["status"] == "succeeded"
    assert outcome.result["amount_received"] == 5000
    assert [e.type for e in outcome.events] == ["charge.succeeded", "payment_intent.succeeded"]
    charge = ledger.objects[outcome.result["latest_charge"]]
    assert charge["captured"] and charge["metadata"] == {"order_id": "o-1"}


def test_a_decline_changes_state_and_a_retry_with_a_good_card_succeeds() -> None:
    ledger = Ledger()
    intent = new_intent(ledger)
    declined = ledger.apply(
        confirm_payment_intent(intent["id"], p(payment_method="pm_card_chargeDeclined"), ledger.ctx())
    )
    assert isinstance(declined.error, CardDeclined)
    assert declined.error.extra["decline_code"] == "generic_decline"
    assert declined.result["status"] == "requires_payment_method"
    assert declined.result["last_payment_error"]["decline_code"] == "generic_decline"
    assert [e.type for e in declined.events] == ["charge.failed", "payment_intent.payment_failed"]
    retried = confirm_payment_intent(intent["id"], p(payment_method="pm_card_visa"), ledger.ctx())
    assert retried.result["status"] == "succeeded"
    assert retried.result["last_payment_error"] is None


def test_the_bank_declines_a_good_card_when_the_roll_misses_the_success_rate() -> None:
    ledger = Ledger()
    intent = new_intent(ledger)
    outcome = confirm_payment_intent(
        intent["id"], p(payment_method="pm_card_visa"), ledger.ctx(Bank(success_rate=0.3, roll=0.3))
    )
    assert outcome.error is not None and outcome.error.extra["decline_code"] == "generic_decline"


def test_manual_capture_authorizes_then_captures_part_and_cannot_confirm_again() -> None:
    ledger = Ledger()
    intent = new_intent(ledger, capture_method="manual")
    authorized = ledger.apply(
        confirm_payment_intent(intent["id"], p(payment_method="pm_card_visa"), ledger.ctx())
    )
    assert authorized.result["status"] == "requires_capture"
    assert authorized.result["amount_capturable"] == 5000
    assert authorized.events[-1].type == "payment_intent.amount_capturable_updated"
    with pytest.raises(InvalidRequest) as too_much:
        capture_payment_intent(intent["id"], p(amount_to_capture=6000), ledger.ctx())
    assert too_much.value.code == "amount_too_large"
    captured = ledger.apply(capture_payment_intent(intent["id"], p(amount_to_capture=4000), ledger.ctx()))
    assert (captured.result["status"], captured.result["amount_received"]) == ("succeeded", 4000)
    with pytest.raises(UnexpectedState):
        confirm_payment_intent(intent["id"], p(payment_method="pm_card_visa"), ledger.ctx())
    with pytest.raises(UnexpectedState):
        cancel_payment_intent(intent["id"], p(), ledger.ctx())


def test_cancelling_an_authorization_releases_it() -> None:
    ledger = Ledger()
    intent = new_intent(ledger, capture_method="manual")
    ledger.apply(confirm_payment_intent(intent["id"], p(payment_method="pm_card_visa"), ledger.ctx()))
    canceled = ledger.apply(
        cancel_payment_intent(intent["id"], p(cancellation_reason="abandoned"), ledger.ctx())
    )
    assert canceled.result["status"] == "canceled"
    assert canceled.result["cancellation_reason"] == "abandoned"
    assert canceled.result["amount_capturable"] == 0
    assert ledger.objects[canceled.result["latest_charge"]]["refunded"] is True


def test_refunds_take_what_is_left_and_never_more() -> None:
    ledger = Ledger()
    intent = new_intent(ledger)
    ledger.apply(confirm_payment_intent(intent["id"], p(payment_method="pm_card_visa"), ledger.ctx()))
    part = ledger.apply(create_refund(p(payment_intent=intent["id"], amount=1500), ledger.ctx()))
    assert part.result["amount"] == 1500
    assert [e.type for e in part.events] == ["charge.refunded", "refund.created"]
    assert part.events[0].previous_attributes is not None
    with pytest.raises(InvalidRequest) as over:
        create_refund(p(payment_intent=intent["id"], amount=4000), ledger.ctx())
    assert over.value.code == "amount_too_large"
    rest = ledger.apply(create_refund(p(payment_intent=intent["id"]), ledger.ctx()))
    assert rest.result["amount"] == 3500
    charge = ledger.objects[rest.result["charge"]]
    assert (charge["amount_refunded"], charge["refunded"], charge["refunds"]["total_count"]) == (
        5000,
        True,
        2,
    )
    with pytest.raises(InvalidRequest) as again:
        create_refund(p(payment_intent=intent["id"]), ledger.ctx())
    assert again.value.code == "charge_already_refunded"


def test_invalid_create_parameters_change_nothing() -> None:
    ledger = Ledger()
    for query, param in (
        ("amount=10&currency=usd", "amount"),
        ("amount=5000", "currency"),
        ("amount=5000&currency=usd&capture_method=later", "capture_method"),
        ("amount=5000&currency=usd&surprise=1", "surprise"),
        ("amount=5000&currency=usd&confirm=true", "payment_method"),
    ):
        with pytest.raises(InvalidRequest) as error:
            create_payment_intent(Params(decode(parse_qsl(query))), ledger.ctx())
        assert error.value.param == param, query
    assert ledger.objects == {}
