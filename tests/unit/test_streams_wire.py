"""Unit tests of the worker's wire-level pieces (no broker): view-event bundles,
the consumer's fetch wait, and pipeline steps run against a stand-in consumer
and producer: progress marks of quiet input partitions and of user slots, the
idle flush's upstream check, and acks of batches cut short.

The broker-level behaviour (bundles through real view topics, restarts and
rebalances on top of them) is covered by ``tests/integration/test_worker.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from faust.types import TP
from faust.types.tuples import Message

from detectors.engine import Engine
from detectors.events import CoLike, Like, Payment
from detectors.verdicts import Verdict
from streams.agents import RESEEK_AFTER, Pipeline
from streams.app import LikeguardApp, create_app
from streams.bundles import Bundles
from streams.checkpoints import Slot
from streams.delivery import DeliveryFailed
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import (
    BUNDLE_BYTES,
    SOURCE_HEADER,
    Mark,
    ViewEventError,
    decode_record,
    encode_bundle,
    encode_event,
    encode_mark,
)
from tests.worker_harness import CHECKPOINT_KEY


def _like(i: int, target: str = "post:1") -> Like:
    return Like(f"l{i}", f"u{i}", target, "m1", 1000.0 + i, ip="10.0.0.1", device=f"d{i}",
                user_created=5.0)


def _run_bundles(adds: list[tuple[str, int, bytes, bytes]]) -> list[tuple]:
    """Feed ``adds`` through :class:`Bundles` as the ingest does; return the sends."""
    sent: list[tuple] = []

    async def send(topic, key, value, partition, headers):  # Outbox.send's signature
        sent.append((topic, key, value, partition, headers))

    async def go() -> int:
        b = Bundles(send)
        for topic, partition, source, data in adds:
            if b.add(topic, partition, source, data):
                await b.send_full()
        await b.send_all()
        return b.records

    records = asyncio.run(go())
    assert records == len(sent)
    return sent


def test_bundles_group_by_destination_and_keep_each_source_in_order():
    likes = [_like(i) for i in range(30)]
    pay = Payment("t1", "m1", "u1", 1, 1000.5)
    adds = []
    for i, ev in enumerate(likes):
        adds.append(("v.merchant", i % 3, b"likes/0" if i % 2 else b"likes/1", encode_event(ev)))
    adds.append(("v.ip", 2, b"payments.success/4", encode_event(pay)))
    sent = _run_bundles(adds)
    # one record per (topic, partition, source): 3 partitions x 2 sources + the payment
    assert len(sent) == 7
    seen = []
    for topic, key, value, partition, headers in sent:
        assert key is None
        (name, src), = headers
        assert name == SOURCE_HEADER
        events = decode_record(value)
        if topic == "v.ip":
            assert (partition, src, events) == (2, b"payments.success/4", [pay])
            continue
        expected = [ev for i, ev in enumerate(likes)
                    if i % 3 == partition and (b"likes/0" if i % 2 else b"likes/1") == src]
        assert events == expected  # the destination's events, in the order added
        seen += events
    assert sorted(seen, key=lambda e: e.ts) == likes  # nothing lost or doubled


def test_a_full_bundle_leaves_at_once_and_order_is_kept_across_bundles():
    likes = [_like(i, target="post:" + "x" * 400) for i in range(2000)]
    datas = [encode_event(ev) for ev in likes]
    sent = _run_bundles([("v.user", 0, b"likes/0", d) for d in datas])
    assert len(sent) > 1  # ~1 MB of events does not fit one bundle
    assert all(len(value) <= BUNDLE_BYTES for _t, _k, value, *_ in sent)
    got = [ev for _t, _k, value, *_ in sent for ev in decode_record(value)]
    assert got == likes


def test_marks_carry_behind_and_an_unknown_time():
    [held] = decode_record(encode_mark(None, behind=True))
    assert (held.ts, held.newest, held.behind) == (None, None, True)
    [mark] = decode_record(encode_mark(12.5, 14.0, False))
    assert (mark.ts, mark.newest, mark.behind) == (12.5, 14.0, False)
    [old] = decode_record(b'["m", 3.0]')  # as earlier versions wrote them
    assert (old.ts, old.newest, old.behind) == (3.0, None, None)


def test_records_decode_single_events_and_marks_as_before():
    like = _like(1)
    assert decode_record(encode_event(like)) == [like]
    [mark] = decode_record(encode_mark(7.0, 9.0))
    assert (mark.ts, mark.newest) == (7.0, 9.0)
    assert decode_record(encode_bundle([encode_mark(1.0), encode_event(like)]))[1] == like


def test_enriched_likes_carry_merchants_and_older_records_still_decode():
    co = CoLike("l2", "u2", "post:2", 5.0, (("post:1", 4.0, "m1"), ("post:0", 3.0, None)), "m2")
    assert decode_record(encode_event(co)) == [co]
    # written before the merchants were added: none known
    [old] = decode_record(b'["c","l3","u3","post:3",6.0,[["post:1",4.5]]]')
    assert (old.prev, old.mchid) == ((("post:1", 4.5, None),), None)


@pytest.mark.parametrize("value", [
    b"", b"not json", b"[]", b'["b", ["l", "x"]]', b'["b", ["m", 1.0], ["q", 1]]', b'{"b": 1}',
])
def test_a_damaged_record_is_rejected_whole(value):
    with pytest.raises(ViewEventError):
        decode_record(value)


def test_the_consumer_fetch_wait_follows_the_setting(tmp_path):
    async def go() -> tuple[type, int]:
        settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=str(tmp_path),
                            fetch_max_wait=0.25, checkpoint_key=CHECKPOINT_KEY).validate()
        app = create_app(settings)
        assert isinstance(app, LikeguardApp)
        consumer = cast(Any, app.consumer)._thread._create_worker_consumer(app.transport)
        try:
            return type(app.consumer), consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    consumer_type, wait_ms = asyncio.run(go())
    assert wait_ms == 250  # Faust alone would build it with 1,500
    assert consumer_type.__module__ == "streams.app"


def test_kafka_client_repeats_are_held_back(caplog):
    """While the broker is away aiokafka logs every failed attempt (about 3,000
    lines a second): the worker lets each kind of line through once per
    interval, saying how many it held back; other kinds pass on their own."""
    import logging

    from streams.worker import KAFKA_CLIENT_LOGGERS, quiet_repeats, remove_repeat_filters

    now = [0.0]
    repeats = quiet_repeats(every=10.0)
    repeats.clock = lambda: now[0]
    client = logging.getLogger(KAFKA_CLIENT_LOGGERS[0])
    try:
        with caplog.at_level(logging.ERROR, logger=client.name):
            for i in range(3000):
                now[0] = i / 1000  # three seconds of retries
                client.error("Unable connect to node with id %s: %s", 1, "refused")
                if i % 1000 == 0:
                    client.error("Unable to update metadata from %s", [1])
            now[0] = 12.0
            client.error("Unable connect to node with id %s: %s", 1, "refused")
        lines = [r.getMessage() for r in caplog.records if r.name == client.name]
        assert lines == [
            "Unable connect to node with id 1: refused",
            "Unable to update metadata from [1]",
            "Unable connect to node with id 1: refused (2999 more like this held back)",
        ]
        assert quiet_repeats() is not repeats  # installed again: replaced, not stacked
        assert sum(isinstance(f, type(repeats)) for f in client.filters) == 1
    finally:
        remove_repeat_filters()


def test_kafka_client_progress_lines_all_pass(caplog):
    """Info lines (a group joined, partitions assigned) are never held back:
    operators and the broker tests read them."""
    import logging

    from streams.worker import KAFKA_CLIENT_LOGGERS, quiet_repeats, remove_repeat_filters

    repeats = quiet_repeats(every=10.0)
    repeats.clock = lambda: 0.0
    coordinator = logging.getLogger(KAFKA_CLIENT_LOGGERS[2])
    try:
        with caplog.at_level(logging.INFO, logger=coordinator.name):
            for generation in (1, 2, 3):
                coordinator.info("Joined group %r (generation %s)", "g", generation)
        assert [r.getMessage() for r in caplog.records if r.name == coordinator.name] == [
            f"Joined group 'g' (generation {g})" for g in (1, 2, 3)]
    finally:
        remove_repeat_filters()


def _pipeline(tmp_path, assigned: Callable[[Settings], set[TP]], sent: list[tuple]) -> Any:
    """A :class:`Pipeline` whose app is a stand-in (typed ``Any``: the tests
    patch its methods and pass stand-ins for Faust's objects): a consumer (generation 1) with the
    partitions ``assigned`` read to offset 5, and a producer that appends what
    it is given to ``sent``. Call it inside a running event loop."""
    async def send(topic, key, value, partition, timestamp, headers):
        sent.append((topic, partition, value, dict(headers)[SOURCE_HEADER].decode()))

    async def position(tp):
        return 5

    settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=str(tmp_path),
                        idle_flush=10.0, progress_interval=1.0,
                        checkpoint_key=CHECKPOINT_KEY).validate()
    pipe: Any = Pipeline(create_app(settings), settings, Metrics(process_metrics=False))
    tps = assigned(settings)
    pipe.app = SimpleNamespace(
        consumer=SimpleNamespace(assignment=lambda: set(tps), highwater=lambda tp: 5,
                                 position=position),
        consumer_generation_id=1, producer=SimpleNamespace(send=send))
    async def stop(commit: bool = True) -> None:
        pipe.input_commits.append(commit)

    pipe.input_commits = []  # the ingest's commit on stop: done or skipped
    pipe.inputs = pipe.marks.inputs = pipe.ingest.inputs = SimpleNamespace(
        assignment=lambda: set(tps), highwater=lambda tp: 5, position=position, holding=set(),
        stop=stop)
    return pipe


def _quiet_input_marks(tmp_path, quiet: float) -> dict[str, list[float | None]]:
    """Idle-timer marks of two input partitions ingested to their end and quiet
    for ``quiet`` seconds: likes/0 at event time 1,000, payments/0 at 800."""
    sent: list[tuple] = []

    async def go() -> None:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.likes_topic, 0), TP(s.payments_topic, 0)},
                         sent)
        settings = pipe.settings
        likes, pays = TP(settings.likes_topic, 0), TP(settings.payments_topic, 0)
        then = time.monotonic() - quiet
        pipe.ingest.last = then
        for tp, ts in ((likes, 1000.0), (pays, 800.0)):
            pipe.marks.input_ts[tp], pipe.marks.ingest_at[tp], pipe.marks.ingested[tp] = ts, then, 5
            pipe.marks.marked[f"{tp.topic}/0"] = (ts, then, False)
        await pipe.send_marks(idle=True)

    asyncio.run(go())
    marks: dict[str, list[float | None]] = {}
    for _topic, _partition, value, source in sent:
        (mark,) = decode_record(value)
        assert isinstance(mark, Mark)
        marks.setdefault(source, []).append(mark.ts)
    return marks


def test_a_quiet_partition_keeps_its_delay_while_the_input_flows(tmp_path):
    """Input quiet for less than ``idle_flush``: a partition behind the others
    is marked as if its time kept the clock's pace (a feed arriving a steady
    delay behind keeps that delay)."""
    marks = _quiet_input_marks(tmp_path, quiet=5.0)
    assert set(marks) == {"payments.success/0"}  # likes/0 is the newest already
    assert len(marks["payments.success/0"]) == 4 * 6  # every partition of the four views
    assert all(804.0 < ts < 806.0 for ts in marks["payments.success/0"])


def test_a_quiet_partition_is_no_longer_moved_on_once_the_input_ended(tmp_path):
    """Input quiet for ``idle_flush``: no more marks. Creeping on (800 + 15 s
    here, and one more round of marks to every view partition each second for
    the remaining 185 s) kept the view slots busy with marks, so their idle
    flush waited for the gap; jumping to the newest time (1,000) would make
    the next records of an input that had only paused late."""
    assert _quiet_input_marks(tmp_path, quiet=15.0) == {}


def _events(topic: str, partition: int, values: list[bytes],
            offsets: list[int] | None = None) -> list[Any]:
    """Stream events as a stream holds them: one reference to each message
    (at ``offsets``, by default 0, 1, ...)."""
    out = []
    for offset, value in zip(offsets or range(len(values)), values, strict=True):
        msg = Message(topic, partition, offset, 0.0, 0, [(SOURCE_HEADER, b"likes/0")], None,
                      value, None, generation_id=1)
        msg.refcount = 1
        out.append(SimpleNamespace(message=msg))
    return out


def test_a_view_batch_cut_short_leaves_what_it_did_not_reach_unacked(tmp_path):
    """The worker stopping in the middle of a view batch (a cancelled agent)
    must not let take_events' closing acks commit records no engine took: the
    batch's partition 0 went into its engine (held until a checkpoint),
    partition 1 was never reached."""
    async def go() -> list[SimpleNamespace]:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), p) for p in (0, 1)},
                         [])
        topic = pipe.settings.view_topic("merchant")
        for p in (0, 1):
            pipe.slots[("merchant", p)] = Slot("merchant", p, Engine(pipe.cfg, views=["merchant"]))
        events = [*_events(topic, 0, [encode_event(_like(i)) for i in range(3)]),
                  *_events(topic, 1, [encode_event(_like(i + 10)) for i in range(3)])]
        process = pipe._process

        async def cut_at_partition_1(slot, evs):
            if slot.partition == 1:
                raise asyncio.CancelledError
            return await process(slot, evs)

        pipe._process = cut_at_partition_1
        with pytest.raises(asyncio.CancelledError):
            await pipe.view_batch("merchant", SimpleNamespace(), events)
        assert [e.message.offset for e in pipe.slots[("merchant", 0)].held] == [0, 1, 2]
        return events

    events = asyncio.run(go())
    for event in events:  # take_events' acks as its generator closes
        assert not event.message.ack(None), (event.message.partition, event.message.offset)


def _record_seeks(pipe: Any, earliest: int, seeks: list[tuple[TP, int]]) -> None:
    """Give the pipeline's stand-in consumer a broker whose partitions start
    at ``earliest``, and append its seeks to ``seeks``."""
    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, earliest)

    async def seek_wait(partitions: dict[TP, int]) -> None:
        seeks.extend(partitions.items())

    pipe.app.consumer.earliest_offsets = earliest_offsets
    pipe.app.consumer.seek_wait = seek_wait


def _early_fetch(tmp_path, earliest: int, split: bool = False,
                 again: bool = True) -> tuple[Any, list[tuple[TP, int]]]:
    """A slot restored at view offset 3 that is handed offsets 8 and 9 (a
    fetch from before a rebalance; in two batches if ``split``), then 3 to 9
    (read again in order, unless not ``again``); the broker's earliest offset
    of the partition is ``earliest``. Returns the pipeline and the consumer's
    seeks."""
    seeks: list[tuple[TP, int]] = []

    async def go() -> Any:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 0)}, [])
        topic = pipe.settings.view_topic("merchant")
        _record_seeks(pipe, earliest, seeks)
        pipe.slots[("merchant", 0)] = Slot("merchant", 0, Engine(pipe.cfg, views=["merchant"]),
                                           next_offset=3, ckpt_offset=3)
        values = {i: encode_event(_like(i)) for i in range(10)}
        for early in ([8], [9]) if split else ([8, 9],):
            await pipe.view_batch("merchant", SimpleNamespace(), _events(
                topic, 0, [values[i] for i in early], offsets=early))
        if earliest <= 3 and again:
            await pipe.view_batch("merchant", SimpleNamespace(), _events(
                topic, 0, [values[i] for i in range(3, 10)], offsets=list(range(3, 10))))
        return pipe

    return asyncio.run(go()), seeks


def test_records_fetched_before_a_rebalance_are_taken_in_their_place(tmp_path):
    """Records past a slot's next offset are skipped and read again in order:
    taken, they would move the slot past offsets 3 to 7, which would then
    count as seen and be lost (a worker's broker frozen past its session,
    test_broker_faults.py, lost 18 alerts this way)."""
    pipe, seeks = _early_fetch(tmp_path, earliest=0)
    slot = pipe.slots[("merchant", 0)]
    tp = TP(pipe.settings.view_topic("merchant"), 0)
    assert seeks == [(tp, 3)]  # once, for both early records
    assert [e.message.offset for e in slot.held] == list(range(3, 10))
    assert slot.next_offset == 10
    assert slot.engine.stats["like"] == 7 and slot.engine.duplicates == 0  # each like once
    assert pipe.metrics.registry.get_sample_value(
        "likeguard_events_skipped_total", {"topic": tp.topic, "reason": "out_of_order"}) == 1


def test_a_partition_without_a_checkpoint_is_read_from_its_first_record(tmp_path):
    """A slot made without a checkpoint holds none of its partition's records,
    whatever offset the group committed (a crash once committed view offsets
    no checkpoint covered, and a restart that began there lost their alerts):
    records handed over from offset 5 are skipped and the consumer is sent
    back to offset 0; read from there, each record is taken once."""
    seeks: list[tuple[TP, int]] = []

    async def go() -> Any:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 0)}, [])
        topic = pipe.settings.view_topic("merchant")
        pipe.ckpt.table = SimpleNamespace(data={})  # no checkpoint of any slot
        _record_seeks(pipe, 0, seeks)
        values = [encode_event(_like(i)) for i in range(8)]
        await pipe.view_batch("merchant", SimpleNamespace(), _events(
            topic, 0, values[5:], offsets=[5, 6, 7]))
        slot = pipe.slots[("merchant", 0)]
        assert slot.next_offset == 0 and not slot.held
        await pipe.view_batch("merchant", SimpleNamespace(), _events(topic, 0, values))
        return pipe

    pipe = asyncio.run(go())
    slot = pipe.slots[("merchant", 0)]
    assert seeks == [(TP(pipe.settings.view_topic("merchant"), 0), 0)]
    assert [e.message.offset for e in slot.held] == list(range(8))
    assert slot.next_offset == 8 and slot.engine.stats["like"] == 8


def test_a_jump_in_fetched_view_offsets_is_never_committed(tmp_path):
    """Faust takes the offsets a fetch jumps over for acked (a gap). A view
    slot's seek back (to 39, while a fetch from 62 was in flight) makes such
    a jump over records no checkpoint covers; Faust's own consumer would
    commit past them at the next ack (a crash then lost their alerts), the
    worker's commits only what was acked."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    async def commit_after_jump(consumer: Any) -> int:
        tp = TP("lg.view.merchant", 0)
        consumer._committed_offset[tp] = 39
        await consumer._add_gap(tp, 40, 61)  # fetched 62 right after the seek back to 39
        consumer._acked[tp].extend([39, 40, 41])  # read again; a checkpoint released them
        while (offset := consumer._new_offset(tp)) is not None:  # the periodic commits
            consumer._committed_offset[tp] = offset
        return consumer._committed_offset[tp]

    async def go() -> tuple[int, int]:
        settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=str(tmp_path),
                            checkpoint_key=CHECKPOINT_KEY).validate()
        ours = create_app(settings).consumer
        stock = faust_aiokafka.Consumer.__new__(faust_aiokafka.Consumer)
        for name in ("_gap", "_acked", "_acked_index", "_committed_offset"):
            setattr(stock, name, type(getattr(ours, name))(getattr(ours, name).default_factory))
        return await commit_after_jump(stock), await commit_after_jump(ours)

    stock, ours = asyncio.run(go())
    assert stock == 62  # past 42..61, which no checkpoint covers
    assert ours == 42


