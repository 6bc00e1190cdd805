"""Topics of the worker and the wire formats of what it puts on them.

=====================  =========================  ==========================================
topic                  key                        value
=====================  =========================  ==========================================
``payments.success``   producer's (ignored)       raw contract JSON (parsed by ``detectors``)
``likes``              producer's (ignored)       raw contract JSON
``likeguard.verdicts`` ``entity.type:entity.id``  verdict JSON object (docs/contract.md)
``<prefix>.<view>``    none (explicit partition)  a bundle of compact view events
                                                  (:func:`encode_bundle`), a progress
                                                  :class:`Mark`, or a verdict
                                                  (:func:`encode_verdict`, to every
                                                  partition)
``likeguard.alerts``   ``entity.type:entity.id``  alert JSON object (CONTRACT.md)
``likeguard.deadletter`` the original key         :class:`DeadLetter` JSON object
=====================  =========================  ==========================================

Repartitioning. Every valid input event is sent once to each view that takes
it (:func:`detectors.engine.route_keys`), to an explicit partition:
:func:`detectors.partitioning.kafka_partition` of that view's key,
which is what Kafka's default partitioner would pick and what the engine
uses to shard its models. Payments and likes of one merchant therefore meet
in one partition of the merchant view topic (the payment->like join is
co-partitioned). The user view's enriched likes (:class:`CoLike`) go to the
lockstep view topic, partitioned by target. Events bound for one partition
from one source travel together in a bundle (one record per ingest batch;
see :class:`streams.bundles.Bundles`); single-event records, as older
versions wrote them, still decode. All view topics have exactly
``EngineConfig.partitions`` partitions.

View events are compact JSON arrays, not :class:`faust.Record` objects: they
are the hot path (three to four per input event), and a positional array
encoded with orjson is several times cheaper to build and parse than a
Record with field metadata. Floats survive the round trip exactly, so the
engine sees the same timestamps as the offline replay. The dead-letter
record, which is rare and read by people, is a typed :class:`faust.Record`.

Examples
--------
>>> from detectors.events import Like
>>> ev = Like("l1", "u1", "post:1", "m1", 1764000000.25, ip="10.0.0.1", user_created=1.5)
>>> decode_event(encode_event(ev)) == ev
True
>>> dl = dead_letter(b"\\xff\\xfe", "likes", 3, 41, "not_utf8", "value is not UTF-8 at byte 0")
>>> dl.original, dl.encoding, dl.partition
('//4=', 'base64', 3)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from detectors.engine import ALL_VIEWS
from detectors.events import CoLike, Like, Payment, prev_item
from detectors.parsing import BadRecord
from detectors.verdicts import Verdict, verdict_from_object
from streams.settings import Settings

__all__ = [
    "DeadLetter",
    "Mark",
    "Topics",
    "ViewEventError",
    "dead_letter",
    "BUNDLE_BYTES",
    "MAX_DEAD_LETTER_ORIGINAL",
    "decode_event",
    "decode_record",
    "encode_bundle",
    "encode_event",
    "encode_mark",
    "encode_verdict",
    "make_topics",
]


#: Bytes of a rejected value a dead letter keeps: whatever it holds, the letter
#: stays well below Kafka's default 1 MB message limit (text escaped as JSON
#: grows at most sixfold, base64 by a third).
MAX_DEAD_LETTER_ORIGINAL = 64 * 1024


class DeadLetter(faust.Record, serializer="json", include_metadata=False):
    """A rejected input record, as written to the dead-letter topic.

    ``original`` is the record value as text, or base64 when it is not
    UTF-8 (``encoding`` then says ``base64``); ``null`` when the record had
    no value at all. ``size`` is the value's length in bytes; a value longer
    than :data:`MAX_DEAD_LETTER_ORIGINAL` keeps only its first bytes
    (``truncated``), so that the letter itself can always be written.
    """

    original: str | None
    encoding: str
    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    size: int = 0
    truncated: bool = False


def dead_letter(value: bytes | None, topic: str, partition: int, offset: int,
                reason: str, detail: str) -> DeadLetter:
    """Build the :class:`DeadLetter` of a rejected record.

    >>> d = dead_letter(b"x" * 100_000, "likes", 0, 7, "not_json", "...")
    >>> d.size, d.truncated, len(d.original), d.encoding
    (100000, True, 65536, 'utf-8')
    """
    size = 0 if value is None else len(value)
    truncated = size > MAX_DEAD_LETTER_ORIGINAL
    if value is None:
        original, encoding = None, "none"
    else:
        data = bytes(value)
        try:
            data.decode("utf-8")
            # a cut may split a character: drop its leftover bytes
            original = data[:MAX_DEAD_LETTER_ORIGINAL].decode("utf-8", errors="ignore")
            encoding = "utf-8"
        except UnicodeDecodeError:
            original = base64.b64encode(data[:MAX_DEAD_LETTER_ORIGINAL]).decode("ascii")
            encoding = "base64"
    return DeadLetter(original=original, encoding=encoding, topic=topic, partition=partition,
                      offset=offset, reason=reason, detail=detail, size=size, truncated=truncated)


#: header of a view-topic record naming the partition it came from
#: (``<input topic>/<partition>``, or ``user/<partition>`` for forwarded likes):
#: the engine's watermark follows the slowest of them
SOURCE_HEADER = "lg-src"


def event_source(headers: Any) -> bytes | None:
    """The source named by a view-topic record's headers, or ``None``.

    >>> event_source([("lg-src", b"likes/3")]), event_source(None)
    (b'likes/3', None)
    """
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        if k == SOURCE_HEADER:
            return bytes(v) if v is not None else None
    return None


@dataclass(frozen=True, slots=True)
class Mark:
    """A progress mark: the record's source (``lg-src``) has reached event time ``ts``.

    The ingest sends one to every partition of the view topics for each input
    partition that progressed (at most once per ``progress_interval``); a user
    slot sends one to every lockstep partition. A view partition gets only a
    thin slice of each source's events, so without marks its watermark would
    wait for the sparsest of those slices.

    ``newest`` is the newest input event time behind the mark when that is
    not ``ts`` (a user slot marks its watermark + grace). ``behind`` says
    whether the input partition still has records to fetch (a backlog):
    the engines then wait for it however far it trails; ``ts`` is ``None``
    for such a partition that has delivered nothing yet.

    >>> decode_event(encode_mark(1764000000.5))
    Mark(ts=1764000000.5, newest=None, behind=None)
    >>> decode_event(encode_mark(None, behind=True))
    Mark(ts=None, newest=None, behind=True)
    """

    ts: float | None
    newest: float | None = None
    behind: bool | None = None


def encode_mark(ts: float | None, newest: float | None = None,
                behind: bool | None = None) -> bytes:
    """Serialise a :class:`Mark` for a view topic."""
    if behind is not None:
        return orjson.dumps(["m", ts, newest, behind])
    return orjson.dumps(["m", ts] if newest is None else ["m", ts, newest])


class ViewEventError(ValueError):
    """A view-topic record this version cannot decode."""


def encode_event(ev: Payment | Like | CoLike) -> bytes:
    """Serialise an event for a view topic (compact JSON array, first item its kind)."""
    if isinstance(ev, Like):
        return orjson.dumps(["l", ev.like_id, ev.user, ev.target, ev.mchid, ev.ts,
                             ev.action, ev.ip, ev.device, ev.user_created])
    if isinstance(ev, Payment):
        return orjson.dumps(["p", ev.transaction_id, ev.mchid, ev.openid, ev.amount,
                             ev.ts, ev.currency, ev.out_trade_no, ev.appid,
                             ev.ip, ev.device])
    if isinstance(ev, CoLike):
        return orjson.dumps(["c", ev.like_id, ev.user, ev.target, ev.ts,
                             [list(p) for p in ev.prev], ev.mchid])
    raise TypeError(f"cannot encode {type(ev).__name__}")


def encode_verdict(v: Verdict) -> bytes:
    """Serialise a moderator's verdict for a view topic: ``["v", <contract object>]``."""
    return b'["v",' + v.to_json() + b"]"


