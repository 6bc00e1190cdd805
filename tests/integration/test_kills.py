"""Hard kills at bad moments, on a real broker (issue 16, item 5).

One worker run over one recording, produced in parts, is killed ten times
with SIGKILL and restarted: some kills come between the writes of a
checkpoint (the worker's test-only pause point, :mod:`streams.testhooks`,
freezes it there with the parts written so far on the broker), some at
random moments mid-stream, some while the worker starts (table recovery,
partition assignment). A second test runs two workers and kills one
mid-stream; the other takes its partitions over after the session timeout.

Both use the default engine settings (10 s grace) and assert what the single
crash of ``test_worker.py::test_crash_with_default_settings_loses_nothing``
does: the alert ids are exactly the topology model's, none missing and none
surplus; every copy of an alert (re-sent after a kill) equals the model's
alert apart from ``emitted_at``; and no start saw an event behind its
watermark. The kill points come from a seeded ``random.Random``: the seed is
printed and named in every failure; ``LIKEGUARD_KILL_SEED=<seed>`` replays
the same points.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.engine import ALL_VIEWS
from detectors.parsing import parse_like, parse_payment
from detectors.simulate import SimConfig, simulate
from streams.settings import Settings
from tests.worker_harness import (
    TopicReader,
    WorkerProcess,
    WorkerTopics,
    alert_diff,
    partitioned_replay,
    produce,
    read_to_end,
    recording_records,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: the recording of test_worker.py: five campaigns in twenty minutes, 7,004 records
SIM = SimConfig(seed=3, duration=1200, rate=4, n_users=1500, n_merchants=60, campaigns=5,
                benign=2, duplicate_rate=0.02, partitions=6)
PAUSE = "LIKEGUARD_TEST_PAUSE_AT"
PAUSED = "test hook: paused at checkpoint-part"
KILLS = 10
SETTLE = 3.0
#: event-time seconds of live traffic during a takeover (the session timeout):
#: less than max_skew (60 s), past which an engine leaves a silent source behind
LIVE = 20.0
#: how much faster than event time live traffic is produced (two workers keep up)
SPEED = 20.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """The recording and the alerts of the worker's topology modelled without
    Kafka, with the default engine settings."""
    d = tmp_path_factory.mktemp("kills")
    simulate(SIM, d / "rec.jsonl", d / "labels.json")
    model = partitioned_replay(d / "rec.jsonl", EngineConfig())
    assert len(model) >= 20
    return d / "rec.jsonl", model


def _seed() -> int:
    """The kill points' seed: ``LIKEGUARD_KILL_SEED`` or a fresh one, printed."""
    value = int(os.environ.get("LIKEGUARD_KILL_SEED") or random.randrange(2 ** 32))
    print(f"LIKEGUARD_KILL_SEED={value}")
    return value


@contextlib.contextmanager
def _named(seed: int) -> Iterator[None]:
    """Put the seed in front of any failure's message."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"[LIKEGUARD_KILL_SEED={seed}] {exc}") from exc


def _behind_watermark(worker: WorkerProcess) -> dict[str, float]:
    """Per view, events this start took behind its watermark (late or admitted late)."""
    if "metrics on" not in worker.log_text():
        return {}  # killed before it served metrics: it had processed nothing
    m = worker.metrics()
    return {v: m.get(("likeguard_late_events_total", (("view", v),)), 0.0)
            + m.get(("likeguard_late_admitted_events_total", (("view", v),)), 0.0)
            for v in ALL_VIEWS}


def _kill(worker: WorkerProcess, late: dict[str, dict[str, float]], what: str) -> None:
    """Read this start's late counters, then SIGKILL it."""
    late[f"start {worker.starts} ({what})"] = _behind_watermark(worker)
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL, worker.tail()


def _consumed(worker: WorkerProcess, topics: WorkerTopics) -> float:
    return (worker.metric("likeguard_events_consumed_total", topic=topics.likes)
            + worker.metric("likeguard_events_consumed_total", topic=topics.payments))


