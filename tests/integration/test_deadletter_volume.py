"""Dead-letter completeness at volume, on the real broker.

Over 10,000 bad records of every kind the contract names (and some it does
not: ``null``, empty values, arrays, numbers, a 900 KB value that is not
UTF-8, values with no bytes at all, absurd amounts and years, unbounded
strings) are mixed into a valid campaign over the six partitions of both
input topics. The worker must dead-letter exactly the bad records, one
letter per offset, each with the reason the validator gives; count exactly
the valid events in each view; raise exactly the clean run's alerts; and
commit its input offsets to the end of every partition.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.engine import route_keys
from detectors.parsing import BadRecord, parse_like, parse_payment
from streams.topics import MAX_DEAD_LETTER_ORIGINAL
from tests.helpers import with_path
from tests.worker_harness import (
    T0,
    TopicReader,
    WorkerTopics,
    alert_diff,
    campaign_records,
    committed_offsets,
    like_value,
    offline_alerts,
    payment_value,
    produce,
    read_to_end,
    wait_for,
)

pytestmark = pytest.mark.kafka

GRACE = 3600.0
FAST = {"LIKEGUARD_GRACE": str(GRACE), "LIKEGUARD_IDLE_FLUSH": "2",
        "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}
N_BAD = 10_200
PARTITIONS = 6

_LIKE = orjson.loads(like_value("l-x", "o-x", "post:1", "1900000001", T0, ip="10.0.0.1",
                                device="d-x", user_created=T0 - 86400 * 30))
_PAY = orjson.loads(payment_value("tx-x", "1900000001", "o-x", 100, T0, ip="10.0.0.1",
                                  device="d-x"))


def _bad_values(rng: random.Random) -> list[Callable[[int], tuple[bool, bytes | None]]]:
    """Makers of bad values, ``(is_payment, value)`` for a serial number."""
    like_fields = ["like_id", "user_openid", "target_id", "owner_mchid", "ts"]
    pay_fields = ["transaction_id", "mchid", "trade_state", "success_time", "payer.openid",
                  "amount.total", "payer", "amount"]
    wrong = [1, 1.5, True, [], {}, None, "x"]
    big = "x" * 300

    def like(i: int, **over: object) -> dict:
        return {**_LIKE, "like_id": f"l-bad-{i}", **over}

    def pay(i: int) -> dict:
        return {**_PAY, "transaction_id": f"tx-bad-{i}"}

    return [
        lambda i: (False, orjson.dumps(like(i))[:rng.randrange(1, 60)]),  # cut short
        lambda i: (rng.random() < 0.5, orjson.dumps(like(i)).replace(b"o-x", b"o-\xff\xfe")),
        lambda i: (rng.random() < 0.5, rng.choice([b"null", b"", b"[]", b"[1, 2]", b'"like"',
                                                   b"42", b"true", b"{", b"\x00"])),
        lambda i: (rng.random() < 0.5, None),  # a record with no value at all
        lambda i: (False, orjson.dumps(with_path(like(i), rng.choice(like_fields)))),
        lambda i: (True, orjson.dumps(with_path(pay(i), rng.choice(pay_fields)))),
        lambda i: (False, orjson.dumps(with_path(like(i), rng.choice(like_fields),
                                                 rng.choice(wrong[:5])))),
        lambda i: (True, orjson.dumps(with_path(pay(i), rng.choice(
            ["amount.total", "success_time", "mchid"]), rng.choice(wrong)))),
        lambda i: (True, orjson.dumps(with_path(pay(i), "amount.total",
                                                rng.choice([0, -5, 2**63 - 1, 10**10 + 1])))),
        lambda i: (False, orjson.dumps(like(i, ts=rng.choice(
            ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2999-01-01T00:00:00Z",
             "2026-13-01T00:00:00Z", "yesterday"])))),
        lambda i: (False, orjson.dumps(like(i, user_created="2999-01-01T00:00:00Z"))),
        lambda i: (False, orjson.dumps(like(i, **{rng.choice(["target_id", "user_openid",
                                                              "device_id"]): big * 40}))),
        lambda i: (False, orjson.dumps(like(i, client_ip="999.1.1.1", action="superlike"))),
    ]


def _verdict(is_payment: bool, value: bytes | None) -> str | None:
    """The validator's reason for rejecting ``value`` (``None``: it is not bad)."""
    try:
        (parse_payment if is_payment else parse_like)(value)
    except BadRecord as exc:
        return exc.reason
    return None


