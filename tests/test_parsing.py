"""Parsing and validation of input records, including property-based bad input."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.events import format_time, parse_time
from detectors.parsing import REASONS, BadRecord, parse_like, parse_payment
from tests.helpers import like_json, payment_json


def test_valid_payment_fields() -> None:
    p = parse_payment(payment_json())
    assert p is not None
    assert (p.transaction_id, p.mchid, p.openid, p.amount) == (
        "4200000001202611240000000001", "1900000042", "o-user-1", 1)
    assert p.ts == parse_time("2026-11-24T04:00:05Z")
    assert (p.ip, p.device, p.currency) == ("10.1.2.3", "d-1", "CNY")


def test_optional_fields_absent() -> None:
    p = parse_payment(payment_json(payer_client_ip=None, scene_info=None, out_trade_no=None,
                                   appid=None, amount={"total": 250}))
    assert p is not None and p.ip is None and p.device is None and p.currency == "CNY"
    lk = parse_like(like_json(client_ip=None, device_id=None, user_created=None, action=None))
    assert lk.action == "like" and lk.ip is None and lk.user_created is None


def test_like_fields_and_times() -> None:
    lk = parse_like(like_json())
    assert lk.ts == parse_time("2026-11-24T04:00:09.5Z")
    assert lk.ip == "2001:db8::1" and lk.target == "video:9" and lk.mchid == "1900000042"
    assert lk.user_created is not None


def test_non_success_is_skipped_not_bad() -> None:
    assert parse_payment(payment_json(trade_state="REFUND")) is None


@pytest.mark.parametrize(
    ("value", "reason", "fragment"),
    [
        (b"\xff\xfe{}", "not_utf8", "UTF-8"),
        (b"{not json", "not_json", "JSON"),
        (b"[1, 2]", "not_object", "list"),
        (payment_json(mchid=None), "missing_field", "mchid"),
        (payment_json(payer={}), "missing_field", "payer.openid"),
        (payment_json(amount={"currency": "CNY"}), "missing_field", "amount.total"),
        (payment_json(amount={"total": 0}), "out_of_range", ">= 1"),
        (payment_json(amount={"total": "100"}), "wrong_type", "amount.total"),
        (payment_json(amount={"total": 1.5}), "wrong_type", "amount.total"),
        (payment_json(amount={"total": True}), "wrong_type", "amount.total"),
        (payment_json(mchid=42), "wrong_type", "mchid"),
        (payment_json(success_time="yesterday"), "bad_time", "success_time"),
        (payment_json(success_time="2026-11-24T12:00:05"), "bad_time", "success_time"),
        (payment_json(payer_client_ip="999.1.1.1"), "out_of_range", "IPv4"),
        (payment_json(payer="o-1"), "wrong_type", "payer"),
        (like_json(ts=None), "missing_field", "ts"),
        (like_json(action="love"), "out_of_range", "action"),
        (like_json(user_created="2026-13-01T00:00:00Z"), "bad_time", "user_created"),
        (like_json(target_id=""), "out_of_range", "target_id"),
        (like_json(device_id=["d"]), "wrong_type", "device_id"),
    ],
)
def test_rejections_have_precise_reasons(value: bytes, reason: str, fragment: str) -> None:
    parse = parse_like if b"like_id" in value else parse_payment
    with pytest.raises(BadRecord) as err:
        parse(value)
    assert err.value.reason == reason
    assert fragment in err.value.detail
    assert err.value.reason in REASONS


def test_none_value_is_bad() -> None:
    with pytest.raises(BadRecord):
        parse_like(None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    for parse in (parse_like, parse_payment):
        try:
            parse(raw)
        except BadRecord as exc:
            assert exc.reason in REASONS


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["like", "payment"]), st.data())
def test_mutated_records_are_valid_or_rejected(kind: str, data: st.DataObject) -> None:
    base = orjson.loads(like_json() if kind == "like" else payment_json())
    field = data.draw(st.sampled_from(sorted(base)))
    base[field] = data.draw(json_values)
    raw = orjson.dumps(base)
    parse = parse_like if kind == "like" else parse_payment
    try:
        ev = parse(raw)
    except BadRecord as exc:
        assert exc.reason in REASONS
        assert exc.detail
        return
    if ev is not None:  # accepted: required fields keep their contract types
        assert isinstance(ev.ts, float)
        assert isinstance(ev.mchid, str) and ev.mchid


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_time_round_trip(ts: float) -> None:
    ms = round(ts, 3)
    assert abs(parse_time(format_time(ms)) - ms) < 1e-3