def _check_alerts(reader: TopicReader, model: list[dict[str, Any]],
                  late: dict[str, dict[str, float]], worker: WorkerProcess) -> None:
    """The assertions of both tests, on every alert record read."""
    got = {a["alert_id"]: a for a in reader.values()}
    diff = alert_diff(got, model)
    assert diff == "", f"{diff}\n{worker.tail()}\n{diff}"
    want = {a["alert_id"]: {**a, "emitted_at": None} for a in model}
    copies = [orjson.loads(r.value) for r in reader.records]
    differing = [{k: (v, want[a["alert_id"]].get(k)) for k, v in a.items()
                  if k != "emitted_at" and v != want[a["alert_id"]].get(k)} | {"id": a["alert_id"]}
                 for a in copies if {**a, "emitted_at": None} != want[a["alert_id"]]]
    behind = {k: v for k, v in late.items() if sum(v.values())}
    assert differing == [], f"alerts differing from the model's apart from emitted_at " \
        f"(got, want); events behind a watermark: {behind}"
    assert behind == {}, "events behind a watermark"


def _event_time(topics: WorkerTopics, topic: str, _key: bytes | None, value: bytes | None
                ) -> float:
    parse = parse_payment if topic == topics.payments else parse_like
    ev = parse(value) if value is not None else None
    return ev.ts if ev is not None else float("-inf")


def _ingests_all(worker: WorkerProcess, topics: WorkerTopics) -> bool:
    """Whether the worker's ingest was last assigned every input partition."""
    lines = [x for x in worker.log_text().splitlines() if "input partitions assigned:" in x]
    return bool(lines) and all(f"{t}/{p} " in lines[-1] + " "
                               for t in (topics.likes, topics.payments) for p in range(6))


def _pieces(rng: random.Random, n: int, size: int) -> list[tuple[int, int]]:
    """``size`` records cut into ``n`` pieces of random lengths (none empty)."""
    cuts = sorted(rng.sample(range(1, size), n - 1))
    return list(zip([0, *cuts], [*cuts, size], strict=True))


def test_ten_kills_at_bad_moments(kafka_bootstrap, worker_factory, recording):
    seed = _seed()
    with _named(seed):
        _ten_kills(kafka_bootstrap, worker_factory, recording, random.Random(seed))