def test_a_seek_back_is_repeated_until_the_records_come(tmp_path):
    """Faust's fetcher drops records below the last offset it handed over, so
    early records handed over after a seek undo it: every batch that had some
    ends with a seek, and the timer seeks again while the records read again
    do not come (a frozen worker's merchant partition waited for good)."""
    pipe, seeks = _early_fetch(tmp_path, earliest=0, split=True, again=False)
    slot = pipe.slots[("merchant", 0)]
    tp = TP(pipe.settings.view_topic("merchant"), 0)
    assert seeks == [(tp, 3), (tp, 3)] and slot.next_offset == 3
    assert pipe.metrics.registry.get_sample_value(
        "likeguard_events_skipped_total", {"topic": tp.topic, "reason": "out_of_order"}) == 1

    async def tick() -> None:
        pipe.app.rebalancing = pipe.app.should_stop = False
        await pipe.tick()

    asyncio.run(tick())
    assert len(seeks) == 2  # sought back just now: the records may be on their way
    slot.sought_at -= RESEEK_AFTER
    asyncio.run(tick())
    assert seeks[2:] == [(tp, 3)]
    slot.next_offset = 10  # they came
    slot.sought_at -= RESEEK_AFTER
    asyncio.run(tick())
    assert len(seeks) == 3


