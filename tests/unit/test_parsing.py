"""Parsing and validation of input records, including property-based bad input."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import parsing
from detectors._core import ROUTED_VIEWS, parse_fast, route
from detectors.engine import ALL_VIEWS, route_keys
from detectors.events import Like, Payment, format_time, parse_time
from detectors.parsing import (
    _IP_PLAIN,
    CREATED_SKEW,
    MAX_AMOUNT,
    MAX_TEXT,
    REASONS,
    BadRecord,
    _ip_ok,
    _parse_like_checked,
    _parse_payment_checked,
    check_record_time,
    parse_like,
    parse_payment,
)
from detectors.partitioning import kafka_partition
from tests.helpers import like_json, payment_json, with_path


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


def _plain_like(**over: object) -> bytes:
    """:func:`like_json` with an address in the form the core reads (it leaves ``2001:db8::1`` to
    the checked path)."""
    return like_json(**{"client_ip": "10.0.0.1", **over})


def _like_at(ts: str) -> bytes:
    """A like at ``ts`` the core could read, without ``user_created`` (which would lie after it)."""
    return _plain_like(ts=ts, user_created=None)


@pytest.mark.parametrize(
    ("value", "reason", "fragment"),
    [
        (_like_at("1999-12-31T23:59:59.999999Z"), "bad_time", "ts is outside 2000-01-01"),
        (_like_at("2000-01-01T00:00:00+00:01"), "bad_time", "ts is outside"),  # 1999 in UTC
        (_like_at("2100-01-01T00:00:00Z"), "bad_time", "to 2100-01-01"),
        (_like_at("1970-01-01T00:00:01Z"), "bad_time", "ts is outside"),
        (_like_at("0001-01-01T00:00:00Z"), "bad_time", "ts is outside"),
        (_like_at("9999-12-31T23:59:59Z"), "bad_time", "ts is outside"),
        (payment_json(success_time="1970-01-01T08:00:00+08:00"), "bad_time", "success_time is outside"),
        (payment_json(success_time="2100-01-01T00:00:00Z"), "bad_time", "success_time is outside"),
        (_plain_like(user_created="1999-12-31T23:59:59Z"), "bad_time", "user_created is outside"),
        (_plain_like(user_created="2999-01-01T00:00:00Z"), "bad_time", "user_created is outside"),
        (_plain_like(ts="2026-11-24T00:00:00Z", user_created="2026-11-25T00:00:01Z"), "bad_time",
         "user_created is 86401 s after ts (at most 86400 s)"),
        (payment_json(amount={"total": MAX_AMOUNT + 1}), "out_of_range", "<= 10000000000 fen"),
        (payment_json(amount={"total": 2**63 - 1}), "out_of_range", "amount.total must be <="),
    ],
)
def test_values_out_of_range_are_rejected(value: bytes, reason: str, fragment: str) -> None:
    """Each sane-range bound, on every path: the checked path names it, the msgspec fast path and
    the core's decline it."""
    kind = "like" if b"like_id" in value else "payment"
    for parse in ((parse_like, _parse_like_checked) if kind == "like"
                  else (parse_payment, _parse_payment_checked)):
        with pytest.raises(BadRecord) as err:
            parse(value)
        assert err.value.reason == reason
        assert fragment in err.value.detail, err.value.detail
    assert parse_fast(kind, value.decode()) is None


@pytest.mark.parametrize("value", [
    _like_at("2000-01-01T00:00:00Z"),
    _plain_like(ts="1999-12-31T23:30:00-01:00", user_created="2000-01-01T00:00:00Z"),
    _plain_like(ts="2099-12-31T23:59:59.999999Z"), payment_json(success_time="2000-01-01T00:00:00Z"),
    _plain_like(ts="2026-11-24T00:00:00Z", user_created="2026-11-25T00:00:00Z"),
    _plain_like(user_created="2000-01-01T00:00:00Z"), payment_json(amount={"total": MAX_AMOUNT}),
])
def test_values_at_the_bounds_are_accepted(value: bytes) -> None:
    """The bounds themselves are valid, and the fast paths take them: the range is [2000-01-01,
    2100-01-01), ``user_created`` up to a day after ``ts``, amounts up to 10^10 fen."""
    kind = "like" if b"like_id" in value else "payment"
    fast, checked = (parse_like, _parse_like_checked) if kind == "like" else (
        parse_payment, _parse_payment_checked)
    ev = checked(value)
    assert ev is not None and fast(value) == ev
    assert _engine_fields(parse_fast(kind, value.decode())) == _engine_fields(ev)


#: string fields bounded in length -> the event attribute that keeps them
_LIKE_TEXTS = {"like_id": "like_id", "user_openid": "user", "target_id": "target",
               "owner_mchid": "mchid", "device_id": "device"}
_PAYMENT_TEXTS = {"transaction_id": "transaction_id", "mchid": "mchid", "payer.openid": "openid",
                  "out_trade_no": "out_trade_no", "appid": "appid", "amount.currency": "currency",
                  "scene_info.device_id": "device"}


