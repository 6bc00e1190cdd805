"""Alerts the broker refuses (issue 16, item 4), on a real broker.

An alert too large for the alerts topic (its ``max.message.bytes``) goes to
the dead-letter topic as a stub with the reason ``alert_too_large``; the
worker stays up and every other alert is delivered. A refusal the worker
cannot resolve (write not authorised, the topic gone) stops it without
committing the input behind the alert: ``tests/integration/test_acls.py``
revokes the write access of a running worker.
"""

from __future__ import annotations

import orjson
import pytest

from detectors.config import EngineConfig
from tests.kafka_broker import create_topics
from tests.worker_harness import (
    TopicReader,
    WorkerTopics,
    campaign_records,
    offline_alerts,
    produce,
    read_to_end,
    wait_for,
)

pytestmark = pytest.mark.kafka

GRACE = 3600.0  # nothing is late: the alerts are the offline replay's
FAST = {"LIKEGUARD_GRACE": str(GRACE), "LIKEGUARD_IDLE_FLUSH": "2",
        "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}
#: the alerts topic's record limit: the campaigns' alerts are 840-1,250 bytes
#: of JSON, so some fit (alone in their record batch) and some do not
LIMIT = 1000


def test_an_alert_too_large_for_its_topic_is_dead_lettered(kafka_bootstrap, worker_factory):
    topics = WorkerTopics.unique("lg-big")
    create_topics(kafka_bootstrap, [topics.alerts], configs={"max.message.bytes": str(LIMIT)})
    create_topics(kafka_bootstrap, [topics.payments, topics.likes, topics.deadletter,
                                    topics.verdicts])
    records = campaign_records(topics)
    expected = {a["alert_id"]: a for a in offline_alerts(records, topics, EngineConfig(grace=GRACE))}
    size = {i: len(orjson.dumps(a)) for i, a in expected.items()}
    assert min(size.values()) < LIMIT - 100 and max(size.values()) > LIMIT, size
    worker = worker_factory(topics, FAST).start()
    worker.wait_ready()
    produce(kafka_bootstrap, records)

    def stubs() -> dict[str, dict]:
        out = {}
        for r in read_to_end(kafka_bootstrap, topics.deadletter):
            d = orjson.loads(r.value)
            if d["reason"] == "alert_too_large":
                out[orjson.loads(d["original"])["alert_id"]] = d
        return out

    reader = TopicReader(kafka_bootstrap, topics.alerts)
    try:
        def all_accounted() -> bool:
            reader.poll()
            got = {a["alert_id"] for a in reader.values()}
            return got | set(stubs()) >= set(expected)

        wait_for(all_accounted, 90, worker.tail, alive=worker.alive)
        delivered = {a["alert_id"]: a for a in reader.values()}
    finally:
        reader.close()
    dead = stubs()
    # every alert is either delivered whole or dead-lettered, never both, never lost
    assert set(delivered) | set(dead) == set(expected)
    assert not set(delivered) & set(dead)
    assert delivered and dead, (sorted(size.values()), list(delivered), list(dead))
    for i, a in delivered.items():
        assert {**a, "emitted_at": None} == {**expected[i], "emitted_at": None}
    for i, d in dead.items():
        stub = orjson.loads(d["original"])
        assert d["topic"] == topics.alerts and d["size"] > LIMIT - 100
        assert "MessageSizeTooLarge" in d["detail"] or "too large" in d["detail"], d
        # the stub names the alert and says what it was; the full alert did not fit
        for k in ("alert_id", "entity", "window", "detector", "score", "severity", "action"):
            assert stub[k] == expected[i][k], (k, stub, expected[i])
    assert worker.metric("likeguard_events_rejected_total", topic=topics.alerts,
                         reason="alert_too_large") == len(dead)
    assert worker.alive()
    assert "Traceback" not in worker.log_text()
    assert worker.stop() == 0