def test_a_partition_being_revoked_gets_no_new_slot(tmp_path):
    """Records of a partition whose revocation is under way (it stays in the
    consumer's assignment until the next one) are left for its next owner: a
    slot made for them would outlive the revocation, process another
    worker's partition and checkpoint over its owner's."""
    async def go() -> Any:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 0)}, [])
        topic = pipe.settings.view_topic("merchant")
        pipe.slots[("merchant", 0)] = Slot("merchant", 0, Engine(pipe.cfg, views=["merchant"]))
        await pipe._on_revoked(None, {TP(topic, 0)})
        assert ("merchant", 0) not in pipe.slots
        stale = _events(topic, 0, [encode_event(_like(i)) for i in range(3)])
        await pipe.view_batch("merchant", SimpleNamespace(), stale)
        assert ("merchant", 0) not in pipe.slots
        pipe.app.consumer_generation_id = 2  # assigned again, to this worker
        fresh = _events(topic, 0, [encode_event(_like(i)) for i in range(3)])
        for e in fresh:
            e.message.generation_id = 2
        await pipe.view_batch("merchant", SimpleNamespace(), fresh)
        return pipe

    pipe = asyncio.run(go())
    assert pipe.slots[("merchant", 0)].next_offset == 3


def test_a_partition_revoked_during_its_batch_leaves_no_lag_behind(tmp_path):
    """The engine call awaits; a rebalance may revoke the batch's partition
    meanwhile and drop its lag series. The batch's end must not set it again:
    a stale series reads as lag on a partition no longer here (the backlog
    bench waited on such a one for good)."""
    async def go() -> Any:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 0),
                                              TP(s.view_topic("merchant"), 1)}, [])
        topic = pipe.settings.view_topic("merchant")
        pipe.app.consumer.highwater = lambda tp: 10
        process = pipe._process

        async def revoked_meanwhile(slot: Slot, evs: list[Any]) -> int:
            n = await process(slot, evs)
            if slot.partition == 0:
                await pipe._on_revoked(None, {TP(topic, 0)})
            return n

        pipe._process = revoked_meanwhile
        await pipe.view_batch("merchant", SimpleNamespace(), _events(
            topic, 0, [encode_event(_like(i)) for i in range(3)])
            + _events(topic, 1, [encode_event(_like(i)) for i in range(3, 5)]))
        return pipe, topic

    pipe, topic = asyncio.run(go())
    lag = pipe.metrics.registry.get_sample_value
    assert lag("likeguard_consumer_lag", {"topic": topic, "partition": "0"}) is None
    assert lag("likeguard_consumer_lag", {"topic": topic, "partition": "1"}) == 8


