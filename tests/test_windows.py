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


def test_progress_marks_move_a_source_without_events() -> None:
    r = Reorderer(grace=10, max_skew=60)
    r.push(100.0, "a", "a1", source="p0")
    r.push(101.0, "b", "b1", source="p1")
    r.progress(130.0, "p0")  # a mark: p0 reached 130 though this buffer saw none of it
    r.progress(161.0, "p1")  # start-up hold (until 160) is over
    assert r.watermark == 120.0  # the slowest source (p0 at 130) minus grace
    assert [e for _, e in r.release()] == ["a1", "b1"]
    r.progress(175.0, "p0")
    assert r.watermark == 151.0  # now p1 (161) is the slowest
    r.progress(150.0, "p0")  # marks never move a source back
    assert r.sources["p0"] == 175.0 and r.watermark == 151.0
    # without the mark, p0 (at 100) would have been left behind at 161: watermark 91
    q = Reorderer(grace=10, max_skew=60)
    q.push(100.0, "a", "a1", source="p0")
    q.push(101.0, "b", "b1", source="p1")
    q.progress(161.0, "p1")
    assert q.watermark == 91.0 and "p0" not in q.sources


def test_progress_mark_newest_bounds_max_ts() -> None:
    """A forwarding stage marks its watermark + grace; its newest input is older."""
    r = Reorderer(grace=10, max_skew=60)
    r.push(100.0, "a", "a1", source="u0")
    r.progress(200.0, "u0", newest=180.0)
    assert r.max_ts == 180.0  # what a flush runs to
    assert r.watermark == 190.0  # the mark itself: 200 - grace
    g = Reorderer(grace=10)  # one global watermark: a mark still moves it
    g.progress(50.0, newest=40.0)
    assert (g.watermark, g.max_ts) == (40.0, 40.0)


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