def test_every_bad_record_is_dead_lettered_once_and_nothing_valid_is_lost(
        kafka_bootstrap, worker_factory):
    topics = WorkerTopics.unique("lg-dlq")
    topics.create(kafka_bootstrap, partitions=PARTITIONS)
    rng = random.Random("dead-letters|1")
    makers = _bad_values(rng)
    bad: list[tuple[str, bytes | None, str]] = []
    while len(bad) < N_BAD:
        is_payment, value = rng.choice(makers)(len(bad))
        reason = _verdict(is_payment, value)
        if reason is not None:  # what the validator would accept is not a bad record
            bad.append((topics.payments if is_payment else topics.likes, value, reason))
    huge = b"\xff" + bytes(rng.randrange(256) for _ in range(900 * 1024))
    bad.append((topics.likes, huge, "not_utf8"))
    assert set(Counter(r for _, _, r in bad)) >= {
        "not_utf8", "not_json", "not_object", "missing_field", "wrong_type", "bad_time",
        "out_of_range"}

    valid = campaign_records(topics)
    records: list[tuple[str, bytes | None, bytes | None]] = [(t, b"bad", v) for t, v, _ in bad]
    records += valid
    order = list(range(len(records)))
    rng.shuffle(order)
    # the valid records keep their order among themselves (event time), spread over the mix
    valid_slots = sorted(order.index(len(bad) + k) for k in range(len(valid)))
    mixed: list[tuple[str, bytes | None, bytes | None]] = [records[i] for i in order]
    for slot, rec in zip(valid_slots, valid, strict=True):
        mixed[slot] = rec
    bad_at = [i for i, rec in enumerate(mixed) if rec[1] == b"bad"]
    parts = [rng.randrange(PARTITIONS) for _ in mixed]

    worker = worker_factory(topics, FAST).start()
    worker.wait_ready()
    meta = produce(kafka_bootstrap, mixed, parts)

    expected = offline_alerts(valid, topics, EngineConfig(grace=GRACE))
    assert expected  # the clean run has alerts to compare with
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(expected, worker, timeout=120, settle=3.0)
    reader.close()
    assert alert_diff(got, expected) == ""

    wait_for(lambda: sum(v for (n, _), v in worker.metrics().items()
                         if n == "likeguard_events_rejected_total") >= len(bad), 120,
             worker.tail, alive=worker.alive)
    letters = read_to_end(kafka_bootstrap, topics.deadletter)
    assert len(letters) == len(bad)
    by_offset = {}
    for rec in letters:
        d = orjson.loads(rec.value)
        key = (d["topic"], d["partition"], d["offset"])
        assert key not in by_offset, f"two dead letters for {key}"
        by_offset[key] = d
    reasons = {}
    for i in bad_at:
        t, _key, value = mixed[i]
        reasons[(t, meta[i].partition, meta[i].offset)] = _verdict(t == topics.payments, value)
    assert set(by_offset) == set(reasons)
    for key, d in by_offset.items():
        assert d["reason"] == reasons[key], (key, d["reason"], d["detail"])
        assert d["detail"]
    letter = by_offset[next(k for k, d in by_offset.items() if d.get("size") == len(huge))]
    assert letter["truncated"] and letter["encoding"] == "base64"
    assert len(letter["original"]) <= 4 * MAX_DEAD_LETTER_ORIGINAL // 3 + 4

    events = []
    for t, _k, v in valid:
        ev = parse_payment(v) if t == topics.payments else parse_like(v)
        assert ev is not None
        events.append(ev)
    per_view = Counter(view for ev in events for view in route_keys(ev))
    for view, n in per_view.items():
        assert worker.metric("likeguard_view_events_total", view=view) == n, view

    ends = {(m.topic, m.partition): m.offset + 1 for m in meta}
    group = f"{topics.app_id}-ingest"  # streams.ingest.ingest_group
    wait_for(lambda: committed_offsets(kafka_bootstrap, group) == ends, 30,
             lambda: f"{committed_offsets(kafka_bootstrap, group)} != {ends}",
             alive=worker.alive)
    assert worker.alive()