def test_late_events_are_logged_once_in_a_while_per_slot(tmp_path, caplog):
    """Events behind a slot's watermark are counted (the metric) and named in
    the log with the slot and the watermark, at most one line per slot per
    ``LATE_LOG_EVERY`` seconds however many batches bring them."""
    async def go() -> Any:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 0)}, [])
        slot = Slot("merchant", 0, Engine(pipe.cfg, views=["merchant"]))
        for i, ts in enumerate((1000.0, 5000.0, 1001.0, 1002.0)):
            slot.engine.process(Like(f"l{i}", f"u{i}", "post:1", "m1", ts), b"likes/0")
            pipe._count(slot)
        return pipe

    pipe = asyncio.run(go())
    lines = [r.getMessage() for r in caplog.records if "behind the watermark" in r.getMessage()]
    assert lines == ["merchant/0: events behind the watermark (1970-01-01T01:23:10Z): "
                     "1 dropped as late, 0 taken out of order so far (at view offset 0)"]
    assert pipe.metrics.registry.get_sample_value(
        "likeguard_late_events_total", {"view": "merchant"}) == 2


def test_records_the_broker_deleted_are_passed_over(tmp_path):
    """Offsets 3 to 7 deleted (retention) before any worker read them: waiting
    for them would stall the partition, so the slot goes on at 8 and says so."""
    pipe, seeks = _early_fetch(tmp_path, earliest=8)
    slot = pipe.slots[("merchant", 0)]
    assert seeks == []
    assert [e.message.offset for e in slot.held] == [8, 9] and slot.next_offset == 10
    assert pipe.metrics.registry.get_sample_value("likeguard_events_skipped_total", {
        "topic": pipe.settings.view_topic("merchant"), "reason": "deleted"}) == 5


