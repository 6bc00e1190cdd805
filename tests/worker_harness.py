"""Helpers for end-to-end tests of the streaming worker on a real broker.

:class:`WorkerProcess` runs ``python -m streams.worker`` as a subprocess with
settings passed as environment variables (unique app id and topic names per
test), logs to a file, and can be stopped with SIGTERM or SIGKILL and started
again with the same settings. :class:`TopicReader` tails a topic from the
beginning. Nothing here sleeps to hide a race: every wait polls a condition
against a deadline and fails with the worker's log tail.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.kafka_broker import create_topics, unique_name

REPO = Path(__file__).resolve().parent.parent
#: the checkpoint key of the test workers (a test secret, not a deployment's)
CHECKPOINT_KEY = "likeguard-tests-checkpoint-key-0123456789abcdef"
_METRICS_LINE = re.compile(r"metrics on (http://\S+/metrics)")


@dataclass
class WorkerTopics:
    """Unique names of every topic one test's worker uses."""

    app_id: str
    payments: str
    likes: str
    alerts: str
    deadletter: str
    view_prefix: str
    verdicts: str

    @classmethod
    def unique(cls, prefix: str) -> WorkerTopics:
        base = unique_name(prefix)
        return cls(app_id=base, payments=f"{base}.payments", likes=f"{base}.likes",
                   alerts=f"{base}.alerts", deadletter=f"{base}.deadletter",
                   view_prefix=f"{base}.view", verdicts=f"{base}.verdicts")

    def env(self) -> dict[str, str]:
        return {
            "LIKEGUARD_APP_ID": self.app_id,
            "LIKEGUARD_PAYMENTS_TOPIC": self.payments,
            "LIKEGUARD_LIKES_TOPIC": self.likes,
            "LIKEGUARD_ALERTS_TOPIC": self.alerts,
            "LIKEGUARD_DEADLETTER_TOPIC": self.deadletter,
            "LIKEGUARD_VIEW_TOPIC_PREFIX": self.view_prefix,
            "LIKEGUARD_VERDICTS_TOPIC": self.verdicts,
        }

    def create(self, bootstrap: str, partitions: int = 6) -> None:
        """Create the input and output topics (the worker makes its internal ones)."""
        create_topics(bootstrap, [self.payments, self.likes, self.alerts, self.deadletter,
                                  self.verdicts], partitions=partitions)