@pytest.mark.parametrize("path", [*_LIKE_TEXTS, *(f"payment:{p}" for p in _PAYMENT_TEXTS)])
@pytest.mark.parametrize("char", ["x", "中", "😀"])
def test_strings_longer_than_the_bound_are_out_of_range(path: str, char: str) -> None:
    """Every string an event keeps (or a payment's optional fields the engine does not use) holds
    at most ``MAX_TEXT`` characters, counted as characters, not bytes; a longer one is
    ``out_of_range`` on the checked path and declined by both fast paths."""
    kind, _, path = path.rpartition(":")
    kind = kind or "like"
    base = orjson.loads(_plain_like() if kind == "like" else payment_json())
    fast, checked = (parse_like, _parse_like_checked) if kind == "like" else (
        parse_payment, _parse_payment_checked)
    for n in (MAX_TEXT, MAX_TEXT + 1):
        doc = with_path(json.loads(json.dumps(base)), path, char * n)
        raw = orjson.dumps(doc)
        if n == MAX_TEXT:
            ev = checked(raw)
            assert ev is not None and fast(raw) == ev
            attr = (_LIKE_TEXTS if kind == "like" else _PAYMENT_TEXTS)[path]
            assert getattr(ev, attr) == char * n
            assert _engine_fields(parse_fast(kind, raw.decode())) == _engine_fields(ev)
            continue
        for parse in (fast, checked):
            with pytest.raises(BadRecord) as err:
                parse(raw)
            assert err.value.reason == "out_of_range"
            assert f"at most {MAX_TEXT} characters, got {MAX_TEXT + 1}" in err.value.detail
        assert parse_fast(kind, raw.decode()) is None


def test_record_time_check_both_sides() -> None:
    """``max_ahead`` bounds an event's time after its record's Kafka timestamp, ``max_behind``
    (when set) before it; the bounds themselves pass, 0 turns a side off, and a record without a
    timestamp is not checked."""
    ev = Like("l1", "u1", "post:1", "m1", 1_000_000.0)
    week = 7 * 86_400.0
    check_record_time(ev, ev.ts - 300, 300.0, week)
    check_record_time(ev, ev.ts + week, 300.0, week)
    check_record_time(ev, ev.ts + 10 * week, 300.0, 0.0)  # behind: off
    check_record_time(ev, ev.ts - 86_400, 0.0, week)  # ahead: off
    for t in (None, 0.0, -1.0):
        check_record_time(ev, t, 300.0, week)
    with pytest.raises(BadRecord, match="after the record's Kafka timestamp") as err:
        check_record_time(ev, ev.ts - 301, 300.0, week)
    assert err.value.reason == "bad_time"
    with pytest.raises(BadRecord, match="604801 s before the record's Kafka timestamp") as err:
        check_record_time(ev, ev.ts + week + 1, 300.0, week)
    assert err.value.reason == "bad_time"


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


# -- fast path (msgspec) against the checked path -------------------------------------------
#
# ``parse_like`` / ``parse_payment`` decode with msgspec and fall back to the field-by-field
# validator (``_parse_*_checked``) for anything they do not accept outright. For every input
# both must give the same event, the same ``None`` or the same rejection reason and detail.

def _outcome(parse: Callable[[Any], object], raw: object) -> tuple[object, ...]:
    try:
        return ("ok", parse(raw))
    except BadRecord as exc:
        return ("bad", exc.reason, exc.detail)


def _assert_paths_agree(kind: str, raw: object) -> None:
    fast, checked = (parse_like, _parse_like_checked) if kind == "like" else (
        parse_payment, _parse_payment_checked)
    assert _outcome(fast, raw) == _outcome(checked, raw), raw


class RawJSON(bytes):
    """A value written into the JSON text verbatim (big numbers, bad escapes, bad UTF-8)."""


_digits = st.integers(0, 9).map(str)
_fractions = st.lists(_digits, max_size=9).map(lambda ds: "." + "".join(ds) if ds else "")
good_times = st.builds(
    lambda y, mo, d, h, mi, s, frac, tz: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{tz}",
    st.integers(1970, 2100), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
    st.integers(0, 59), st.integers(0, 59), _fractions,
    st.sampled_from(["Z", "+08:00", "-05:30", "+00:00"]),
)
odd_times = st.one_of(
    st.builds(
        lambda y, mo, d, sep, h, mi, s, frac, tz: f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}"
        f"{frac}{tz}",
        st.integers(1, 9999), st.integers(0, 13), st.integers(0, 32), st.sampled_from("Tt X"),
        st.integers(0, 24), st.integers(0, 60), st.integers(0, 60), _fractions | st.just("."),
        st.sampled_from(["Z", "z", "", "+08:00", "-00:00", "+0800", "+08", "+24:00", "+08:60",
                         "+23:59", "Z ", "+08:00:30"]),
    ),
    st.text(max_size=30),
)
good_ips = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.ip_addresses(v=6).map(lambda a: ":".join(f"{int(h, 16):x}" for h in a.exploded.split(":"))),
)
odd_ips = st.one_of(
    st.lists(st.integers(0, 300).map(str) | st.sampled_from(["01", "00", "1a", "", " 1", "١"]),
             min_size=3, max_size=5).map(".".join),
    st.text(alphabet="0123456789abcdefABCDEF:.%g", max_size=45),
    st.sampled_from(["", "fe80::1%eth0", "::ffff:1.2.3.4", "1.2.3.4/32", "1.2.3.4\n"]),
)
ips = st.one_of(good_ips, odd_ips)
good_texts = st.text(min_size=1, max_size=12)
raw_tokens = st.sampled_from([
    b"1e400", b"-1e999", b"1" + b"0" * 400, b"18446744073709551616", b"9223372036854775808",
    b"-9223372036854775809", b"1.0", b"-0", b'"\\ud800"', b'"\\udc80x"', b'"\xff"', b'"\xed\xa0\x80"',
    b'"\\u0000"', b"[" * 30 + b"]" * 30,
]).map(RawJSON)
#: strings around the length bound, of one- to four-byte characters (a bound on characters, not bytes)
long_texts = st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "中", "😀"]),
                       st.integers(MAX_TEXT - 1, MAX_TEXT + 2))
