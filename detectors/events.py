"""Typed input events and RFC 3339 time helpers.

Events are small slotted classes; times are float seconds since the Unix
epoch (UTC). The helpers here are the only place that converts between the
contract's RFC 3339 strings and those floats.

Examples
--------
>>> t = parse_time("2026-11-24T12:00:05+08:00")
>>> format_time(t)
'2026-11-24T04:00:05Z'
>>> parse_time("2026-11-24T04:00:05.250Z") - t
0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Payment", "Like", "CoLike", "Event", "parse_time", "format_time"]


def parse_time(value: str) -> float:
    """Parse an RFC 3339 timestamp with offset (or ``Z``) to epoch seconds.

    Raises ``ValueError`` when the string is not RFC 3339 or has no offset.

    >>> parse_time("1970-01-01T00:00:01Z")
    1.0
    >>> parse_time("2026-01-01T00:00:00.000")
    Traceback (most recent call last):
    ...
    ValueError: time has no UTC offset: '2026-01-01T00:00:00.000'
    """
    if len(value) < 20 or value[10] not in "Tt ":
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"time has no UTC offset: {value!r}")
    return dt.timestamp()


def format_time(ts: float) -> str:
    """Format epoch seconds as RFC 3339 UTC, with milliseconds only when needed.

    >>> format_time(0.5)
    '1970-01-01T00:00:00.500Z'
    """
    dt = datetime.fromtimestamp(ts, UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Payment:
    """A successful payment (``payments.success``, ``trade_state == SUCCESS``)."""

    transaction_id: str
    mchid: str
    openid: str
    amount: int  # fen
    ts: float
    currency: str = "CNY"
    out_trade_no: str | None = None
    appid: str | None = None
    ip: str | None = None
    device: str | None = None

    kind = "payment"
    tag = "p"  #: prefix of the dedupe and tiebreak key

    @property
    def id(self) -> str:
        return self.transaction_id


@dataclass(slots=True)
class Like:
    """A like or unlike (``likes`` topic)."""

    like_id: str
    user: str
    target: str
    mchid: str
    ts: float
    action: str = "like"
    ip: str | None = None
    device: str | None = None
    user_created: float | None = None

    kind = "like"
    tag = "l"  #: prefix of the dedupe and tiebreak key

    @property
    def id(self) -> str:
        return self.like_id


@dataclass(slots=True)
class CoLike:
    """A like enriched by the user view with the user's other recent likes:
    ``prev`` holds ``(earlier target, its time, its merchant)``, oldest first
    (the merchant ``None`` when unknown); ``mchid`` is the liked target's
    merchant. The user view hands it to the lockstep view, keyed by target."""

    like_id: str
    user: str
    target: str
    ts: float
    prev: tuple[tuple[str, float, str | None], ...]
    mchid: str | None = None

    kind = "colike"
    tag = "c"

    @property
    def id(self) -> str:
        return self.like_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "like_id": self.like_id,
            "user": self.user,
            "target": self.target,
            "ts": self.ts,
            "prev": [list(p) for p in self.prev],
            "mchid": self.mchid,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CoLike:
        return cls(d["like_id"], d["user"], d["target"], float(d["ts"]),
                   tuple(prev_item(p) for p in d["prev"]), d.get("mchid"))


def prev_item(p: Sequence[Any]) -> tuple[str, float, str | None]:
    """One ``prev`` item; ``[target, time]`` (an older writer's) has no merchant."""
    return str(p[0]), float(p[1]), None if len(p) < 3 or p[2] is None else str(p[2])


Event = Payment | Like