def _from_array(a: Any) -> Payment | Like | CoLike | Mark | Verdict:
    k = a[0]
    if k == "l":
        return Like(a[1], a[2], a[3], a[4], float(a[5]), a[6], a[7], a[8],
                    None if a[9] is None else float(a[9]))
    if k == "p":
        return Payment(a[1], a[2], a[3], int(a[4]), float(a[5]), a[6], a[7], a[8], a[9], a[10])
    if k == "c":
        return CoLike(a[1], a[2], a[3], float(a[4]), tuple(prev_item(p) for p in a[5]),
                      a[6] if len(a) > 6 else None)
    if k == "m":
        return Mark(None if a[1] is None else float(a[1]),
                    float(a[2]) if len(a) > 2 and a[2] is not None else None,
                    bool(a[3]) if len(a) > 3 else None)
    if k == "v":
        try:
            return verdict_from_object(a[1])
        except BadRecord as exc:
            raise ViewEventError(f"bad verdict: {exc}") from None
    raise ViewEventError(f"unknown view event kind {k!r}")


def decode_event(data: bytes | str | None) -> Payment | Like | CoLike | Mark | Verdict:
    """Inverse of :func:`encode_event`; raises :class:`ViewEventError` on garbage."""
    events = decode_record(data)
    if len(events) != 1:
        raise ViewEventError(f"a bundle of {len(events)} view events, not one")
    return events[0]