#: times at and beyond the bounds of the valid range [2000-01-01, 2100-01-01), some only by an offset
edge_times = st.sampled_from([
    "2000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999Z", "2000-01-01T00:00:00+00:01",
    "1999-12-31T23:30:00-01:00", "2099-12-31T23:59:59.999999Z", "2100-01-01T00:00:00Z",
    "2099-12-31T23:59:00-00:01", "2100-01-01T00:30:00+01:00", "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2999-01-01T00:00:00+08:00",
])
odd_values = st.one_of(st.just(...), st.none(), st.just(""), json_values, raw_tokens, odd_times, odd_ips,
                       long_texts)

LIKE_FIELDS = {
    "like_id": good_texts, "user_openid": good_texts, "target_id": good_texts,
    "owner_mchid": good_texts, "ts": good_times,
}
LIKE_OPTIONAL = {
    "action": st.sampled_from(["like", "unlike"]), "client_ip": good_ips, "device_id": good_texts,
    "user_created": good_times,
}
AMOUNT_OPTIONAL = {"currency": good_texts, "payer_total": st.integers(0, 2**40),
                   "payer_currency": good_texts}
#: totals up to int64's maximum: most of them above MAX_AMOUNT (out of range)
good_amounts = st.fixed_dictionaries({"total": st.integers(1, 2**63 - 1)}, optional=AMOUNT_OPTIONAL)
PAYMENT_FIELDS = {
    "transaction_id": good_texts, "mchid": good_texts, "trade_state": st.just("SUCCESS"),
    "success_time": good_times, "payer": st.fixed_dictionaries({"openid": good_texts}),
    "amount": good_amounts,
}
PAYMENT_OPTIONAL = {
    "out_trade_no": good_texts, "appid": good_texts, "payer_client_ip": good_ips,
    "scene_info": st.fixed_dictionaries({}, optional={"device_id": good_texts}),
    "trade_type": good_texts, "trade_state_desc": good_texts,
}
#: where a mutation may land: top-level fields, nested ones, unknown ones
LIKE_PATHS = [*LIKE_FIELDS, *LIKE_OPTIONAL, "x"]
PAYMENT_PATHS = [*PAYMENT_FIELDS, *PAYMENT_OPTIONAL, "payer.openid", "payer.x", "amount.total",
                 "amount.currency", "amount.payer_total", "amount.x", "scene_info.device_id",
                 "scene_info.x", "trade_state", "attach", "x"]
odd_by_field = {
    "ts": odd_times | edge_times, "user_created": odd_times | edge_times,
    "success_time": odd_times | edge_times, "client_ip": odd_ips,
    "payer_client_ip": odd_ips, "action": st.sampled_from(["", "love", "LIKE"]),
    "amount.total": st.one_of(st.integers(-5, 5), st.booleans(), st.floats(), raw_tokens,
                              st.integers(MAX_AMOUNT - 2, MAX_AMOUNT + 2)),
    "trade_state": st.sampled_from(["", "REFUND", "success"]),
}


def _dump(value: Any, ascii_only: bool) -> str:
    if isinstance(value, RawJSON):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{_dump(v, ascii_only)}"
                              for k, v in value.items() if v is not ...) + "}"
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def raw_values(draw: st.DrawFn, kind: str) -> bytes | str:
    """JSON text of a record: a valid one, then up to three mutations (a field absent, null,
    empty, of another type or value, a big or overflowing number, a bad escape, an unknown
    field, a duplicate key, a value out of range), odd whitespace and escapes, maybe one byte
    flipped, inserted or removed; as bytes or as str (lone surrogates included). Out of range
    without mutations too: totals up to int64's maximum, times of 1970-2100, an account created
    any time around its like."""
    like = kind == "like"
    doc: dict[str, Any] = dict(draw(st.fixed_dictionaries(
        LIKE_FIELDS if like else PAYMENT_FIELDS, optional=LIKE_OPTIONAL if like else PAYMENT_OPTIONAL)))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(LIKE_PATHS if like else PAYMENT_PATHS))
        value = draw(odd_by_field.get(path, odd_values) | odd_values)
        doc = with_path(doc, path, value)
    if like:
        _maybe_created_after_like(draw, doc)
    items = [(k, v) for k, v in doc.items() if v is not ...]
    if items and draw(st.booleans()) is True:  # a duplicate key: the last one wins
        key = draw(st.sampled_from([k for k, _ in items]))
        items.insert(draw(st.integers(0, len(items))), (key, draw(odd_values | st.just(doc[key]))))
    ascii_only = draw(st.booleans())
    sep = draw(st.sampled_from([",", ", ", " ,\n", ",\t"]))
    text = "{" + sep.join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{_dump(v, ascii_only)}"
                          for k, v in items if v is not ...) + "}"
    raw = text.encode("utf-8", "surrogateescape")
    if draw(st.integers(0, 4)) == 0:  # byte-level damage
        i = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["del", "ins", "set"]))
        b = bytes([draw(st.integers(0, 255))])
        raw = raw[:i] + (b"" if op == "del" else b) + raw[i + (op != "ins"):]
    if draw(st.booleans()):
        return raw
    return raw.decode("utf-8", "surrogateescape")


@settings(max_examples=1500, deadline=None)
@given(raw_values("like"))
def test_fast_and_checked_like_agree(raw: bytes | str) -> None:
    _assert_paths_agree("like", raw)