def _ten_kills(kafka_bootstrap, worker_factory, recording, rng: random.Random) -> None:
    """Ten SIGKILLs in one run: between a checkpoint's parts, mid-stream, while starting.

    The recording comes in eleven pieces, one per start, produced before the
    start (a backlog to catch up) or once it is ready (live), at random. No
    start may flush an idle engine (an idle flush is final: events after it
    would rightly be late), so the idle flush waits 120 s until the last
    start, which flushes the tail as the model's final flush does.
    """
    path, model = recording
    topics = WorkerTopics.unique("lg-kills")
    topics.create(kafka_bootstrap)
    records, parts = recording_records(path, topics)
    pieces = _pieces(rng, KILLS + 1, len(records))
    # at least four kills between a checkpoint's parts, three mid-stream, one while starting
    kinds = ["checkpoint"] * 4 + ["mid-stream"] * 3 + ["starting"] + \
        [rng.choice(["checkpoint", "mid-stream"]) for _ in range(KILLS - 8)]
    rng.shuffle(kinds)
    print("kills:", kinds)
    worker = worker_factory(topics, {"LIKEGUARD_IDLE_FLUSH": "120",
                                     "LIKEGUARD_CHECKPOINT_INTERVAL": "2"})
    late: dict[str, dict[str, float]] = {}

    def send(k: int) -> None:
        a, b = pieces[k]
        produce(kafka_bootstrap, records[a:b], parts[a:b])

    for k, kind in enumerate(kinds):
        backlog = rng.random() < 0.5
        if backlog:
            send(k)
        worker.settings.pop(PAUSE, None)
        if kind == "checkpoint":
            # every slot given records checkpoints within 2 s: 30 slots, two
            # boundaries (after the chunk, after the header) each at least
            worker.settings[PAUSE] = f"checkpoint-part:{rng.randint(1, 40)}"
        worker.start()
        if kind == "starting":
            # while Faust recovers the table, joins the groups, restores slots
            # (the sleep is the kill's random moment, not a wait for a condition)
            time.sleep(rng.uniform(0.5, 5.0))
            _kill(worker, late, f"{kind}, {worker.log_text().count(chr(10))} log lines")
            if not backlog:
                send(k)
            continue
        worker.wait_ready(timeout=90)
        if not backlog:
            send(k)
        if kind == "checkpoint":
            wait_for(lambda: PAUSED in worker.log_text(), 60,
                     lambda: f"no pause at {worker.settings[PAUSE]}:\n{worker.tail()}",
                     alive=worker.alive)
            line = next(x for x in worker.log_text().splitlines() if PAUSED in x)
            _kill(worker, late, line[line.index(PAUSED):])
        else:
            a, b = pieces[k]
            want = rng.uniform(0.1, 1.0) * (b - a)

            def enough(w: float = want) -> bool:
                return _consumed(worker, topics) >= w

            wait_for(enough, 60, worker.tail, alive=worker.alive)
            time.sleep(rng.uniform(0.0, 1.5))  # the kill's random moment
            _kill(worker, late, f"{kind}, {_consumed(worker, topics):.0f} consumed")
    # the last start: the rest of the recording, and the idle flush of the tail
    send(KILLS)
    worker.settings.pop(PAUSE, None)
    worker.settings["LIKEGUARD_IDLE_FLUSH"] = "6"
    worker.start()
    worker.wait_ready(timeout=90)
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    try:
        with contextlib.suppress(AssertionError):  # a gap is named by alert_diff below
            reader.wait_for_alerts(model, worker, timeout=120, settle=SETTLE)
    finally:
        reader.close()
    late[f"start {worker.starts} (last)"] = _behind_watermark(worker)
    print("kills:", list(late))
    _check_alerts(reader, model, late, worker)
    assert sum(PAUSED in worker.log_text(i) for i in range(1, KILLS + 1)) == kinds.count("checkpoint")
    assert "restored" in worker.log_text()
    assert worker.stop() == 0, worker.tail()
    # kills between a checkpoint's writes leave no chunk behind for good
    assert _stray_chunks(kafka_bootstrap, topics) == []


def _stray_chunks(bootstrap: str, topics: WorkerTopics) -> list[str]:
    """Checkpoint chunks on the changelog (its latest value per key) that no
    slot's header names."""
    latest = {r.key.decode(): r.value for r in
              read_to_end(bootstrap, Settings.from_env(topics.env()).checkpoint_changelog)}
    live = {k: v for k, v in latest.items() if v is not None}
    named = set()
    for key, value in live.items():
        if key.count("/") == 1:  # a header, keyed <view>/<partition>
            h = orjson.loads(value)
            named |= {f"{key}/{h['gen']}/{i}" for i in range(h["chunks"])}
    assert named, "no checkpoint header on the changelog"
    return sorted(k for k in live if k.count("/") == 3 and k not in named)


def test_one_of_two_workers_killed(kafka_bootstrap, worker_factory, recording):
    seed = _seed()
    with _named(seed):
        _one_of_two(kafka_bootstrap, worker_factory, recording, random.Random(seed))


