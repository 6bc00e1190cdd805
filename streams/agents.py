"""The worker's agents: ingest and repartition, per-view detection, checkpoints.

Data flow
---------
::

    payments.success ─┐ ingest (own consumer): parse ─┬─ bad ──> likeguard.deadletter
    likes ────────────┘                              └─ ok ──> <prefix>.merchant|ip|device|user
                                                 (partition of the view's key)
    <prefix>.<view> ── view agent: Engine(views=[view]) per partition ──> likeguard.alerts
                              user view: enriched likes ──> <prefix>.lockstep (by target)

Every repartitioned record carries its source in the header ``lg-src``
(``<input topic>/<partition>``, or ``user/<p>`` for forwarded likes); the view
engine's watermark follows the slowest source, so the order in which the
consumer interleaves partitions (a backlog may arrive partition by partition)
makes no event late within ``max_skew``.

Progress marks
--------------
A view partition receives only the slice of each input partition whose keys
hash to it; at low traffic some slices are sparse, and a watermark that
waits for the slowest source would wait for the sparsest slice (up to
``max_skew``). So the ingest sends a :class:`~streams.topics.Mark` -- "this
input partition has reached event time T" -- to every partition of the
merchant, ip, device and user view topics after the events it covers, for
each input partition that moved on, at most once per ``progress_interval``
seconds (a pending mark is sent by the timer; an input partition ingested to
its end and quiet that long is marked as if its event time kept the clock's
pace since its last record, at most the newest event time the worker
ingested, so a silent partition does not hold the watermarks back by
``max_skew``, and a feed arriving a steady delay behind the others keeps
that delay instead of having its next records made late; once the whole
input has been quiet for ``idle_flush`` no longer, so the marks stop and
the idle flush need not wait for them). A user slot likewise marks
every lockstep partition with its watermark plus ``grace`` (its forwards
leave in event-time order, so all of them up to its watermark are out). The
engine takes a mark as :meth:`~detectors.engine.Engine.progress`: the
watermarks then follow the input's event time about ``grace`` behind, as in
the offline replay, whatever the key distribution.

Agents are thin: decode, call the engine, send what it returns, count.
Batches come from ``stream.take_events`` so per-event overhead stays low. The
input topics do not pass through Faust at all: the ingest reads them in
batches with its own aiokafka consumer (:mod:`streams.ingest`, consumer group
``<app_id>-ingest``), since Faust's per-record path cost more than the whole
engine.
The worker's cost is per Kafka record, not per byte (Faust and aiokafka
handle every message through several coroutines), so the repartitioned
events travel in **bundles** (:class:`Bundles`): per ingest batch, one record
per view partition and source carrying all of that batch's events for it
(three to four view events per input event would otherwise be three to four
records each), sent straight with the app's producer (``app.producer.send``)
rather than through Faust's channel layer. A view agent processes a bundle's
events in order, as one record: its offset is the unit of the checkpoints
below. Measured on one worker catching up a 312,552-event backlog
(``tests/bench/bench_worker.py``, docs/performance.md "Throughput"): 4,979 input events/s
with every event processed, where the worker before bundles, the consumer's
fetch wait (:mod:`streams.app`) and spaced checkpoints ran at 1,643 while it
dropped most view deliveries as late.

State and restart
-----------------
Each (view, partition) has its own :class:`~detectors.engine.Engine` in a
:class:`Slot`. Its durable copy is a checkpoint in the Faust table
``checkpoints`` (memory store, compacted changelog topic, one changelog
partition per view partition, so Faust assigns and recovers it together
with the view partition). A checkpoint is ``Engine.snapshot()`` (windows,
dedupe ids, reorder buffer, suppression, River models), LZ4-compressed and
cut into chunks below the broker's message size, plus a header naming the
chunks and the **next source offset** the snapshot has consumed:

* ``<view>/<p>/<gen>/<i>``: chunk ``i`` of generation ``gen``;
* ``<view>/<p>``: header ``{"gen", "chunks", "offset", "flushed", ...}``,
  written after its chunks; the previous generation's chunks are deleted
  (tombstoned) only after the new header. All writes of a slot go to one
  changelog partition, so recovery always sees a header whose chunks exist.

The snapshot is signed (HMAC-SHA256) with the checkpoint key from the
settings and bound to its slot, offset and flushed state
(:func:`checkpoint_context`): whoever can write the changelog topic but lacks
the key cannot make a worker unpickle anything, nor move a checkpoint to
another partition or change the offset it resumes from. A checkpoint that
cannot be used (corrupt, truncated, of another state version, forged or
unsigned) is logged as one line naming the partition, and that partition
starts empty; the worker carries on.

Offsets and checkpoints are ordered so that a crash at any point loses
nothing and double-counts nothing:

1. A view agent increfs every message of a batch before it processes any,
   so the ack that ``take_events`` gives after the batch does not release
   it; the slot keeps these *held* events (only records below a restored
   checkpoint are released at once). Automatic acks are off
   (:func:`manual_acks`): records fetched but never given to the agent are
   never acked.
2. A checkpoint is sent (``await topic.send``: in the producer's
   accumulator) *before* the held events are acked.
3. Faust commits only acked offsets, and flushes the producer before it
   commits. So a committed offset is always covered by a delivered
   checkpoint: ``committed <= checkpoint offset``.
4. After a restart or rebalance the slot is restored from its checkpoint;
   redelivered records below the checkpoint offset are dropped by offset,
   the rest are processed again exactly as before (same order within the
   partition, same engine state), so the alerts they raise are re-sent with
   the same deterministic ``alert_id`` (consumers de-duplicate by it).

A graceful stop (SIGTERM) checkpoints every slot once its current batch is
done and processes nothing after that (:meth:`Pipeline._on_shutdown`; the
batches still buffered are left unacked), so the offsets Faust commits as it
stops are exactly the checkpoints' and a restart processes nothing twice.

The ingest stage is stateless and at-least-once: its consumer commits a
batch's offsets only after the producer delivered what the batch was turned
into, and a record ingested twice reaches the view topics twice, where the
engine's dedupe drops the copy.

Rebalances
----------
On revocation every slot of a revoked view partition is checkpointed (its
held acks released), the producer flushed, and the slot dropped; the new
owner restores it from the table. Records a view agent had buffered before
the rebalance carry the old consumer generation: they are neither processed
nor acked (they come again from the committed offset). The timer never
touches a slot whose partition is not assigned.

Idle input
----------
Detectors never read the clock; the driver does. When a slot has had no new
events for ``idle_flush`` seconds of wall-clock time *and its upstream is
quiet too* -- no ingest batch in progress, no input record ingested by this
worker for ``idle_flush`` seconds, no unprocessed records left in the slot's
own partition, none left to ingest in the input partitions assigned to this
worker (fetched to the high-water mark, none in the batch being ingested)
and, for the lockstep view, no
user-view slot forwarding or unflushed, with a doubled wait --
:meth:`Pipeline.tick` calls ``engine.flush()`` (as the offline replay does
at the end of its file), sends the alerts and forwarded likes it returns,
and checkpoints. Requiring a quiet upstream keeps a partition that merely
has a gap (while the input still flows, or while the worker catches up a
backlog) from being flushed early: a flushed engine counts later events
behind its watermark as late.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from aiokafka.structs import ConsumerRecord
from faust.exceptions import ProducerSendError
from faust.types import TP, EventT, StreamT

from detectors import _core
from detectors.alerts import Alert
from detectors.engine import ALL_VIEWS, Engine, route_keys
from detectors.parsing import BadRecord, check_record_time, parse_like, parse_payment
from detectors.partitioning import kafka_partition
from detectors.verdicts import Verdict, parse_verdict
from streams import testhooks
from streams.console import Board
from streams.delivery import DeliveryFailed, Outbox
from streams.ingest import InputConsumer
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import (
    BUNDLE_BYTES,
    SOURCE_HEADER,
    Mark,
    Topics,
    ViewEventError,
    dead_letter,
    decode_record,
    encode_bundle,
    encode_event,
    encode_mark,
    encode_verdict,
    event_source,
    make_topics,
)

__all__ = ["Bundles", "Pipeline", "Slot", "CHUNK_BYTES", "checkpoint_context", "hold_acks",
           "manual_acks", "utc_now"]

log = logging.getLogger("likeguard.worker")

#: Checkpoint chunk size: well below Kafka's default 1 MB message limit.
CHUNK_BYTES = 512 * 1024
#: Largest share of the worker's time that periodic checkpoints may take.
CHECKPOINT_SHARE = 0.1
#: Header format version of checkpoints: 2 compresses with LZ4 (the core's
#: ``compress``); version 1 (zlib) is still read.
CHECKPOINT_VERSION = 2
#: Most chunks a checkpoint header may name (512 MB compressed).
MAX_CHUNKS = 1024
#: Views the ingest feeds (and marks); the lockstep view is fed by the user view.
INGEST_VIEWS = tuple(v for v in ALL_VIEWS if v != "lockstep")
#: The views whose partitions ``detectors._core.route`` gives, in its order.
ROUTED_VIEWS = _core.ROUTED_VIEWS


def checkpoint_context(view: str, partition: int, offset: int, flushed: bool) -> bytes:
    """What a checkpoint's signature binds its snapshot to besides the key: the
    slot, the next offset it resumes from and whether it was flushed (the
    header fields the restore trusts).

    >>> checkpoint_context("device", 3, 120, False)
    b'likeguard-checkpoint:device/3@120:0'
    """
    return f"likeguard-checkpoint:{view}/{partition}@{offset}:{int(flushed)}".encode()


def _checkpoint_header(raw: bytes) -> dict[str, Any]:
    """A checkpoint header, its fields checked; ``ValueError`` when malformed."""
    h = orjson.loads(raw)
    if not isinstance(h, dict):
        raise ValueError("checkpoint header is not a JSON object")
    for name, bound in (("gen", 2 ** 53), ("chunks", MAX_CHUNKS + 1), ("offset", 2 ** 63)):
        v = h.get(name)
        if type(v) is not int or not 0 <= v < bound:
            raise ValueError(f"checkpoint header field {name!r} is {v!r}")
    if type(h.get("crc")) is not int or type(h.get("flushed", False)) is not bool:
        raise ValueError("checkpoint header lacks its crc or flushed fields")
    return h


def _decompress(blob: bytes, version: int) -> bytes:
    """A checkpoint's snapshot from its stored bytes (LZ4, or zlib for version 1)."""
    if version not in (1, CHECKPOINT_VERSION):
        raise ValueError(f"checkpoint format version {version!r} is not one this worker reads")
    if version == 1:
        try:
            return zlib.decompress(blob)
        except zlib.error as exc:
            raise ValueError(f"not zlib data: {exc}") from None
    return _core.decompress(blob)