@settings(max_examples=1500, deadline=None)
@given(raw_values("payment"))
def test_fast_and_checked_payment_agree(raw: bytes | str) -> None:
    _assert_paths_agree("payment", raw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["like", "payment"]), st.data())
def test_fast_and_checked_agree_on_mutated_records(kind: str, data: st.DataObject) -> None:
    base = orjson.loads(like_json() if kind == "like" else payment_json())
    field = data.draw(st.sampled_from(sorted(base)))
    base[field] = data.draw(json_values)
    raw = orjson.dumps(base)
    _assert_paths_agree(kind, raw)
    _assert_paths_agree(kind, raw.decode())


def _with(raw: bytes, extra: bytes) -> bytes:
    """``raw`` (a JSON object) with ``extra`` (``"key":value``) added at the end."""
    return raw[:-1] + b"," + extra + b"}"


@pytest.mark.parametrize("raw", [
    b"", b"null", b"{}", b"[]", b'"x"', b"\xef\xbb\xbf{}", bytearray(b"{}"), memoryview(b"{}"),
    payment_json(amount={"total": 7}).replace(b"7", str(2**63).encode()),
    payment_json(amount={"total": 7}).replace(b"7", str(2**64).encode()),
    payment_json(amount={"total": 1, "payer_total": 7}).replace(b"7", b"1" + b"0" * 400),
    payment_json(amount={"total": 1}, trade_state="CLOSED"), payment_json(scene_info={}),
    payment_json(payer_client_ip=""), payment_json(appid=""), payment_json(out_trade_no=None),
    payment_json(amount={"total": 5, "currency": ""}), payment_json(attach=5),
    payment_json(scene_info={"device_id": ""}), payment_json(payer={"openid": ""}),
    payment_json(out_trade_no=""), payment_json(transaction_id=""),
    like_json(device_id=""), like_json(client_ip=""), like_json(target_id=""),
    _with(payment_json(), b'"x":1e400'), _with(payment_json(), b'"x":"\xff"'),
    _with(payment_json(), b'"promotion_detail":[{"amount":1}]'),
    payment_json().replace(b'"openid":"o-user-1"', b'"openid":"o-user-1","x":1e400'),
    like_json(action=""), like_json(client_ip="2001:db8::1"), like_json(client_ip="::ffff:1.2.3.4"),
    like_json(client_ip="fe80::1%eth0"), like_json(client_ip="1.2.3.04"), like_json(user_created=""),
    like_json(ts="2026-11-24T12:00:05.1234567Z"), like_json(ts="2026-11-24T12:00:05.9999995+08:00"),
    like_json(ts="2026-11-24T12:00:05.5z"), like_json(ts="2026-11-24 12:00:05+0800"),
    like_json(ts="2026-11-24T12:00:05.Z"), like_json(ts="0001-01-01T00:00:00+01:00"),
    like_json(ts="9999-12-31T23:59:59.999999-01:00"), like_json(x=1e300),
    _with(like_json(), b'"x":"\\ud800"'), like_json(device_id="\u00e9\u4e2d"),
    _with(like_json(), b'"like_id":"l-2"'), _with(like_json(), b'"like_id":null'),
    _with(like_json(), b'"x":1e400'), _with(like_json(), b'"x":' + b"[" * 1100 + b"]" * 1100),
    like_json().replace(b'"like_id"', b'"\\u006cike_id"'), like_json().replace(b'"l-1"', b'"l\\u002d1"'),
    like_json().replace(b'"l-1"', b'"\xff"'), like_json().decode() + "\ud800",
])
def test_fast_and_checked_agree_on_edge_cases(raw: bytes | str) -> None:
    for kind in ("like", "payment"):
        _assert_paths_agree(kind, raw)