def test_the_input_offsets_are_committed_only_after_a_flush(tmp_path):
    """The ingest's consumer commits the offsets of what was ingested only once
    the producer delivered the bundles made from it; a batch whose ingest
    failed is not committed (it is ingested again after a restart)."""
    from streams.ingest import InputConsumer

    calls: list[object] = []
    settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=str(tmp_path),
                        checkpoint_key=CHECKPOINT_KEY).validate()
    likes = TP(settings.likes_topic, 0)

    async def flush() -> None:
        calls.append("flush")

    async def commit(offsets) -> None:
        calls.append({(tp.topic, tp.partition): o for tp, o in offsets.items()})

    async def go() -> None:
        async def nothing(_tps) -> None:
            return None

        ic = InputConsumer(settings, nothing, flush, nothing)
        ic.consumer = SimpleNamespace(commit=commit)
        await ic._commit()
        assert calls == []  # nothing ingested: no flush, no commit
        ic._uncommitted[likes] = 42
        await ic._commit()
        assert calls == ["flush", {(likes.topic, 0): 42}]
        await ic._commit()  # committed already
        assert len(calls) == 2

    asyncio.run(go())


def test_records_fetched_during_a_rebalance_are_not_ingested_or_committed(tmp_path):
    """Between the revocation of its input partitions and the next assignment
    the consumer's ``assignment()`` still names the revoked ones; a batch
    fetched then must not be ingested for them (their offsets would be noted
    after the revocation forgot theirs, and the next commit would raise
    "partition not assigned" and stop the worker)."""
    from aiokafka.structs import TopicPartition

    from streams.ingest import InputConsumer, _Listener

    settings = Settings(bootstrap_servers="127.0.0.1:9", data_dir=str(tmp_path),
                        checkpoint_key=CHECKPOINT_KEY).validate()
    p0, p1 = (TopicPartition(settings.likes_topic, p) for p in (0, 1))

    async def go() -> None:
        async def nothing(*_a) -> None:
            return None

        ic = InputConsumer(settings, nothing, nothing, nothing)
        ic.consumer = SimpleNamespace(commit=nothing, assignment=lambda: {p0, p1})
        listener = _Listener(ic)
        await listener.on_partitions_assigned([p0, p1])
        assert ic.owned_batch({p0: ["a"], p1: ["b"]}) == {p0: ["a"], p1: ["b"]}
        await listener.on_partitions_revoked([p0, p1])  # the old assignment still shows
        assert ic.owned_batch({p0: ["a"], p1: ["b"]}) == {}
        await listener.on_partitions_assigned([p0])
        assert ic.owned_batch({p0: ["a"], p1: ["b"]}) == {p0: ["a"]}

    asyncio.run(go())


def _user_marks(tmp_path, flush: bool) -> tuple[float, list[float | None]]:
    """A user slot with likes every 10 s up to event time 1,090 (past the
    engine's start-up hold of ``max_skew``; grace 10 s): its engine's watermark
    and the marks it sends the lockstep partitions."""
    sent: list[tuple] = []

    async def go() -> float:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("user"), 0)}, sent)
        slot = Slot("user", 0, Engine(pipe.cfg, views=["user"]), next_offset=5)
        for i in range(10):
            like = Like(f"l{i}", f"u{i}", "post:1", "m1", 1000.0 + 10 * i, ip="10.0.0.1")
            slot.engine.process(like, b"likes/0")
        if flush:
            slot.engine.flush()
            slot.flushed = True
        await pipe.marks.mark_user(slot)
        return slot.engine.watermark

    wm = asyncio.run(go())
    assert {(topic, source) for topic, _p, _v, source in sent} == {
        (Settings().view_topic("lockstep"), "user/0")}
    return wm, [m.ts for _t, _p, value, _s in sent for m in decode_record(value)
                if not isinstance(m, Verdict)]


def test_a_user_slot_marks_the_lockstep_view_a_grace_ahead_of_its_watermark(tmp_path):
    """Unflushed, the likes the slot's engine still holds lie within ``grace``
    after its watermark: it marks watermark + grace, to every lockstep partition."""
    wm, marks = _user_marks(tmp_path, flush=False)
    assert wm == 1090.0 - Settings().engine.grace
    assert marks == [1090.0] * 6


def test_a_flushed_user_slot_marks_the_lockstep_view_at_its_input_end(tmp_path):
    """Flushed, its watermark is already its input's end (newest event plus a
    tick): a mark a grace beyond it would put it ahead of the user slots not yet
    flushed, and the lockstep engines would stop waiting for those."""
    wm, marks = _user_marks(tmp_path, flush=True)
    assert wm == 1090.0 + Settings().engine.tick
    assert marks == [wm] * 6


def test_input_counts_as_drained_only_once_every_fetched_record_is_ingested(tmp_path):
    """The idle flush's upstream check: input partitions fetched to their
    high-water mark (5) are not drained while a fetched batch is being
    ingested or the ingest has not reached the high-water mark."""
    async def go() -> list[bool]:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.likes_topic, 0)}, [])
        likes = TP(pipe.settings.likes_topic, 0)
        seen = []
        pipe.inputs.holding = {likes}
        pipe.marks.ingested[likes] = 5
        seen.append(await pipe._inputs_drained())  # a batch being ingested
        pipe.inputs.holding = set()
        pipe.marks.ingested[likes] = 3
        seen.append(await pipe._inputs_drained())  # two records not ingested yet
        pipe.marks.ingested[likes] = 5
        seen.append(await pipe._inputs_drained())
        return seen

    assert asyncio.run(go()) == [False, False, True]


def test_a_crashing_worker_writes_no_final_checkpoint(tmp_path):
    """A stop after a crash or a refused record is not graceful: the slots'
    state may be half way through a batch (or cover records the broker
    refused), so no final checkpoint is written (the partitions resume from
    their last periodic ones), and nothing more is processed; after a
    refusal the ingest commits nothing either."""
    async def go(crash: Exception | None, refused: bool = False
                 ) -> tuple[bool, list[str], list[bool], int]:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 0)}, [])
        pipe.app._crash_reason = crash
        stops: list[None] = []
        pipe._stop_worker = lambda: stops.append(None)
        if refused:
            failed = DeliveryFailed("alerts", RuntimeError("not authorised"))
            await pipe._refused(failed)
            await pipe._refused(failed)  # the timer, a view agent: one stop
        slot = pipe.slots[("merchant", 0)] = Slot("merchant", 0,
                                                  Engine(pipe.cfg, views=["merchant"]))
        slot.held = _events(pipe.settings.view_topic("merchant"), 0, [b"[]"])
        written: list[str] = []

        async def checkpoint(s: Slot) -> None:
            written.append(s.key.decode())

        pipe.checkpoint = checkpoint
        await pipe._on_shutdown()
        return pipe._stopping, written, pipe.input_commits, len(stops)

    assert asyncio.run(go(RuntimeError("boom"))) == (True, [], [True], 0)
    assert asyncio.run(go(None, refused=True)) == (True, [], [False], 1)
    # graceful: the last checkpoint
    assert asyncio.run(go(None)) == (True, ["merchant/0"], [True], 0)


