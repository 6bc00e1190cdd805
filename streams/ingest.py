"""The ingest: the input topics' consumer, and the stage that validates and
repartitions each batch of their records.

Faust hands every record of a subscribed topic through a consumer callback,
a stream queue, an event and an ack (about 85 CPU ms per 1,000 records,
measured in docs/performance.md): more than the whole engine costs. The input
topics therefore do not go through Faust at all. :class:`InputConsumer` is an
aiokafka consumer in its own consumer group (``<app_id>-ingest``) that the
worker's ingest task reads with ``getmany``; the view topics, the checkpoint
table and the rebalancing of view partitions stay Faust's. :class:`Ingest`
takes each batch: the core's fast path routes a valid record straight to
its view partitions, the validator names what is wrong with the rest (a
dead letter with its reason), and the events go out in bundles, one Kafka
record per view partition and input partition, behind the progress marks.

Delivery. The ingest is stateless and at-least-once: a batch's offsets are
committed only after the bundles made from it are delivered
(:meth:`streams.delivery.Outbox.confirm`; a refused record stops the worker),
at most every ``commit_every`` seconds, before partitions are revoked and when
the worker stops. A record ingested twice (after a crash) reaches the view
topics twice, where the engines' dedupe drops the copy.

Sight. While the broker is away (stopped, frozen, unreachable) the consumer
gets no fetch responses, so nothing says whether the input is quiet or just
out of sight: :meth:`InputConsumer.in_sight_since` tells the idle flush
(:mod:`streams.agents`) since when every assigned partition has been answered
without a gap, so an outage does not pass for the end of the input.

See docs/worker.md for the worker's topology.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from detectors import _core
from detectors.engine import route_keys
from detectors.parsing import BadRecord, check_record_time, parse_like, parse_payment
from detectors.partitioning import kafka_partition
from detectors.verdicts import parse_verdict
from streams.app import aiokafka_security
from streams.bundles import Bundles
from streams.delivery import Outbox
from streams.marks import Marks, input_source
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import dead_letter, encode_event, encode_verdict

__all__ = ["Ingest", "InputConsumer", "ingest_group", "SIGHT_GAP"]

#: The views whose partitions ``detectors._core.route`` gives, in its order.
ROUTED_VIEWS = _core.ROUTED_VIEWS

log = logging.getLogger("likeguard.worker")

#: seconds without a fetch response for an assigned input partition (answered
#: every ``fetch_max_wait`` while its consumer is connected) after which the
#: input counts as out of sight
SIGHT_GAP = 3.0


def ingest_group(settings: Settings) -> str:
    """The consumer group of the input topics (the view topics' is ``app_id``)."""
    return f"{settings.app_id}-ingest"


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: InputConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.owner._revoked({TP(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.owner.owned = set(assigned)
        log.info("input partitions assigned: %s",
                 " ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in assigned)) or "none")


class InputConsumer:
    """Batches of input records for the worker's ingest (see the module docs).

    Parameters
    ----------
    settings
        Validated settings (brokers, security, topics, batch size, fetch wait).
    ingest
        ``await ingest(records)`` for each batch: every record of it must be
        sent on (or dead-lettered) when it returns.
    flush
        ``await flush()``: everything sent so far is delivered; raises if the
        broker refused any of it (then nothing is committed).
    on_revoked
        ``await on_revoked(tps)`` after the offsets of revoked partitions are
        committed (the caller forgets their progress marks).
    """

    def __init__(self, settings: Settings, ingest: Callable[[list[ConsumerRecord]], Awaitable[None]],
                 flush: Callable[[], Awaitable[None]],
                 on_revoked: Callable[[set[TP]], Awaitable[None]],
                 commit_every: float = 1.0) -> None:
        self.settings = settings
        self._ingest = ingest
        self._flush = flush
        self._on_revoked = on_revoked
        self.commit_every = commit_every
        self.consumer: AIOKafkaConsumer | None = None
        #: next offset to commit per partition (ingested and sent, not yet committed)
        self._uncommitted: dict[TP, int] = {}
        self._committed_at = time.monotonic()
        self._batch = asyncio.Lock()  # one batch at a time; revocation waits for it
        self._stopped = False
        self._done = asyncio.Event()
        #: partitions with records taken from the consumer but not yet ingested
        self.holding: set[TP] = set()
        self._sight_from: float | None = None  # see in_sight_since
        self._sight_checked = float("-inf")
        #: partitions assigned and not revoked since (the consumer's ``assignment()``
        #: still names revoked partitions until the next assignment arrives)
        self.owned: set[TopicPartition] = set()

    # ------------------------------------------------------------------ state

    def assignment(self) -> set[TP]:
        if self.consumer is None:
            return set()
        return {TP(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def highwater(self, tp: TP) -> int | None:
        if self.consumer is None:
            return None
        return self.consumer.highwater(TopicPartition(tp.topic, tp.partition))

    def last_poll(self, tp: TP) -> int | None:
        """Wall-clock ms of the last fetch response that covered ``tp`` (when its
        high-water mark was last learnt); ``None`` before the first."""
        if self.consumer is None:
            return None
        try:
            return self.consumer.last_poll_timestamp(TopicPartition(tp.topic, tp.partition))
        except AssertionError:  # not assigned (any more)
            return None

    def in_sight_since(self) -> float | None:
        """Monotonic time since which every assigned partition has been answered
        by the broker without a gap (a fetch response, empty or not, within
        :data:`SIGHT_GAP` seconds); ``None`` while one is not (no broker, no
        assignment yet). Only since then can a quiet input be told from an
        outage. With no partition assigned there is nothing to watch (in
        sight). Checked by the consume loop each round and by the caller; a
        time between two checks longer than the gap (both blocked on the
        broker) counts as out of sight too."""
        now = time.monotonic()
        gap = max(SIGHT_GAP, 3 * self.settings.fetch_max_wait)
        answered = self.consumer is not None  # no partitions assigned: nothing to watch
        if answered:
            now_ms = time.time() * 1000
            for tp in self.assignment():
                polled = self.last_poll(tp)
                if polled is None or now_ms - polled > gap * 1000:
                    answered = False
                    break
        if not answered:
            self._sight_from = None
        elif self._sight_from is None or now - self._sight_checked > gap:
            self._sight_from = now
        self._sight_checked = now
        return self._sight_from

    async def position(self, tp: TP) -> int | None:
        if self.consumer is None:
            return None
        return await self.consumer.position(TopicPartition(tp.topic, tp.partition))

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Consume until :meth:`stop`; one batch at a time."""
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.app_id}-ingest",
            group_id=ingest_group(s),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=max(1, round(s.fetch_max_wait * 1000)),
            max_partition_fetch_bytes=1 << 20,
            session_timeout_ms=round(s.session_timeout * 1000),
            heartbeat_interval_ms=round(s.heartbeat_interval * 1000),
            **aiokafka_security(s),
        )
        topics = [s.payments_topic, s.likes_topic, s.verdicts_topic]
        self.consumer.subscribe(topics, listener=_Listener(self))
        await self.consumer.start()
        log.info("ingest: consuming %s as group %s", ", ".join(topics), ingest_group(s))
        try:
            while not self._stopped:
                self.in_sight_since()
                batch = await self.consumer.getmany(timeout_ms=200, max_records=s.batch_size)
                if batch and not self._stopped:
                    batch = await self._fill(batch)
                if self._stopped:
                    break
                if batch:
                    async with self._batch:
                        if self._stopped:
                            break
                        batch = self.owned_batch(batch)
                        records = [r for msgs in batch.values() for r in msgs]
                        try:
                            if records:
                                await self._ingest(records)
                        finally:
                            self.holding = set()
                        for tp, msgs in batch.items():
                            self._uncommitted[TP(tp.topic, tp.partition)] = msgs[-1].offset + 1
                if time.monotonic() - self._committed_at >= self.commit_every:
                    async with self._batch:
                        try:
                            await self._commit()
                        except CommitFailedError as exc:
                            # the group moved on without this member (its session
                            # expired while the broker was away): the partitions'
                            # next owner, this consumer after it rejoins or another,
                            # ingests again from the last commit; the engines drop
                            # the copies (at-least-once, as after a crash)
                            log.warning("ingest: offsets not committed, the group "
                                        "rebalanced: %s", type(exc).__name__)
        finally:
            consumer, self.consumer = self.consumer, None
            try:
                await consumer.stop()  # leaves the group: the partitions move at once
            finally:
                self._done.set()

    def owned_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]
                    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """``batch`` without the partitions revoked since it was fetched: they
        are the next owner's. Asking the consumer's ``assignment()`` is not
        enough: between the revocation and the next assignment it still names
        them, and an offset noted for them then, after :meth:`_revoked` had
        forgotten theirs, made the next commit raise (partition not assigned)
        and stop the worker (``test_kills.py``, a second worker joining)."""
        return {tp: msgs for tp, msgs in batch.items() if tp in self.owned}

    async def _fill(self, batch: dict[TopicPartition, list[ConsumerRecord]]
                    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Keep fetching into ``batch`` until it holds ``batch_size`` records or
        ``batch_within`` seconds have passed since its first.

        A live stream arrives a few records per fetch; every batch costs a
        bundle per view partition and input partition, and each bundle costs a
        Faust record, so small batches would cost more than the events in them
        (docs/performance.md, live latency)."""
        assert self.consumer is not None
        s = self.settings
        n = sum(len(msgs) for msgs in batch.values())
        deadline = time.monotonic() + s.batch_within
        self.holding = {TP(tp.topic, tp.partition) for tp in batch}
        while n < s.batch_size and not self._stopped:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await self.consumer.getmany(timeout_ms=max(1, int(left * 1000)),
                                               max_records=s.batch_size - n)
            for tp, msgs in more.items():
                batch.setdefault(tp, []).extend(msgs)
                self.holding.add(TP(tp.topic, tp.partition))
                n += len(msgs)
        return batch

    async def stop(self, commit: bool = True) -> None:
        """Finish the batch in progress, commit what was sent (unless ``commit``
        is false: a record was refused), stop consuming."""
        async with self._batch:
            self._stopped = True
            if self.consumer is None:
                return
            try:
                if commit:
                    await self._commit()
            except Exception as exc:  # noqa: BLE001 - ingested again after a restart
                log.warning("could not commit the ingest's offsets on stop: %r", exc)
        try:
            await asyncio.wait_for(self._done.wait(), 10.0)
        except TimeoutError:
            log.warning("the ingest's consumer did not stop within 10 s")

    async def _commit(self, only: set[TP] | None = None) -> None:
        """Deliver what was sent, then commit the offsets behind it."""
        self._committed_at = time.monotonic()
        offsets = {tp: o for tp, o in self._uncommitted.items() if only is None or tp in only}
        if not offsets or self.consumer is None:
            return
        await self._flush()
        await self.consumer.commit({TopicPartition(tp.topic, tp.partition): o
                                    for tp, o in offsets.items()})
        for tp in offsets:
            if self._uncommitted.get(tp) == offsets[tp]:
                del self._uncommitted[tp]

    async def _revoked(self, tps: set[TP]) -> None:
        async with self._batch:
            try:
                await self._commit(tps)
            except Exception as exc:  # noqa: BLE001 - the next owner ingests them again
                log.warning("could not commit revoked input partitions: %r", exc)
            for tp in tps:
                self._uncommitted.pop(tp, None)
                self.owned.discard(TopicPartition(tp.topic, tp.partition))
            await self._on_revoked(tps)


class Ingest:
    """The ingest stage: each batch of input records validated, then
    dead-lettered with its reason or repartitioned to the view topics as
    :mod:`bundles <streams.bundles>` behind its :mod:`progress marks
    <streams.marks>`; verdicts go to every view partition.

    Parameters
    ----------
    settings
        Validated settings (topics, partitions, the engine's time bounds).
    view_names
        The view topics' names, by view.
    inputs
        The consumer the batches come from (its high-water marks give the lag).
    out
        Where every record goes (:class:`streams.delivery.Outbox`).
    marks
        The progress marks of the input partitions.
    metrics
        Where counters go.
    """

    def __init__(self, settings: Settings, view_names: dict[str, str], inputs: InputConsumer,
                 out: Outbox, marks: Marks, metrics: Metrics) -> None:
        self.settings = settings
        self.cfg = settings.engine
        self.view_names = view_names
        self.n = settings.partitions
        self.inputs = inputs
        self.out = out
        self.marks = marks
        self.metrics = metrics
        #: batches in progress, and the monotonic time the last one ended
        self.busy = 0
        self.last = time.monotonic()

    async def batch(self, records: list[ConsumerRecord]) -> None:
        """Parse input records; dead-letter the bad, repartition the good.

        The input consumer commits a batch's offsets only once this returned
        and the producer delivered what it sent (:class:`InputConsumer`): a
        batch cut short (an error, or the worker stopping in the middle of
        it) is ingested again after a restart (the view engines drop the
        copies).
        """
        self.busy += 1
        try:
            await self._batch(records)
        finally:
            self.busy -= 1
            self.last = time.monotonic()

    async def _batch(self, records: list[ConsumerRecord]) -> None:
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
        marks = self.marks
        await marks.hold_new_inputs()
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
                src = sources[tp] = input_source(tp).encode()
            full = False
            for name, p in dests:
                full = bundles.add(name, p, src, data) or full
            if full:
                await marks.hold_passed(top, last)
                await bundles.send_full()
        await marks.hold_passed(top, last)
        await bundles.send_all()
        for topic, count in consumed.items():
            m.consumed(topic, count)
        self.metrics.set_lags(last, self.inputs.highwater)
        marks.note_ingested(last, newest)
        await marks.send()

    async def _dead_letter(self, msg: ConsumerRecord, exc: BadRecord) -> None:
        """Count a bad input record and send it to the dead-letter topic with its reason."""
        self.metrics.rejected(msg.topic, exc.reason)
        letter = dead_letter(msg.value, msg.topic, msg.partition, msg.offset, exc.reason,
                             exc.detail)
        await self.out.send(self.settings.deadletter_topic, msg.key, letter.dumps())

    async def _verdict(self, msg: ConsumerRecord) -> None:
        """A moderator's verdict: dead-letter it if bad, else send it to every
        partition of every view topic (which engine raised the alert is not
        known here; each engine keeps only the detectors it hosts)."""
        try:
            v = parse_verdict(msg.value)
        except BadRecord as exc:
            await self._dead_letter(msg, exc)
            return
        self.metrics.verdict(v.verdict)
        data = encode_verdict(v)
        send = self.out.send
        for name in self.view_names.values():
            for p in range(self.n):
                await send(name, None, data, p)
