"""Parsing and validation of the two input topics, per ``shared/CONTRACT.md``.

:func:`parse_payment` and :func:`parse_like` turn a record value (bytes or
str) into a :class:`~detectors.events.Payment` or :class:`~detectors.events.Like`,
or raise :class:`BadRecord` with a bounded ``reason`` code (safe as a metric
label) and a human ``detail``. A payment whose ``trade_state`` is not
``SUCCESS`` is not bad input: :func:`parse_payment` returns ``None`` and the
caller counts it as skipped.

Reason codes: ``not_utf8``, ``not_json``, ``not_object``, ``missing_field``,
``wrong_type``, ``bad_time``, ``out_of_range``. The drivers also pass every
parsed event to :func:`check_record_time`, which rejects (``bad_time``) an
event dated far after (or, when configured, far before) its Kafka record's
timestamp.

Sane ranges (``docs/contract.md``): times (``success_time``, ``ts``,
``user_created``) from :data:`MIN_TIME` (2000-01-01) up to, not including,
:data:`MAX_TIME` (2100-01-01), else ``bad_time``; ``user_created`` at most
:data:`CREATED_SKEW` after the like's ``ts`` (``bad_time``);
``amount.total`` at most :data:`MAX_AMOUNT` fen and every string field the
event keeps at most :data:`MAX_TEXT` characters (``out_of_range``).

Two paths, one behaviour. The fast path decodes a ``str`` or UTF-8 ``bytes``
value with a ``msgspec.json.Decoder`` straight into a typed wire schema
(strict types, ints within int64, unknown fields forbidden so that nothing
is skipped unchecked), applies the semantic checks (non-empty required
strings, string lengths, ``amount.total`` in range, ``action``, IP
addresses, time ranges) and builds the event; times go through
:func:`~detectors.events.parse_time` as before (msgspec's own datetime
parsing accepts ``z`` and rounds digits beyond microseconds, so it is not
used). Anything it does not accept outright --
any decode error, an unknown or mistyped field, a failed check, a
non-``SUCCESS`` payment, other input types -- goes to the checked path
(``_parse_payment_checked`` / ``_parse_like_checked``): orjson plus a
field-by-field validator, the single source of truth for what is rejected
and with which ``reason`` and ``detail``. The fast path accepts only inputs
the checked path accepts, and returns an equal event for them
(``tests/unit/test_parsing.py`` checks this property).

Examples
--------
>>> p = parse_payment(b'{"transaction_id": "t1", "mchid": "m1", "trade_state": "SUCCESS",'
...     b' "success_time": "2026-11-24T12:00:05+08:00", "payer": {"openid": "o1"},'
...     b' "amount": {"total": 1}}')
>>> p.amount, p.mchid
(1, 'm1')
>>> try:
...     parse_like('{"like_id": "l1"}')
... except BadRecord as e:
...     print(e.reason, "-", e.detail)
missing_field - user_openid is required
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, overload

import msgspec
import orjson

from detectors.events import Like, Payment, parse_time

__all__ = ["BadRecord", "parse_payment", "parse_like", "parse_value", "check_record_time",
           "MAX_AHEAD", "MAX_BEHIND", "MIN_TIME", "MAX_TIME", "CREATED_SKEW", "MAX_AMOUNT",
           "MAX_TEXT", "REASONS", "TOPIC_KINDS"]

REASONS = (
    "not_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "bad_time",
    "out_of_range",
)

#: default topic name -> event kind
TOPIC_KINDS = {"payments.success": "payment", "likes": "like"}

#: seconds an event's time may run past its Kafka record's timestamp (the
#: default of :attr:`~detectors.config.EngineConfig.max_ahead`)
MAX_AHEAD = 300.0
#: seconds an event's time may lie before its Kafka record's timestamp (the
#: default of :attr:`~detectors.config.EngineConfig.max_behind`; 0: not
#: checked, as replays into Kafka stamp the current time by default)
MAX_BEHIND = 0.0

# Sane ranges; the compiled core's parse fast path (detectors/_core/src/parse.rs)
# declines anything outside them, so these values must match its constants.
#: earliest valid time (epoch seconds): 2000-01-01T00:00:00Z
MIN_TIME = 946_684_800.0
#: first time past the valid range: 2100-01-01T00:00:00Z
MAX_TIME = 4_102_444_800.0
#: seconds ``user_created`` may lie after the like's ``ts``: the account
#: system's clock and the like's disagree, and a like of a fresh account is
#: the evidence most worth keeping
CREATED_SKEW = 86_400.0
#: the largest ``amount.total``, fen: 10^10 fen = 100 million CNY
MAX_AMOUNT = 10**10
#: the longest string field an event keeps, in characters
MAX_TEXT = 256


class BadRecord(ValueError):
    """A record that breaks the contract; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _load(value: bytes | str | None) -> dict[str, Any]:
    if value is None:
        raise BadRecord("missing_field", "record has no value")
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value)
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRecord("not_utf8", f"value is not UTF-8 at byte {exc.start}") from None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord("not_json", f"value is not JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise BadRecord("not_object", f"JSON value is {type(obj).__name__}, not an object")
    return obj


def _req_str(obj: dict[str, Any], name: str, label: str | None = None) -> str:
    v = obj.get(name)
    if v is None:
        raise BadRecord("missing_field", f"{label or name} is required")
    if type(v) is not str:
        raise BadRecord("wrong_type", f"{label or name} must be a string, got {type(v).__name__}")
    if not v:
        raise BadRecord("out_of_range", f"{label or name} must not be empty")
    if len(v) > MAX_TEXT:
        raise BadRecord("out_of_range", _too_long(label or name, v))
    return v


def _opt_str(obj: dict[str, Any], name: str, label: str | None = None) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if type(v) is not str:
        raise BadRecord("wrong_type", f"{label or name} must be a string, got {type(v).__name__}")
    if len(v) > MAX_TEXT:
        raise BadRecord("out_of_range", _too_long(label or name, v))
    return v or None


def _too_long(label: str, v: str) -> str:
    return f"{label} must be at most {MAX_TEXT} characters, got {len(v)}"


#: what parse_time raises for a string that is not a valid time
_TIME_ERRORS = (ValueError, OverflowError, OSError)


@overload
def _time(obj: dict[str, Any], name: str, required: Literal[True],
          parse: Callable[[str], float] = ...) -> float: ...
@overload
def _time(obj: dict[str, Any], name: str, required: bool,
          parse: Callable[[str], float] = ...) -> float | None: ...
def _time(obj: dict[str, Any], name: str, required: bool,
          parse: Callable[[str], float] = parse_time) -> float | None:
    v = obj.get(name)
    if v is None:
        if required:
            raise BadRecord("missing_field", f"{name} is required")
        return None
    if type(v) is not str:
        raise BadRecord("wrong_type", f"{name} must be an RFC 3339 string, got {type(v).__name__}")
    try:
        t = parse(v)
    except _TIME_ERRORS:
        raise BadRecord("bad_time", f"{name} is not an RFC 3339 time with offset: {v[:40]!r}") from None
    if not MIN_TIME <= t < MAX_TIME:
        raise BadRecord("bad_time", f"{name} is outside 2000-01-01 to 2100-01-01: {v[:40]!r}")
    return t


_ip_cache: dict[str, bool] = {}

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEXTET = r"[0-9A-Fa-f]{1,4}"
#: a dotted-quad IPv4 address (ASCII digits, no leading zeros) or a full
#: eight-group IPv6 address: a subset of what ``ipaddress.ip_address``
#: accepts, recognised without it
_IP_PLAIN = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}|{_HEXTET}(?::{_HEXTET}){{7}}")