def utc_now(now: float | None = None) -> str:
    """Wall-clock time as RFC 3339 UTC with milliseconds (``emitted_at``)."""
    dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Bundles:
    """Encoded view events grouped by destination until sent as bundles.

    A destination is a view topic, a partition and a source (the ``lg-src``
    header). Each destination's events leave as one record per batch
    (:func:`~streams.topics.encode_bundle`), in the order they were added,
    and a bundle that reaches :data:`~streams.topics.BUNDLE_BYTES` leaves at
    once (``add`` returns ``True``: the caller awaits :meth:`send_full`), so
    every source's events reach each view partition in their input order.

    Parameters
    ----------
    send
        ``send(topic, key, value, partition, headers)``: :meth:`streams.delivery.Outbox.send`.
    """

    __slots__ = ("_send", "_groups", "_sizes", "_full", "records")

    def __init__(self, send: Any) -> None:
        self._send = send
        self._groups: dict[tuple[str, int, bytes], list[bytes]] = {}
        self._sizes: dict[tuple[str, int, bytes], int] = {}
        self._full: list[tuple[str, int, bytes]] = []
        self.records = 0  #: bundles sent

    def add(self, topic: str, partition: int, source: bytes, data: bytes) -> bool:
        """Queue ``data`` for a destination; ``True`` when its bundle is full."""
        dest = (topic, partition, source)
        group = self._groups.get(dest)
        if group is None:
            group = self._groups[dest] = []
            self._sizes[dest] = 0
        group.append(data)
        size = self._sizes[dest] = self._sizes[dest] + len(data) + 1
        if size >= BUNDLE_BYTES - 1024:
            self._full.append(dest)
            return True
        return False

    async def send_full(self) -> None:
        """Send the bundles that reached their size limit."""
        full, self._full = self._full, []
        for dest in full:
            await self._flush(dest)

    async def send_all(self) -> None:
        """Send every pending bundle."""
        for dest in list(self._groups):
            await self._flush(dest)

    async def _flush(self, dest: tuple[str, int, bytes]) -> None:
        group = self._groups.pop(dest, None)
        if not group:
            return
        del self._sizes[dest]
        topic, partition, source = dest
        await self._send(topic, None, encode_bundle(group), partition, [(SOURCE_HEADER, source)])
        self.records += 1


@dataclass
class Slot:
    """One engine hosting one view for one partition of that view's topic."""

    view: str
    partition: int
    engine: Engine
    next_offset: int = 0  #: next offset of the view partition to process
    ckpt_offset: int = 0  #: next offset recorded by the last durable checkpoint
    gen: int = 0  #: checkpoint generation
    chunks: int = 0  #: chunks of the current generation
    flushed: bool = False  #: flushed for idle input since its last event
    dirty: bool = False  #: state changed since the last checkpoint
    last_input: float = field(default_factory=time.monotonic)
    last_checkpoint: float = field(default_factory=time.monotonic)
    held: list[EventT] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  #: counters already exported

    @property
    def key(self) -> bytes:
        return f"{self.view}/{self.partition}".encode()

    def has_input(self) -> bool:
        return self.engine.max_ts != float("-inf")


def manual_acks(stream: StreamT) -> None:
    """Make ``stream`` ack only what its agent acks (``take_events`` after each
    batch, checkpoints for the records they cover).

    ``take_events`` turns the stream's automatic acks off while it runs and
    restores them when its generator is closed, which Faust does first on
    shutdown; a record the stream still passed on after that would be acked
    unprocessed and its offset committed. (Faust's commit also skips the
    check for unacked records below an acked one when nothing was committed
    for the partition before, so one such ack can commit past every record a
    slot still holds.) With automatic acks off for good, only the agents ack.
    """
    stream.enable_acks = False


