"""Reordering, watermarks, de-duplication and sliding counts."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_murmur2

from detectors.windows import Deduper, Reorderer, kafka_partition, murmur2


def test_reorderer_releases_in_time_order_within_grace() -> None:
    rng = random.Random(3)
    times = [i + rng.uniform(-4, 4) for i in range(200)]
    r = Reorderer(grace=10)
    out: list[float] = []
    for i, t in enumerate(times):
        r.push(t, str(i), t)
        out += [e for _, e in r.release()]
    r.advance(float("inf"))
    out += [e for _, e in r.release()]
    assert out == sorted(times)
    assert len(r) == 0


def test_reorderer_marks_late_events() -> None:
    r = Reorderer(grace=5)
    r.push(100.0, "a", "a")
    assert r.watermark == 95.0
    assert r.is_late(94.9) and not r.is_late(95.0)
    r.advance(90.0)  # never moves back
    assert r.watermark == 95.0


def test_reorderer_tiebreak_is_deterministic() -> None:
    a, b = Reorderer(0), Reorderer(0)
    for name in ["z", "a", "m"]:
        a.push(1.0, name, name)
    for name in ["m", "z", "a"]:
        b.push(1.0, name, name)
    a.advance(2.0)
    b.advance(2.0)
    assert [e for _, e in a.release()] == [e for _, e in b.release()] == ["a", "m", "z"]


def test_deduper_forgets_after_two_horizons() -> None:
    d = Deduper(horizon=100)
    assert not d.seen("x", 10)
    assert d.seen("x", 150)  # previous generation
    assert not d.seen("x", 320)  # two generations later: forgotten
    for i in range(1000):
        d.seen(f"id{i}", 400 + i * 0.1)
    d.seen("late", 1000)
    assert len(d) < 1000  # memory follows the horizon, not history


def test_partitioner_matches_kafka_clients() -> None:
    rng = random.Random(5)
    for _ in range(300):
        key = "".join(rng.choice("abcdef0123456789:-") for _ in range(rng.randint(0, 30)))
        assert murmur2(key.encode()) & 0x7FFFFFFF == kafka_murmur2(key.encode()) & 0x7FFFFFFF
        assert kafka_partition(key, 6) == (kafka_murmur2(key.encode()) & 0x7FFFFFFF) % 6