def _ip_ok(v: str) -> bool:
    """Whether ``ipaddress.ip_address(v)`` accepts ``v``.

    The common forms are recognised by :data:`_IP_PLAIN`, much cheaper than
    :mod:`ipaddress`, which decides the rest (memoised in ``_ip_cache``).
    """
    if _IP_PLAIN.fullmatch(v) is not None:
        return True
    ok = _ip_cache.get(v)
    if ok is None:
        try:
            ipaddress.ip_address(v)
            ok = True
        except ValueError:
            ok = False
        if len(_ip_cache) > 100_000:
            _ip_cache.clear()
        _ip_cache[v] = ok
    return ok


def _ip(obj: dict[str, Any], name: str, label: str | None = None) -> str | None:
    v = _opt_str(obj, name, label)
    if v is None:
        return None
    if not _ip_ok(v):
        raise BadRecord("out_of_range", f"{label or name} is not an IPv4 or IPv6 address: {v[:45]!r}")
    return v


def _sub(obj: dict[str, Any], name: str, required: bool) -> dict[str, Any]:
    v = obj.get(name)
    if v is None:
        if required:
            raise BadRecord("missing_field", f"{name} is required")
        return {}
    if not isinstance(v, dict):
        raise BadRecord("wrong_type", f"{name} must be an object, got {type(v).__name__}")
    return v


