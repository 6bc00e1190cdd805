"""End-to-end tests of the streaming worker on a real Kafka broker.

Each test runs ``python -m streams.worker`` as a subprocess with its own app
id and topic names, produces contract records with kafka-python, and reads
the alerts and dead-letter topics back.
"""

from __future__ import annotations

import pytest

from detectors.events import parse_time
from tests.worker_harness import (
    TopicReader,
    WorkerTopics,
    alert_ids,
    campaign_records,
    offline_alerts,
    produce,
    wait_for,
)

pytestmark = pytest.mark.kafka

FAST = {"LIKEGUARD_IDLE_FLUSH": "2", "LIKEGUARD_CHECKPOINT_INTERVAL": "1"}
CONTRACT_FIELDS = {"alert_id", "entity", "window", "score", "severity", "action", "reasons",
                   "evidence", "detector", "emitted_at"}


def test_campaign_raises_alerts(kafka_bootstrap, worker_factory):
    topics = WorkerTopics.unique("lg-campaign")
    topics.create(kafka_bootstrap)
    worker = worker_factory(topics, FAST).start()
    worker.wait_ready()
    records = campaign_records(topics)
    produce(kafka_bootstrap, records)
    expected = offline_alerts(records, topics)
    assert {a["detector"] for a in expected} >= {"device_farm@1", "paid_likes@1"}

    reader = TopicReader(kafka_bootstrap, topics.alerts)
    try:
        wait_for(lambda: alert_ids(reader.poll() and reader.values()) >= alert_ids(expected), 60,
                 lambda: f"alerts so far: {reader.values()}\n{worker.tail()}", alive=worker.alive)
    finally:
        reader.close()
    got = {a["alert_id"]: (a, r) for a, r in zip(reader.values(), reader.records, strict=True)}
    assert set(got) == alert_ids(expected)
    for a, rec in got.values():
        assert set(a) == CONTRACT_FIELDS
        assert rec.key.decode() == f"{a['entity']['type']}:{a['entity']['id']}"
        assert 0 <= a["score"] <= 1
        assert a["severity"] in ("info", "warning", "critical")
        assert a["action"] in ("review", "clear_likes", "limit_payments", "ban")
        assert parse_time(a["window"]["start"]) <= parse_time(a["window"]["end"])
        assert parse_time(a["emitted_at"]) > parse_time(a["window"]["end"])  # wall clock now
        assert a["reasons"] and all({"code", "detail", "value", "threshold"} <= set(r)
                                    for r in a["reasons"])
    farm = [a for a, _ in got.values() if a["entity"] == {"type": "device", "id": "d-farm-1"}]
    assert farm and max(a["severity"] for a in farm) == "critical"
    assert any(a["action"] == "ban" for a in farm)
    assert set(farm[0]["evidence"]["sample_ids"]) <= {f"l-farm-{i}" for i in range(40)}
    paid = [a for a, _ in got.values() if a["detector"] == "paid_likes@1"]
    assert [a["entity"] for a in paid] == [{"type": "merchant", "id": "1900000042"}]
    assert {r["code"] for r in paid[0]["reasons"]} >= {"token_paid_likers"}