def hold_acks(events: Iterable[EventT]) -> None:
    """Take one more reference to each of ``events``: the ack ``take_events``
    gives after the batch no longer releases them (their offsets are not
    committed; unreleased, they are delivered again after a restart)."""
    for event in events:
        event.message.incref()


#: engine stats exported as per-view counters (a :class:`Metrics` method each)
_EXPORTED_STATS = ("late", "late_admitted")


def _reason(exc: BaseException) -> str:
    """Why a checkpoint is unusable, on one line."""
    text = " ".join(str(exc).split())
    if type(exc) is ValueError and text:
        return text  # the engine's and the header check's own words
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _source(tp: TP) -> str:
    """The source name of input partition ``tp`` (header ``lg-src``, mark keys)."""
    return f"{tp.topic}/{tp.partition}"


def _user_source(partition: int) -> str:
    """The source name of a user-view partition's forwards and marks (lockstep's input)."""
    return f"user/{partition}"


class Pipeline:
    """Topics, agents and the timer of one worker, around a :class:`faust.App`.

    Parameters
    ----------
    app
        A configured app (:func:`streams.app.create_app`).
    settings
        Validated settings.
    metrics
        Where counters go (a private :class:`~streams.metrics.Metrics`).
    board
        Where the review console sees the alerts sent and the verdicts read
        (:mod:`streams.console`; default: one that keeps nothing).
    """

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics,
                 board: Board | None = None) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.board = board if board is not None else Board(capacity=0)
        self.cfg = settings.engine
        self.topics: Topics = make_topics(app, settings)
        self.n = settings.partitions
        self.input_topics = frozenset((settings.payments_topic, settings.likes_topic))
        #: what the ingest consumer reads: the input topics and the verdicts
        self.ingest_topics = self.input_topics | {settings.verdicts_topic}
        self.slots: dict[tuple[str, int], Slot] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.streams: dict[str, StreamT] = {}
        #: signs and verifies checkpoints (read once: the whole run uses one key)
        self._key = settings.checkpoint_secret()
        self.view_names = {v: t.get_topic_name() for v, t in self.topics.views.items()}
        self.view_of_topic = {name: v for v, name in self.view_names.items()}
        self._changelog = settings.checkpoint_changelog
        self._gauges_at = 0.0
        #: monotonic time of the last input record ingested / likes forwarded
        self.last_ingest = time.monotonic()
        self.last_forward = time.monotonic()
        self._ingesting = 0  #: ingest batches in progress
        #: the worker is stopping: every slot has had its last checkpoint
        self._stopping = False
        #: every record the worker produces, kept until delivered (see streams.delivery)
        self.out = Outbox(self._send, settings.deadletter_topic, metrics.rejected)
        #: the input topics' consumer (not Faust's: see streams.ingest)
        self.inputs = InputConsumer(settings, self.ingest_batch, self.out.confirm,
                                    self._inputs_revoked)
        #: latest event time ingested per input partition (sent as progress marks)
        self._input_ts: dict[TP, float] = {}
        self._ingest_at: dict[TP, float] = {}  #: monotonic time of its last record
        self._ingested: dict[TP, int] = {}  #: next offset to ingest, per input partition
        #: (view, partition) -> seconds its last snapshot took (see checkpoint_every)
        self._checkpoint_cost: dict[tuple[str, int], float] = {}
        #: source -> (event time of its last mark, monotonic time it was sent)
        self._marked: dict[str, tuple[float | None, float, bool | None]] = {}
        #: input partitions declared behind ahead of a burst, with the wall-clock
        #: ms of the declaration: behind until a fetch after it (see hold_passed)
        self._unconfirmed: dict[TP, int] = {}
        self._register()

    # ------------------------------------------------------------------ wiring

    def _register(self) -> None:
        app, s = self.app, self.settings
        app.task(self._run_inputs)
        for view in ALL_VIEWS:
            app.agent(self.topics.views[view], name=f"view-{view}")(self._make_view_agent(view))
        app.timer(interval=1.0, name="likeguard-tick")(self._timer)
        # Faust's stubs want a ``signal`` keyword these receivers take in ``**_``
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        log.info("pipeline: %d partitions per view topic, views %s, engine %s",
                 self.n, ", ".join(s.view_topic(v) for v in ALL_VIEWS), self.cfg.to_dict())

    async def _run_inputs(self) -> None:
        try:
            await self.inputs.run()
        except asyncio.CancelledError:
            raise
        except DeliveryFailed as exc:
            await self._refused(exc)
        except Exception as exc:
            log.error("ingest stopped: %r", exc)
            await self.app.crash(exc)

    async def _refused(self, exc: DeliveryFailed) -> None:
        """The broker refused a record for good: stop, committing nothing after it."""
        log.error("stopping: %s; nothing behind it is committed, a restart processes it "
                  "again (docs/reliability.md#producer-failures)", exc)
        await self.app.crash(exc)

    def _send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
              timestamp: float | None, headers: Any) -> Awaitable[Any]:
        return self.app.producer.send(topic, key, value, partition, timestamp, headers)

    async def _flush_producer(self) -> None:
        await self.app.producer.flush()

    async def _inputs_revoked(self, revoked: set[TP]) -> None:
        """Input partitions moved to another worker: forget their progress."""
        for tp in revoked:
            self._marked.pop(_source(tp), None)  # held anew if assigned again
            self.metrics.forget_partition(tp.topic, tp.partition)
            self._input_ts.pop(tp, None)
            self._ingest_at.pop(tp, None)
            self._ingested.pop(tp, None)
            self._unconfirmed.pop(tp, None)

    def _make_view_agent(self, view: str) -> Any:
        async def view_agent(stream: faust.Stream) -> None:
            self.streams[view] = stream
            manual_acks(stream)
            async for events in stream.take_events(self.settings.batch_size,
                                                   within=self.settings.batch_within):
                async with self._lock(view):
                    if self._stopping or self.out.failed:  # checkpointed for the last time
                        hold_acks(events)  # left for a restart
                        continue
                    try:
                        await self.view_batch(view, stream, events)
                    except DeliveryFailed as exc:
                        await self._refused(exc)
        return view_agent

    def _lock(self, view: str) -> asyncio.Lock:
        lock = self.locks.get(view)
        if lock is None:
            lock = self.locks[view] = asyncio.Lock()
        return lock

    # ------------------------------------------------------------------ ingest

    async def ingest_batch(self, records: list[ConsumerRecord]) -> None:
        """Parse input records; dead-letter the bad, repartition the good.

        The input consumer commits a batch's offsets only once this returned
        and the producer delivered what it sent (:mod:`streams.ingest`): a
        batch cut short (an error, or the worker stopping in the middle of
        it) is ingested again after a restart (the view engines drop the
        copies).
        """
        self._ingesting += 1
        try:
            await self._ingest(records)
        finally:
            self._ingesting -= 1
            self.last_ingest = time.monotonic()

    async def _ingest(self, records: list[ConsumerRecord]) -> None:
        m = self.metrics
        payments_name = self.settings.payments_topic
        view_names = self.view_names
        send = self.out.send  # the hot path: skip Faust's channel layer
        n = self.n
        max_ahead, max_behind = self.cfg.max_ahead, self.cfg.max_behind
        consumed: dict[str, int] = {}
        last: dict[TP, int] = {}
        newest: dict[TP, float] = {}
        sources: dict[TP, bytes] = {}  # the source header value, per input partition
        bundles = Bundles(send)
        await self.hold_new_inputs()
        tps: dict[tuple[str, int], TP] = {}
        top = float("-inf")  # the newest event time of this batch so far
        routed = tuple(view_names[v] for v in ROUTED_VIEWS)
        verdicts_name = self.settings.verdicts_topic
        for msg in records:
            topic = msg.topic
            consumed[topic] = consumed.get(topic, 0) + 1
            tp = tps.get((topic, msg.partition))
            if tp is None:
                tp = tps[(topic, msg.partition)] = TP(topic, msg.partition)
            last[tp] = msg.offset
            value = msg.value
            if topic == verdicts_name:
                await self._verdict(msg)
                continue
            stamp = msg.timestamp if msg.timestamp is not None and msg.timestamp >= 0 else None
            is_payment = topic == payments_name
            # the core's fast path; what it declines, the validator decides
            fast = (_core.route(is_payment, value, stamp, max_ahead, max_behind, n)
                    if type(value) is bytes else None)
            if fast is not None:
                ts, data, *parts = fast
                dests = [(routed[i], p) for i, p in enumerate(parts) if p >= 0]
            else:
                try:
                    ev = parse_payment(value) if is_payment else parse_like(value)
                    if ev is not None and stamp is not None:
                        check_record_time(ev, stamp / 1000.0, max_ahead, max_behind)
                except BadRecord as exc:
                    await self._dead_letter(msg, exc)
                    continue
                if ev is None:
                    m.skipped(topic, "trade_state")
                    continue
                ts, data = ev.ts, encode_event(ev)
                dests = [(view_names[view], kafka_partition(key, n))
                         for view, key in route_keys(ev).items()]
            if ts > newest.get(tp, float("-inf")):
                newest[tp] = ts
                if ts > top:
                    top = ts
            src = sources.get(tp)
            if src is None:
                src = sources[tp] = _source(tp).encode()
            full = False
            for name, p in dests:
                full = bundles.add(name, p, src, data) or full
            if full:
                await self.hold_passed(top, last)
                await bundles.send_full()
        await self.hold_passed(top, last)
        await bundles.send_all()
        for topic, count in consumed.items():
            m.consumed(topic, count)
        self._set_lag(last)
        seen = self._input_ts
        now = time.monotonic()
        for tp, offset in last.items():
            self._ingested[tp] = offset + 1
        for tp, ts in newest.items():
            self._ingest_at[tp] = now
            if ts > seen.get(tp, float("-inf")):
                seen[tp] = ts
        await self.send_marks()

    async def _dead_letter(self, msg: ConsumerRecord, exc: BadRecord) -> None:
        """Count a bad input record and send it to the dead-letter topic with its reason."""
        self.metrics.rejected(msg.topic, exc.reason)
        letter = dead_letter(msg.value, msg.topic, msg.partition, msg.offset, exc.reason,
                             exc.detail)
        await self.out.send(self.settings.deadletter_topic, msg.key, letter.dumps())

    async def _verdict(self, msg: ConsumerRecord) -> None:
        """A moderator's verdict: dead-letter it if bad, else send it to every
        partition of every view topic (which engine raised the alert is not
        known here; each engine keeps only the detectors it hosts), and note
        it on the console's board."""
        try:
            v = parse_verdict(msg.value)
        except BadRecord as exc:
            await self._dead_letter(msg, exc)
            return
        self.metrics.verdict(v.verdict)
        self.board.decide(v)
        data = encode_verdict(v)
        send = self.out.send
        for name in self.view_names.values():
            for p in range(self.n):
                await send(name, None, data, p)

    # ------------------------------------------------------------------ progress marks

    async def _mark(self, source: str, ts: float | None, views: Iterable[str], stage: str,
                    newest: float | None = None, behind: bool | None = None) -> None:
        """Send a progress mark of ``source`` at ``ts`` to every partition of ``views``."""
        send = self.out.send
        data = encode_mark(ts, newest, behind)
        header = [(SOURCE_HEADER, source.encode())]
        n = 0
        for view in views:
            name = self.view_names[view]
            for p in range(self.n):
                await send(name, None, data, p, header)
                n += 1
        self._marked[source] = (ts, time.monotonic(), behind)
        self.metrics.marks(stage, n)

    def _mark_due(self, source: str, ts: float, behind: bool | None = None) -> bool:
        interval = self.settings.progress_interval
        if interval <= 0:
            return False
        last = self._marked.get(source)
        if last is None or (behind and not last[2]):
            return True  # a backlog is declared at once; its end waits for the interval
        moved = last[0] is None or ts > last[0] or (behind is not None and behind != last[2])
        return moved and time.monotonic() - last[1] >= interval

    async def hold_passed(self, upto: float, delivering: Container[TP]) -> None:
        """Before events reaching ``upto`` go out: declare ``behind`` every input
        partition taken as caught up whose mark is more than ``max_skew / 2``
        behind ``upto`` (but those ``delivering`` records in this batch, and
        those never marked with a time: their records were never waited for).

        A producer writing a backlog (an upstream catching up after an outage)
        fills the input partitions a little at a time; a fetch may bring one
        partition minutes ahead in event time while the others' records are
        not on the broker yet, so those look ingested to their end. Their
        marks said "not behind", and a view engine that took the burst's
        events first would leave them behind as more than ``max_skew`` behind
        and take their records as late. Declared here, before the events, they
        stay ``behind`` until the consumer has fetched them after this moment
        (:meth:`_unconfirmed_fetch`): a fetch that finds records keeps them
        behind by their lag, one that finds none releases them.
        """
        skew = self.cfg.max_skew
        if skew <= 0 or self.settings.progress_interval <= 0 or upto == float("-inf"):
            return
        limit = upto - skew / 2
        now_ms = int(time.time() * 1000)
        for tp in self.inputs.assignment():
            if tp.topic not in self.input_topics or tp in delivering:
                continue
            source = _source(tp)
            last = self._marked.get(source)
            if last is None or last[2] or last[0] is None or last[0] >= limit:
                continue  # held as new, behind already, without a time, or close enough
            self._unconfirmed[tp] = now_ms
            await self._mark(source, last[0], INGEST_VIEWS, "ingest", behind=True)

    def _unconfirmed_fetch(self, tp: TP) -> bool:
        """Whether ``tp`` was declared behind by :meth:`hold_passed` and the
        consumer has not fetched it since (its high-water mark predates the burst)."""
        since = self._unconfirmed.get(tp)
        if since is None:
            return False
        polled = self.inputs.last_poll(tp)
        if polled is not None and polled > since:
            del self._unconfirmed[tp]
            return False
        return True

    def _ingest_lag(self, tp: TP) -> int | None:
        """Records of input partition ``tp`` this worker has not ingested (``None``: not known)."""
        try:
            hw = self.inputs.highwater(tp)
        except Exception:  # noqa: BLE001 - unknown
            return None
        nxt = self._ingested.get(tp)
        return None if hw is None or nxt is None else hw - nxt

    async def hold_new_inputs(self) -> None:
        """Before ingesting: declare every newly assigned input partition ``behind``.

        A consumer catching up a backlog fetches partitions in chunks of bytes,
        so one partition's first chunk may reach an hour further in event time
        than another's. Each newly assigned input partition is marked
        ``behind`` (with no time yet) *before* the events of this batch reach
        the views, so no view engine takes a partition it has not heard from
        for idle and drops its events as late. The marks after each batch then
        carry the partition's time and whether it still has a backlog; one
        with nothing to ingest is released by the timer (:meth:`send_marks`).
        """
        if self.settings.progress_interval <= 0:
            return
        for tp in self.inputs.assignment():
            source = _source(tp)
            if tp.topic in self.input_topics and source not in self._marked:
                await self._mark(source, self._input_ts.get(tp), INGEST_VIEWS, "ingest",
                                 behind=True)

    async def _fetched_to_end(self, tp: TP) -> bool | None:
        """Whether the consumer has fetched ``tp`` to its high-water mark
        (``None``: the consumer could not tell)."""
        try:
            hw = self.inputs.highwater(tp)
            pos = await self.inputs.position(tp)
        except Exception:  # noqa: BLE001 - unknown
            return None
        return hw is not None and pos is not None and pos >= hw

    async def _nothing_left(self, tp: TP) -> bool:
        """Whether input partition ``tp`` has nothing left to ingest: fetched to its
        high-water mark and none of its records in the batch being ingested."""
        if not await self._fetched_to_end(tp):
            return False
        return tp not in self.inputs.holding

    async def send_marks(self, idle: bool = False) -> None:
        """Progress marks for the input partitions that moved on since their last mark.

        With ``idle`` (the timer), an assigned input partition that is ingested
        to its end (its high-water mark, not merely fetched: a consumer catching
        up may hold a partition's backlog in memory) and has had no record for
        ``progress_interval`` is marked as if its event time kept the clock's
        pace since its last record: that record's event time plus the seconds
        since it was ingested, at most the newest event time this worker
        ingested. A silent partition then no longer holds the watermarks back
        by ``max_skew``, and a partition whose records come a steady delay
        behind the others' (payment notifications delivered 20 s after the
        payment, while likes arrive at once) keeps that delay instead of being
        marked level with the others, which made most of its records late.

        Once the whole input has been quiet for ``idle_flush`` (the point at
        which the view slots take it as ended and flush), such a partition is
        no longer moved on: creeping on would send a round of marks to every
        view partition each tick for as long as the partition's event-time gap
        (minutes for a sparse payment partition after a backlog), and a slot
        with marks still arriving is not idle, so the flush waited for the gap.
        (Not jumped to the newest time either: the views may still be working
        through their backlog, and if the input has only paused, the
        partition's next records lie between its last one and the newest.)
        """
        marks = dict(self._input_ts)
        lags = {tp: self._ingest_lag(tp) for tp in marks}
        interval = self.settings.progress_interval
        if idle and marks and interval > 0:
            newest = max(marks.values())
            now = time.monotonic()
            idle_flush = self.settings.idle_flush
            ended = (idle_flush > 0 and not self._ingesting
                     and now - self.last_ingest >= idle_flush)
            for tp in self.inputs.assignment():
                if tp.topic not in self.input_topics:
                    continue
                if tp in marks:  # ingested to its end and quiet
                    lag = lags[tp]
                    quiet = now - self._ingest_at.get(tp, now)
                    if marks[tp] < newest and quiet >= interval and lag is not None and lag <= 0 \
                            and not self._unconfirmed_fetch(tp):
                        if not ended:
                            marks[tp] = min(newest, marks[tp] + quiet)
                else:
                    # held as behind, but nothing to ingest (empty, or caught up
                    # before this worker ingested any of it): its time is not
                    # known, so it is released, no longer waited for
                    source = _source(tp)
                    last = self._marked.get(source)
                    if last is not None and last[2] and not self._unconfirmed_fetch(tp) \
                            and await self._nothing_left(tp):
                        await self._mark(source, None, INGEST_VIEWS, "ingest", behind=False)
        for tp, ts in marks.items():
            source = _source(tp)
            lag = lags[tp]
            behind = (lag is not None and lag > 0) or self._unconfirmed_fetch(tp)
            if self._mark_due(source, ts, behind):
                await self._mark(source, ts, INGEST_VIEWS, "ingest", behind=behind)

    async def hold_new_user_slots(self, assigned: Iterable[TP]) -> None:
        """Before a user slot forwards anything: declare every user-view
        partition newly assigned here ``behind`` to every lockstep partition.

        The lockstep engines may hold a mark of that partition from its last
        owner (a worker that crashed, or gave it up) saying "not behind", and
        the new owner replays it from its checkpoint; another user slot's mark
        carrying a far newer ``newest`` (a slot with a backlog buffered) would
        then leave it behind as more than ``max_skew`` behind, and its first
        forwards not sent before would be late. The slot's own marks then
        carry its time and whether it still has records (:meth:`_mark_user`).
        """
        if self.settings.progress_interval <= 0:
            return
        topic = self.view_names["user"]
        for tp in assigned:
            if tp.topic == topic and _user_source(tp.partition) not in self._marked:
                await self._mark(_user_source(tp.partition), None, ("lockstep",), "user",
                                 behind=True)

    async def _mark_user(self, slot: Slot) -> None:
        """A user slot's progress mark to every lockstep partition.

        ``behind`` while the slot's own input is catching up (a source of its
        engine is behind, or its partition has records left to fetch): the
        lockstep engines then wait for this slot's likes however far it trails.
        The mark is the event time the slot's input has reached: its engine's
        watermark plus ``grace``, or after an idle flush the flush's end.
        """
        wm = slot.engine.watermark
        if wm == float("-inf"):
            return
        try:
            hw = self.app.consumer.highwater(TP(self.view_names["user"], slot.partition))
        except Exception:  # noqa: BLE001 - unknown lag: judge by the engine alone
            hw = None
        behind = slot.engine.waiting or (hw is not None and hw > slot.next_offset)
        # the engine's watermark trails its slowest source by ``grace``; a flushed
        # engine's is its input's end (newest event plus a tick), already final:
        # adding grace would mark this slot far ahead of user slots not yet flushed,
        # and a lockstep engine would stop waiting for their likes (max_skew)
        source = _user_source(slot.partition)
        ts = wm if slot.flushed else wm + self.cfg.grace
        if self._mark_due(source, ts, behind):
            await self._mark(source, ts, ("lockstep",), "user", slot.engine.max_ts,
                             behind)

    # ------------------------------------------------------------------ views

    def _ownership(self) -> tuple[int, set[TP]]:
        """The current consumer generation and assignment, to test records against.

        ``take_events`` may hand over records it buffered before a rebalance;
        their partition may belong to another worker now (or again to this
        one, which then restores it from the checkpoint and gets them again).
        A record is ours when it was fetched in this generation and its
        partition is assigned. (Asked once per batch: the consumer builds a
        new set on every ``assignment()`` call.)
        """
        app = self.app
        return app.consumer_generation_id, set(app.consumer.assignment())

    async def view_batch(self, view: str, stream: StreamT, events: Sequence[EventT]) -> None:
        """Run a batch of one view topic through the partitions' engines."""
        t0 = time.perf_counter()
        by_part: dict[int, list[EventT]] = {}
        generation, assigned = self._ownership()
        # not acked by take_events after the batch unless released below: a
        # batch cut short (the worker stopping in the middle of it) leaves the
        # records it did not reach unacked, so they come again
        hold_acks(events)
        for event in events:
            msg = event.message
            if msg.generation_id != generation or msg.tp not in assigned:
                # Left over from before a rebalance: never ack it (it is delivered
                # again to whoever owns the partition now).
                continue
            by_part.setdefault(msg.partition, []).append(event)
        if view == "user":
            await self.hold_new_user_slots(assigned)
        processed = 0
        last: dict[TP, int] = {}
        for p, evs in by_part.items():
            last[evs[0].message.tp] = evs[-1].message.offset
            slot = self._slot(view, p)
            processed += await self._process(slot, evs)
        self.metrics.observe_batch(processed, time.perf_counter() - t0)
        self.metrics.view_processed(view, processed)
        self._set_lag(last)

    async def _process(self, slot: Slot, evs: list[EventT]) -> int:
        eng = slot.engine
        process = eng.process
        count_dupes = slot.view == "merchant"  # every input event passes there exactly once
        alerts: list[Alert] = []
        n = 0
        for event in evs:
            msg = event.message
            off = msg.offset
            if off < slot.ckpt_offset:
                msg.decref()  # in the restored checkpoint already; acked normally
                continue
            slot.held.append(event)  # released by the checkpoint that covers it
            if off < slot.next_offset:
                continue  # in memory already (redelivered), not yet checkpointed
            slot.next_offset = off + 1
            src = event_source(msg.headers)
            # the core decodes and takes the record whole (no Python object
            # per event); what it refuses, Python's decoder explains
            done = None if msg.value is None else eng.process_record(msg.value, src)
            if done is not None:
                got, k, moved, dup_p, dup_l = done
                alerts += got
                n += k
                if moved:
                    slot.dirty = True
                if count_dupes:
                    self.metrics.duplicate(self.settings.payments_topic, dup_p)
                    self.metrics.duplicate(self.settings.likes_topic, dup_l)
                continue
            try:
                items = decode_record(msg.value)
            except ViewEventError as exc:
                log.error("%s[%d]@%d: %s", msg.topic, msg.partition, off, exc)
                self.metrics.rejected(msg.topic, "bad_view_event")
                continue
            for ev in items:
                if isinstance(ev, Verdict):
                    eng.verdict(ev)
                    slot.dirty = True
                    continue
                if isinstance(ev, Mark):
                    wm = eng.watermark
                    alerts += eng.progress(src, ev.ts, ev.newest, ev.behind)
                    if eng.watermark != wm:
                        slot.dirty = True
                    continue
                n += 1
                if count_dupes:
                    d0 = eng.duplicates
                    alerts += process(ev, src)
                    if eng.duplicates != d0:
                        self.metrics.duplicate(self.settings.payments_topic if ev.kind == "payment"
                                               else self.settings.likes_topic)
                else:
                    alerts += process(ev, src)
        if n:
            slot.last_input = time.monotonic()
            slot.flushed = False
            slot.dirty = True
        await self._emit(slot, alerts)
        self._count(slot)
        if slot.held and time.monotonic() - slot.last_checkpoint >= self.checkpoint_every():
            await self.checkpoint(slot)
        return n

    async def _emit(self, slot: Slot, alerts: Iterable[Alert]) -> None:
        """Send alerts and the engine's forwarded likes."""
        now = time.time()
        emitted = utc_now(now)
        m = self.metrics
        alerts_topic = self.settings.alerts_topic
        for a in alerts:
            d = a.to_dict(emitted)
            await self.out.send_alert(alerts_topic, a.key.encode(), orjson.dumps(d))
            self.board.add(d)
            m.alert(d)
            m.observe_latency(a.window_end, now)
        forwards = slot.engine.take_forwards()
        if forwards:
            self.last_forward = time.monotonic()
            m.forwarded(len(forwards))
        bundles = Bundles(self.out.send)
        src = f"{slot.view}/{slot.partition}".encode()
        for view, key, co in forwards:
            if bundles.add(self.view_names[view], kafka_partition(key, self.n), src,
                           encode_event(co)):
                await bundles.send_full()
        await bundles.send_all()
        if slot.view == "user":
            await self._mark_user(slot)

    def _count(self, slot: Slot) -> None:
        """Export counter increments of a slot's engine since the last call."""
        eng, seen, m = slot.engine, slot.seen, self.metrics
        stats = eng.stats
        for stat in _EXPORTED_STATS:
            n = stats[stat]
            if n != seen.get(stat, 0):
                getattr(m, stat)(slot.view, n - seen.get(stat, 0))
                seen[stat] = n
        for direction, count in eng.joins.items():
            k = "join:" + direction
            if count != seen.get(k, 0):
                m.join_matches.labels(direction=direction).inc(count - seen.get(k, 0))
                seen[k] = count
        book = eng.verdicts.counts
        for effect in ("matched", "held"):
            k = "verdict:" + effect
            count = book[effect]
            if count != seen.get(k, 0):
                m.verdict_effect(slot.view, effect, count - seen.get(k, 0))
                seen[k] = count

    def _set_lag(self, last: dict[TP, int]) -> None:
        """Records behind ``last[tp]`` in each partition: an input partition's
        from the ingest's consumer, a view partition's from Faust's."""
        for tp, offset in last.items():
            consumer = self.inputs if tp.topic in self.ingest_topics else self.app.consumer
            try:
                hw = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - lag is best effort
                continue
            if hw is not None:
                self.metrics.set_lag(tp.topic, tp.partition, hw - offset - 1)

    # ------------------------------------------------------------------ slots

    def _slot(self, view: str, p: int) -> Slot:
        slot = self.slots.get((view, p))
        if slot is None:
            slot = self._restore(view, p) or self._new_slot(view, p)
            self.slots[(view, p)] = slot
        return slot

    def _new_slot(self, view: str, p: int, gen: int = 0, chunks: int = 0) -> Slot:
        """An empty slot; ``gen`` and ``chunks`` name the chunks its first
        checkpoint replaces (an unusable checkpoint's, so they are deleted)."""
        slot = Slot(view, p, Engine(self.cfg, views=[view]), gen=gen, chunks=chunks)
        if view == "lockstep":
            # wait for every user partition until it reports: one that
            # starts releasing later must not find its likes late
            for q in range(self.n):
                slot.engine.progress(_user_source(q).encode(), None, behind=True)
        return slot

    def _restore(self, view: str, p: int) -> Slot | None:
        """The slot restored from its checkpoint; ``None`` when there is none.

        A checkpoint that cannot be used (corrupt, truncated, of another state
        version, forged, unsigned, of another slot) is logged in one line and
        an empty slot is returned: the partition starts afresh, and its first
        checkpoint replaces the unusable one.
        """
        data = self.topics.checkpoints.data
        key = f"{view}/{p}".encode()
        raw = data.get(key)
        if raw is None:
            return None
        h: dict[str, Any] | None = None
        try:
            h = _checkpoint_header(raw)
            parts = []
            for i in range(h["chunks"]):
                part = data.get(f"{view}/{p}/{h['gen']}/{i}".encode())
                if part is None:
                    raise ValueError(f"chunk {i} of {h['chunks']} is missing")
                parts.append(part)
            blob = b"".join(parts)
            if zlib.crc32(blob) != h["crc"]:
                raise ValueError("checksum mismatch")
            snapshot = _decompress(blob, h.get("v", 1))
            engine = Engine.restore(snapshot, key=self._key, context=checkpoint_context(
                view, p, h["offset"], h.get("flushed", False)))
            if engine.core.views != [view]:
                raise ValueError(f"it holds the views {engine.core.views}")
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint must not stop the worker
            log.error("checkpoint %s/%d is unusable (%s); partition %s/%d starts empty",
                      view, p, _reason(exc), view, p)
            return self._new_slot(view, p, *((h["gen"], h["chunks"]) if h else (0, 0)))
        if engine.cfg != self.cfg:
            log.warning("checkpoint %s/%d was made with other engine settings; keeping the "
                        "checkpoint's (%s)", view, p, engine.cfg.to_dict())
        slot = Slot(view, p, engine, next_offset=h["offset"], ckpt_offset=h["offset"],
                    gen=h["gen"], chunks=h["chunks"], flushed=h.get("flushed", False))
        stats = engine.stats
        for stat in _EXPORTED_STATS:
            slot.seen[stat] = stats[stat]
        for direction, count in engine.joins.items():
            slot.seen["join:" + direction] = count
        log.info("restored %s/%d from checkpoint gen %d (%d bytes) at offset %d",
                 view, p, h["gen"], len(blob), h["offset"])
        return slot

    async def _put(self, partition: int, key: bytes, value: bytes | None) -> None:
        table = self.topics.checkpoints
        if value is None:
            table.data.pop(key, None)
        else:
            table.data[key] = value
        await self.out.send(self._changelog, key, value, partition)

    def checkpoint_every(self) -> float:
        """Seconds between checkpoints of a busy slot: ``checkpoint_interval``,
        stretched so that a round of checkpoints of every slot here takes at
        most :data:`CHECKPOINT_SHARE` of the worker's time.

        A checkpoint snapshots the slot's whole state, so its cost grows with
        the state (windows, and the reorder buffer while a backlog is caught
        up); at a fixed interval, large state would leave little time for the
        events themselves (measured: three quarters of a backlog replay). The
        price of a longer interval is more events to process again after a
        crash, never a lost or doubled one.
        """
        return max(self.settings.checkpoint_interval,
                   sum(self._checkpoint_cost.values()) / CHECKPOINT_SHARE)

    async def checkpoint(self, slot: Slot) -> None:
        """Write the slot's checkpoint, then release the acks it covers.

        What the slot sent (alerts, forwarded likes) is delivered before the
        header that makes the checkpoint count, and the header before the acks.
        """
        await self.out.confirm()
        t0 = time.perf_counter()
        offset, flushed = slot.next_offset, slot.flushed
        snap = slot.engine.snapshot(key=self._key, context=checkpoint_context(
            slot.view, slot.partition, offset, flushed))
        blob = _core.compress(snap)
        self._checkpoint_cost[(slot.view, slot.partition)] = time.perf_counter() - t0
        gen = slot.gen + 1
        base = f"{slot.view}/{slot.partition}"
        p = slot.partition
        chunks = [blob[i:i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
        for i, chunk in enumerate(chunks):
            await self._put(p, f"{base}/{gen}/{i}".encode(), chunk)
            if testhooks.ARMED:  # tests only: a kill between a checkpoint's parts
                await testhooks.pause_at("checkpoint-part", self._flush_producer,
                                         f"{base} gen {gen} chunk {i + 1} of {len(chunks)}")
        header = {"v": CHECKPOINT_VERSION, "gen": gen, "chunks": len(chunks),
                  "offset": offset, "flushed": flushed, "bytes": len(blob),
                  "crc": zlib.crc32(blob), "written_at": utc_now()}
        await self._put(p, slot.key, orjson.dumps(header))
        if testhooks.ARMED:
            await testhooks.pause_at("checkpoint-part", self._flush_producer,
                                     f"{base} gen {gen} header, old chunks and acks not yet")
        # the previous generation's chunks, and any a kill left behind (chunks
        # written without their header, or a header written and the old chunks not
        # yet deleted): every chunk of this slot but the new generation's
        mine = f"{base}/".encode()
        keep = {f"{base}/{gen}/{i}".encode() for i in range(len(chunks))}
        for key in [k for k in self.topics.checkpoints.data
                    if k.startswith(mine) and k not in keep]:
            await self._put(p, key, None)
        await self.out.confirm()
        slot.gen, slot.chunks = gen, len(chunks)
        slot.ckpt_offset = offset
        slot.dirty = False
        slot.last_checkpoint = time.monotonic()
        held, slot.held = slot.held, []
        stream = self.streams.get(slot.view)
        for event in held:
            if stream is not None:
                await stream.ack(event)
            else:  # pragma: no cover - the view agent registers its stream first
                event.ack()
        self.metrics.checkpoint(time.time())

    # ------------------------------------------------------------------ timer

    async def _timer(self) -> None:
        if self.app.should_stop:
            return
        try:
            await self.tick()
        except DeliveryFailed as exc:
            if not self.app.should_stop:
                await self._refused(exc)
        except ProducerSendError:
            if not self.app.should_stop:
                raise
            # shutting down: the producer closed under a checkpoint; the records
            # it covers are unacked and simply processed again after a restart
            log.info("tick interrupted by shutdown")

    async def tick(self) -> None:
        """Once a second: idle flushes, due checkpoints, restore idle partitions, gauges."""
        app = self.app
        if app.rebalancing or app.should_stop or not app.consumer:
            return
        await self.send_marks(idle=True)  # marks held back by progress_interval; quiet inputs
        assignment = app.consumer.assignment()
        for tp in assignment:
            view = self.view_of_topic.get(tp.topic)
            if view is None or (view, tp.partition) in self.slots:
                continue
            # an assigned partition with a checkpoint but no new input (e.g. a
            # restart after the input ended): restore it so it can be flushed
            if f"{view}/{tp.partition}".encode() in self.topics.checkpoints.data:
                async with self._lock(view):
                    if (view, tp.partition) not in self.slots:
                        slot = self._restore(view, tp.partition)
                        if slot is not None:
                            self.slots[(view, tp.partition)] = slot
        drained: bool | None = None  # input partitions fetched to their end (asked lazily)
        for (view, p), slot in list(self.slots.items()):
            if app.should_stop or app.rebalancing:
                return
            async with self._lock(view):
                if self.slots.get((view, p)) is not slot or app.rebalancing:
                    continue
                if TP(self.view_names[view], p) not in app.consumer.assignment():
                    # not ours any more (a revoke we did not hear of): its owner
                    # restores it from the last checkpoint; never write for it
                    log.warning("dropping %s/%d: partition not assigned", view, p)
                    del self.slots[(view, p)]
                    continue
                now = time.monotonic()
                idle = not slot.flushed and slot.has_input() and self._idle(slot, now)
                if idle and drained is None:
                    drained = await self._inputs_drained()
                if idle and drained:
                    alerts = slot.engine.flush()
                    slot.flushed = True
                    slot.dirty = True
                    log.info("idle flush %s/%d: %d alerts (quiet %.1f s, input %.1f s; "
                             "at offset %d)", view, p, len(alerts), now - slot.last_input,
                             now - self.last_ingest, slot.next_offset)
                    await self._emit(slot, alerts)
                    self._count(slot)
                    await self.checkpoint(slot)
                elif (slot.held or slot.dirty) and \
                        now - slot.last_checkpoint >= self.checkpoint_every():
                    await self.checkpoint(slot)
                if view == "user":
                    await self._mark_user(slot)
        now = time.monotonic()
        if now - self._gauges_at >= 5.0:
            self._gauges_at = now
            self.update_gauges()

    async def _inputs_drained(self) -> bool:
        """Whether every input partition assigned here is ingested to its end.

        A worker that starts on a backlog may see its ingest pause (partition
        assignment, table recovery) while records wait in the input topics;
        the view slots must not take that pause for the end of the input. The
        consumer's position (the next record ``getmany`` returns) is not
        enough: the batch it returned last may still be being ingested.
        """
        if self.inputs.holding:
            return False  # fetched, not yet ingested
        for tp in self.inputs.assignment():
            if tp.topic not in self.input_topics:
                continue
            lag = self._ingest_lag(tp)  # None: nothing ingested since the start
            if (lag is not None and lag > 0) or await self._fetched_to_end(tp) is False:
                return False
        return True

    def _idle(self, slot: Slot, now: float) -> bool:
        """Whether ``slot`` and everything upstream of it have been quiet for ``idle_flush``."""
        idle = self.settings.idle_flush
        if idle <= 0:
            return False
        if now - slot.last_input < (2 * idle if slot.view == "lockstep" else idle):
            return False  # lockstep is one stage further: give other workers' forwards time
        if self._ingesting or now - self.last_ingest < idle:
            return False  # input still flows into this worker
        seen = self.inputs.in_sight_since()
        if seen is None or now - seen < idle:
            return False  # a broker outage is no quiet input: watch it once it is back
        if slot.view == "lockstep":
            if now - self.last_forward < idle:
                return False
            if any(not x.flushed and x.has_input()
                   for (v, _), x in self.slots.items() if v == "user"):
                return False  # user slots will still forward their tails
        try:  # records of the slot's own partition still waiting to be fetched
            hw = self.app.consumer.highwater(
                TP(self.topics.views[slot.view].get_topic_name(), slot.partition))
        except Exception:  # noqa: BLE001 - unknown lag: rely on the timers alone
            hw = None
        return hw is None or hw <= slot.next_offset

    def update_gauges(self) -> None:
        """State size, model warm-up and watermark per view, from ``engine.metrics()``."""
        m = self.metrics
        per_view: dict[str, list[dict[str, Any]]] = {}
        for (view, _p), slot in self.slots.items():
            per_view.setdefault(view, []).append(slot.engine.metrics())
        models: dict[str, tuple[bool, int]] = {}
        for view, ms in per_view.items():
            keys = sum(x["state"].get(view, (0, 0))[0] for x in ms)
            items = sum(x["state"].get(view, (0, 0))[1] for x in ms)
            m.set_state(view, keys, items)
            wms = [x["watermark"] for x in ms if x["watermark"] != float("-inf")]
            if wms:
                m.watermark(view, min(wms))
            for x in ms:
                for name, (warm, n) in x["models"].items():
                    w0, n0 = models.get(name, (True, 0))
                    models[name] = (w0 and warm, n0 + n)
        for name, (warm, n) in models.items():
            m.set_model(name, warm, n)

    # ------------------------------------------------------------------ rebalance

    async def _on_shutdown(self, sender: Any = None, **_: Any) -> None:
        """Graceful stop (the fetcher has stopped): checkpoint every slot once
        its current batch is done and process nothing after that, so the
        offsets Faust commits as it stops are exactly what the checkpoints
        cover. A restart resumes where this worker stopped: nothing is
        processed again and no alert is sent twice. The batches the agents
        still had are left unacked, for the next owner of their partitions.
        """
        self._stopping = True
        # the input's offsets are committed for what went out; nothing more comes in
        await self.inputs.stop()
        crash = getattr(self.app, "_crash_reason", None)  # Faust keeps no public flag
        if crash is not None:  # not a graceful stop: resume from the last checkpoints
            log.warning("stopping after a crash (%r): no final checkpoints", crash)
            return
        assigned = set(self.app.consumer.assignment())
        done = []
        for (view, p), slot in list(self.slots.items()):
            async with self._lock(view):
                if self.slots.get((view, p)) is not slot or \
                        TP(self.view_names[view], p) not in assigned:
                    continue
                if slot.held or slot.dirty:
                    try:
                        await self.checkpoint(slot)
                    except Exception as exc:  # noqa: BLE001 - records after the last
                        # checkpoint are simply processed again after the restart
                        log.warning("could not checkpoint %s/%d on shutdown: %r", view, p, exc)
                        continue
                    done.append(f"{view}/{p}")
        if done:
            log.info("stopping: checkpointed %s", " ".join(sorted(done)))

    async def _on_revoked(self, sender: Any, revoked: set[TP], **_: Any) -> None:
        """Checkpoint and drop the slots of revoked view partitions."""
        dropped = []
        for tp in revoked:
            # Faust's group holds only view partitions: the input partitions'
            # progress is forgotten by _inputs_revoked (the ingest's consumer)
            self.metrics.forget_partition(tp.topic, tp.partition)
            view = self.view_of_topic.get(tp.topic)
            if view is None:
                continue
            self._checkpoint_cost.pop((view, tp.partition), None)
            if view == "user":
                self._marked.pop(_user_source(tp.partition), None)  # held anew if assigned again
            async with self._lock(view):
                slot = self.slots.pop((view, tp.partition), None)
                if slot is None:
                    continue
                dropped.append(f"{view}/{tp.partition}")
                if slot.dirty or slot.held:
                    try:
                        await self.checkpoint(slot)
                    except Exception as exc:  # noqa: BLE001 - redelivery covers a lost checkpoint
                        log.warning("could not checkpoint revoked %s/%d: %r",
                                    view, tp.partition, exc)
        try:
            await self.app.producer.flush()
        except Exception as exc:  # noqa: BLE001
            log.warning("producer flush on revoke failed: %r", exc)
        if dropped:
            log.info("partitions revoked: checkpointed and dropped %s", " ".join(sorted(dropped)))