def _parse_payment_checked(value: bytes | str | None) -> Payment | None:
    """:func:`parse_payment` field by field: the reference for every rejection."""
    obj = _load(value)
    state = _req_str(obj, "trade_state")
    txid = _req_str(obj, "transaction_id")
    mchid = _req_str(obj, "mchid")
    if state != "SUCCESS":
        return None
    ts = _time(obj, "success_time", True)
    payer = _sub(obj, "payer", True)
    openid = _req_str(payer, "openid", "payer.openid")
    amount = _sub(obj, "amount", True)
    total = amount.get("total")
    if total is None:
        raise BadRecord("missing_field", "amount.total is required")
    if type(total) is not int:
        raise BadRecord("wrong_type", f"amount.total must be an integer, got {type(total).__name__}")
    if total < 1:
        raise BadRecord("out_of_range", f"amount.total must be >= 1 fen, got {total}")
    if total > MAX_AMOUNT:
        raise BadRecord("out_of_range", f"amount.total must be <= {MAX_AMOUNT} fen, got {total}")
    currency = _opt_str(amount, "currency", "amount.currency") or "CNY"
    scene = _sub(obj, "scene_info", False)
    return Payment(
        transaction_id=txid,
        mchid=mchid,
        openid=openid,
        amount=total,
        ts=ts,
        currency=currency,
        out_trade_no=_opt_str(obj, "out_trade_no"),
        appid=_opt_str(obj, "appid"),
        ip=_ip(obj, "payer_client_ip"),
        device=_opt_str(scene, "device_id", "scene_info.device_id"),
    )


_created_cache: dict[str, float] = {}


def _created_time(value: str) -> float:
    """:func:`parse_time` memoised (bounded): accounts recur, their creation times too."""
    t = _created_cache.get(value)
    if t is None:
        t = parse_time(value)
        if len(_created_cache) > 100_000:
            _created_cache.clear()
        _created_cache[value] = t
    return t


def _parse_like_checked(value: bytes | str | None) -> Like:
    """:func:`parse_like` field by field: the reference for every rejection."""
    obj = _load(value)
    like_id = _req_str(obj, "like_id")
    user = _req_str(obj, "user_openid")
    target = _req_str(obj, "target_id")
    mchid = _req_str(obj, "owner_mchid")
    action = _opt_str(obj, "action") or "like"
    if action != "like" and action != "unlike":
        raise BadRecord("out_of_range", f"action must be 'like' or 'unlike', got {action[:20]!r}")
    ts = _time(obj, "ts", True)
    created = _time(obj, "user_created", False, _created_time)
    if created is not None and ts is not None and created - ts > CREATED_SKEW:
        raise BadRecord("bad_time", f"user_created is {_secs(created - ts)} s after ts "
                                    f"(at most {CREATED_SKEW:g} s)")
    return Like(
        like_id=like_id,
        user=user,
        target=target,
        mchid=mchid,
        ts=ts,
        action=action,
        ip=_ip(obj, "client_ip"),
        device=_opt_str(obj, "device_id"),
        user_created=created,
    )


