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
