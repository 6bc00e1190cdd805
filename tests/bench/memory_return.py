"""Does memory return after a burst's windows expire? One engine, in process.

Steady traffic (ever-new accounts, each on its own device, three behind an
address, 20% of the likes on one hot target, a fifth of the events payments)
runs for ``--warm`` hours of event time; then a burst of ``--burst`` likes,
each from a new account on a new device and address, to ordinary targets;
then the steady traffic goes on for ``--after`` hours, past the longest
window (3 h) and a sweep. The resident set is sampled before the burst (the
baseline, measured in this run), at the burst's end and at the end, with the
window items; the ratios are to the baseline. With ``--bursts N`` the burst
and the traffic after it come N times, to tell memory held once (the
allocator's pages) from memory that grows with every burst. It is the soak's
question (``make soak``) without the broker and the hours of wall clock.

Run: ``python tests/bench/memory_return.py [--burst 1000000]``; figures go to
``out/memory_return.json``. Exits 1 when the end is more than ``--allowed``
times the baseline.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchkit import ROOT, InterpreterWaits, rss_mib, write_figures

from detectors.config import EngineConfig
from detectors.engine import Engine
from detectors.events import Like, Payment

T0 = 1_795_000_000.0
#: steady events per second of event time, and accounts arriving per second
RATE = 40
BATCH = 10_000


def steady(start: float, hours: float, first: int):
    """The steady traffic from ``start``: ``(events, next account number)`` per batch."""
    n = int(hours * 3600 * RATE)
    batch: list[Like | Payment] = []
    for i in range(n):
        ts = start + i / RATE
        acct = first + i // 4  # a new account every 4 events, active for a while
        user, dev, ip = f"s{acct}", f"sd{acct}", f"10.1.{(acct // 3) >> 8 & 255}.{acct // 3 & 255}"
        if i % 5 == 4:
            batch.append(Payment(f"t{i}", f"m{acct % 200}", user, 990 + acct % 50000, ts,
                                 ip=ip, device=dev))
        else:
            target = "post:hot" if i % 5 == 0 else f"post:{acct % 5000}"
            batch.append(Like(f"l{first}-{i}", user, target, f"m{acct % 200}", ts, ip=ip,
                              device=dev, user_created=ts - 86400 * 200))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def burst(start: float, n: int, minutes: float, k: int = 0):
    step = minutes * 60 / n
    for lo in range(0, n, BATCH):
        yield [Like(f"b{k}-{i}", f"bu{k}-{i}", f"post:{i % 5000}", f"m{i % 200}", start + i * step,
                    ip=f"10.2.{i >> 8 & 255}.{i & 255}", device=f"bd{k}-{i}",
                    user_created=start - 86400 * 30)
               for i in range(lo, min(n, lo + BATCH))]


def run(engine: Engine, batches) -> int:
    n = 0
    for b in batches:
        engine.process_many(b, [None] * len(b))
        n += len(b)
    return n


def items(engine: Engine) -> int:
    return sum(v[1] for v in engine.metrics()["state"].values())


def bursts(engine: Engine, args: argparse.Namespace) -> tuple[int, dict, dict, list[dict]]:
    """Warm up, then each burst and the steady traffic after it: ``(events,
    baseline, state at the last burst's end, state after each burst's windows)``."""
    events = run(engine, steady(T0, args.warm, 0))
    t = T0 + args.warm * 3600
    base = {"rss_mib": rss_mib(), "items": items(engine)}
    first = int(args.warm * 3600 * RATE) // 4 + 1
    ends = []
    for k in range(args.bursts):
        events += run(engine, burst(t, args.burst, args.burst_minutes, k))
        peak = {"rss_mib": rss_mib(), "items": items(engine)}
        events += run(engine, steady(t, args.after, first))
        t += args.after * 3600
        first += int(args.after * 3600 * RATE) // 4 + 1
        ends.append({"rss_mib": rss_mib(), "items": items(engine)})
    return events, base, peak, ends


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--burst", type=int, default=1_000_000, help="likes in the burst")
    ap.add_argument("--burst-minutes", type=float, default=10.0)
    ap.add_argument("--warm", type=float, default=3.5,
                    help="hours of steady traffic before the burst (the windows fill)")
    ap.add_argument("--after", type=float, default=3.5,
                    help="hours of steady traffic after it (its windows expire)")
    ap.add_argument("--bursts", type=int, default=1,
                    help="bursts, each followed by --after hours of steady traffic")
    ap.add_argument("--allowed", type=float, default=1.25, help="end / baseline allowed")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "memory_return.json")
    args = ap.parse_args(argv)

    engine = Engine(EngineConfig())
    t_start = time.perf_counter()
    start_rss = rss_mib()
    with InterpreterWaits() as waits:
        events, base, peak, ends = bursts(engine, args)
        engine.flush()
    end = {"rss_mib": rss_mib(), "items": items(engine)}
    fig = {
        "events": events, "burst": args.burst, "warm_hours": args.warm,
        "after_hours": args.after, "seconds": round(time.perf_counter() - t_start, 1),
        "rss_at_start_mib": round(start_rss, 1),
        "baseline": base, "peak": peak, "end": end, "after_each_burst": ends,
        "peak_ratio": round(peak["rss_mib"] / base["rss_mib"], 2),
        "end_ratio": round(end["rss_mib"] / base["rss_mib"], 2),
        "allowed": args.allowed,
        # times the core laid its state out afresh (once a burst had expired)
        "compactions": engine.core.compactions,
        # what a metrics scrape or the consumer's thread waited behind the engine
        "longest_interpreter_wait_s": round(waits.longest, 3),
        "interpreter_waits_over_100ms": waits.long_waits,
    }
    for name in ("baseline", "peak", "end"):
        f = fig[name]
        print(f"{name:>8}: {f['rss_mib']:8.0f} MiB  {f['items']:>10,} window items")
    if args.bursts > 1:
        print("after each burst: " + ", ".join(
            f"{e['rss_mib'] / base['rss_mib']:.2f}x" for e in ends))
    print(f"peak / baseline {fig['peak_ratio']}x, end / baseline {fig['end_ratio']}x "
          f"(allowed {args.allowed}x); {events:,} events in {fig['seconds']} s; "
          f"state laid out afresh {fig['compactions']} times")
    print(f"another thread waited for the interpreter at most "
          f"{fig['longest_interpreter_wait_s']} s ({waits.long_waits} waits over 0.1 s)")
    write_figures(fig, args.out)
    return 0 if fig["end_ratio"] <= args.allowed else 1


if __name__ == "__main__":
    sys.exit(main())
