"""The on-demand benchmarks run the independent generators as scripts by
path; nothing else runs those benchmarks in the test suite, so a moved
generator would go unnoticed until someone ran one."""

from __future__ import annotations

from tests.bench import golden, moderation


def test_every_generator_a_benchmark_runs_exists():
    named = {r.gen for r in golden.RECORDINGS if r.gen != "sim"}
    named |= {gen for _name, gen, _seed, _args in moderation.RECORDINGS if gen is not None}
    assert named >= {"browsing", "late_delivery", "livestream", "disguised"}
    missing = {g for g in named if not (golden.GENERATORS / g / "gen.py").is_file()
               or not (moderation.GENERATORS / g / "gen.py").is_file()}
    assert missing == set()


def test_the_memory_bench_lays_the_state_out_as_a_worker(monkeypatch):
    """``memory_return.py --partitions`` spreads the traffic over an engine per
    view and partition: each view holds what one engine hosting all views
    holds once both are flushed, and every engine has its checkpoint."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import memory_return as mr

    from detectors.config import EngineConfig
    from detectors.engine import ALL_VIEWS, Engine

    one, sharded = Engine(EngineConfig()), mr.Sharded(EngineConfig(), 3, 1)
    for batch in mr.steady(mr.T0, 0.1, 0):
        one.process_many(batch, [None] * len(batch))
        sharded.process_many(batch, [None] * len(batch))
    one.flush()
    sharded.flush()
    want = one.metrics()["state"]
    got = sharded.metrics()["state"]
    routed = [v for v in ALL_VIEWS if v != "lockstep"]
    assert {v: tuple(got[v]) for v in routed} == {v: tuple(want[v]) for v in routed}
    # the user engines' forwards reach every target's lockstep engine (whose
    # windows expire by the forwards' own time, so the items may differ)
    assert got["lockstep"][0] == want["lockstep"][0]
    assert min(n for _keys, n in want.values()) > 0
    assert set(sharded.checkpoints) == {(v, p) for v in ALL_VIEWS for p in range(3)}
    # spread by key: every partition's engine holds part of its view
    assert all(eng.metrics()["state"][v][1] > 0 for (v, _p), eng in sharded.engines.items())