def test_fast_path_takes_typical_records(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(value: object) -> None:
        raise AssertionError(f"fell back to the checked path for {value!r}")

    monkeypatch.setattr(parsing, "_parse_like_checked", refuse)
    monkeypatch.setattr(parsing, "_parse_payment_checked", refuse)
    sim_payment = payment_json(trade_type="JSAPI", trade_state_desc="支付成功",
                               amount={"total": 250, "payer_total": 250, "currency": "CNY",
                                       "payer_currency": "CNY"})
    for raw in (payment_json(), sim_payment, sim_payment.decode(), payment_json(scene_info=None)):
        assert parse_payment(raw) == _parse_payment_checked(raw)  # the original, not the patch
    for raw in (like_json(), like_json().decode(), like_json(action="unlike", client_ip="10.0.0.1"),
                like_json(client_ip="2409:345a:d35d:429f:155a:29ca:f8b:1", user_created=None)):
        assert parse_like(raw) == _parse_like_checked(raw)


@settings(max_examples=500, deadline=None)
@given(ips)
def test_plain_ip_pattern_is_a_subset_of_ipaddress(value: str) -> None:
    if _IP_PLAIN.fullmatch(value) is not None:
        ipaddress.ip_address(value)  # raises if the shortcut were wrong
    assert _ip_ok(value) == _ip_valid(value)


def _ip_valid(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@given(st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(lambda a: a.exploded))
def test_plain_ip_pattern_covers_common_forms(value: str) -> None:
    assert _IP_PLAIN.fullmatch(value) is not None


# -- the core's parse fast path (``detectors._core.parse_fast``) against the checked path -----------
#
# ``likeguard replay`` parses values in the compiled core (detectors/_core/src/parse.rs), which
# returns an event or ``None`` to leave the value to the checked path. Whatever the core accepts,
# the checked path must accept with an equal event (payments: on the fields the engine reads; the
# core leaves currency, out_trade_no and appid at their defaults), and canonical values must take
# the core's path, with times equal to ``parse_time``'s exactly.



def _engine_fields(ev: Like | Payment | None) -> object:
    if isinstance(ev, Payment):
        return ("payment", ev.transaction_id, ev.mchid, ev.openid, ev.amount, ev.ts, ev.ip, ev.device)
    return ev


def _core_event(kind: str, raw: bytes | str) -> Like | Payment | None:
    """``parse_fast(kind, raw)``, having checked that the checked path accepts anything it accepts
    and builds an equal event; ``None`` where it leaves ``raw`` to the checked path (text with lone
    surrogates, which the core cannot take, included)."""
    if isinstance(raw, bytes):
        data = raw
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            assert route(kind == "payment", data, None, 0.0, 0.0, 6) is None
            return None  # the core takes text only
    try:
        ev = parse_fast(kind, raw)
        data = raw.encode()
    except UnicodeEncodeError:
        return None
    routed = route(kind == "payment", data, None, 0.0, 0.0, 6)
    if ev is None:
        assert routed is None, f"the ingest's fast path took what parse_fast declines: {raw!r}"
        return None
    checked = _parse_like_checked if kind == "like" else _parse_payment_checked
    try:
        ref = checked(raw)
    except BadRecord as exc:
        pytest.fail(f"parse_fast accepted {raw!r}, which the checked path rejects: {exc}")
    assert ref is not None, f"parse_fast accepted a payment the checked path skips: {raw!r}"
    assert type(ev) is type(ref) and type(ev.ts) is float, raw
    assert _engine_fields(ev) == _engine_fields(ref), raw
    _check_routed(routed, ref, raw)
    return ev


def _check_routed(routed: tuple[float, bytes, int, int, int, int] | None, ref: Like | Payment,
                  raw: str) -> None:
    """The ingest's fast path (``route``) gives what the worker's Python path gives for ``ref``:
    its time, its view-topic encoding (as decoded values) and each view's partition."""
    from streams.topics import encode_event

    assert routed is not None, f"route declined what parse_fast took: {raw!r}"
    ts, data, *parts = routed
    assert ts == ref.ts and orjson.loads(data) == orjson.loads(encode_event(ref)), raw
    keys = route_keys(ref)
    assert parts == [kafka_partition(keys[v], 6) if v in keys else -1
                     for v in ROUTED_VIEWS], raw


def _days_in_month(y: int, mo: int) -> int:
    if mo == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if mo in (4, 6, 9, 11) else 31


_LEAP_YEARS = list(range(2000, 2100, 4))  # 2000 included (divisible by 400)
_NON_LEAP_YEARS = [1970, 1971, 1900, 2023, 2026, 2099, 2100]


@st.composite
def _time_parts(draw: st.DrawFn) -> dict[str, Any]:
    """The parts of a valid time of the core's form: 2000-2099 (leap days often; in the valid
    range also in UTC), 0-6 fractional digits, ``Z`` or a ``±HH:MM`` offset."""
    if draw(st.integers(0, 5)) == 0:
        y, mo, d = draw(st.sampled_from(_LEAP_YEARS)), 2, 29
    else:
        y, mo = draw(st.integers(2000, 2099)), draw(st.integers(1, 12))
        d = draw(st.integers(1, _days_in_month(y, mo)))
    digits = draw(st.text("0123456789", max_size=6))
    tz = draw(st.just("Z") | st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+-"),
                                       st.integers(0, 23), st.integers(0, 59)))
    if (mo, d) in ((1, 1), (12, 31)) and y in (2000, 2099):
        tz = "Z"  # an offset could move the range's first or last day out of it
    return {"y": y, "mo": mo, "d": d, "sep": "T", "h": draw(st.integers(0, 23)),
            "mi": draw(st.integers(0, 59)), "s": draw(st.integers(0, 59)),
            "frac": "." + digits if digits else "", "tz": tz}


def _fmt_time(p: dict[str, Any]) -> str:
    return f"{p['y']:04d}-{p['mo']:02d}-{p['d']:02d}{p['sep']}{p['h']:02d}:{p['mi']:02d}:{p['s']:02d}" \
        f"{p['frac']}{p['tz']}"


canonical_times = _time_parts().map(_fmt_time)
_time_damages = st.one_of(  # the common slips first, one branch each
    st.just({"h": 24}), st.just({"tz": "z"}), st.just({"tz": ""}),
    st.sampled_from([{"h": 24}, {"mi": 60}, {"s": 60}, {"mo": 0}, {"mo": 13}, {"d": 0}, {"d": 32},
                     {"mo": 2, "d": 30}, {"mo": 4, "d": 31}, {"y": 0}, {"frac": "."},
                     {"frac": ",5"}, {"tz": ""}, {"tz": "z"}, {"tz": "+0800"}, {"tz": "+08"},
                     {"tz": "+24:00"}, {"tz": "-08:60"}, {"tz": "+08:00:30"}, {"tz": "+8:00"},
                     {"tz": " Z"}, {"tz": "Z "}, {"tz": "UTC"}, {"tz": "-00:00"}, {"sep": "t"},
                     {"sep": " "}, {"sep": "_"}]),
    st.builds(lambda y: {"y": y, "mo": 2, "d": 29}, st.sampled_from(_NON_LEAP_YEARS)),
    st.builds(lambda y: {"y": y}, st.integers(10000, 99999)),
    st.builds(lambda y: {"y": y}, st.integers(1, 1999) | st.integers(2100, 9999)),  # out of range
    st.text("0123456789", min_size=7, max_size=9).map(lambda ds: {"frac": "." + ds}),
)


@st.composite
def damaged_times(draw: st.DrawFn) -> str:
    """A valid time with one or two parts broken (or written in a form only the checked path
    reads), maybe a digit made non-ASCII or whitespace added."""
    parts = draw(_time_parts())
    for _ in range(1 + (draw(st.integers(0, 3)) == 0)):
        parts.update(draw(_time_damages))
    t = _fmt_time(parts)
    op = draw(st.integers(0, 9))
    if op == 0:
        i = draw(st.sampled_from([i for i, c in enumerate(t) if c.isdigit()]))
        t = t[:i] + draw(st.sampled_from(["٣", "３", "߃"])) + t[i + 1:]
    elif op == 1:
        t = draw(st.sampled_from([" ", "\n", "\ufeff"])) + t
    elif op == 2:
        t = t[:draw(st.integers(0, len(t) - 1))]
    return t


canonical_ips = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
    st.ip_addresses(v=6).map(lambda a: ":".join(f"{int(h, 16):x}" for h in a.exploded.split(":"))),
)
_ip_damages: list[Callable[[str], str]] = [
    lambda s: s + " ", lambda s: " " + s, lambda s: s + "\n", lambda s: s + "%eth0",
    lambda s: s + "/32", lambda s: s[:-1], lambda s: s + ":0", lambda s: s + ".0", lambda s: "0" + s,
    lambda s: "1" + s, lambda s: s.replace(".", ".0", 1), lambda s: s.replace(":", "::", 1),
    lambda s: s.replace("1", "١"), lambda s: s.replace(".", "。"), lambda s: s + "0",
]
damaged_ips = st.one_of(
    st.builds(lambda s, f: f(s), canonical_ips, st.sampled_from(_ip_damages)),
    st.ip_addresses(v=6).map(str),  # compressed: valid, the checked path's to read
    st.ip_addresses(v=4).map(lambda a: ".".join(f"{int(p):03d}" for p in str(a).split("."))),
    odd_ips,
)
surrogate_texts = st.sampled_from(["\ud800", "a\udfff", "\ud83d", "\ude00\ud83d", "l-\udc80"])
bad_strings = st.one_of(
    st.sampled_from(["", None, ..., 0, 1.5, True, [], {}, ["x"], {"x": "y"}]), surrogate_texts,
    raw_tokens, json_values, long_texts,
)
bad_totals = st.one_of(
    st.sampled_from([0, -1, None, ..., True, False, "1", [1], {"total": 1}]),
    st.integers(-(2**70), 2**70), st.integers(MAX_AMOUNT - 2, MAX_AMOUNT + 2),
    st.sampled_from([b"1.0", b"1e0", b"1E2", b"0.5", b"-0", b"1.5e3", str(2**63).encode(),
                     str(2**64).encode(), str(-(2**63) - 1).encode(), str(2**63 - 1).encode(),
                     b"1" + b"0" * 30, b"01", b"+1", b"0x10"]).map(RawJSON),
)
_nested_dupes = {
    "payer": [b'{"openid":"o1","openid":"o2"}', b'{"openid":"","openid":"o2"}',
              b'{"openid":"o1","openid":null}'],
    "amount": [b'{"total":0,"total":1}', b'{"total":1,"total":1}',
               b'{"total":1,"currency":1,"currency":"CNY"}'],
    "scene_info": [b'{"device_id":"d","device_id":null}', b'{"device_id":"d","device_id":"e"}'],
}
damage_by_field: dict[str, st.SearchStrategy[Any]] = {
    "ts": damaged_times() | edge_times, "user_created": damaged_times() | edge_times,
    "success_time": damaged_times() | edge_times,
    "client_ip": damaged_ips, "payer_client_ip": damaged_ips,
    "action": st.sampled_from(["", "love", "LIKE", "Like", "unlike ", " like", "like\u0000"]),
    "trade_state": st.sampled_from(["", "REFUND", "success", "SUCCESS ", "CLOSED", "ＳＵＣＣＥＳＳ"]),
    "amount.total": bad_totals,
    **{f: st.sampled_from(vs).map(RawJSON) | st.sampled_from(["o", 1, [], {}, None, ...])
       for f, vs in _nested_dupes.items()},
}
_UNKNOWN = ["extra", "Like_id", "ts ", "TS", "promotion_detail", "user_openid\u0000"]
#: valid strings, some exactly as long as allowed (in one- to four-byte characters)
canon_texts = good_texts | st.builds(lambda c: c * MAX_TEXT, st.sampled_from(["x", "中", "😀"]))
CANON_LIKE_FIELDS = {**{k: canon_texts for k in LIKE_FIELDS}, "ts": canonical_times}
CANON_LIKE_OPTIONAL = {
    "action": st.sampled_from(["like", "unlike", "", None]),
    "client_ip": canonical_ips | st.sampled_from(["", None]),
    "device_id": canon_texts | st.sampled_from(["", None]), "user_created": canonical_times | st.none(),
}
CANON_PAYMENT_FIELDS = {
    **PAYMENT_FIELDS, "success_time": canonical_times, "transaction_id": canon_texts,
    "mchid": canon_texts, "payer": st.fixed_dictionaries({"openid": canon_texts}),
    "amount": st.fixed_dictionaries({"total": st.integers(1, MAX_AMOUNT)}, optional=AMOUNT_OPTIONAL),
}
CANON_PAYMENT_OPTIONAL = {
    **PAYMENT_OPTIONAL, "payer_client_ip": canonical_ips | st.sampled_from(["", None]),
    "bank_type": good_texts, "attach": good_texts | st.none(),
    "scene_info": st.fixed_dictionaries({}, optional={"device_id": good_texts | st.sampled_from(["", None])}),
}
_escape_masks = st.just(0) | st.integers(0, 0xFFFF)


