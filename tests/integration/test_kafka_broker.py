"""The session's real Kafka broker works with every client the project uses.

kafka-python (admin, tools), kcat (recordings in CONTRACT.md's JSON Lines format)
and aiokafka (what faust-streaming runs on) each produce and consume against it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from tests.kafka_broker import KAFKA_SH, consume_records, unique_name

pytestmark = pytest.mark.kafka

KCAT = shutil.which("kcat")
needs_kcat = pytest.mark.skipif(KCAT is None, reason="kcat not installed (apt-get install kcat)")


def _producer(bootstrap: str, **kw):
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **kw)


def _assert_offsets_contiguous(records) -> None:
    by_partition = defaultdict(list)
    for r in records:
        by_partition[r.partition].append(r.offset)
    for partition, offsets in by_partition.items():
        assert offsets == list(range(len(offsets))), (partition, offsets)


def test_kafka_python_roundtrip_six_partitions(kafka_bootstrap, kafka_topic_factory):
    topic = kafka_topic_factory("kp", partitions=6)
    producer = _producer(kafka_bootstrap)
    try:
        assert producer.partitions_for(topic) == set(range(6))
        sent = {}  # (key, value) -> partition the broker acknowledged
        futures = []
        for i in range(60):
            key = f"user-{i % 12}".encode()
            value = json.dumps({"i": i, "text": "点赞"}, ensure_ascii=False).encode()
            futures.append(((key, value), producer.send(topic, key=key, value=value)))
        for p in range(6):  # make sure every partition holds data, whatever the hashing
            key, value = f"explicit-{p}".encode(), f"to partition {p}".encode()
            futures.append(((key, value), producer.send(topic, key=key, value=value, partition=p)))
        for kv, fut in futures:
            meta = fut.get(timeout=30)
            assert meta.topic == topic
            sent[kv] = meta.partition
    finally:
        producer.close()

    records = consume_records(kafka_bootstrap, topic, len(sent))
    assert len(records) == len(sent) == 66
    got = {(r.key, r.value): r.partition for r in records}
    assert got == sent
    assert {r.partition for r in records} == set(range(6))
    for p in range(6):
        assert got[(f"explicit-{p}".encode(), f"to partition {p}".encode())] == p
    key_partitions = defaultdict(set)
    for r in records:
        key_partitions[r.key].add(r.partition)
    assert all(len(ps) == 1 for ps in key_partitions.values()), key_partitions
    json_values = [json.loads(r.value.decode("utf-8")) for r in records if r.key.startswith(b"user-")]
    assert sorted(v["i"] for v in json_values) == list(range(60))
    assert {v["text"] for v in json_values} == {"点赞"}
    _assert_offsets_contiguous(records)


def test_auto_created_topic_gets_six_partitions(kafka_bootstrap):
    from kafka import KafkaAdminClient

    topic = unique_name("auto")
    producer = _producer(kafka_bootstrap)
    try:
        meta = producer.send(topic, key=b"k", value=b"v").get(timeout=30)
        assert producer.partitions_for(topic) == set(range(6))
    finally:
        producer.close()
    assert 0 <= meta.partition < 6
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        (desc,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(desc["partitions"]) == 6


@needs_kcat
def test_kcat_produce_kafka_python_consume(kafka_bootstrap, kafka_topic_factory):
    topic = kafka_topic_factory("kcatp", partitions=6)
    lines = [
        f"k{i}|" + json.dumps({"like_id": f"l-{i}", "note": "赞"}, ensure_ascii=False) for i in range(40)
    ]
    proc = subprocess.run(
        [
            KCAT,
            "-b",
            kafka_bootstrap,
            "-P",
            "-t",
            topic,
            "-K",
            "|",
            "-X",
            "topic.partitioner=murmur2_random",
        ],  # the Java/kafka-python key hashing
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr

    records = consume_records(kafka_bootstrap, topic, 40)
    assert len(records) == 40
    got = {r.key.decode(): json.loads(r.value.decode("utf-8")) for r in records}
    assert got == {f"k{i}": {"like_id": f"l-{i}", "note": "赞"} for i in range(40)}
    _assert_offsets_contiguous(records)

    # Same keys through kafka-python's default partitioner land on the same partitions.
    twin = kafka_topic_factory("kcatp-twin", partitions=6)
    producer = _producer(kafka_bootstrap)
    try:
        twin_partition = {
            f"k{i}": producer.send(twin, key=f"k{i}".encode(), value=b"x").get(timeout=30).partition
            for i in range(40)
        }
    finally:
        producer.close()
    assert {r.key.decode(): r.partition for r in records} == twin_partition
    assert len(set(twin_partition.values())) > 1


@needs_kcat
def test_kafka_python_produce_kcat_json_recording(kafka_bootstrap, kafka_topic_factory):
    """kcat -C -J prints the recording format of CONTRACT.md."""
    topic = kafka_topic_factory("kcatc", partitions=6)
    ts = 1732420805000
    producer = _producer(kafka_bootstrap)
    try:
        m1 = producer.send(topic, key=b"u-1", value=b'{"like_id":"l-1"}', timestamp_ms=ts).get(timeout=30)
        m2 = producer.send(topic, key=None, value=b'{"like_id":"l-2"}', timestamp_ms=ts + 1).get(timeout=30)
    finally:
        producer.close()

    deadline = time.monotonic() + 60
    rows: list[dict] = []
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [KCAT, "-b", kafka_bootstrap, "-C", "-t", topic, "-J", "-e", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        if len(rows) >= 2:
            break
    assert len(rows) == 2, rows
    by_payload = {r["payload"]: r for r in rows}
    r1, r2 = by_payload['{"like_id":"l-1"}'], by_payload['{"like_id":"l-2"}']
    for row in rows:
        assert {"topic", "partition", "offset", "tstype", "ts", "key", "payload"} <= row.keys()
        assert row["topic"] == topic and row["tstype"] == "create"
    assert (r1["key"], r1["ts"], r1["partition"], r1["offset"]) == ("u-1", ts, m1.partition, m1.offset)
    assert (r2["key"], r2["ts"], r2["partition"], r2["offset"]) == (None, ts + 1, m2.partition, m2.offset)


def test_aiokafka_produce_consume_with_group(kafka_bootstrap, kafka_topic_factory):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = kafka_topic_factory("aio", partitions=6)
    group = unique_name("g")
    n = 48

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            assert await producer.partitions_for(topic) == set(range(6))
            sent = {}
            for i in range(n):
                meta = await producer.send_and_wait(
                    topic,
                    key=f"k{i % 16}".encode(),
                    value=f"v{i}".encode(),
                    partition=i % 6 if i < 6 else None,
                )
                sent[f"v{i}".encode()] = (f"k{i % 16}".encode(), meta.partition, meta.offset)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            got = {}
            deadline = time.monotonic() + 60
            while len(got) < n and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for r in records:
                        got[r.value] = (r.key, r.partition, r.offset)
            assert got == sent
            assignment = consumer.assignment()
            assert {tp.partition for tp in assignment} == set(range(6))
            await consumer.commit()  # group coordinator + __consumer_offsets (RF 1) work
            end = await consumer.end_offsets(list(assignment))
            for p in range(6):
                tp = TopicPartition(topic, p)
                assert await consumer.committed(tp) == end[tp]
                assert end[tp] == 1 + max(off for (_k, part, off) in sent.values() if part == p)
        finally:
            await consumer.stop()

    asyncio.run(asyncio.wait_for(run(), timeout=120))


def test_sasl_scram_over_tls(kafka_sasl, kafka_bootstrap, kafka_topic_factory):
    """SASL_SSL + SCRAM-SHA-256: kafka-python produces, aiokafka consumes, bad password fails."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import KafkaError
    from aiokafka.helpers import create_ssl_context
    from kafka import KafkaProducer

    topic = kafka_topic_factory("sasl", partitions=6)
    producer = KafkaProducer(**kafka_sasl.kafka_python_kwargs(), acks="all")
    try:
        for i in range(6):
            producer.send(topic, key=b"k", value=f"s{i}".encode(), partition=i).get(timeout=30)
    finally:
        producer.close()

    def aio_kwargs(password: str) -> dict:
        return dict(
            bootstrap_servers=kafka_sasl.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=kafka_sasl.mechanism,
            sasl_plain_username=kafka_sasl.username,
            sasl_plain_password=password,
            ssl_context=create_ssl_context(cafile=kafka_sasl.cafile),
        )

    async def run():
        consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **aio_kwargs(kafka_sasl.password))
        await consumer.start()
        try:
            got = set()
            deadline = time.monotonic() + 60
            while len(got) < 6 and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got |= {(r.partition, r.value) for r in records}
            assert got == {(i, f"s{i}".encode()) for i in range(6)}
        finally:
            await consumer.stop()

        bad = AIOKafkaProducer(**aio_kwargs(kafka_sasl.password + "-wrong"), request_timeout_ms=10000)
        with pytest.raises(KafkaError):
            try:
                await bad.start()
            finally:
                await bad.stop()

    asyncio.run(asyncio.wait_for(run(), timeout=120))


def test_kafka_sh_start_is_idempotent_and_status_healthy(kafka_broker):
    if kafka_broker.external:
        pytest.skip("broker comes from KAFKA_BOOTSTRAP_SERVERS, not kafka.sh")
    env = dict(os.environ, KAFKA_STATE_DIR=str(kafka_broker.state_dir), PYTHON=sys.executable)
    pid_before = (kafka_broker.state_dir / "kafka.pid").read_text().strip()
    start = subprocess.run(
        ["bash", str(KAFKA_SH), "start"], env=env, capture_output=True, text=True, timeout=120
    )
    assert start.returncode == 0, start.stderr
    assert start.stdout.strip() == kafka_broker.bootstrap
    assert "already running" in start.stderr
    status = subprocess.run(
        ["bash", str(KAFKA_SH), "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"pid={pid_before}" in status.stdout
    assert (kafka_broker.state_dir / "kafka.pid").read_text().strip() == pid_before
