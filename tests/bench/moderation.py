"""What the moderation loop is worth: each generator's traffic replayed with
and without a simulated moderator answering every alert.

The moderator (:class:`detectors.moderation.SimulatedModerator`) reviews each
alert ten minutes of event time after it, answers from the labels, and is
wrong 5% of the time. Three runs per recording: no moderator; a moderator
whose verdicts take effect as with the default settings (dismissals quiet
their entities, confirmations fill the watchlist); and the same with the
verdict ranker ranking warnings below a 0.2 probability of confirmation
down to reviews (``rank_below=0.2``).
Per run it prints alerts, precision, alerts on honest look-alikes (false
alarms), campaigns found and the median delay, each over all alerts and
over the *actionable* ones (warning or critical: what a moderation queue
acts on), and writes the figures to ``out/bench_moderation.json``.

Run on demand (``make bench-moderation``); the recordings are the quality
tests' held-out ones (our simulator's test seeds, the independent
generators' held-out seeds).
"""

from __future__ import annotations

import argparse
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
from detectors.moderation import SimulatedModerator, moderated_replay  # noqa: E402
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


def _record(gen: str | None, seed: int, args: tuple[str, ...], d: Path) -> tuple[Path, Path]:
    rec, lab = d / "rec.jsonl", d / "labels.json"
    if gen is None:
        simulate(SimConfig(seed=seed, duration=7200), rec, lab)
    else:
        subprocess.run([sys.executable, str(GENERATORS / gen / "gen.py"), "--seed",
                        str(seed), "--out", str(rec), "--labels", str(lab), *args],
                       check=True, capture_output=True)
    return rec, lab


def _figures(labels: Any, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, chosen in (("all", alerts),
                         ("actionable", [a for a in alerts if a["severity"] != "info"])):
        ev = evaluate(labels, chosen)
        out[name] = {"alerts": len(chosen), "precision": round(ev.precision, 3),
                     "false_alarms": ev.false_alarms_total,
                     "campaigns_found": len(ev.detected),
                     "campaigns": len(ev.detected) + len(ev.missed) + len(ev.not_started),
                     "median_delay": ev.median_delay}
    return out


RUNS = ("no moderator", "verdicts", "verdicts + ranker")


def run(name: str, gen: str | None, seed: int, args: tuple[str, ...], delay: float,
        error_rate: float) -> dict[str, Any]:
    out: dict[str, Any] = {"recording": name}
    with tempfile.TemporaryDirectory() as tmp:
        rec, lab = _record(gen, seed, args, Path(tmp))
        labels = load_labels(lab)
        for run_name, moderator, cfg in (
                (RUNS[0], _Silent(labels), EngineConfig()),
                (RUNS[1], SimulatedModerator(labels, delay, error_rate, seed), EngineConfig()),
                (RUNS[2], SimulatedModerator(labels, delay, error_rate, seed),
                 EngineConfig(rank_below=0.2))):
            t0 = time.perf_counter()
            alerts, verdicts, summary = moderated_replay(rec, moderator, cfg)
            out[run_name] = {**_figures(labels, alerts), "verdicts": len(verdicts),
                             "wrong_verdicts": moderator.wrong,
                             "seconds": round(time.perf_counter() - t0, 1)}
        out["events"] = summary.events
    return out


class _Silent(SimulatedModerator):
    """A moderator who never answers (verdicts far beyond the recording)."""

    def __init__(self, labels: Any) -> None:
        super().__init__(labels, delay=1e9, error_rate=0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay", type=float, default=600.0, help="seconds to a verdict (600)")
    p.add_argument("--error-rate", type=float, default=0.05, help="wrong answers (0.05)")
    p.add_argument("--out", type=Path, default=REPO / "out" / "bench_moderation.json")
    a = p.parse_args(argv)
    rows = []
    print("per recording, for the runs " + " / ".join(RUNS) + "; all alerts | actionable")
    for name, gen, seed, args in RECORDINGS:
        r = run(name, gen, seed, args, a.delay, a.error_rate)
        rows.append(r)
        print(name)
        for what in ("alerts", "precision", "false_alarms", "campaigns_found", "median_delay"):
            cells = [" / ".join(f"{r[run_][scope][what] or 0:g}" for run_ in RUNS)
                     for scope in ("all", "actionable")]
            print(f"  {what:16s} {cells[0]:>24s} | {cells[1]}", flush=True)
    write_figures({"delay": a.delay, "error_rate": a.error_rate, "runs": rows}, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
