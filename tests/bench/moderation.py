"""What the moderation loop is worth: each generator's traffic replayed with
and without a simulated moderator answering every alert.

The moderator (:class:`detectors.moderation.SimulatedModerator`) reviews each
alert ten minutes of event time after it, answers from the labels, and is
wrong 5% of the time. Three runs per recording: no moderator; a moderator
whose verdicts take effect as with the default settings (dismissals quiet
their entities, confirmations fill the watchlist); and the same with the
verdict ranker ranking warnings below a 0.2 probability of confirmation
down to reviews (``rank_below=0.2``). Per run it prints alerts, precision,
alerts on honest look-alikes (false alarms) and how many of them came after
a verdict on the same look-alike, campaigns found and the median
delay, each over all alerts and over the *actionable* ones (warning or
critical: what a moderation queue acts on).

Then the campaigns come back: the recording again with every campaign's
next job a quarter of an hour after its first ends
(:func:`detectors.moderation.with_returns`: the same accounts, devices and
addresses, new merchants and targets), without and with the moderator. For
the next jobs it prints how many were found, the median delay after their
start and after their first like, and how many were found within 30 s of
their first like; over all of them and over those whose first job was
found (only those a moderator can have confirmed). The figures go to
``out/bench_moderation.json``.

Run on demand (``make bench-moderation``); the recordings are the quality
tests' held-out ones (our simulator's test seeds, the independent
generators' held-out seeds). ``--long`` asks the ranker's question on eight
hours of verdicts instead: disguised's tuning seeds 1 and 2, livestream's
tuning seed 1 and disguised's held-out seed 3, the verdicts runs without
and with the ranker, no next jobs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from detectors.config import EngineConfig  # noqa: E402
from detectors.evaluate import evaluate, load_labels  # noqa: E402
from detectors.moderation import (  # noqa: E402
    RETURN_SUFFIX,
    Returns,
    SimulatedModerator,
    false_alarms_after_verdict,
    moderated_replay,
    with_returns,
)
from detectors.simulate import SimConfig, simulate  # noqa: E402
from tests.bench.benchkit import write_figures  # noqa: E402

#: where the independent generators live (``<name>/gen.py``)
GENERATORS = REPO / "tests" / "quality"
#: (name, generator or None for our simulator, seed, extra args)
RECORDINGS: tuple[tuple[str, str | None, int, tuple[str, ...]], ...] = (
    ("simulator-7", None, 7, ()),
    ("browsing-5", "browsing", 5, ()),
    ("late_delivery-4", "late_delivery", 4, ()),
    ("livestream-5", "livestream", 5, ()),
    ("disguised-3", "disguised", 3, ("--hours", "2")),
    ("disguised-3-dense", "disguised", 3, ("--rate", "400")),
)
#: ``--long``: eight hours of verdicts for the ranker (tuning seeds, and one held out)
LONG_RECORDINGS: tuple[tuple[str, str | None, int, tuple[str, ...]], ...] = (
    ("disguised-1-8h", "disguised", 1, ("--hours", "8")),
    ("disguised-2-8h", "disguised", 2, ("--hours", "8")),
    ("livestream-1-8h", "livestream", 1, ("--hours", "8")),
    ("disguised-3-8h", "disguised", 3, ("--hours", "8")),
)


def _record(gen: str | None, seed: int, args: tuple[str, ...], d: Path) -> tuple[Path, Path]:
    rec, lab = d / "rec.jsonl", d / "labels.json"
    if gen is None:
        simulate(SimConfig(seed=seed, duration=7200), rec, lab)
    else:
        subprocess.run([sys.executable, str(GENERATORS / gen / "gen.py"), "--seed",
                        str(seed), "--out", str(rec), "--labels", str(lab), *args],
                       check=True, capture_output=True)
    return rec, lab


def _figures(labels: Any, alerts: list[dict[str, Any]], verdicts: list[Any]
             ) -> tuple[dict[str, Any], dict[str, float]]:
    """The run's figures, and the actionable alerts' delay per campaign found."""
    out: dict[str, Any] = {}
    for name, chosen in (("all", alerts),
                         ("actionable", [a for a in alerts if a["severity"] != "info"])):
        ev = evaluate(labels, chosen)
        out[name] = {"alerts": len(chosen), "precision": round(ev.precision, 3),
                     "false_alarms": ev.false_alarms_total,
                     "false_alarms_after_verdict": false_alarms_after_verdict(
                         labels, chosen, verdicts),
                     "campaigns_found": len(ev.detected),
                     "campaigns": len(ev.detected) + len(ev.missed) + len(ev.not_started),
                     "median_delay": ev.median_delay}
    return out, ev.delays


RUNS = ("no moderator", "verdicts", "verdicts + ranker")
#: the next jobs' runs
RETURN_RUNS = ("next jobs, no moderator", "next jobs, verdicts")
#: "found at once": within this many seconds of the next job's first like
AT_ONCE = 30.0


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def _return_figures(ret: Returns, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The next jobs: how many were found, how soon after their start and
    after their first like; over all of them and over those whose first job
    was found (only those can be on the watchlist)."""
    ev = evaluate(ret.labels, alerts)
    start = {c.id: c.start for c in ret.labels.campaigns}
    out: dict[str, Any] = {}
    for scope, jobs in (("all", list(ret.first_like)),
                        ("first job found", [j for j in ret.first_like
                                             if j.removesuffix(RETURN_SUFFIX) in ev.delays])):
        found = [j for j in jobs if j in ev.delays]
        after_like = [ev.delays[j] + start[j] - ret.first_like[j] for j in found]
        out[scope] = {"jobs": len(jobs), "found": len(found),
                      "median_delay": _median([ev.delays[j] for j in found]),
                      "median_after_first_like": _median(after_like),
                      "found_at_once": sum(1 for d in after_like if d <= AT_ONCE)}
    return out