@dataclass
class WorkerProcess:
    """One worker subprocess (restartable) and its log file."""

    bootstrap: str
    topics: WorkerTopics
    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"worker-{self.starts}.log"

    def start(self) -> WorkerProcess:
        assert self.proc is None or self.proc.poll() is not None, "worker already running"
        self.starts += 1
        env = dict(os.environ)
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "LIKEGUARD_METRICS_PORT": str(free_port()),
            "LIKEGUARD_DATA_DIR": str(self.workdir / "data"),
            "LIKEGUARD_SESSION_TIMEOUT": "6",  # the broker's minimum: quick takeover after a kill
            "LIKEGUARD_HEARTBEAT_INTERVAL": "1",
            "LIKEGUARD_BATCH_WITHIN": "0.2",
            "LIKEGUARD_CHECKPOINT_KEY": CHECKPOINT_KEY,
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.topics.env())
        env.pop("LIKEGUARD_CHECKPOINT_KEY_FILE", None)
        if "LIKEGUARD_CHECKPOINT_KEY_FILE" in self.settings:  # a key file instead
            del env["LIKEGUARD_CHECKPOINT_KEY"]
        env.update(self.settings)
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.worker"], cwd=self.workdir,
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def log_text(self, which: int | None = None) -> str:
        path = self.workdir / f"worker-{which or self.starts}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return f"{self.summary()}\n" + "\n".join(self.log_text().splitlines()[-lines:])

    def summary(self) -> str:
        """Key metrics, for failure messages."""
        if not self.alive():
            return f"[worker {self.starts} exited: {self.proc.returncode if self.proc else None}]"
        if not _METRICS_LINE.search(self.log_text()):
            return "[metrics not served yet]"  # (metrics_url would fail with this summary)
        try:
            m = self.metrics()
        except Exception as exc:  # noqa: BLE001 - only for diagnostics
            return f"[metrics unavailable: {exc!r}]"
        keys = ("likeguard_events_consumed_total", "likeguard_batch_size_sum",
                "likeguard_checkpoints_total", "likeguard_consumer_lag",
                "likeguard_late_events_total", "likeguard_late_admitted_events_total",
                "likeguard_duplicates_dropped_total")
        return "[metrics " + ", ".join(f"{n}{dict(lb)}={v:g}" for (n, lb), v in sorted(m.items())
                                       if n in keys and v) + "]"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until Faust reports the worker ready (partitions assigned, tables recovered)."""
        wait_for(lambda: "Worker ready" in self.log_text(), timeout,
                 lambda: f"worker not ready:\n{self.tail()}", alive=self.alive)

    @property
    def metrics_url(self) -> str:
        m = _METRICS_LINE.search(self.log_text())
        assert m, f"no metrics line in the worker log:\n{self.tail()}"
        return m.group(1)

    def metrics(self, timeout: float = 5.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Scrape the worker's /metrics: ``{(name, sorted labels): value}``."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.metrics_url, timeout=timeout) as resp:
            text = resp.read().decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the worker to exit on its own; at the deadline, kill it and
        fail with its log's tail (what it was doing instead)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            tail = self.tail(120)
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"worker still running after {timeout:g} s:\n{tail}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the worker and wait for it to exit; return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"worker ignored signal {sig}:\n{self.tail()}") from None
        return self.proc.returncode


def free_port() -> int:
    """A currently free loopback port (the worker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float, message: Callable[[], str],
             interval: float = 0.1, alive: Callable[[], bool] | None = None) -> Any:
    """Poll ``cond`` until truthy; fail with ``message()`` at the deadline or when
    ``alive`` says the process under test died."""
    deadline = time.monotonic() + timeout
    while True:
        result = cond()
        if result:
            return result
        if alive is not None and not alive():
            raise AssertionError(f"process died. {message()}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s. {message()}")
        time.sleep(interval)


def produce(bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes | None]],
            partitions: Iterable[int | None] | None = None) -> list[Any]:
    """Produce ``(topic, key, value)`` records in order (to ``partitions[i]`` when
    given); flush; return each record's metadata (``.partition``, ``.offset``)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    futures = []
    parts = iter(partitions) if partitions is not None else None
    try:
        for topic, key, value in records:
            part = next(parts) if parts is not None else None
            futures.append(producer.send(topic, key=key, value=value, partition=part))
        producer.flush(60)
        return [f.get(30) for f in futures]
    finally:
        producer.close(10)


def recording_records(path: Path, topics: WorkerTopics,
                      ) -> tuple[list[tuple[str, bytes | None, bytes | None]], list[int]]:
    """Records of a kcat -J recording mapped to ``topics``, and their partitions."""
    from detectors.recording import read_records

    names = {"payments.success": topics.payments, "likes": topics.likes}
    out: list[tuple[str, bytes | None, bytes | None]] = []
    parts: list[int] = []
    for r in read_records(path):
        payload = r.payload.encode() if isinstance(r.payload, str) else r.payload
        key = r.key.encode() if isinstance(r.key, str) else r.key
        out.append((names[r.topic], key or None, payload))
        parts.append(r.partition % 6)
    return out, parts


class TopicReader:
    """Reads a topic from the beginning, accumulating every record."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer

        self.topic = topic
        self.records: list[Any] = []
        self._consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                       auto_offset_reset="earliest", enable_auto_commit=False)

    def poll(self, timeout_ms: int = 200) -> list[Any]:
        for batch in self._consumer.poll(timeout_ms=timeout_ms).values():
            self.records.extend(batch)
        return self.records

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in self.records]

    def close(self) -> None:
        self._consumer.close()

    def wait_for_alerts(self, expected: Iterable[dict[str, Any]], worker: WorkerProcess | None,
                        timeout: float, settle: float = 0.0) -> dict[str, dict[str, Any]]:
        """:meth:`wait_for_ids` for the ids of ``expected``, whose missing
        alerts a failure message describes in full."""
        by_id = {a["alert_id"]: a for a in expected}
        return self.wait_for_ids(set(by_id), worker, timeout, settle, by_id)

    def wait_for_ids(self, expected: set[str], worker: WorkerProcess | None, timeout: float,
                     settle: float = 0.0, described: dict[str, dict[str, Any]] | None = None,
                     ) -> dict[str, dict[str, Any]]:
        """Poll until every id in ``expected`` was read (records are alerts), then
        keep reading ``settle`` more seconds to catch surplus ones; return them by id."""
        def have() -> bool:
            self.poll()
            return alert_ids(self.values()) >= expected

        def gap() -> str:
            surplus = [_brief(a) for a in self.values() if a["alert_id"] not in expected]
            missing = sorted(expected - alert_ids(self.values()))
            if described:
                missing = [_brief(described[i]) if i in described else i for i in missing]
            summary = (f"missing {missing} of "
                       f"{len(expected)}; got {len(self.records)} records; surplus {surplus}")
            # the summary again after the log: CI keeps a long message's ends
            return f"{summary}\n{worker.tail()}\n{summary}" if worker else summary

        wait_for(have, timeout, gap, alive=worker.alive if worker else None)
        end = time.monotonic() + settle
        while time.monotonic() < end:
            self.poll()
        return {a["alert_id"]: a for a in self.values()}


