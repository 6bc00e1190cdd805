"""Broker faults under a running worker (issue 16, item 3).

Each case starts a broker of its own (``kafka_private_broker``: the session
broker is shared and must never stop), produces the first half of a
recording, starts the worker and waits until it has ingested that half and
checkpointed, then, with producing paused, stops the broker (SIGTERM, data
kept, restarted on the same ports) or freezes it (SIGSTOP, then SIGCONT) for
the fault's duration, or freezes the worker itself past its session
timeout. Once the fault is over the second half is produced and the worker
must reach the end by itself: every input partition's committed offset at
its end and the worker's lag gauges at 0. Asserted:

* the worker process stays up throughout (no restart, no crash);
* its alert ids are the offline replay's of the same recording (and the
  worker topology's, ``partitioned_replay``), as an uninterrupted worker's
  are in ``test_worker.py::test_worker_equals_offline_replay``; an alert
  sent more than once (records processed again after a rebalance the
  outage caused) is the same alert apart from ``emitted_at``;
* its log stays readable: aiokafka's connection errors, one per attempt
  (thousands a second) without the worker's rate-limited filter, come at
  most 40 warning and error lines a minute of outage
  (:class:`streams.worker.RepeatFilter`: each kind once per 10 s).

The fault durations are deliberate waits; everything else polls a
condition against a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.engine import ALL_VIEWS
from detectors.replay import replay
from detectors.simulate import SimConfig, simulate
from tests.kafka_broker import KafkaBroker
from tests.worker_harness import (
    TopicReader,
    WorkerProcess,
    WorkerTopics,
    alert_diff,
    alert_ids,
    committed_offsets,
    partitioned_replay,
    produce,
    read_jsonl,
    read_to_end,
    recording_records,
    terminate_all,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.outage]

# As in test_worker.py: a grace longer than the recording's event-time span,
# so the order in which partitions arrive makes nothing late and the worker's
# alerts must equal the offline replay's.
GRACE = 3600.0
CONFIG = EngineConfig(grace=GRACE)
# A quarter of test_worker.py's recording: a few thousand events, several campaigns.
SIM = SimConfig(seed=3, duration=1200, rate=4, n_users=1500, n_merchants=60, campaigns=5,
                benign=2, duplicate_rate=0.02, partitions=6)
SETTINGS = {
    "LIKEGUARD_GRACE": str(GRACE),
    # The input pauses from the end of the first half to the second (the fault
    # in between): a flush meanwhile would make the second half late. The worker
    # does not count a time it cannot see the input as quiet, so this need only
    # outlast the gaps around the fault (about 4 s: the fault comes as soon as
    # the first half is ingested, the input is out of sight SIGHT_GAP after the
    # broker's last answer, the second half follows the broker's return at
    # once). Short, since the tail waits for it: idle_flush, then twice it for
    # the lockstep view.
    "LIKEGUARD_IDLE_FLUSH": "6",
    "LIKEGUARD_CHECKPOINT_INTERVAL": "2",
}
#: seconds after the broker is back within which the worker must reach the end
RECOVER_TIMEOUT = 180.0
#: warning/error lines a minute of outage the log may hold, plus a constant for the
#: moments around it. The filter passes each kind of aiokafka warning once per 10 s,
#: and a stopped broker makes five kinds (connect, metadata, coordinator, fetch,
#: produce): 30 a minute, measured 32 over 5 min, where aiokafka logs ~6,000 a second
ERROR_LINES_PER_MINUTE = 40
ERROR_LINES_EXTRA = 30
_ERROR_LINE = re.compile(r"\] \[(?:WARNING|ERROR|CRITICAL)\] |^Traceback")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], list[dict]]:
    """The recording, its offline replay's alerts, and the worker topology's."""
    d = tmp_path_factory.mktemp("fault-recording")
    simulate(SIM, d / "rec.jsonl", d / "labels.json")
    replay(d / "rec.jsonl", d / "alerts.jsonl", CONFIG)
    offline = read_jsonl(d / "alerts.jsonl")
    assert len(offline) >= 20
    return d / "rec.jsonl", offline, partitioned_replay(d / "rec.jsonl", CONFIG)


def _strip(a: dict[str, Any]) -> dict[str, Any]:
    return {**a, "emitted_at": None}


def _hold(seconds: float, worker: WorkerProcess) -> None:
    """The fault's duration (a deliberate wait), failing at once if the worker dies."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        assert worker.alive(), f"the worker exited during the fault:\n{worker.tail()}"
        time.sleep(min(1.0, left))