def test_an_ingest_that_fails_stops_the_worker_as_sigterm_does(tmp_path):
    """An unexpected error in the ingest stops the worker once, as SIGTERM
    does (``app.crash`` could leave it hanging on its way out), and the
    stop is graceful: the views' final checkpoints are written."""
    async def go() -> tuple[int, BaseException | None, list[str]]:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 0)}, [])
        stops: list[None] = []
        pipe._stop_worker = lambda: stops.append(None)

        async def run() -> None:
            raise RuntimeError("bug in the ingest")

        pipe.inputs.run = run
        await pipe._run_inputs()
        slot = pipe.slots[("merchant", 0)] = Slot("merchant", 0,
                                                  Engine(pipe.cfg, views=["merchant"]))
        slot.dirty = True
        written: list[str] = []

        async def checkpoint(s: Slot) -> None:
            written.append(s.key.decode())

        pipe.checkpoint = checkpoint
        await pipe._on_shutdown()
        return len(stops), pipe.failed, written

    stops, failed, written = asyncio.run(go())
    assert stops == 1 and isinstance(failed, RuntimeError) and written == ["merchant/0"]


def test_a_view_record_taken_by_the_core_equals_its_events_one_by_one():
    """``Engine.process_record`` (decoded in the core) gives what decoding the
    record in Python and feeding its events and marks one by one gives: the
    same alerts, counters and watermark; a record that is not a view record
    is refused whole."""
    from detectors.config import EngineConfig

    likes = [Like(f"l{i}", f"u{i}", "post:1", "m1", 1000.0 + i, ip="10.0.0.1", device="d1",
                  user_created=5.0) for i in range(60)]
    pays = [Payment(f"t{i}", "m1", f"u{i}", 1, 999.5 + i, device="d1") for i in range(0, 60, 3)]
    events = sorted([*likes, *pays, likes[3]], key=lambda e: e.ts)  # one duplicate
    records = [encode_bundle([encode_event(e) for e in events[i:i + 7]])
               for i in range(0, len(events), 7)]
    records += [encode_mark(1200.0), encode_bundle([encode_mark(2000.0, behind=False)])]

    def by_python() -> tuple:
        eng = Engine(EngineConfig(mode="rules"), views=["merchant", "device"])
        alerts = []
        for data in records:
            for ev in decode_record(data):
                if isinstance(ev, Mark):
                    alerts += eng.progress(b"likes/0", ev.ts, ev.newest, ev.behind)
                else:
                    assert not isinstance(ev, Verdict)
                    alerts += eng.process(ev, b"likes/0")
        alerts += eng.flush()
        return [a.alert_id for a in alerts], eng.stats, eng.watermark

    def by_core() -> tuple:
        eng = Engine(EngineConfig(mode="rules"), views=["merchant", "device"])
        alerts, dups = [], 0
        for data in records:
            got = eng.process_record(data, b"likes/0")
            assert got is not None
            alerts += got[0]
            dups += got[3] + got[4]
        alerts += eng.flush()
        assert dups == 1
        return [a.alert_id for a in alerts], eng.stats, eng.watermark

    python, core = by_python(), by_core()
    assert python[0], "the farm raises alerts"
    assert core == python
    eng = Engine(EngineConfig(mode="rules"), views=["merchant"])
    assert eng.process_record(b'["b",["m",1.0],["x"]]', b"likes/0") is None
    assert eng.stats["like"] == 0 and eng.watermark == float("-inf")


def test_checkpoints_are_signed_and_bound_to_their_slot(tmp_path, caplog):
    """A checkpoint restores with the pipeline's key into its own slot at its
    own offset. Moved to another partition, given another offset in its
    header, or read with another key, it is unusable: one error line, and
    the partition starts empty with a slot whose first checkpoint replaces
    (tombstones) the unusable one's chunks."""
    import orjson

    async def go() -> None:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("device"), p) for p in (0, 1)},
                         [])
        data: dict[bytes, bytes] = {}
        pipe.ckpt.table = SimpleNamespace(data=data)

        async def put(partition: int, key: bytes, value: bytes | None) -> None:
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value

        pipe.ckpt.put = put  # the table without a broker
        slot = pipe._slot("device", 0, 0)
        for i in range(20):
            slot.engine.process(Like(f"l{i}", f"u{i}", "post:1", "m1", 1000.0 + i, device="d1"))
        slot.next_offset, slot.dirty = 42, True
        await pipe.checkpoint(slot)
        assert set(data) == {b"device/0", b"device/0/1/0"}

        restored = pipe._restore("device", 0)
        assert restored is not None and restored.next_offset == restored.ckpt_offset == 42
        assert restored.engine.stats == slot.engine.stats
        assert "restored device/0 from checkpoint gen 1" in caplog.text
        assert "unusable" not in caplog.text

        def unusable(view: str, p: int) -> Slot:
            caplog.clear()
            fresh = pipe._restore(view, p)
            lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
            assert len(lines) == 1 and lines[0].startswith(f"checkpoint {view}/{p} is unusable")
            assert lines[0].endswith(f"partition {view}/{p} starts empty")
            assert fresh is not None and not fresh.has_input() and fresh.next_offset == 0
            # at the first record it gets (the committed offset): what the
            # checkpoint covered is not processed again
            assert not fresh.positioned
            return fresh

        header = orjson.loads(data[b"device/0"])
        # moved to another partition
        data[b"device/1"], data[b"device/1/1/0"] = data[b"device/0"], data[b"device/0/1/0"]
        fresh = unusable("device", 1)
        assert (fresh.gen, fresh.chunks) == (1, 1)
        assert "signature does not verify" in caplog.text
        # resuming from another offset (records skipped or counted twice)
        data[b"device/0"] = orjson.dumps({**header, "offset": 10})
        unusable("device", 0)
        data[b"device/0"] = orjson.dumps(header)
        # another key (a worker of another deployment, or a key rotated without care)
        key, pipe.ckpt._key = pipe.ckpt._key, b"another-deployment-key-0123456789abcdef"
        unusable("device", 0)
        pipe.ckpt._key = key
        assert pipe._restore("device", 0).next_offset == 42  # untouched by the attempts
        # a checkpoint of the previous storage format (zlib, header version 1)
        import zlib

        from detectors import _core
        saved = data[b"device/0"], data[b"device/0/1/0"]
        v1 = zlib.compress(_core.decompress(saved[1]), 1)
        data[b"device/0/1/0"] = v1
        data[b"device/0"] = orjson.dumps({**header, "v": 1, "crc": zlib.crc32(v1)})
        old_format = pipe._restore("device", 0)
        assert old_format.engine.stats == slot.engine.stats and old_format.next_offset == 42
        data[b"device/0"], data[b"device/0/1/0"] = saved
        # a header that is not one
        data[b"device/0"] = b"\x00garbage"
        assert (unusable("device", 0).gen, caplog.text.count("unusable")) == (0, 1)
        # the empty slot's first checkpoint replaces the unusable one's chunks
        fresh.engine.process(Like("l-new", "u-new", "post:2", "m1", 2000.0, device="d2"))
        fresh.next_offset, fresh.dirty = 7, True
        await pipe.checkpoint(fresh)
        assert b"device/1/1/0" not in data and b"device/1/2/0" in data
        again = pipe._restore("device", 1)
        assert again is not None and again.next_offset == 7 and again.has_input()

    with caplog.at_level("INFO", logger="likeguard.worker"):
        asyncio.run(go())


