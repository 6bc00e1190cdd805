"""Live alert latency: a worker fed at a steady rate, timed from the alerts topic.

Starts a local broker (as ``bench_worker.py`` does; ``KAFKA_BOOTSTRAP_SERVERS``
uses that one instead) and one worker with default settings, then runs
``likeguard simulate --to-kafka`` for ``--duration`` seconds at ``--rate``
events/s: event time is the wall clock, each record produced when its
delivery time comes. For every alert read back from the alerts topic the
latency is the alert record's Kafka timestamp (set by the worker's producer
when it sent the alert) minus the end of the event-time window the alert
covers (``window.end``).

Baseline, measured in the same run: the same stream read by a bare consumer
of the input topics, timed the same way (record timestamp at the consumer
minus the event's own time): the delay the producer and the broker add before
any detector sees an event.

The target is p99 <= grace + tick + 1 s (an alert can only come once its
window's tick is past the watermark, which trails the newest event by the
grace). Alerts whose window ends in the last ``--settle`` seconds of the run
are left out (the input stops there, and the idle flush, not the stream,
would close them); the count left out is reported. Prints the percentiles and
writes them to ``out/bench_latency.json``. Run on demand: ``make bench`` or
``python tests/bench/bench_latency.py [--rate 5000] [--duration 240]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from bench_worker import PARTITIONS, Broker, cpu_seconds, scrape
from benchkit import ROOT, rss_mib, write_figures

sys.path.insert(0, str(ROOT))  # for tests.*

from detectors.config import EngineConfig  # noqa: E402
from detectors.events import parse_time  # noqa: E402
from tests.worker_harness import WorkerProcess, WorkerTopics, wait_for  # noqa: E402


def percentile(xs: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``xs`` by the nearest-rank method."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(-(-q * len(s) // 1)) - 1))]


class InputProbe(threading.Thread):
    """Samples the input topics as a bare consumer: delay of the events' arrival."""

    def __init__(self, bootstrap: str, topics: WorkerTopics) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topics.payments, topics.likes, bootstrap_servers=bootstrap,
                                      group_id=None, auto_offset_reset="latest",
                                      enable_auto_commit=False)
        self.delays: list[float] = []
        self.records = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            for batch in self.consumer.poll(timeout_ms=200).values():
                now = time.time()
                for r in batch[::50]:  # a sample: the probe must not load the machine
                    try:
                        v = orjson.loads(r.value)
                        t = v.get("success_time") or v.get("ts")
                        self.delays.append(now - parse_time(t))
                    except Exception:  # noqa: BLE001, S112 - bad records carry no time
                        continue
                self.records += len(batch)
        self.consumer.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rate", type=float, default=5000.0)
    p.add_argument("--duration", type=float, default=240.0)
    p.add_argument("--seed", type=int, default=9003)
    p.add_argument("--settle", type=float, default=30.0)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "bench_latency.json")
    a = p.parse_args(argv)
    cfg = EngineConfig()
    target = cfg.grace + cfg.tick + 1.0
    from kafka import KafkaConsumer

    with Broker() as broker, tempfile.TemporaryDirectory(prefix="lg-bench-live-") as tmp:
        topics = WorkerTopics.unique("bench-live")
        topics.create(broker.bootstrap, partitions=PARTITIONS)
        worker = WorkerProcess(broker.bootstrap, topics, Path(tmp) / "worker")
        worker.start()
        alerts_in = KafkaConsumer(topics.alerts, bootstrap_servers=broker.bootstrap,
                                  group_id=None, auto_offset_reset="earliest",
                                  enable_auto_commit=False)
        probe = InputProbe(broker.bootstrap, topics)
        try:
            worker.wait_ready(120)
            wait_for(lambda: "metrics on http" in worker.log_text(), 60, worker.tail,
                     alive=worker.alive)
            probe.start()
            sim_log = Path(tmp) / "simulate.log"
            argv = [sys.executable, "-m", "streams.cli", "simulate", "-", "--to-kafka",
                    "--bootstrap-servers", broker.bootstrap, "--seed", str(a.seed),
                    "--rate", str(a.rate), "--duration", str(a.duration),
                    "--users", "200000", "--merchants", "5000", "--campaigns", "8",
                    "--benign", "6", "--no-progress",
                    "--topic-map", f"payments.success={topics.payments}",
                    "--topic-map", f"likes={topics.likes}"]
            alerts: list[tuple[float, dict]] = []  # (record ts in s, alert)
            samples: list[dict[str, float]] = []
            assert worker.proc is not None  # started above
            pid = worker.proc.pid
            cpu0 = cpu_seconds(pid)
            with open(sim_log, "wb") as log:
                sim = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
                t_start = time.time()
                last_sample, ended = 0.0, None
                while ended is None or time.time() < ended + a.settle:  # alerts of the last windows
                    if ended is None and sim.poll() is not None:
                        ended = time.time()
                    for batch in alerts_in.poll(timeout_ms=200).values():
                        alerts.extend((r.timestamp / 1000.0, orjson.loads(r.value)) for r in batch)
                    if time.monotonic() - last_sample > 5:
                        last_sample = time.monotonic()
                        m = scrape([worker])
                        m["rss_mib"] = rss_mib(pid)
                        samples.append(m)
                    if not worker.alive():
                        raise SystemExit(f"the worker died:\n{worker.tail()}")
            cpu1 = cpu_seconds(pid)
            if sim.returncode != 0:
                raise SystemExit(f"the simulator failed:\n{sim_log.read_text()[-3000:]}")
        finally:
            probe.stopping.set()
            alerts_in.close()
            worker.stop()
        sim_text = sim_log.read_text()
    produced = int(samples[-1].get("consumed", 0)) if samples else 0
    t_stop = t_start + a.duration
    kept = [(ts - parse_time(al["window"]["end"]), al) for ts, al in alerts
            if parse_time(al["window"]["end"]) <= t_stop - a.settle]
    lat = [x for x, _ in kept]
    if not lat:
        raise SystemExit("no alerts in the measured span: nothing to time")
    fig = {
        "rate_asked": a.rate, "duration_s": a.duration,
        "input_events_consumed": produced,
        "input_events_per_s": round(produced / a.duration),
        "alerts": len(alerts), "alerts_timed": len(lat),
        "alerts_left_out_last_settle_s": len(alerts) - len(lat),
        "latency_s": {"p50": round(percentile(lat, 0.5), 2), "p90": round(percentile(lat, 0.9), 2),
                      "p99": round(percentile(lat, 0.99), 2), "max": round(max(lat), 2)},
        "target_p99_s": target,
        "baseline_input_delay_s": {
            "p50": round(percentile(probe.delays, 0.5), 3) if probe.delays else None,
            "p99": round(percentile(probe.delays, 0.99), 3) if probe.delays else None},
        "worker_cpu_ms_per_1000_events": round(1e6 * (cpu1 - cpu0) / max(produced, 1), 1),
        "worker_rss_mib_max": round(max(s["rss_mib"] for s in samples)),
        "late_events": int(samples[-1].get("late", 0)) if samples else 0,
        "simulator": [ln for ln in sim_text.splitlines() if ln.startswith("simulate:")][-1:],
    }
    la = fig["latency_s"]
    print(f"input              {fig['input_events_per_s']:,} events/s for {a.duration:g} s "
          f"({fig['worker_cpu_ms_per_1000_events']} worker CPU ms per 1,000 events)")
    print(f"alerts             {len(lat)} timed ({fig['alerts_left_out_last_settle_s']} in the last "
          f"{a.settle:g} s left out)")
    print(f"latency            p50 {la['p50']} s, p90 {la['p90']} s, p99 {la['p99']} s, "
          f"max {la['max']} s (target p99 <= {target:g} s: "
          f"{'met' if la['p99'] <= target else 'NOT met'})")
    print(f"baseline           input delay p50 {fig['baseline_input_delay_s']['p50']} s, "
          f"p99 {fig['baseline_input_delay_s']['p99']} s (bare consumer)")
    if fig["late_events"]:
        print(f"WARNING: {fig['late_events']:,} late events")
    write_figures(fig, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
