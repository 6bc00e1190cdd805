"""Checkpoint trust on the real broker: unusable checkpoints in the changelog.

Checkpoints are read from a Kafka topic, so whoever can write that topic
could, were checkpoints trusted, make a worker unpickle what they like. Here
five unusable checkpoints are put into the checkpoint table's changelog
topic before the worker starts, each on the device-view partition of a
device farm: a corrupt one, a truncated one, one of an older state version,
one in a storage format this worker does not know, and a forged one (signed
with another key, its pickle a payload that would create a file). The
worker must stay up, log each as unusable, start those partitions empty,
and raise the farms' alerts when their likes come.
"""

from __future__ import annotations

import pickle
import struct
import zlib

import orjson
import pytest

from detectors import _core
from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.partitioning import kafka_partition
from streams.checkpoints import CHECKPOINT_VERSION, checkpoint_context
from streams.topics import CHECKPOINT_TOPIC_CONFIG
from tests.kafka_broker import create_topics
from tests.worker_harness import (
    CHECKPOINT_KEY,
    T0,
    TopicReader,
    WorkerTopics,
    alert_diff,
    like_value,
    offline_alerts,
    produce,
    read_to_end,
    wait_for,
)

pytestmark = pytest.mark.kafka

GRACE = 3600.0  # as in test_worker.py: nothing late, the offline replay's alerts
FAST = {"LIKEGUARD_GRACE": str(GRACE), "LIKEGUARD_IDLE_FLUSH": "2",
        "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}
KINDS = ("corrupt", "truncated", "wrong_version", "foreign_format", "forged")
#: the generation the unusable checkpoints claim; the empty slots' first is the next
GEN = 5
#: what the worker's log line says of each kind
REASONS = {"corrupt": "checksum mismatch", "truncated": "truncated snapshot",
           "wrong_version": f"state version 5, this engine {Engine.STATE_VERSION}",
           "foreign_format": "checkpoint format version 99",
           "forged": "signature does not verify"}


class _Payload:
    """A forger's pickle: loading it creates ``path`` (any code could run instead)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.path, "w")


def _devices(n: int) -> list[str]:
    """``n`` farm devices whose keys fall on distinct device-view partitions."""
    out: dict[int, str] = {}
    k = 0
    while len(out) < n:
        out.setdefault(kafka_partition(f"d-farm-{k}", 6), f"d-farm-{k}")
        k += 1
    return list(out.values())


def _farms(topics: WorkerTopics, devices: list[str]) -> list[tuple[str, None, bytes]]:
    """Per device, 40 old accounts liking posts of one merchant within a minute."""
    events = []
    for k, dev in enumerate(devices):
        for i in range(40):
            ts = T0 + i * 1.5 + k * 0.25
            events.append((ts, like_value(f"l-{dev}-{i}", f"o-{dev}-{i}", f"post:{k}-{i % 3}",
                                          f"19000000{k:02d}", ts, ip=f"10.{k}.{i}.1",
                                          device=dev, user_created=T0 - 400 * 86400)))
    events.sort(key=lambda e: e[0])
    return [(topics.likes, None, value) for _, value in events]


def _unusable(kind: str, p: int, marker: str) -> list[tuple[bytes, bytes]]:
    """The changelog records (key, value) of one unusable checkpoint of ``device/p``:
    its chunk, then its header, as the worker writes them."""
    key = CHECKPOINT_KEY.encode()
    context = checkpoint_context("device", p, 0, False)
    eng = Engine(EngineConfig(grace=GRACE), views=["device"])
    snap = eng.snapshot(key=key, context=context)  # genuine: this worker's key and slot
    if kind == "truncated":  # cut short, then stored whole and checksummed
        snap = snap[:len(snap) // 2]
    elif kind == "wrong_version":  # the layout before signatures (state version 5)
        _, hlen, clen, rlen = struct.unpack_from("<IIII", snap, 8)
        parts = snap[24:24 + hlen + clen + rlen]
        snap = b"LGENGINE" + struct.pack("<III", 5, hlen, clen) + parts
    elif kind == "forged":  # well-formed, its pickle a payload, signed with the forger's key
        _, hlen, clen, _rlen = struct.unpack_from("<IIII", snap, 8)
        evil = pickle.dumps(_Payload(marker))
        body = (b"LGENGINE" + struct.pack("<IIII", Engine.STATE_VERSION, hlen, clen, len(evil))
                + snap[24:24 + hlen + clen] + evil)
        snap = body + Engine._sign(b"forger-key-" + b"f" * 32, context, body)
    blob = _core.compress(snap)
    crc = zlib.crc32(blob)
    if kind == "corrupt":  # bytes damaged after the checksum was taken
        blob = blob[:20] + bytes(b ^ 0xFF for b in blob[20:40]) + blob[40:]
    header = {"v": 99 if kind == "foreign_format" else CHECKPOINT_VERSION, "gen": GEN,
              "chunks": 1, "offset": 0, "flushed": False, "bytes": len(blob), "crc": crc,
              "written_at": "2026-11-24T10:00:00.000Z"}
    return [(f"device/{p}/{GEN}/0".encode(), blob), (f"device/{p}".encode(), orjson.dumps(header))]


def test_unusable_checkpoints_start_their_partitions_empty(kafka_bootstrap, worker_factory,
                                                           tmp_path):
    topics = WorkerTopics.unique("lg-trust")
    topics.create(kafka_bootstrap)
    changelog = f"{topics.app_id}-checkpoints-changelog"
    create_topics(kafka_bootstrap, [changelog], configs=CHECKPOINT_TOPIC_CONFIG)
    devices = _devices(len(KINDS))
    slots = {kind: kafka_partition(dev, 6) for kind, dev in zip(KINDS, devices, strict=True)}
    marker = tmp_path / "forged-pickle-ran"
    records, parts = [], []
    for kind, p in slots.items():
        for key, value in _unusable(kind, p, str(marker)):
            records.append((changelog, key, value))
            parts.append(p)
    produce(kafka_bootstrap, records, parts)

    worker = worker_factory(topics, FAST).start()
    worker.wait_ready()
    likes = _farms(topics, devices)
    produce(kafka_bootstrap, likes)
    expected = offline_alerts(likes, topics, EngineConfig(grace=GRACE))
    farms = {a["entity"]["id"] for a in expected if a["detector"] == "device_farm@1"}
    assert farms == set(devices)  # each unusable partition has an alert to raise
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(expected, worker, timeout=90, settle=2.0)
    reader.close()
    assert alert_diff(got, expected) == ""
    assert worker.alive()

    log = worker.log_text()
    for kind, p in slots.items():
        lines = [x for x in log.splitlines() if f"checkpoint device/{p} is unusable" in x]
        assert len(lines) == 1, (kind, lines, worker.tail())
        assert REASONS[kind] in lines[0], (kind, lines[0])
        assert lines[0].rstrip().endswith(f"partition device/{p} starts empty"), lines[0]
        assert f"restored device/{p} " not in log
    assert not marker.exists(), "the forged checkpoint's pickle was loaded"
    assert CHECKPOINT_KEY not in log
    assert "Traceback" not in log

    # each empty slot's checkpoints replaced the unusable one (and deleted its chunk)
    def headers() -> dict[str, int]:
        out: dict[str, int] = {}
        for r in read_to_end(kafka_bootstrap, changelog):
            k = r.key.decode()
            if k.count("/") == 1 and r.value is not None:
                out[k] = orjson.loads(r.value)["gen"]
        return out

    wait_for(lambda: all(headers().get(f"device/{p}", 0) > GEN for p in slots.values()), 30,
             lambda: f"{headers()}\n{worker.tail()}", interval=1.0, alive=worker.alive)
    tombstoned = {r.key for r in read_to_end(kafka_bootstrap, changelog) if r.value is None}
    assert {f"device/{p}/{GEN}/0".encode() for p in slots.values()} <= tombstoned