def test_lag_comes_from_the_consumer_of_each_topic(tmp_path):
    """An input partition's lag is the ingest consumer's, a view partition's
    is Faust's consumer's (each knows only its own partitions' high-water
    marks)."""
    from tests.helpers import like_json

    async def go() -> Pipeline:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("merchant"), 2)}, [])
        view = pipe.settings.view_topic("merchant")

        def faust_hw(tp: TP) -> int:
            assert tp.topic == view, "Faust's consumer does not read the inputs"
            return 10

        def ingest_hw(tp: TP) -> int:
            assert tp.topic in pipe.input_topics, "the ingest reads only the inputs"
            return 50

        pipe.app.consumer.highwater = faust_hw
        pipe.inputs.highwater = ingest_hw
        await pipe.view_batch("merchant", SimpleNamespace(), _events(view, 2, [
            encode_event(_like(i)) for i in range(5)]))
        await pipe.ingest.batch([SimpleNamespace(
            topic=pipe.settings.likes_topic, partition=1, offset=offset, key=None,
            value=like_json(like_id=f"l{offset}"), timestamp=None) for offset in range(35, 41)])
        return pipe

    pipe = asyncio.run(go())
    lag = pipe.metrics.registry.get_sample_value
    assert lag("likeguard_consumer_lag", {"topic": pipe.settings.view_topic("merchant"),
                                          "partition": "2"}) == 5
    assert lag("likeguard_consumer_lag", {"topic": pipe.settings.likes_topic,
                                          "partition": "1"}) == 9


def test_the_preflight_line_names_the_specific_cause():
    """The pre-flight line gives the first failed attempt's cause, unless a
    later attempt names what to fix (credentials, TLS, DNS) where the first
    was only a dropped connection."""
    import logging

    from streams.worker import _ClientLog

    def seen(*messages: str) -> str | None:
        h = _ClientLog()
        for msg in messages:
            h.emit(logging.LogRecord("kafka.conn", logging.ERROR, "", 0, msg, None, None))
        return h.failure

    sasl = ("Connection failed: SaslAuthenticationFailedError: SaslAuthenticationFailedError: "
            "invalid credentials")
    assert seen("Connection failed: KafkaConnectionError: socket disconnected", sasl) == \
        "SaslAuthenticationFailedError: invalid credentials"
    assert seen("Connection failed: KafkaConnectionError: 111 ECONNREFUSED",
                "Connection failed: KafkaConnectionError: socket disconnected") == \
        "KafkaConnectionError: 111 ECONNREFUSED"
    assert seen(sasl, "Connection failed: KafkaConnectionError: socket disconnected") == \
        "SaslAuthenticationFailedError: invalid credentials"


def test_caught_up_partitions_are_declared_behind_before_a_burst(tmp_path):
    """A batch taking one input partition more than ``max_skew / 2`` past
    another's mark: before its events go out, the other partition (ingested to
    its end as far as the consumer knows: its records may not be on the
    broker yet) is declared behind, and stays behind until the consumer has
    fetched it after the declaration. A batch within ``max_skew / 2``
    declares nothing; neither are the partition delivering the burst nor one
    never marked with a time (nothing of it was ever waited for)."""
    from detectors.parsing import parse_like
    from streams.marks import input_source as _source
    from tests.helpers import format_time, like_json

    t0 = parse_like(like_json()).ts
    sent: list[tuple] = []
    polled = {"ms": 0}
    tps: dict[str, TP] = {}

    def record(offset: int, ts: float) -> SimpleNamespace:
        value = like_json(like_id=f"l{offset}", ts=format_time(ts))
        return SimpleNamespace(topic=tps["likes"].topic, partition=0, offset=offset, key=None,
                               value=value, timestamp=int(ts * 1000))

    def marks_of(tp: str = "pays") -> list[tuple[int, bool | None]]:
        """(index in ``sent``, behind) of every mark of ``tps[tp]`` so far."""
        out = []
        for i, (_topic, _partition, value, source) in enumerate(sent):
            first = decode_record(value)[0]
            if source == _source(tps[tp]) and isinstance(first, Mark):
                out.append((i, first.behind))
        return out

    def first_event(start: int) -> int:
        return next(i for i, (*_, value, _src) in enumerate(sent)
                    if i >= start and not isinstance(decode_record(value)[0], Mark))

    async def go() -> None:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.likes_topic, 0), TP(s.payments_topic, 0),
                                              TP(s.payments_topic, 1)}, sent)
        pipe.inputs.last_poll = lambda tp: polled["ms"]
        likes = tps["likes"] = TP(pipe.settings.likes_topic, 0)
        pays = tps["pays"] = TP(pipe.settings.payments_topic, 0)
        empty = tps["empty"] = TP(pipe.settings.payments_topic, 1)
        long_ago = time.monotonic() - 10
        pipe.marks.marked[_source(empty)] = (None, long_ago, False)  # released, never had a record
        for tp in (likes, pays):
            m = pipe.marks
            m.input_ts[tp], m.ingest_at[tp], m.ingested[tp] = t0, time.monotonic(), 5
            pipe.marks.marked[_source(tp)] = (t0, long_ago, False)
        skew = pipe.cfg.max_skew
        await pipe.ingest.batch([record(5, t0 + skew / 2 - 5)])  # close enough: nothing
        assert marks_of() == []
        start = len(sent)
        await pipe.ingest.batch([record(6, t0 + skew), record(7, t0 + 2 * skew)])
        marks = marks_of()
        assert {b for _, b in marks} == {True} and len(marks) == 4 * pipe.n  # four views
        assert max(i for i, _ in marks) < first_event(start)  # before the burst's events
        assert not any(b for i, b in marks_of("likes") if i >= start)
        assert marks_of("empty") == []
        # a second later, no fetch of payments/0 since: still behind
        pipe.marks.marked[_source(pays)] = (t0, time.monotonic() - 2, True)
        await pipe.send_marks(idle=True)
        assert all(b for _, b in marks_of())
        # fetched since, nothing found: released
        polled["ms"] = int(time.time() * 1000) + 1
        await pipe.send_marks(idle=True)
        assert marks_of()[-1][1] is False

    asyncio.run(go())