def _json_str(s: str, mask: int) -> str:
    """``s`` as a JSON string, the characters picked by ``mask`` (bit ``i % 16`` for the i-th) as
    ``\\u`` escapes (astral ones as surrogate pairs, lone surrogates as they are)."""
    out = []
    for i, ch in enumerate(s):
        c = ord(ch)
        if not (mask >> (i % 16)) & 1 and ch not in '"\\' and c >= 0x20:
            out.append(ch)
        elif c > 0xFFFF:
            c -= 0x10000
            out.append(f"\\u{0xD800 | c >> 10:04x}\\u{0xDC00 | c & 0x3FF:04X}")
        else:
            out.append(f"\\u{c:04x}" if i % 2 else f"\\u{c:04X}")
    return '"' + "".join(out) + '"'


def _shifted(time: object, seconds: float) -> str | None:
    """RFC 3339 (UTC, microseconds) of ``time`` plus ``seconds``; ``None`` when ``time`` is not a time."""
    if not isinstance(time, str):
        return None
    try:
        t = parse_time(time)
    except (ValueError, OverflowError, OSError):
        return None
    try:
        return datetime.fromtimestamp(t + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (ValueError, OverflowError, OSError):
        return None


#: ``user_created`` this far past ``ts + CREATED_SKEW`` (near the bound, on both sides)
_created_past_skew = st.sampled_from([-3600.0, -1.0, -1e-6, 0.0, 1e-6, 1.0, 1e6])


def _maybe_created_after_like(draw: st.DrawFn, doc: dict[str, Any]) -> None:
    """Now and then, an account created about a day after its like."""
    if draw(st.integers(0, 4)) == 0:
        created = _shifted(doc.get("ts"), CREATED_SKEW + draw(_created_past_skew))
        if created is not None:
            doc["user_created"] = created


def _json_text(value: Any, mask: int, sep: str = ",") -> str:
    """``value`` as JSON text: :class:`RawJSON` verbatim, ``...`` members left out, strings and keys
    escaped as ``mask`` says."""
    if isinstance(value, RawJSON):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, dict):
        return "{" + sep.join(f"{_json_str(k, mask)}:{_json_text(v, mask, sep)}"
                              for k, v in value.items() if v is not ...) + "}"
    if isinstance(value, list):
        return "[" + sep.join(_json_text(v, mask, sep) for v in value) + "]"
    if isinstance(value, str):
        return _json_str(value, mask)
    return json.dumps(value)