#: A bundle is sent once it reaches about this size: well below Kafka's default
#: 1 MB message limit.
BUNDLE_BYTES = 256 * 1024


def encode_bundle(events: list[bytes]) -> bytes:
    """One view-topic record carrying several encoded events (:func:`encode_event`).

    The ingest sends each view partition one bundle per batch and source
    instead of one record per event: the worker's cost is per Kafka record
    (Faust's and aiokafka's bookkeeping of every message), not per byte.

    >>> from detectors.events import Like
    >>> a = Like("l1", "u1", "post:1", "m1", 1.5)
    >>> b = Like("l2", "u2", "post:1", "m1", 2.5)
    >>> decode_record(encode_bundle([encode_event(a), encode_event(b)])) == [a, b]
    True
    """
    return b'["b",' + b",".join(events) + b"]"


def decode_record(data: bytes | str | None) -> list[Payment | Like | CoLike | Mark | Verdict]:
    """The events of a view-topic record: a bundle's, or the single event's.

    Raises :class:`ViewEventError` when any part is not a view event (the
    record is rejected whole: its events come from one producer write).

    >>> decode_record(encode_mark(5.0))
    [Mark(ts=5.0, newest=None, behind=None)]
    >>> decode_record(b'["b",["m",1.0],["x"]]')
    Traceback (most recent call last):
    ...
    streams.topics.ViewEventError: unknown view event kind 'x'
    """
    try:
        a: Any = orjson.loads(data)  # type: ignore[arg-type]  # None raises, as garbage does
        if a[0] == "b":
            return [_from_array(x) for x in a[1:]]
        return [_from_array(a)]
    except ViewEventError:
        raise
    except (orjson.JSONDecodeError, TypeError, IndexError, KeyError, ValueError) as exc:
        raise ViewEventError(f"not a view event: {exc}") from None


@dataclass(frozen=True)
class Topics:
    """The Faust topics (and the checkpoint table) of one app. The input
    topics are not among them: the ingest reads them with its own consumer
    (:mod:`streams.ingest`)."""

    alerts: faust.TopicT
    deadletter: faust.TopicT
    views: dict[str, faust.TopicT]
    checkpoints: Any  # faust.Table[str, bytes]


#: Changelog topic settings of the checkpoint table: compacted (the default
#: for changelogs) with small segments, so the log cleaner keeps only recent
#: checkpoints and a restarted worker recovers quickly.
CHECKPOINT_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.bytes": str(16 * 1024 * 1024),
    "min.cleanable.dirty.ratio": "0.2",
}


def make_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare every topic of the worker on ``app``.

    View topics use raw bytes (the agents decode them); the view
    topics are internal (Faust creates them with ``settings.partitions``
    partitions). Output topics are plain topics; the worker's pre-flight
    check creates them when missing.
    """
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    n = settings.partitions
    alerts = app.topic(settings.alerts_topic, **raw)
    deadletter = app.topic(settings.deadletter_topic, key_type=bytes, key_serializer="raw",
                           value_type=DeadLetter, value_serializer="json")
    views = {
        v: app.topic(settings.view_topic(v), internal=True, partitions=n,
                     replicas=settings.replication_factor, **raw)
        for v in ALL_VIEWS
    }
    checkpoints = app.Table(
        settings.checkpoint_table,
        key_type=bytes, value_type=bytes, partitions=n,  # bytes -> "raw" codec
        extra_topic_configs=CHECKPOINT_TOPIC_CONFIG,
        help="Engine checkpoints: <view>/<partition> header and snapshot chunks.",
    )
    return Topics(alerts, deadletter, views, checkpoints)
