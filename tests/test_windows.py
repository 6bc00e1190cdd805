"""Reordering, watermarks, de-duplication and sliding counts."""

from __future__ import annotations

import pickle
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


def _feed_in_chunks(r: Reorderer, chunks: list[tuple[str, list[float]]]) -> list[float]:
    """Push whole chunks of each source in turn (as a consumer fetches a backlog);
    return the event times that arrived behind the watermark."""
    late = []
    for source, times in chunks:
        for ts in times:
            if r.is_late(ts):
                late.append(ts)
            else:
                r.push(ts, f"{source}{ts}", ts, source=source)
        list(r.release())
    return late


def test_a_source_declared_behind_is_waited_for_beyond_max_skew() -> None:
    # p0 is sparse: its first chunk spans 1,000 s; p1 is dense: 100 s per chunk
    chunks = [("p0", [float(t) for t in range(0, 1000, 50)])]
    chunks += [("p1", [float(t) for t in range(c, c + 100)]) for c in range(0, 1000, 100)]
    plain = Reorderer(grace=10, max_skew=60)
    assert len(_feed_in_chunks(plain, chunks)) > 800  # p1 left behind: most of it late
    held = Reorderer(grace=10, max_skew=60)
    held.progress(None, "p0", behind=True)
    held.progress(None, "p1", behind=True)
    assert _feed_in_chunks(held, chunks) == []
    assert held.watermark == 940.0  # the slowest source (p0 at 950) minus grace
    # both caught up: no longer behind, the watermark follows them as before
    held.progress(999.0, "p1", behind=False)
    held.progress(999.0, "p0", behind=False)
    assert held.behind == set() and held.watermark == 989.0


def test_behind_is_dropped_when_the_buffer_is_too_large_and_survives_snapshots() -> None:
    r = Reorderer(grace=10, max_skew=60, max_held=50)
    r.progress(None, "slow", behind=True)
    for i in range(40):
        r.push(float(i * 10), f"e{i}", i, source="fast")
    assert r.watermark == float("-inf")  # 40 held: still waiting for "slow"
    restored = pickle.loads(pickle.dumps(r))
    assert restored.behind == {"slow"} and restored.sources["slow"] == float("-inf")
    for i in range(40, 60):
        restored.push(float(i * 10), f"e{i}", i, source="fast")
    # more than max_held buffered: "slow" is left behind like any lagging source
    assert restored.watermark == 590.0 - 10  # only "fast" is left
    assert "slow" not in restored.sources


def test_a_snapshot_from_before_behind_existed_restores() -> None:
    r = Reorderer(grace=5, max_skew=30)
    r.push(1.0, "a", "a", source="p0")
    state = dict(r.__dict__)
    del state["behind"], state["max_held"]
    old = Reorderer.__new__(Reorderer)
    old.__setstate__(state)
    old.progress(None, "p1", behind=True)
    assert old.behind == {"p1"} and old.max_held > 0


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