# -- fast path ---------------------------------------------------------------
#
# Wire schemas for msgspec. ``forbid_unknown_fields`` matters: msgspec skips
# unknown values without the checks orjson makes (float overflow, UTF-8), so
# a value with a field not declared here takes the checked path. The fields
# declared only to be ignored are optional ones producers commonly send.
# Strings decode to the same values as with orjson; ints are limited to the
# int64 range, inside which orjson also returns them as ints. JSON ``null``
# for an optional field means absent, as in the checked path; duplicate keys
# keep the last value in both decoders. The strings the event keeps and the
# amount carry their range as constraints (a violation takes the checked
# path, which names it); ignored fields are left unconstrained.

#: a msgspec int within int64, inside which orjson also returns ints
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Fen = Annotated[int, msgspec.Meta(ge=1, le=MAX_AMOUNT)]
#: a string of at most MAX_TEXT characters (msgspec counts code points, as len does)
_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class _PayerWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    openid: _Text


class _AmountWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    total: _Fen
    currency: _Text | None = None
    payer_total: Int64 | None = None
    payer_currency: str | None = None


class _SceneWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    device_id: _Text | None = None


class _PaymentWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    transaction_id: _Text
    mchid: _Text
    trade_state: _Text
    success_time: str
    payer: _PayerWire
    amount: _AmountWire
    out_trade_no: _Text | None = None
    appid: _Text | None = None
    payer_client_ip: _Text | None = None
    scene_info: _SceneWire | None = None
    trade_type: str | None = None
    trade_state_desc: str | None = None
    bank_type: str | None = None
    attach: str | None = None


class _LikeWire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    like_id: _Text
    user_openid: _Text
    target_id: _Text
    owner_mchid: _Text
    ts: str
    action: _Text | None = None
    client_ip: _Text | None = None
    device_id: _Text | None = None
    user_created: str | None = None


_decode_payment = msgspec.json.Decoder(_PaymentWire).decode
_decode_like = msgspec.json.Decoder(_LikeWire).decode
#: what a failed msgspec decode raises: DecodeError (incl. ValidationError),
#: UnicodeError (a ValueError) for bad text, RecursionError for deep nesting
FAST_DECODE_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)


def _fast_input(value: object) -> bool:
    """Whether ``value`` may take the fast path: ``str``, or UTF-8 ``bytes``."""
    if type(value) is str:
        return True
    if type(value) is not bytes:
        return False
    if value.isascii():
        return True
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_payment(value: bytes | str | None) -> Payment | None:
    """Parse a ``payments.success`` value; ``None`` when ``trade_state != SUCCESS``.

    Raises :class:`BadRecord` when the value breaks the contract.
    """
    if type(value) is not str and not _fast_input(value):
        return _parse_payment_checked(value)
    try:
        w = _decode_payment(value)  # type: ignore[arg-type]  # _fast_input: bytes
    except FAST_DECODE_ERRORS:
        return _parse_payment_checked(value)
    txid, mchid, openid = w.transaction_id, w.mchid, w.payer.openid
    ip = w.payer_client_ip or None
    if (
        w.trade_state != "SUCCESS" or not txid or not mchid or not openid
        or (ip is not None and not _ip_ok(ip))
    ):
        return _parse_payment_checked(value)
    try:
        ts = parse_time(w.success_time)
    except _TIME_ERRORS:
        return _parse_payment_checked(value)
    if not MIN_TIME <= ts < MAX_TIME:
        return _parse_payment_checked(value)
    amount, scene = w.amount, w.scene_info
    # positional, as keywords cost more than the decode: transaction_id, mchid,
    # openid, amount, ts, currency, out_trade_no, appid, ip, device
    return Payment(
        txid, mchid, openid, amount.total, ts, amount.currency or "CNY", w.out_trade_no or None,
        w.appid or None, ip, (scene.device_id or None) if scene is not None else None,
    )