def run(name: str, gen: str | None, seed: int, args: tuple[str, ...], delay: float,
        error_rate: float, returns: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"recording": name}
    with tempfile.TemporaryDirectory() as tmp:
        rec, lab = _record(gen, seed, args, Path(tmp))
        labels = load_labels(lab)
        delays: dict[str, dict[str, float]] = {}
        # --long asks the ranker's question only: no run without a moderator
        runs: list[tuple[str, SimulatedModerator, EngineConfig]] = (
            [(RUNS[0], _Silent(labels), EngineConfig())] if returns else [])
        runs += [(RUNS[1], SimulatedModerator(labels, delay, error_rate, seed), EngineConfig()),
                 (RUNS[2], SimulatedModerator(labels, delay, error_rate, seed),
                  EngineConfig(rank_below=0.2))]
        for run_name, moderator, cfg in runs:
            t0 = time.perf_counter()
            alerts, verdicts, summary = moderated_replay(rec, moderator, cfg)
            figures, delays[run_name] = _figures(labels, alerts, verdicts)
            out[run_name] = {**figures, "verdicts": len(verdicts),
                             "wrong_verdicts": moderator.wrong,
                             "seconds": round(time.perf_counter() - t0, 1)}
        out["events"] = summary.events
        # campaigns the ranker makes actionable later than the verdicts alone
        later = [delays[RUNS[2]][c] - d for c, d in delays[RUNS[1]].items()
                 if delays[RUNS[2]].get(c, float("inf")) > d]
        out["ranker_later"] = {"campaigns": len(later),
                               "by": [round(x, 1) for x in sorted(later)]}
        if not returns:
            return out
        ret = with_returns(rec, labels, Path(tmp) / "next.jsonl")
        for run_name, moderator in (
                (RETURN_RUNS[0], _Silent(ret.labels)),
                (RETURN_RUNS[1], SimulatedModerator(ret.labels, delay, error_rate, seed))):
            alerts, _, _ = moderated_replay(Path(tmp) / "next.jsonl", moderator, EngineConfig())
            out[run_name] = _return_figures(ret, alerts)
    return out


class _Silent(SimulatedModerator):
    """A moderator who never answers (verdicts far beyond the recording)."""

    def __init__(self, labels: Any) -> None:
        super().__init__(labels, delay=1e9, error_rate=0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay", type=float, default=600.0, help="seconds to a verdict (600)")
    p.add_argument("--error-rate", type=float, default=0.05, help="wrong answers (0.05)")
    p.add_argument("--out", type=Path, default=None,
                   help="figures (out/bench_moderation.json, --long: out/bench_moderation_long.json)")
    p.add_argument("--long", action="store_true",
                   help="the ranker on eight-hour recordings: verdicts without and with it")
    a = p.parse_args(argv)
    out = a.out or REPO / "out" / ("bench_moderation_long.json" if a.long
                                   else "bench_moderation.json")
    runs = RUNS[1:] if a.long else RUNS
    rows = []
    print("per recording, for the runs " + " / ".join(runs) + "; all alerts | actionable")
    for name, gen, seed, args in LONG_RECORDINGS if a.long else RECORDINGS:
        r = run(name, gen, seed, args, a.delay, a.error_rate, returns=not a.long)
        rows.append(r)
        print(name)
        for what in ("alerts", "precision", "false_alarms", "false_alarms_after_verdict",
                     "campaigns_found", "median_delay"):
            cells = [" / ".join(f"{r[run_][scope][what] or 0:g}" for run_ in runs)
                     for scope in ("all", "actionable")]
            print(f"  {what:26s} {cells[0]:>24s} | {cells[1]}", flush=True)
        later = r["ranker_later"]
        print(f"  found later with the ranker: {later['campaigns']} (by {later['by']} s)")
        if a.long:
            continue
        print("  next jobs, no moderator / verdicts; all | first job found")
        for what in ("jobs", "found", "median_delay", "median_after_first_like",
                     "found_at_once"):
            cells = [" / ".join(f"{r[run_][scope][what] or 0:g}" for run_ in RETURN_RUNS)
                     for scope in ("all", "first job found")]
            print(f"  {what:24s} {cells[0]:>16s} | {cells[1]}", flush=True)
    write_figures({"delay": a.delay, "error_rate": a.error_rate, "runs": rows}, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