def read_to_end(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of ``topic`` up to its current end (kafka-python records)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        end = {tp: n for tp, n in consumer.end_offsets(tps).items() if n > 0}
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < n for tp, n in end.items()):
            assert time.monotonic() < deadline, f"{topic}: not read to its end in {timeout}s"
            for batch in consumer.poll(timeout_ms=200).values():
                got.extend(batch)
        return got
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets, by (topic, partition)."""
    from tests.kafka_broker import _admin

    admin = _admin(bootstrap)
    try:
        if hasattr(admin, "list_group_offsets"):  # kafka-python 3
            offsets = admin.list_group_offsets(group)[group]
        else:
            offsets = admin.list_consumer_group_offsets(group)
        return {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()
                if om.offset >= 0}
    finally:
        admin.close()


def _brief(a: dict[str, Any]) -> str:
    """An alert in one line, for failure messages."""
    return (f"{a['alert_id']} {a['detector']} {a['entity']['type']}:{a['entity']['id']} "
            f"{a['window']['start']}..{a['window']['end']} "
            + ",".join(f"{r['code']}={r['value']}" for r in a["reasons"]))


def alert_ids(alerts: Iterable[dict[str, Any]]) -> set[str]:
    return {a["alert_id"] for a in alerts}


def alert_diff(got: dict[str, dict[str, Any]], expected: Iterable[dict[str, Any]]) -> str:
    """The alerts one side has and the other lacks, one per line (empty: the same ids)."""
    want = {a["alert_id"]: a for a in expected}
    lines = [f"surplus {_brief(a)}" for i, a in sorted(got.items()) if i not in want]
    lines += [f"missing {_brief(a)}" for i, a in sorted(want.items()) if i not in got]
    return "\n".join(lines)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def terminate_all(workers: Iterable[WorkerProcess]) -> None:
    for w in workers:
        if w.alive():
            try:
                w.stop(signal.SIGKILL, timeout=10)
            except AssertionError:
                pass


# ----------------------------------------------------------------------------- hand-made events

T0 = 1795514400.0  # 2026-11-24T10:00:00Z


def rfc3339(ts: float) -> str:
    from detectors.events import format_time

    return format_time(ts)


def payment_value(txid: str, mchid: str, openid: str, amount: int, ts: float,
                  ip: str | None = None, device: str | None = None,
                  trade_state: str = "SUCCESS") -> bytes:
    obj: dict[str, Any] = {
        "transaction_id": txid, "out_trade_no": f"o-{txid}", "mchid": mchid, "appid": "wx1",
        "trade_state": trade_state, "success_time": rfc3339(ts), "payer": {"openid": openid},
        "amount": {"total": amount, "currency": "CNY"},
    }
    if ip:
        obj["payer_client_ip"] = ip
    if device:
        obj["scene_info"] = {"device_id": device}
    return orjson.dumps(obj)


def like_value(like_id: str, user: str, target: str, mchid: str, ts: float,
               ip: str | None = None, device: str | None = None,
               user_created: float | None = None) -> bytes:
    obj: dict[str, Any] = {"like_id": like_id, "user_openid": user, "target_id": target,
                           "owner_mchid": mchid, "action": "like", "ts": rfc3339(ts)}
    if ip:
        obj["client_ip"] = ip
    if device:
        obj["device_id"] = device
    if user_created is not None:
        obj["user_created"] = rfc3339(user_created)
    return orjson.dumps(obj)


def campaign_records(topics: WorkerTopics) -> list[tuple[str, bytes | None, bytes]]:
    """A device farm and a paid-task-likes campaign, in event-time order.

    * device ``d-farm-1``: 40 accounts like posts of merchant ``1900000007``
      within a minute (device_farm);
    * merchant ``1900000042``: 12 workers each pay 1 fen and like
      ``video:9`` three seconds later (paid_likes / paid_target_likes);
    * some honest background likes and payments.
    """
    events: list[tuple[float, str, bytes]] = []
    for i in range(40):
        ts = T0 + i * 1.5
        events.append((ts, topics.likes, like_value(
            f"l-farm-{i}", f"o-farm-{i}", f"post:{i % 3}", "1900000007", ts,
            ip=f"10.9.{i}.1", device="d-farm-1", user_created=T0 - 400 * 86400)))
    for i in range(12):
        ts = T0 + 100 + i * 10
        events.append((ts, topics.payments, payment_value(
            f"tx-task-{i}", "1900000042", f"o-task-{i}", 1, ts, ip=f"10.8.{i}.2",
            device=f"d-task-{i}")))
        events.append((ts + 3, topics.likes, like_value(
            f"l-task-{i}", f"o-task-{i}", "video:9", "1900000042", ts + 3, ip=f"10.8.{i}.2",
            device=f"d-task-{i}", user_created=T0 - 300 * 86400)))
    for i in range(30):
        ts = T0 + i * 7.0
        events.append((ts, topics.likes, like_value(
            f"l-bg-{i}", f"o-bg-{i}", f"post:{100 + i % 5}", f"19000001{i % 4:02d}", ts,
            ip=f"172.16.{i}.9", device=f"d-bg-{i}", user_created=T0 - 900 * 86400)))
        if i % 3 == 0:
            events.append((ts + 1, topics.payments, payment_value(
                f"tx-bg-{i}", f"19000001{i % 4:02d}", f"o-bg-{i}", 3500 + 17 * i, ts + 1)))
    events.sort(key=lambda e: e[0])
    return [(topic, None, value) for _, topic, value in events]


def offline_alerts(records: Iterable[tuple[str, bytes | None, bytes | None]], topics: WorkerTopics,
                   config: Any = None) -> list[dict[str, Any]]:
    """Alerts of the offline driver (``detectors.replay``) for the same records."""
    from detectors.engine import Engine
    from detectors.recording import Record
    from detectors.replay import replay_records

    kinds = {topics.payments: "payments.success", topics.likes: "likes"}
    recs = [Record(kinds[t], 0, i, None, None, v) for i, (t, _k, v) in enumerate(records)]
    out: list[dict[str, Any]] = []
    replay_records(recs, Engine(config), lambda a: out.append(a.to_dict("x")))
    return out


def partitioned_replay(path: Path, config: Any, verdicts: Iterable[Any] = ()
                       ) -> list[dict[str, Any]]:
    """Reference model of the worker's topology, without Kafka: the
    recording's events through :class:`tests.helpers.Topology` (with progress
    marks). As long as no event is late, the order in which a consumer
    interleaves partitions does not matter, and this is what an uninterrupted
    worker must produce. ``verdicts`` reach every engine before the events
    (as the worker's ingest sends a verdict to every view partition)."""
    from detectors.recording import read_records
    from detectors.replay import ReplaySummary, iter_sourced
    from tests.helpers import Topology

    topo = Topology(config)
    for v in verdicts:
        for eng in topo.engines.values():
            eng.verdict(v)
    for src, ev in iter_sourced(read_records(path), ReplaySummary()):
        topo.feed(src, ev)
    topo.flush()
    return [a.to_dict("x") for a in topo.alerts]