def parse_like(value: bytes | str | None) -> Like:
    """Parse a ``likes`` value.

    Raises :class:`BadRecord` when the value breaks the contract.
    """
    if type(value) is not str and not _fast_input(value):
        return _parse_like_checked(value)
    try:
        w = _decode_like(value)  # type: ignore[arg-type]  # _fast_input: bytes
    except FAST_DECODE_ERRORS:
        return _parse_like_checked(value)
    like_id, user, target, mchid = w.like_id, w.user_openid, w.target_id, w.owner_mchid
    action = w.action or "like"
    ip = w.client_ip or None
    if (
        not like_id or not user or not target or not mchid
        or (action != "like" and action != "unlike")
        or (ip is not None and not _ip_ok(ip))
    ):
        return _parse_like_checked(value)
    created_raw = w.user_created
    try:
        ts = parse_time(w.ts)
        created = None if created_raw is None else _created_time(created_raw)
    except _TIME_ERRORS:
        return _parse_like_checked(value)
    if not MIN_TIME <= ts < MAX_TIME or (created is not None and (
            not MIN_TIME <= created < MAX_TIME or created - ts > CREATED_SKEW)):
        return _parse_like_checked(value)
    # like_id, user, target, mchid, ts, action, ip, device, user_created
    return Like(like_id, user, target, mchid, ts, action, ip, w.device_id or None, created)


def check_record_time(ev: Payment | Like, record_time: float | None, max_ahead: float,
                      max_behind: float = MAX_BEHIND) -> None:
    """Reject an event whose time is far from its Kafka record's timestamp.

    A record is produced after the event it carries happened, so its Kafka
    timestamp (seconds; the producer's create time or the broker's append
    time) bounds the event's time from above, up to the clocks' disagreement.
    An event more than ``max_ahead`` seconds past it comes from a clock gone
    wrong, and taken as it is it would drag its partition's event time ahead
    (by a day, say) and make the honest events behind it late. An event more
    than ``max_behind`` seconds before it is older than any backlog the
    deployment expects (a clock reset, a replayed archive). Raises
    :class:`BadRecord` (``bad_time``). No check when ``record_time`` is
    missing or not positive (no timestamp); ``max_ahead`` or ``max_behind``
    0 turns that side's check off.

    >>> ev = Like("l1", "u1", "post:1", "m1", 1_000_000.0)
    >>> check_record_time(ev, 1_000_000.0 - 60, 300.0)  # a minute ahead: clocks differ
    >>> try:
    ...     check_record_time(ev, 1_000_000.0 - 86_400, 300.0)
    ... except BadRecord as e:
    ...     print(e.reason, "-", e.detail)
    bad_time - ts is 86400 s after the record's Kafka timestamp (at most 300 s)
    >>> try:
    ...     check_record_time(ev, 1_000_000.0 + 8 * 86_400, 300.0, 7 * 86_400.0)
    ... except BadRecord as e:
    ...     print(e.reason, "-", e.detail)
    bad_time - ts is 691200 s before the record's Kafka timestamp (at most 604800 s)
    """
    if record_time is None or record_time <= 0:
        return
    if max_ahead > 0 and ev.ts - record_time > max_ahead:
        raise BadRecord("bad_time", f"ts is {_secs(ev.ts - record_time)} s after the record's "
                                    f"Kafka timestamp (at most {max_ahead:g} s)")
    if max_behind > 0 and record_time - ev.ts > max_behind:
        raise BadRecord("bad_time", f"ts is {_secs(record_time - ev.ts)} s before the record's "
                                    f"Kafka timestamp (at most {max_behind:g} s)")


def _secs(x: float) -> str:
    """Seconds to the microsecond, without trailing zeros: a value just past a bound shows so."""
    return f"{x:.6f}".rstrip("0").rstrip(".")


def parse_value(kind: str, value: bytes | str | None) -> Payment | Like | None:
    """Parse a value of event ``kind`` (``"payment"`` or ``"like"``)."""
    if kind == "payment":
        return parse_payment(value)
    if kind == "like":
        return parse_like(value)
    raise ValueError(f"unknown event kind {kind!r}")
