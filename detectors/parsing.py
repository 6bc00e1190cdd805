"""Parsing and validation of the two input topics, per ``shared/CONTRACT.md``.

:func:`parse_payment` and :func:`parse_like` turn a record value (bytes or
str) into a :class:`~detectors.events.Payment` or :class:`~detectors.events.Like`,
or raise :class:`BadRecord` with a bounded ``reason`` code (safe as a metric
label) and a human ``detail``. A payment whose ``trade_state`` is not
``SUCCESS`` is not bad input: :func:`parse_payment` returns ``None`` and the
caller counts it as skipped.

Reason codes: ``not_utf8``, ``not_json``, ``not_object``, ``missing_field``,
``wrong_type``, ``bad_time``, ``out_of_range``.

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
from typing import Any

import orjson

from detectors.events import Like, Payment, parse_time

__all__ = ["BadRecord", "parse_payment", "parse_like", "parse_value", "REASONS", "TOPIC_KINDS"]

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
    return v


def _opt_str(obj: dict[str, Any], name: str, label: str | None = None) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if type(v) is not str:
        raise BadRecord("wrong_type", f"{label or name} must be a string, got {type(v).__name__}")
    return v or None


def _time(obj: dict[str, Any], name: str, required: bool) -> float | None:
    v = obj.get(name)
    if v is None:
        if required:
            raise BadRecord("missing_field", f"{name} is required")
        return None
    if type(v) is not str:
        raise BadRecord("wrong_type", f"{name} must be an RFC 3339 string, got {type(v).__name__}")
    try:
        return parse_time(v)
    except (ValueError, OverflowError, OSError):
        raise BadRecord("bad_time", f"{name} is not an RFC 3339 time with offset: {v[:40]!r}") from None


_ip_cache: dict[str, bool] = {}


def _ip(obj: dict[str, Any], name: str, label: str | None = None) -> str | None:
    v = _opt_str(obj, name, label)
    if v is None:
        return None
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
    if not ok:
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


def parse_payment(value: bytes | str | None) -> Payment | None:
    """Parse a ``payments.success`` value; ``None`` when ``trade_state != SUCCESS``."""
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
    currency = _opt_str(amount, "currency", "amount.currency") or "CNY"
    scene = _sub(obj, "scene_info", False)
    return Payment(
        transaction_id=txid,
        mchid=mchid,
        openid=openid,
        amount=total,
        ts=ts,  # type: ignore[arg-type]
        currency=currency,
        out_trade_no=_opt_str(obj, "out_trade_no"),
        appid=_opt_str(obj, "appid"),
        ip=_ip(obj, "payer_client_ip"),
        device=_opt_str(scene, "device_id", "scene_info.device_id"),
    )


_created_cache: dict[str, float] = {}


def parse_like(value: bytes | str | None) -> Like:
    """Parse a ``likes`` value."""
    obj = _load(value)
    like_id = _req_str(obj, "like_id")
    user = _req_str(obj, "user_openid")
    target = _req_str(obj, "target_id")
    mchid = _req_str(obj, "owner_mchid")
    action = _opt_str(obj, "action") or "like"
    if action != "like" and action != "unlike":
        raise BadRecord("out_of_range", f"action must be 'like' or 'unlike', got {action[:20]!r}")
    ts = _time(obj, "ts", True)
    created_raw = obj.get("user_created")
    created: float | None
    if type(created_raw) is str and created_raw in _created_cache:
        created = _created_cache[created_raw]
    else:
        created = _time(obj, "user_created", False)
        if created is not None:
            if len(_created_cache) > 100_000:
                _created_cache.clear()
            _created_cache[created_raw] = created  # type: ignore[index]
    return Like(
        like_id=like_id,
        user=user,
        target=target,
        mchid=mchid,
        ts=ts,  # type: ignore[arg-type]
        action=action,
        ip=_ip(obj, "client_ip"),
        device=_opt_str(obj, "device_id"),
        user_created=created,
    )


def parse_value(kind: str, value: bytes | str | None) -> Payment | Like | None:
    """Parse a value of event ``kind`` (``"payment"`` or ``"like"``)."""
    if kind == "payment":
        return parse_payment(value)
    if kind == "like":
        return parse_like(value)
    raise ValueError(f"unknown event kind {kind!r}")