def test_an_input_partition_taken_over_at_its_end_is_held_then_released(tmp_path):
    """A worker assigned an input partition the last owner ingested to its end
    may never run a batch of it, and a batch is where new partitions are held;
    the views kept the last owner's mark, "behind" when it was taken during a
    backlog, and waited on it for good (two workers on a backlog, the
    end-of-input flush off). The idle timer holds such a partition as a batch
    would, then releases it once it is fetched to its end, as any partition
    held with nothing to ingest."""
    from streams.marks import input_source as _source

    sent: list[tuple] = []
    position = {"at": 3}

    def marks() -> list[tuple[str, Mark]]:
        out = [(src, decode_record(v)[0]) for _t, _p, v, src in sent]
        assert all(isinstance(m, Mark) and m.ts is None for _src, m in out)
        return out  # type: ignore[return-value]

    async def go() -> None:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.payments_topic, 1)}, sent)
        tp = TP(pipe.settings.payments_topic, 1)

        async def at(_tp: TP) -> int:
            return position["at"]

        pipe.inputs.position = at
        await pipe.send_marks(idle=True)
        every = 4 * pipe.n  # every partition of the four ingest views
        assert [(src, m.behind) for src, m in marks()] == [(_source(tp), True)] * every
        await pipe.send_marks(idle=True)
        assert len(sent) == every  # records left to ingest: still held
        position["at"] = 5  # fetched to its end, nothing ingested here
        await pipe.send_marks(idle=True)
        assert [(src, m.behind) for src, m in marks()[every:]] == [(_source(tp), False)] * every
        await pipe.send_marks(idle=True)
        assert len(sent) == 2 * every  # once

    asyncio.run(go())


def test_user_partitions_are_declared_behind_before_their_first_forwards(tmp_path):
    """A worker that takes over user-view partitions declares each of them
    behind to every lockstep partition in its first user batch, before the
    slots process anything (so before any forward of theirs): the lockstep
    engines may hold the last owner's mark saying "not behind", and the new
    owner replays the partition from its checkpoint. Once per assignment."""
    sent: list[tuple] = []

    async def go() -> None:
        pipe = _pipeline(tmp_path, lambda s: {TP(s.view_topic("user"), p) for p in (1, 4)}, sent)
        user = pipe.settings.view_topic("user")
        events = [*_events(user, 4, [encode_event(_like(i)) for i in range(3)])]
        await pipe.view_batch("user", SimpleNamespace(), events)
        first = len(sent)
        await pipe.view_batch("user", SimpleNamespace(),
                              _events(user, 4, [encode_event(_like(9))]))
        assert not any(isinstance(m := decode_record(v)[0], Mark) and src in ("user/1", "user/4")
                       and m.ts is None for _t, _p, v, src in sent[first:])
        lockstep = pipe.settings.view_topic("lockstep")
        marks = [(topic, p, src, decode_record(v)[0]) for topic, p, v, src in sent[:first]]
        held = [(topic, p, src) for topic, p, src, m in marks
                if isinstance(m, Mark) and m.ts is None and m.behind]
        assert sorted(held) == sorted((lockstep, q, f"user/{u}")
                                      for u in (1, 4) for q in range(pipe.n))
        assert all(topic == lockstep for topic, *_ in held)

    asyncio.run(go())


def test_checkpoint_compression_round_trips_and_refuses_other_data():
    """The core's LZ4 blocks: what ``compress`` made comes back whole; data it
    did not make, or whose stated length no block of its size could reach (a
    bomb: it is read before its signature is checked), raise ValueError."""
    from detectors import _core

    for data in (b"", b"x", bytes(range(256)) * 1000, b"a" * 1_000_000):
        assert _core.decompress(_core.compress(data)) == data
    packed = _core.compress(b"likeguard " * 1000)
    for bad in (b"", b"\x01", packed[:-5], b"\xff\xff\xff\x7f" + packed[4:],
                b"\x10\x00\x00\x00" + b"\xff" * 8):
        with pytest.raises(ValueError, match="not LZ4 data"):
            _core.decompress(bad)


def test_a_stop_during_an_engine_call_waits_for_it(tmp_path):
    """A view batch runs its engine on a thread; cancelled meanwhile (the worker
    stopping), the batch does not give up the view's lock until the call has
    ended, so no checkpoint reads an engine in the middle of a call."""
    import threading

    started, release = threading.Event(), threading.Event()
    ended: list[bool] = []

    def call() -> int:
        started.set()
        release.wait(30)
        ended.append(True)
        return 1

    async def go() -> tuple[bool, bool]:
        pipe = _pipeline(tmp_path, lambda s: set(), [])
        task = asyncio.ensure_future(pipe._off_loop("ip", call))
        await asyncio.to_thread(started.wait, 30)
        task.cancel()
        for _ in range(20):  # let the cancellation reach the task
            await asyncio.sleep(0)
        waited = not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return waited, bool(ended)

    assert asyncio.run(go()) == (True, True)
