"""Stripe's form encoding decoded as the stripe SDK writes it, and Stripe's parameter errors."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from server.gateway.errors import InvalidRequest
from server.gateway.forms import Params, decode, merge_metadata


def params(query: str) -> Params:
    return Params(decode(parse_qsl(query, keep_blank_values=True)))


def test_nested_metadata_lists_and_flags_decode_as_the_sdk_sends_them() -> None:
    p = params(
        "amount=5000&currency=usd&metadata[order_id]=o-1&metadata[event]=gala"
        "&payment_method_types[0]=card&payment_method_types[1]=link"
        "&automatic_payment_methods[enabled]=false&confirm=true&expand[]=latest_charge"
    )
    assert p.integer("amount") == 5000
    assert p.metadata() == {"order_id": "o-1", "event": "gala"}
    assert p.strings("payment_method_types") == ["card", "link"]
    assert p.mapping("automatic_payment_methods") == {"enabled": "false"}
    assert p.boolean("confirm") is True
    assert p.expand() == ["latest_charge"]


def test_numbered_items_keep_their_order_and_numeric_metadata_keys_stay_a_hash() -> None:
    p = params("expand[1]=b&expand[0]=a&metadata[0]=zero")
    assert p.expand() == ["a", "b"]
    assert p.metadata() == {"0": "zero"}


def test_a_key_used_as_both_value_and_hash_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="Invalid hash"):
        params("metadata=x&metadata[a]=b")


def test_missing_and_malformed_parameters_name_the_parameter() -> None:
    with pytest.raises(InvalidRequest) as missing:
        params("currency=usd").integer("amount", required=True)
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "amount")

    with pytest.raises(InvalidRequest) as malformed:
        params("amount=12.5").integer("amount")
    assert (malformed.value.code, malformed.value.param) == ("parameter_invalid_integer", "amount")

    with pytest.raises(InvalidRequest) as choice:
        params("capture_method=later").choice("capture_method", ("automatic", "manual"))
    assert choice.value.param == "capture_method"


def test_parameters_nobody_reads_are_unknown_to_stripe() -> None:
    p = params("amount=5000&colour=blue")
    p.integer("amount")
    with pytest.raises(InvalidRequest) as unknown:
        p.reject_unknown()
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "colour")


def test_metadata_limits_and_update_rules_follow_stripe() -> None:
    with pytest.raises(InvalidRequest, match="maximum length of 40"):
        params("metadata[" + "k" * 41 + "]=v").metadata()
    assert params("metadata=").metadata() == {}
    current = {"order_id": "o-1", "note": "x"}
    assert merge_metadata(current, {"note": "", "extra": "y"}) == {"order_id": "o-1", "extra": "y"}
    assert merge_metadata(current, {}) == {}
    assert merge_metadata(current, None) == current
