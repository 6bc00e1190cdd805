"""Offline throughput benchmark: ``replay`` against a parse-only loop.

Generates (once, cached under ``.cache/bench/``) a simulated recording of at
least 1,000,000 events, then measures in the same run:

* baseline: a plain loop that reads and parses every record, nothing else;
* replay: the full engine (reorder, dedupe, five views, rules, River models,
  alerts), as ``likeguard replay`` runs it (records split by source into
  temporary files, then merged by event time; both passes are timed),
  scoring one stretch on a second thread while the core takes the next;
* the same replay scoring every tick before the core goes on (as a replay
  with verdicts runs).

Prints events/s of both and their ratio, and the resident memory sampled
along the replay (it should level off: state follows the keys active in the
windows). Writes the figures to ``out/bench_replay.json``. Run on demand:
``make bench`` or ``python tests/bench/bench_replay.py [--events N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchkit import ROOT, cached_recording, rss_mib, write_figures

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.recording import read_records
from detectors.replay import ReplaySummary, iter_events, long_lived_heap, replay_file
from detectors.simulate import SimConfig


def recording(events: int, seed: int) -> Path:
    duration = 4 * 3600.0
    rate = events / duration * 1.02
    return cached_recording(f"bench-{events}-{seed}", SimConfig(
        seed=seed, duration=duration, rate=rate, n_users=200_000, n_merchants=5_000,
        campaigns=10, benign=10))


def parse_only(path: Path) -> tuple[int, float]:
    summary = ReplaySummary()
    t0 = time.perf_counter()
    n = 0
    for _ in iter_events(read_records(path), summary):
        n += 1
    return summary.records, time.perf_counter() - t0


def full_replay(path: Path) -> tuple[ReplaySummary, list[tuple[int, float, int, int]]]:
    """The replay; samples ``(records, RSS MiB, keys held, window items held)``."""
    samples: list[tuple[int, float, int, int]] = []
    engine = Engine(EngineConfig())
    alerts = 0

    def emit(_a: object) -> None:
        nonlocal alerts
        alerts += 1

    def sample(s: ReplaySummary) -> None:
        if len(samples) % 8 == 0:  # state sizes cost a pass over the keys: sample sparsely
            sizes = list(engine.sizes().values())
            keys, items = sum(k for k, _ in sizes), sum(i for _, i in sizes)
        else:
            keys, items = samples[-1][2], samples[-1][3]
        samples.append((s.records, rss_mib(), keys, items))

    # as `likeguard replay` does it: split by source, then merge by event time
    summary = replay_file(path, engine, emit, on_progress=sample)
    return summary, samples


def per_view(path: Path, limit: int) -> dict[str, float]:
    """Events/s of an engine hosting one view (how the worker runs them, with its
    garbage-collector setting), on the first ``limit`` pre-parsed events; the
    lockstep view is fed by a user view."""
    from itertools import islice

    events = list(islice(iter_events(read_records(path), ReplaySummary()), limit))
    out: dict[str, float] = {}
    for views in (["merchant"], ["ip"], ["device"], ["user", "lockstep"]):
        engine = Engine(EngineConfig(), views=views)
        with long_lived_heap():
            t0 = time.perf_counter()
            for ev in events:
                engine.process(ev)
            engine.flush()
            out["+".join(views)] = round(len(events) / (time.perf_counter() - t0))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=9001)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "bench_replay.json")
    a = p.parse_args(argv)
    path = recording(a.events, a.seed)
    n_base, t_base = parse_only(path)
    summary, samples = full_replay(path)
    inline = replay_file(path, Engine(EngineConfig()), lambda _a: None, overlap=False)
    base_rate = n_base / t_base
    rate = summary.records / summary.seconds
    inline_rate = inline.records / inline.seconds
    views = per_view(path, 300_000)
    mem = [m for _, m, _, _ in samples]
    keys = [k for _, _, k, _ in samples]
    items = [i for _, _, _, i in samples]
    quarter = max(1, len(mem) // 4)
    fig = {
        "records": summary.records,
        "events": summary.events,
        "alerts": summary.alerts,
        "parse_only_events_per_s": round(base_rate),
        "replay_events_per_s": round(rate),
        "replay_over_parse_ratio": round(rate / base_rate, 3),
        "replay_scoring_in_line_events_per_s": round(inline_rate),
        "replay_over_in_line_ratio": round(rate / inline_rate, 3),
        "parse_only_seconds": round(t_base, 2),
        "replay_seconds": round(summary.seconds, 2),
        "rss_mib_first_quarter_max": round(max(mem[:quarter]), 1) if mem else None,
        "rss_mib_last_quarter_max": round(max(mem[-quarter:]), 1) if mem else None,
        "state_keys_first_quarter_max": max(keys[:quarter]) if keys else None,
        "state_keys_last_quarter_max": max(keys[-quarter:]) if keys else None,
        "state_items_first_quarter_max": max(items[:quarter]) if items else None,
        "state_items_last_quarter_max": max(items[-quarter:]) if items else None,
        "per_view_engine_events_per_s": views,
    }
    print(f"records            {fig['records']:,}")
    print(f"parse-only loop    {fig['parse_only_events_per_s']:>10,} events/s")
    print(f"replay (engine)    {fig['replay_events_per_s']:>10,} events/s")
    print(f"ratio replay/parse {fig['replay_over_parse_ratio']:.3f}")
    print(f"replay, scoring in line {fig['replay_scoring_in_line_events_per_s']:>5,} events/s "
          f"(overlapped / in line {fig['replay_over_in_line_ratio']:.3f})")
    for name, r in views.items():
        print(f"  one view {name:14s} {r:>10,} events/s (engine only, pre-parsed)")
    print(f"RSS MiB            first quarter max {fig['rss_mib_first_quarter_max']}, "
          f"last quarter max {fig['rss_mib_last_quarter_max']}")
    print(f"state keys         first quarter max {fig['state_keys_first_quarter_max']:,}, "
          f"last quarter max {fig['state_keys_last_quarter_max']:,} "
          f"(window items {fig['state_items_first_quarter_max']:,} -> "
          f"{fig['state_items_last_quarter_max']:,})")
    write_figures(fig, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
