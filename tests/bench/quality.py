"""Detection quality on simulated traffic, per seed (a tuning and reporting tool).

Run on demand: ``python tests/bench/quality.py --seeds 101 102 103``. Tuning
uses seeds 101-199; the quality tests use other seeds (see
``tests/quality/test_quality.py``), so thresholds are never fitted to the test data.
Writes the figures to ``out/quality.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from detectors.config import EngineConfig
from detectors.evaluate import evaluate, load_labels
from detectors.events import parse_time
from detectors.replay import replay
from detectors.simulate import SimConfig, simulate


def run_seed(seed: int, duration: float, cfg: EngineConfig, verbose: bool) -> dict:
    with tempfile.TemporaryDirectory() as d:
        rec, lab = Path(d) / "r.jsonl", Path(d) / "l.json"
        simulate(SimConfig(seed=seed, duration=duration), rec, lab)
        buf = io.StringIO()
        t0 = time.perf_counter()
        summary = replay(rec, buf, cfg)
        secs = time.perf_counter() - t0
        alerts = [orjson.loads(x) for x in buf.getvalue().splitlines()]
        labels = load_labels(lab)
    ev = evaluate(labels, alerts)
    if verbose:
        camp = {c.id: c for c in labels.campaigns}
        for cid in camp:
            print(f"  seed {seed} {cid} {camp[cid].kind:20s} delay={ev.delays.get(cid)}")
        for a in alerts:
            key = (a["entity"]["type"], a["entity"]["id"])
            end = parse_time(a["window"]["end"])
            hit = [c.id for c in labels.campaigns
                   if key[1] in getattr(c, key[0] + "s", ()) and c.start <= end <= c.end + 600]
            if not hit:
                near = [f"{c.id}:{end - c.start:+.0f}s/{end - c.end:+.0f}s" for c in labels.campaigns
                        if key[1] in getattr(c, key[0] + "s", ())]
                print(f"  FP seed {seed}: {a['detector']} {key} score={a['score']} near={near} "
                      f"{[(r['code'], r['value']) for r in a['reasons']]}")
    return {"seed": seed, "precision": ev.precision, "recall": ev.recall, "f1": ev.f1,
            "median_delay": ev.median_delay, "false_alarms": ev.false_alarms_total,
            "alerts": len(alerts), "events": summary.events, "seconds": secs,
            "missed": ev.missed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103, 104, 105])
    p.add_argument("--duration", type=float, default=3600.0)
    p.add_argument("--mode", default="both")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--out", type=Path, default=Path("out/quality.json"))
    a = p.parse_args(argv)
    cfg = EngineConfig(mode=a.mode)
    rows = [run_seed(s, a.duration, cfg, a.verbose) for s in a.seeds]
    for r in rows:
        print(f"seed {r['seed']}: P={r['precision']:.3f} R={r['recall']:.3f} F1={r['f1']:.3f} "
              f"median delay={r['median_delay']} false alarms={r['false_alarms']} "
              f"alerts={r['alerts']} missed={r['missed']}")
    print(f"mean F1 {statistics.fmean(r['f1'] for r in rows):.3f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