def _one_of_two(kafka_bootstrap, worker_factory, recording, rng: random.Random) -> None:
    """Two workers share the partitions; one is killed mid-stream (between a
    checkpoint's parts or at a random moment); the other takes its partitions
    over once the broker's session timeout (6 s in the tests) expires.

    Traffic that several workers consume as it is written comes as a live
    stream would (``SPEED`` times event time), not as a burst: with a burst,
    one worker's partitions run more than ``max_skew`` ahead of the other's
    and each ingest can declare behind only its own (docs/worker.md,
    "Rebalancing"; measured here: late events in both workers before any
    kill). A burst comes only while one worker consumes everything: the
    first part, before the second worker joins, and the rest, once the
    survivor ingests every input partition. While the dead worker's input
    partitions wait for the session timeout nobody consumes or marks them,
    so the live traffic meanwhile must stay within ``max_skew`` of them:
    ``LIVE`` seconds of event time (docs/worker.md, "Rebalancing").

    The idle flush (45 s) outlasts the takeover: the survivor must not flush
    its engines while the dead worker's partitions, whose records reach them
    too (forwarded likes, progress marks), are still to be taken over, nor
    between the takeover and the rest of the recording (an idle flush is
    final: events after it are rightly late). With 15 s, a run on a loaded
    machine took 17 s from the takeover to the rest and had late events.
    """
    from kafka import KafkaProducer

    path, model = recording
    topics = WorkerTopics.unique("lg-kill-one")
    topics.create(kafka_bootstrap)
    records, parts = recording_records(path, topics)
    times = [_event_time(topics, *r) for r in records]
    settings = {"LIKEGUARD_IDLE_FLUSH": "45", "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}
    at_checkpoint = rng.random() < 0.5
    survivor = worker_factory(topics, settings).start()
    victim = worker_factory(topics, settings)
    if at_checkpoint:
        victim.settings[PAUSE] = f"checkpoint-part:{rng.randint(1, 20)}"
    survivor.wait_ready()
    first = rng.randrange(len(records) // 5, 2 * len(records) // 5)
    produce(kafka_bootstrap, records[:first], parts[:first])
    wait_for(lambda: _consumed(survivor, topics) >= first, 60, survivor.tail,
             alive=survivor.alive)
    victim.start().wait_ready()
    wait_for(lambda: "Joined group" in survivor.log_text().split("Worker ready", 1)[-1], 60,
             survivor.tail, alive=survivor.alive)  # the survivor rebalanced too
    late: dict[str, dict[str, float]] = {}
    # live traffic for both workers until the kill
    kill_after = rng.uniform(2.0, 8.0)  # wall seconds, for a kill at a random moment
    t0 = time.monotonic()

    def kill_due() -> bool:
        if at_checkpoint:
            return PAUSED in victim.log_text()
        return time.monotonic() - t0 >= kill_after

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5, acks="all")
    try:
        i, start = first, times[first]
        while not kill_due():
            assert i < len(records) and victim.alive(), f"no kill before the end:\n{victim.tail()}"
            step = start + (time.monotonic() - t0) * SPEED
            while i < len(records) and times[i] <= step:
                producer.send(records[i][0], key=records[i][1], value=records[i][2],
                              partition=parts[i])
                i += 1
            producer.flush(30)
            time.sleep(0.05)  # the traffic's clock (not a wait for a condition)
    finally:
        producer.close(10)
    _kill(victim, late, f"victim at {i - first} live records, "
          + ("between a checkpoint's parts" if at_checkpoint else "at a random moment"))
    # live traffic goes on during the session timeout, then the rest as a burst
    live = next((j for j in range(i, len(records)) if times[j] > times[i] + LIVE), len(records))
    produce(kafka_bootstrap, records[i:live], parts[i:live])
    wait_for(lambda: _ingests_all(survivor, topics), 60, survivor.tail, alive=survivor.alive)
    produce(kafka_bootstrap, records[live:], parts[live:])
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    try:
        with contextlib.suppress(AssertionError):  # a gap is named by alert_diff below
            reader.wait_for_alerts(model, survivor, timeout=150, settle=SETTLE)
    finally:
        reader.close()
    late["survivor"] = _behind_watermark(survivor)
    _check_alerts(reader, model, late, survivor)
    assert survivor.alive()
    assert "restored" in survivor.log_text()  # it took over checkpointed state