@st.composite
def canonical_values(draw: st.DrawFn, kind: str) -> tuple[str, dict[str, Any]]:
    """A valid value in the forms the core reads, as JSON text, with the record it encodes."""
    like = kind == "like"
    doc = draw(st.fixed_dictionaries(CANON_LIKE_FIELDS if like else CANON_PAYMENT_FIELDS,
                                     optional=CANON_LIKE_OPTIONAL if like else CANON_PAYMENT_OPTIONAL))
    created = doc.get("user_created")
    if isinstance(created, str) and parse_time(created) - parse_time(str(doc["ts"])) > CREATED_SKEW:
        doc["user_created"] = doc["ts"]  # an account created after its like is out of range
    text = _json_text(doc, draw(_escape_masks), draw(st.sampled_from([",", ", ", " ,\n", ",\t"])))
    return draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " ", "\r\n"])), doc


@st.composite
def damaged_values(draw: st.DrawFn, kind: str) -> str:
    """A canonical value with one or two fields damaged (a broken time or address, a bad total or
    action, a wrong type, an empty or absent string, lone surrogates, an unknown field, a duplicate
    key, nested too; out of range: a time outside 2000-2099, a total above the maximum, a string
    longer than allowed, an account created after its like), maybe a duplicate top-level key, as
    JSON text with ``\\u`` escapes here and there."""
    like = kind == "like"
    doc: dict[str, Any] = dict(draw(st.fixed_dictionaries(
        CANON_LIKE_FIELDS if like else CANON_PAYMENT_FIELDS,
        optional=CANON_LIKE_OPTIONAL if like else CANON_PAYMENT_OPTIONAL)))
    paths = [*(LIKE_PATHS if like else PAYMENT_PATHS), *_UNKNOWN]
    targeted = [p for p in paths if p in damage_by_field]
    times = ["ts", "user_created"] if like else ["success_time"]
    for _ in range(1 + (draw(st.integers(0, 3)) == 0)):  # mostly one, so that the rest is valid
        path = draw(st.sampled_from(times) | st.sampled_from(targeted) | st.sampled_from(paths))
        field = damage_by_field.get(path)
        value = draw(field if field is not None else bad_strings)
        doc = with_path(doc, path, value)
    if like:
        _maybe_created_after_like(draw, doc)
    items = [(k, v) for k, v in doc.items() if v is not ...]
    if items and draw(st.integers(0, 3)) == 0:  # a duplicate key, maybe with the same value
        key = draw(st.sampled_from([k for k, _ in items]))
        dupe = draw(st.just(doc[key]) | damage_by_field.get(key, bad_strings) | bad_strings)
        items.insert(draw(st.integers(0, len(items))), (key, dupe))
    mask = draw(_escape_masks)
    return "{" + ",".join(f"{_json_str(k, mask)}:{_json_text(v, mask)}" for k, v in items
                          if v is not ...) + "}"


