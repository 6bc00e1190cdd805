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
With ``--partitions P`` the state is laid out as a worker's: one engine per
view and partition, each event routed by its view keys, the user view's
forwards fed to the lockstep engines, and each engine's checkpoint (its
snapshot, compressed) taken every ``--checkpoint-every`` batches and kept
until the next replaces it.

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

from detectors import _core
from detectors.config import EngineConfig
from detectors.engine import ALL_VIEWS, Engine
from detectors.events import Like, Payment
from detectors.partitioning import kafka_partition
from detectors.views import route_keys

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


class Sharded:
    """Engines laid out as a worker's: one per view and partition (the calls
    :func:`run`, :func:`items` and :func:`main` make of an :class:`Engine`)."""

    def __init__(self, cfg: EngineConfig, partitions: int, checkpoint_every: int) -> None:
        self.n = partitions
        self.engines = {(v, p): Engine(cfg, views=[v]) for v in ALL_VIEWS
                        for p in range(partitions)}
        self.every = checkpoint_every
        self.batches = 0
        #: the last checkpoint of each engine, as the worker's table holds it
        self.checkpoints: dict[tuple[str, int], bytes] = {}

    def process_many(self, events, sources) -> None:
        parts: dict[tuple[str, int], list] = {}
        for ev in events:
            for view, key in route_keys(ev).items():
                parts.setdefault((view, kafka_partition(key, self.n)), []).append(ev)
        for (view, p), evs in parts.items():
            eng = self.engines[(view, p)]
            eng.process_many(evs, [None] * len(evs))
            if view == "user":
                self._forward(eng)
        self.batches += 1
        if self.every and self.batches % self.every == 0:
            for k, eng in self.engines.items():
                self.checkpoints[k] = _core.compress(eng.snapshot(key=b"bench"))

    def _forward(self, user: Engine) -> None:
        """A user engine's forwards to the lockstep engines of their targets."""
        fwd: dict[int, list] = {}
        for _view, key, co in user.take_forwards():
            fwd.setdefault(kafka_partition(key, self.n), []).append(co)
        for q, cos in fwd.items():
            self.engines[("lockstep", q)].process_many(cos, [None] * len(cos))

    def metrics(self) -> dict:
        state: dict[str, list[int]] = {}
        for eng in self.engines.values():
            for view, (keys, n) in eng.metrics()["state"].items():
                got = state.setdefault(view, [0, 0])
                got[0] += keys
                got[1] += n
        return {"state": state}

    def flush(self) -> None:
        for (view, _p), eng in self.engines.items():  # lockstep last: the user views forward
            eng.flush()
            if view == "user":
                self._forward(eng)

    @property
    def compactions(self) -> int:
        return sum(eng.core.compactions for eng in self.engines.values())


def run(engine: Engine | Sharded, batches) -> int:
    n = 0
    for b in batches:
        engine.process_many(b, [None] * len(b))
        n += len(b)
    return n


def items(engine: Engine | Sharded) -> int:
    return sum(v[1] for v in engine.metrics()["state"].values())


def bursts(engine: Engine | Sharded, args: argparse.Namespace) -> tuple[int, dict, dict, list[dict]]:
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
    ap.add_argument("--partitions", type=int, default=0,
                    help="engines per view as a worker with this many partitions (0: one engine)")
    ap.add_argument("--checkpoint-every", type=int, default=5,
                    help="with --partitions: batches between the engines' checkpoints")
    ap.add_argument("--allowed", type=float, default=1.25, help="end / baseline allowed")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "memory_return.json")
    args = ap.parse_args(argv)

    engine: Engine | Sharded = (Sharded(EngineConfig(), args.partitions, args.checkpoint_every)
                                if args.partitions else Engine(EngineConfig()))
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
        "compactions": (engine.compactions if isinstance(engine, Sharded)
                        else engine.core.compactions),
        "partitions": args.partitions,
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
