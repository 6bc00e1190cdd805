"""The worker's pipeline: its wiring, the view agents, the timer and rebalancing.

:class:`Pipeline` wires a Faust app: the ingest task (:mod:`streams.ingest`:
the input topics read in batches, each validated, dead-lettered or
repartitioned as :mod:`bundles <streams.bundles>` to the view topics, with
:mod:`progress marks <streams.marks>`), one thin agent per view topic
(decode a batch, run it through the partition's engine, send its alerts and
forwards through the :mod:`outbox <streams.delivery>`, count), a one-second
timer (idle flushes, due checkpoints, gauges) and the rebalance and shutdown
hooks that checkpoint (:mod:`streams.checkpoints`). Why each piece is as it
is: ``docs/worker.md`` (topology, checkpoints, acknowledgements,
rebalancing) and ``docs/event-time.md`` (marks, idle flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
import orjson
from aiokafka.structs import ConsumerRecord
from faust.exceptions import ProducerSendError
from faust.types import TP, EventT, Message, StreamT

from detectors import _core
from detectors.alerts import Alert
from detectors.engine import ALL_VIEWS
from detectors.events import format_time
from detectors.partitioning import kafka_partition
from detectors.verdicts import Verdict
from streams.bundles import Bundles
from streams.checkpoints import Checkpoints, Slot, utc_now
from streams.delivery import DeliveryFailed, Outbox
from streams.ingest import Ingest, InputConsumer
from streams.marks import Marks
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import (
    Mark,
    Topics,
    ViewEventError,
    decode_record,
    encode_event,
    event_source,
    make_topics,
)

__all__ = ["Pipeline", "hold_acks", "manual_acks"]

log = logging.getLogger("likeguard.worker")


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
#: seconds between a slot's log lines about late events
LATE_LOG_EVERY = 10.0
#: seconds a slot waits for the records it sought back to before seeking again
RESEEK_AFTER = 2.0

_T = TypeVar("_T")


@dataclass
class _EngineRun:
    """What a batch of view records did in a slot's engine (:meth:`Pipeline._run_engine`)."""

    events: int = 0
    alerts: list[Alert] = field(default_factory=list)
    #: the watermark moved or a verdict came: the slot has news for its checkpoint
    moved: bool = False
    dup_payments: int = 0
    dup_likes: int = 0
    #: ``(topic, reason)`` of each record refused, for the metrics
    rejected: list[tuple[str, str]] = field(default_factory=list)


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
    """

    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.cfg = settings.engine
        self.topics: Topics = make_topics(app, settings)
        self.n = settings.partitions
        self.input_topics = frozenset((settings.payments_topic, settings.likes_topic))
        self.slots: dict[tuple[str, int], Slot] = {}
        #: view partition -> the consumer generation in which it was revoked
        self.revoked: dict[TP, int] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        #: where the slots' engines run their batches: a thread of each view's own
        #: (its batches hold its lock, so they never overlap); one thread keeps
        #: a view's allocations and frees in one of the allocator's
        #: thread-local heaps, which its sweeps give back (``release_memory``)
        self.engine_threads = {v: ThreadPoolExecutor(1, f"likeguard-{v}") for v in ALL_VIEWS}
        self.streams: dict[str, StreamT] = {}
        self.view_names = {v: t.get_topic_name() for v, t in self.topics.views.items()}
        self.view_of_topic = {name: v for v, name in self.view_names.items()}
        self._gauges_at = 0.0
        #: monotonic time the engines last forwarded likes
        self.last_forward = time.monotonic()
        #: the worker is stopping: every slot has had its last checkpoint
        self._stopping = False
        #: the record the broker refused, which stops the worker (exit 1)
        self.refused: DeliveryFailed | None = None
        #: what stopped the ingest unexpectedly, which stops the worker (exit 1)
        self.failed: BaseException | None = None
        #: stops the worker as SIGTERM does (the tests of the pipeline replace it)
        self._stop_worker: Callable[[], None] = lambda: signal.raise_signal(signal.SIGTERM)
        #: every record the worker produces, kept until delivered (see streams.delivery)
        self.out = Outbox(self._send, settings.deadletter_topic, metrics.rejected)
        #: the slots' checkpoints (signed with the key read once: one key per run)
        self.ckpt = Checkpoints(self.topics.checkpoints, settings.checkpoint_changelog,
                                settings.checkpoint_secret(), self.cfg, self.n, self.out,
                                self._flush_producer)
        #: the input topics' consumer (not Faust's: see streams.ingest)
        self.inputs = InputConsumer(settings, self._ingest_batch, self.out.confirm,
                                    self._inputs_revoked)
        #: the progress marks, and how far the input has been ingested
        self.marks = Marks(settings, self.cfg, self.view_names, self.inputs, self.out, metrics,
                           self._view_highwater)
        #: the ingest stage: validate, dead-letter, repartition
        self.ingest = Ingest(settings, self.view_names, self.inputs, self.out, self.marks,
                             metrics)
        self._register()

    # ------------------------------------------------------------------ wiring

    def _register(self) -> None:
        app, s = self.app, self.settings
        app.task(self._run_inputs)
        for view in ALL_VIEWS:
            app.agent(self.topics.views[view], name=f"view-{view}")(self._make_view_agent(view))
        app.timer(interval=1.0, name="likeguard-tick")(self._timer)
        # Faust's stubs want a ``signal`` keyword these receivers take in ``**_``
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]  # see above
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]  # see above
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
            # stopped as on SIGTERM (see _refused for why not app.crash): the
            # views are whole, so their final checkpoints are written, and the
            # ingest committed only batches it had delivered
            self.failed = exc
            log.error("ingest stopped: %r; stopping the worker (exit 1)", exc)
            self._stop_worker()

    async def _refused(self, exc: DeliveryFailed) -> None:
        """The broker refused a record for good: stop (exit 1), committing nothing after it.

        The worker stops as on SIGTERM, without the final checkpoints, rather
        than through ``app.crash``: a crash marks every Faust service crashed
        at once, and the view consumer's thread could end before the consumer's
        last commit, which then waited for it forever (the worker never exited).
        """
        if self.refused is not None:
            return
        self.refused = exc
        log.error("stopping: %s; nothing behind it is committed, a restart processes it "
                  "again (docs/reliability.md#producer-failures)", exc)
        self._stop_worker()

    async def _ingest_batch(self, records: list[ConsumerRecord]) -> None:
        await self.ingest.batch(records)

    def _send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
              timestamp: float | None, headers: Any) -> Awaitable[Any]:
        return self.app.producer.send(topic, key, value, partition, timestamp, headers)

    async def _flush_producer(self) -> None:
        await self.app.producer.flush()

    async def send_marks(self, idle: bool = False) -> None:
        """The progress marks due (:meth:`Marks.send`); ``idle`` from the timer."""
        idle_flush = self.settings.idle_flush
        ended = (idle_flush > 0 and not self.ingest.busy
                 and time.monotonic() - self.ingest.last >= idle_flush)
        await self.marks.send(idle, ended)

    def _view_highwater(self, tp: TP) -> Any:
        return self.app.consumer.highwater(tp)

    async def _inputs_revoked(self, revoked: set[TP]) -> None:
        """Input partitions moved to another worker: forget their progress."""
        for tp in revoked:
            self.marks.forget(tp)
            self.metrics.forget_partition(tp.topic, tp.partition)

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

    def _owns(self, tp: TP, generation: int, assigned: set[TP]) -> bool:
        """Whether ``tp`` is this worker's in ``generation``: assigned, and its
        revocation not under way (a revoked partition stays in the assignment
        until the next one arrives)."""
        return tp in assigned and self.revoked.get(tp) != generation

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
            if msg.generation_id != generation or not self._owns(msg.tp, generation, assigned):
                # Left over from before a rebalance, or of a partition being
                # revoked (still in the assignment until the next one arrives;
                # a slot made for it now would outlive the revocation): never
                # ack it, it comes again to whoever owns the partition next.
                continue
            by_part.setdefault(msg.partition, []).append(event)
        if view == "user":
            await self.marks.hold_new_user_slots(assigned)
        processed = 0
        last: dict[TP, int] = {}
        for p, evs in by_part.items():
            last[evs[0].message.tp] = evs[-1].message.offset
            slot = self._slot(view, p, evs[0].message.offset)
            processed += await self._process(slot, evs)
        self.metrics.observe_batch(processed, time.perf_counter() - t0)
        self.metrics.view_processed(view, processed)
        # a partition revoked while its batch ran has had its lag series
        # dropped (_on_revoked); set again, it would stay behind for good
        generation, assigned = self._ownership()
        self.metrics.set_lags({tp: o for tp, o in last.items()
                               if self._owns(tp, generation, assigned)},
                              self.app.consumer.highwater)

    async def _process(self, slot: Slot, evs: list[EventT]) -> int:
        ahead: TP | None = None  # a record skipped past the slot's next offset
        todo: list[Message] = []
        for event in evs:
            msg = event.message
            off = msg.offset
            if off < slot.ckpt_offset:
                msg.decref()  # in the restored checkpoint already; acked normally
                continue
            if off > slot.next_offset and slot.positioned and await self._gap(slot, msg.tp, off):
                ahead = msg.tp
                continue  # out of order: left unacked, read again in its place
            slot.held.append(event)  # released by the checkpoint that covers it
            if off < slot.next_offset:
                continue  # in memory already (redelivered), not yet checkpointed
            slot.next_offset = off + 1
            slot.positioned = True
            todo.append(msg)
        # on a thread: the core lets go of the interpreter while it computes, so
        # this loop meanwhile fetches, ingests and runs the other views' batches
        run = (await self._off_loop(slot.view, self._run_engine, slot, todo) if todo
               else _EngineRun())
        for topic, reason in run.rejected:
            self.metrics.rejected(topic, reason)
        if slot.view == "merchant":  # every input event passes there exactly once
            self.metrics.duplicate(self.settings.payments_topic, run.dup_payments)
            self.metrics.duplicate(self.settings.likes_topic, run.dup_likes)
        if run.moved:
            slot.dirty = True
        if run.events:
            slot.last_input = time.monotonic()
            slot.flushed = False
            slot.dirty = True
        if ahead is not None:
            await self._seek_back(slot, ahead)
        await self._emit(slot, run.alerts)
        self._count(slot)
        if slot.held and time.monotonic() - slot.last_checkpoint >= self.checkpoint_every():
            await self.checkpoint(slot)
        return run.events

    @staticmethod
    def _run_engine(slot: Slot, msgs: list[Message]) -> _EngineRun:
        """The view records ``msgs`` through the slot's engine (no metric, no await:
        it runs off the event loop, see :meth:`_off_loop`)."""
        eng = slot.engine
        run = _EngineRun()
        count_dupes = slot.view == "merchant"
        for msg in msgs:
            src = event_source(msg.headers)
            # the core decodes and takes the record whole (no Python object
            # per event); what it refuses, Python's decoder explains
            done = None if msg.value is None else eng.process_record(msg.value, src)
            if done is not None:
                got, k, moved, dup_p, dup_l = done
                run.alerts += got
                run.events += k
                run.moved |= moved
                run.dup_payments += dup_p
                run.dup_likes += dup_l
                continue
            try:
                items = decode_record(msg.value)
            except ViewEventError as exc:
                log.error("%s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, exc)
                run.rejected.append((msg.topic, "bad_view_event"))
                continue
            for ev in items:
                if isinstance(ev, Verdict):
                    eng.verdict(ev)
                    run.moved = True
                    continue
                if isinstance(ev, Mark):
                    wm = eng.watermark
                    run.alerts += eng.progress(src, ev.ts, ev.newest, ev.behind)
                    run.moved |= eng.watermark != wm
                    continue
                run.events += 1
                d0 = eng.duplicates
                run.alerts += eng.process(ev, src)
                if count_dupes and eng.duplicates != d0:
                    if ev.kind == "payment":
                        run.dup_payments += 1
                    else:
                        run.dup_likes += 1
        return run

    async def _off_loop(self, view: str, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on ``view``'s engine thread. Cancelled meanwhile (the
        worker stopping), it still waits for the call to end before it raises:
        the view's lock must not pass on (to a checkpoint, a revocation) while
        the call is changing a slot's engine."""
        fut = asyncio.get_running_loop().run_in_executor(self.engine_threads[view], fn, *args)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            while not fut.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([fut])
            raise

    async def _gap(self, slot: Slot, tp: TP, offset: int) -> bool:
        """Whether to skip record ``offset``, past the slot's next offset.

        View offsets are contiguous, so the records in between have not come
        yet, or were committed without being in the slot's checkpoint (a
        partition that never had one starts at offset 0, whatever the group
        committed).
        After a rebalance Faust may also hand over records fetched before it
        sought back to the committed offsets, tagged with the new generation
        (it reads the generation once the fetch returns). Taken, they would
        move the slot past records that then come again below its next offset
        and count as seen: lost. So they are skipped (left unacked) and the
        batch ends with a seek back to the slot's next offset
        (:meth:`_seek_back`). Only records the broker no longer has (deleted
        by retention) are passed over, with an error: waiting for them would
        stall the partition for good.
        """
        if slot.seeking == slot.next_offset:
            return True  # sought back already: the rest of the early fetch
        consumer = self.app.consumer
        try:
            earliest = (await asyncio.wait_for(consumer.earliest_offsets(tp), 10.0)).get(tp)
        except Exception:  # noqa: BLE001 - unknown: assume the records are still there
            earliest = None
        name = f"{slot.view}/{slot.partition}"
        if earliest is not None and earliest > slot.next_offset:
            log.error("%s: records %d..%d were deleted before they were processed; "
                      "continuing at %d", name, slot.next_offset, earliest - 1, offset)
            self.metrics.skipped(tp.topic, "deleted", earliest - slot.next_offset)
            return False
        log.warning("%s: offset %d came before %d (committed past the slot's checkpoint, or "
                    "fetched before a rebalance): skipped, reading again from %d",
                    name, offset, slot.next_offset, slot.next_offset)
        self.metrics.skipped(tp.topic, "out_of_order")
        slot.seeking = slot.next_offset
        return True

    async def _seek_back(self, slot: Slot, tp: TP) -> None:
        """Send the consumer back to the slot's next offset, after a batch that
        had records past it, and again while they do not come.

        Once is not enough: Faust's fetcher drops a record below the last
        offset it handed over, and the rest of an early fetch it hands over
        after the seek (it may be waiting on a full stream buffer in the
        middle of one) moves that offset past the seek again, so the records
        read again would be dropped and the slot wait for them for good. The
        seek that follows the last early record holds; the timer seeks again
        when the partition has gone quiet (:meth:`tick`).
        """
        slot.sought_at = time.monotonic()
        # on the consumer's own thread (seek_wait): aiokafka's seek drops the
        # partition's fetched records, which its fetch loop may be reading
        await self.app.consumer.seek_wait({tp: slot.next_offset})

    async def _emit(self, slot: Slot, alerts: Iterable[Alert]) -> None:
        """Send alerts and the engine's forwarded likes."""
        now = time.time()
        emitted = utc_now(now)
        m = self.metrics
        alerts_topic = self.settings.alerts_topic
        for a in alerts:
            d = a.to_dict(emitted)
            await self.out.send_alert(alerts_topic, a.key.encode(), orjson.dumps(d))
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
            await self.marks.mark_user(slot)

    def _count(self, slot: Slot) -> None:
        """Export counter increments of a slot's engine since the last call."""
        eng, seen, m = slot.engine, slot.seen, self.metrics
        stats = eng.stats
        late = False
        for stat in _EXPORTED_STATS:
            n = stats[stat]
            if n != seen.get(stat, 0):
                getattr(m, stat)(slot.view, n - seen.get(stat, 0))
                seen[stat] = n
                late = True
        if late:
            self._log_late(slot)
        for direction, count in eng.joins.items():
            k = "join:" + direction
            if count != seen.get(k, 0):
                m.join_matches.labels(direction=direction).inc(count - seen.get(k, 0))
                seen[k] = count
        copies = eng.core.compactions  # from 0 in a restored engine, as its `seen`
        if copies != seen.get("compactions", 0):
            m.state_compacted(slot.view, copies - seen.get("compactions", 0))
            seen["compactions"] = copies
        book = eng.verdicts.counts
        for effect in ("matched", "held"):
            k = "verdict:" + effect
            count = book[effect]
            if count != seen.get(k, 0):
                m.verdict_effect(slot.view, effect, count - seen.get(k, 0))
                seen[k] = count

    def _log_late(self, slot: Slot) -> None:
        """One line, at most every :data:`LATE_LOG_EVERY` seconds per slot, when
        events came behind its watermark: the metric says how many, the line
        says where and how far the watermark had got."""
        now = time.monotonic()
        if now - slot.late_logged_at < LATE_LOG_EVERY:
            return
        slot.late_logged_at = now
        stats, wm = slot.engine.stats, slot.engine.watermark
        log.warning("%s/%d: events behind the watermark (%s): %d dropped as late, %d taken "
                    "out of order so far (at view offset %d)", slot.view, slot.partition,
                    format_time(wm) if wm != float("-inf") else "none", stats["late"],
                    stats["late_admitted"], slot.next_offset)

    # ------------------------------------------------------------------ slots

    def _slot(self, view: str, p: int, offset: int) -> Slot:
        """The slot of view partition ``p``, restored, or new and empty when
        it has no checkpoint (``offset``, the first record this worker got of
        it, is only logged: the slot starts at offset 0; see
        :meth:`Checkpoints.new_slot`)."""
        slot = self.slots.get((view, p))
        if slot is None:
            slot = self._restore(view, p)
            if slot is None:
                slot = self.ckpt.new_slot(view, p)
                log.info("%s/%d has no checkpoint: starts empty at offset 0 (first record "
                         "here: %d)", view, p, offset)
            self.slots[(view, p)] = slot
        return slot

    def _restore(self, view: str, p: int) -> Slot | None:
        """The slot restored from its checkpoint (:meth:`Checkpoints.restore`),
        its engine's counters taken as exported already."""
        slot = self.ckpt.restore(view, p)
        if slot is not None:
            stats = slot.engine.stats
            for stat in _EXPORTED_STATS:
                slot.seen[stat] = stats[stat]
            for direction, count in slot.engine.joins.items():
                slot.seen["join:" + direction] = count
        return slot

    def checkpoint_every(self) -> float:
        """Seconds between checkpoints of a busy slot (:meth:`Checkpoints.every`)."""
        return self.ckpt.every(self.settings.checkpoint_interval)

    async def checkpoint(self, slot: Slot) -> None:
        """Write the slot's checkpoint, then release the acks it covers."""
        held = await self.ckpt.write(slot)
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
        """Once a second: idle flushes, due checkpoints, unanswered seeks, restores, gauges."""
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
            if self.ckpt.has(view, tp.partition):
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
                if slot.seeking == slot.next_offset and now - slot.sought_at >= RESEEK_AFTER:
                    log.info("%s/%d: offset %d has not come again: seeking back to it again",
                             view, p, slot.next_offset)
                    await self._seek_back(slot, TP(self.view_names[view], p))
                idle = not slot.flushed and slot.has_input() and self._idle(slot, now)
                if idle and drained is None:
                    drained = await self._inputs_drained()
                if idle and drained:
                    alerts = slot.engine.flush()
                    slot.flushed = True
                    slot.dirty = True
                    log.info("idle flush %s/%d: %d alerts (quiet %.1f s, input %.1f s; "
                             "at offset %d)", view, p, len(alerts), now - slot.last_input,
                             now - self.ingest.last, slot.next_offset)
                    await self._emit(slot, alerts)
                    self._count(slot)
                    await self.checkpoint(slot)
                elif (slot.held or slot.dirty) and \
                        now - slot.last_checkpoint >= self.checkpoint_every():
                    await self.checkpoint(slot)
                if view == "user":
                    await self.marks.mark_user(slot)
        now = time.monotonic()
        if now - self._gauges_at >= 5.0:
            self._gauges_at = now
            await self.update_gauges()

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
            lag = self.marks.ingest_lag(tp)  # None: nothing ingested since the start
            if (lag is not None and lag > 0) or await self.marks.fetched_to_end(tp) is False:
                return False
        return True

    def _idle(self, slot: Slot, now: float) -> bool:
        """Whether ``slot`` and everything upstream of it have been quiet for ``idle_flush``."""
        idle = self.settings.idle_flush
        if idle <= 0:
            return False
        if now - slot.last_input < (2 * idle if slot.view == "lockstep" else idle):
            return False  # lockstep is one stage further: give other workers' forwards time
        if self.ingest.busy or now - self.ingest.last < idle:
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

    async def update_gauges(self) -> None:
        """State size, model warm-up and watermark per view, from ``engine.metrics()``
        (under each view's lock: its batches run on another thread)."""
        m = self.metrics
        per_view: dict[str, list[dict[str, Any]]] = {}
        for view in sorted({v for v, _ in self.slots}):
            async with self._lock(view):
                per_view[view] = [slot.engine.metrics()
                                  for (v, _), slot in list(self.slots.items()) if v == view]
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
        m.set_interned(_core.interned_ids())

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
        await self.inputs.stop(commit=self.refused is None)
        crash = getattr(self.app, "_crash_reason", None)  # Faust keeps no public flag
        if crash is not None:  # not a graceful stop: resume from the last checkpoints
            log.warning("stopping after a crash (%r): no final checkpoints", crash)
            return
        if self.refused is not None:  # what the last checkpoints cover was delivered
            log.warning("stopping after a refused record: no final checkpoints")
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
        generation = self.app.consumer_generation_id
        for tp in revoked:
            self.revoked[tp] = generation
            # Faust's group holds only view partitions: the input partitions'
            # progress is forgotten by _inputs_revoked (the ingest's consumer)
            self.metrics.forget_partition(tp.topic, tp.partition)
            view = self.view_of_topic.get(tp.topic)
            if view is None:
                continue
            self.ckpt.cost.pop((view, tp.partition), None)
            if view == "user":
                self.marks.forget_user(tp.partition)
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