@settings(max_examples=300, deadline=None)
@pytest.mark.parametrize("kind", ["like", "payment"])
@given(data=st.data())
def test_core_parse_fast_takes_canonical_values(kind: str, data: st.DataObject) -> None:
    raw, doc = data.draw(canonical_values(kind))
    ev = _core_event(kind, raw)
    assert ev is not None, f"parse_fast left a canonical value to the checked path: {raw!r}"
    if isinstance(ev, Like):
        assert ev.ts == parse_time(doc["ts"])
        created = doc.get("user_created")
        assert ev.user_created == (None if created is None else parse_time(created))
    else:
        assert ev.ts == parse_time(doc["success_time"])


@settings(max_examples=300, deadline=None)
@pytest.mark.parametrize("kind", ["like", "payment"])
@given(data=st.data())
def test_core_parse_fast_accepts_only_what_checked_accepts(kind: str, data: st.DataObject) -> None:
    raw = data.draw(raw_values(kind) if data.draw(st.integers(0, 3)) == 0 else damaged_values(kind))
    _core_event(kind, raw)


@pytest.mark.parametrize("raw", [
    like_json(ts="2026-11-24T24:00:00Z"), like_json(ts="2023-02-29T00:00:00Z"),
    like_json(ts="2100-02-29T00:00:00Z"), like_json(ts="2026-11-24T12:00:05.1234567Z"),
    like_json(ts="2026-11-24T12:00:05z"), like_json(ts="2026-11-24T12:00:05"),
    like_json(ts="2026-11-24T12:00:05+24:00"), like_json(user_created="2026-11-24T12:00:60Z"),
    like_json(client_ip="010.0.0.1"), like_json(client_ip="256.0.0.1"),
    like_json(client_ip="2001:db8:0:0:0:0:0:1:2"), like_json(client_ip="2001:db8:0:0:0:0:0:12345"),
    like_json(target_id=""), like_json(target_id=1), like_json(action="love"), like_json(x=1),
    like_json().replace(b'"l-1"', b'"\\ud800"'), like_json().decode().replace("l-1", "l-\ud800"),
    _with(like_json(), b'"like_id":"l-2"'), _with(like_json(), b'"like_id":null'),
    payment_json(amount={"total": 0}), payment_json(amount={"total": 7}).replace(b"7", b"1.0"),
    payment_json(amount={"total": 7}).replace(b"7", str(2**63).encode()),
    payment_json(payer={"openid": ""}), payment_json(payer={"openid": "o", "x": 1}),
    payment_json(trade_state="REFUND"), payment_json(success_time="2026-11-24T12:00:05.5+0800"),
    payment_json(payer_client_ip="1.2.3.4 "), _with(payment_json(), b'"mchid":"m2"'),
    _like_at("1970-01-01T00:00:01Z"), _like_at("2100-01-01T00:00:00Z"),
    _plain_like(ts="2026-11-24T00:00:00Z", user_created="2026-11-25T00:00:00.000001Z"),
    _plain_like(user_created="1999-12-31T23:59:59Z"), _plain_like(device_id="中" * (MAX_TEXT + 1)),
    payment_json(amount={"total": MAX_AMOUNT + 1}), payment_json(appid="x" * (MAX_TEXT + 1)),
])
def test_core_parse_fast_declines_damaged_edge_cases(raw: bytes | str) -> None:
    for kind in ("like", "payment"):
        _core_event(kind, raw)
    text = raw if isinstance(raw, str) else raw.decode()
    kind = "like" if "like_id" in text else "payment"
    if "\ud800" in text:
        with pytest.raises(UnicodeEncodeError):
            parse_fast(kind, text)
    else:
        assert parse_fast(kind, text) is None, text


def test_the_ingest_fast_path_checks_the_record_time_and_takes_optional_fields() -> None:
    """``route`` declines an event too far from its record's Kafka timestamp (for the validator
    to name), and carries what the Python path encodes of a payment's optional fields."""
    like = _plain_like(ts="2026-11-24T12:00:00Z", user_created=None)
    t = parse_time("2026-11-24T12:00:00Z")
    assert route(False, like, int((t - 60) * 1000), 300.0, 0.0, 6) is not None
    assert route(False, like, int((t - 301) * 1000), 300.0, 0.0, 6) is None
    assert route(False, like, int((t + 8 * 86400) * 1000), 300.0, 7 * 86400.0, 6) is None
    assert route(False, like, -1, 300.0, 0.0, 6) is not None  # no timestamp: not checked
    for over in ({}, {"out_trade_no": "o-1", "appid": "wx1"}, {"amount": {"total": 5, "currency": ""}},
                 {"amount": {"total": 5, "currency": "USD"}}, {"out_trade_no": ""}):
        raw = payment_json(**over)
        ev = parse_payment(raw)
        assert ev is not None
        _check_routed(route(True, raw, None, 0.0, 0.0, 6), ev, raw.decode())
    with pytest.raises(ValueError, match="partitions"):
        route(False, like, None, 0.0, 0.0, 0)
    # the views it routes to: every view but lockstep, which the user view feeds
    assert sorted(ROUTED_VIEWS) == sorted(set(ALL_VIEWS) - {"lockstep"})