def _at_end(bootstrap: str, topics: WorkerTopics, worker: WorkerProcess) -> bool:
    """Every input partition committed at its end by the ingest, and the worker's
    lag gauges (input and view partitions) all 0. Not yet, while a restarted broker
    still loads its group coordinator (a retriable error)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        committed = committed_offsets(bootstrap, f"{topics.app_id}-ingest")
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        try:
            tps = [TopicPartition(t, p) for t in (topics.payments, topics.likes)
                   for p in range(6)]
            ends = consumer.end_offsets(tps)
        finally:
            consumer.close()
    except KafkaError as e:
        if not e.retriable:
            raise
        return False
    if any(committed.get((tp.topic, tp.partition), 0) != n for tp, n in ends.items()):
        return False
    lags = {k: v for k, v in worker.metrics().items() if k[0] == "likeguard_consumer_lag"}
    return bool(lags) and all(v == 0 for v in lags.values())


def _behind_watermark(worker: WorkerProcess) -> dict[str, float]:
    """Per view, events that arrived behind its watermark (late, or taken out of order)."""
    m = worker.metrics()
    return {v: m.get(("likeguard_late_events_total", (("view", v),)), 0.0)
            + m.get(("likeguard_late_admitted_events_total", (("view", v),)), 0.0)
            for v in ALL_VIEWS}


FAULTS = [
    pytest.param("stop", 30.0, id="stop-30s"),
    pytest.param("stop", 300.0, id="stop-300s"),
    pytest.param("freeze", 60.0, id="sigstop-60s"),
    # not the broker: the worker itself stalls past its session (a GC pause, a
    # VM migrated), both its groups drop it, and it rejoins with records of
    # the old generation still in its fetches
    pytest.param("worker-freeze", 20.0, id="worker-sigstop-20s"),
]


@pytest.mark.parametrize(("fault", "seconds"), FAULTS)
def test_worker_rides_out_a_broker_fault(kafka_private_broker: KafkaBroker, tmp_path: Path,
                                         recording, fault: str, seconds: float) -> None:
    t_start = time.monotonic()
    broker = kafka_private_broker
    bootstrap = broker.bootstrap
    path, offline, model = recording
    topics = WorkerTopics.unique(f"lg-fault-{fault}")
    topics.create(bootstrap)
    records, parts = recording_records(path, topics)
    half = len(records) // 2
    produce(bootstrap, records[:half], parts[:half])
    worker = WorkerProcess(bootstrap, topics, tmp_path / "worker", settings=dict(SETTINGS))
    try:
        worker.start()
        worker.wait_ready(timeout=90)

        def ingested() -> float:
            return (worker.metric("likeguard_events_consumed_total", topic=topics.likes)
                    + worker.metric("likeguard_events_consumed_total", topic=topics.payments))

        def processing() -> bool:  # the first half ingested, the views at work on it
            m = worker.metrics()
            views = sum(v for (n, _), v in m.items() if n == "likeguard_view_events_total")
            return ingested() >= half and views > 0

        wait_for(processing, 60, worker.tail, alive=worker.alive)
        log_before = len(worker.log_text().splitlines())
        t_fault = time.monotonic()
        if fault == "stop":
            broker.stop()
            _hold(seconds, worker)
            broker.start()
        elif fault == "freeze":
            broker.freeze()
            _hold(seconds, worker)
            broker.thaw()
        else:
            assert worker.proc is not None
            os.kill(worker.proc.pid, signal.SIGSTOP)
            try:
                _hold(seconds, worker)
            finally:
                os.kill(worker.proc.pid, signal.SIGCONT)
        t_back = time.monotonic()
        outage = t_back - t_fault
        assert worker.alive(), worker.tail()
        # nothing flushed yet: the input paused, it did not end (a flush would make
        # the second half's first events late); an outage is not a quiet input
        before_rest = worker.log_text()
        assert "idle flush" not in before_rest, worker.tail()
        produce(bootstrap, records[half:], parts[half:])
        wait_for(lambda: _at_end(bootstrap, topics, worker), RECOVER_TIMEOUT,
                 lambda: f"the worker did not reach the end:\n{worker.tail()}", interval=1.0,
                 alive=worker.alive)
        t_end = time.monotonic()
        log_at_end = worker.log_text()
        reader = TopicReader(bootstrap, topics.alerts)
        try:
            reader.wait_for_ids(alert_ids(offline) | alert_ids(model), worker, timeout=60,
                                settle=3.0)
        except AssertionError:
            pass  # the diff below names the gap
        finally:
            reader.close()
        assert worker.alive(), worker.tail()
        sent = [orjson.loads(r.value) for r in read_to_end(bootstrap, topics.alerts)]
        by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for a in sent:
            by_id[a["alert_id"]].append(a)
        got = {i: copies[0] for i, copies in by_id.items()}
        late = _behind_watermark(worker)
        assert sum(late.values()) == 0, late
        # 1. the alerts of the worker's topology, which are the offline replay's
        assert alert_diff(got, model) == "", worker.tail()
        assert alert_diff(got, offline) == ""
        for a in offline:
            assert _strip(got[a["alert_id"]]) == _strip(a)
        # 2. copies of an alert differ only in emitted_at
        differing = {i: copies for i, copies in by_id.items()
                     if any(_strip(c) != _strip(copies[0]) for c in copies[1:])}
        assert differing == {}
        # 3. a readable log: connection errors a few lines a minute of outage
        lines = log_at_end.splitlines()[log_before:]
        errors = [ln for ln in lines if _ERROR_LINE.search(ln)]
        bound = ERROR_LINES_PER_MINUTE * outage / 60 + ERROR_LINES_EXTRA
        print(f"\n{fault} {seconds:g}s: outage {outage:.1f}s, back to the end in "
              f"{t_end - t_back:.1f}s, {len(lines)} log lines ({len(errors)} errors, bound "
              f"{bound:.0f}), {len(sent)} alerts sent for {len(by_id)} ids, "
              f"test {time.monotonic() - t_start:.1f}s")
        assert len(errors) <= bound, "\n".join(errors[:200])
    finally:
        terminate_all([worker])
