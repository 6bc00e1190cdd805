"""Streaming throughput benchmark: the Faust worker on a real broker, catching up a backlog.

Starts a local broker (``deploy/kafka/kafka.sh``, private state dir, free
ports; ``KAFKA_BOOTSTRAP_SERVERS`` uses that one instead), simulates (once,
cached under ``.cache/bench/``) a recording of ``--events`` events, produces
it into fresh input topics, and measures in the same run:

* baseline: a bare consumer (aiokafka, the client Faust runs on) reading both
  input topics to their end, nothing else;
* contender: a Faust agent that only decodes the same input with
  ``stream.take(1000)`` and orjson (``faust_take.py``, its own process): the
  floor of a worker whose input records pass through Faust one by one;
* contender: a quixstreams app that counts likes per merchant in one-minute
  windows after repartitioning them by merchant (``quix_count.py``, its own
  process and virtualenv under ``.cache/bench/``, made on first use);
* reference: the offline ``replay`` of the same recording (the same engine,
  every view in one process, no Kafka);
* the worker: ``--workers`` worker processes (``python -m streams.worker``)
  started together on the backlog. Their ``/metrics`` are scraped every
  0.2 s; the run is timed from the first input record consumed until every
  view has processed all of its events (``likeguard_view_events_total``
  reaches the count each view gets from the recording, the lockstep view
  has processed every like the user view forwarded, and no view partition
  has records left). Late (dropped) events are counted and reported: a run
  that drops events is not a throughput figure.

Prints input events/s of each, the worker's ratio to the bare consumer and
to the replay, the worker's CPU seconds per 1,000 events and its resident
memory; writes the figures to ``out/bench_worker.json``. Run on demand:
``make bench`` or ``python tests/bench/bench_worker.py [--events N]
[--workers 1,2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import cast

from benchkit import ROOT, cached_recording, rss_mib, write_figures

sys.path.insert(0, str(ROOT))  # for tests.*

from detectors.config import EngineConfig  # noqa: E402
from detectors.engine import Engine, route_keys  # noqa: E402
from detectors.parsing import BadRecord, parse_like, parse_payment  # noqa: E402
from detectors.replay import replay_file  # noqa: E402
from detectors.simulate import SimConfig  # noqa: E402
from tests.kafka_broker import KAFKA_SH, _free_ports  # noqa: E402
from tests.worker_harness import (  # noqa: E402
    WorkerProcess,
    WorkerTopics,
    produce,
    recording_records,
    wait_for,
)

PARTITIONS = 6


def recording(events: int, seed: int) -> Path:
    duration = 3600.0
    return cached_recording(f"worker-{events}-{seed}", SimConfig(
        seed=seed, duration=duration, rate=events / duration, n_users=100_000,
        n_merchants=2_000, campaigns=5, benign=5))


class Broker:
    """The broker under test: a private one from kafka.sh, or ``KAFKA_BOOTSTRAP_SERVERS``."""

    def __init__(self) -> None:
        self.external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        self.state = Path(tempfile.mkdtemp(prefix="lg-bench-kafka-"))
        self.env = dict(os.environ, KAFKA_STATE_DIR=str(self.state), PYTHON=sys.executable)
        self.bootstrap = self.external

    def __enter__(self) -> Broker:
        if not self.external:
            port, controller = _free_ports(2)
            self.env.update(KAFKA_HOST="127.0.0.1", KAFKA_PORT=str(port),
                            KAFKA_CONTROLLER_PORT=str(controller),
                            KAFKA_WATCH_PID=str(os.getpid()))
            out = subprocess.run(["bash", str(KAFKA_SH), "start"], env=self.env, text=True,
                                 capture_output=True, timeout=900)
            if out.returncode != 0:
                raise SystemExit(f"could not start Kafka:\n{out.stderr}")
            self.bootstrap = out.stdout.strip().splitlines()[-1]
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.external:
            subprocess.run(["bash", str(KAFKA_SH), "stop"], env=self.env, capture_output=True,
                           timeout=120)
        shutil.rmtree(self.state, ignore_errors=True)

    def cpu_seconds(self) -> float | None:
        pid_file = self.state / "kafka.pid"
        if self.external or not pid_file.exists():
            return None
        return cpu_seconds(int(pid_file.read_text().split()[0]))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def expected_per_view(records: list[tuple[str, bytes | None, bytes | None]],
                      topics: WorkerTopics) -> tuple[int, Counter[str]]:
    """Valid input events, and how many events each ingest-fed view gets."""
    per_view: Counter[str] = Counter()
    valid = 0
    for topic, _key, value in records:
        try:
            ev = parse_payment(value) if topic == topics.payments else parse_like(value)
        except BadRecord:
            continue
        if ev is not None:
            valid += 1
            per_view.update(list(route_keys(ev)))
    return valid, per_view


def bare_consumer(bootstrap: str, topics: WorkerTopics, n: int) -> float:
    """Seconds a bare aiokafka consumer takes to read ``n`` records of both input topics."""
    from aiokafka import AIOKafkaConsumer

    async def run() -> float:
        c = AIOKafkaConsumer(topics.payments, topics.likes, bootstrap_servers=bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
        await c.start()
        try:
            got, t0 = 0, None
            while got < n:
                for recs in (await c.getmany(timeout_ms=1000)).values():
                    if t0 is None:
                        t0 = time.perf_counter()
                    got += len(recs)
            return time.perf_counter() - (t0 or time.perf_counter())
        finally:
            await c.stop()

    return asyncio.run(run())


def faust_take(bootstrap: str, topics: WorkerTopics, n: int, workdir: Path) -> dict[str, float]:
    """Seconds and CPU seconds of the Faust contender reading ``n`` input records."""
    out = workdir / "faust-take.json"
    subprocess.run([sys.executable, str(Path(__file__).with_name("faust_take.py")), bootstrap,
                    topics.payments, topics.likes, str(n), str(out)],
                   check=True, timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())


QUIX_VENV = ROOT / ".cache" / "bench" / "quix-venv"
QUIX_PINS = ["quixstreams==3.28.1", "orjson>=3.9"]


def quix_python() -> Path:
    """The quixstreams contender's interpreter (its own virtualenv, made once)."""
    py = QUIX_VENV / "bin" / "python"
    if not py.exists():
        print("installing the quixstreams contender ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *QUIX_PINS], check=True)
    return py


def quix_count(bootstrap: str, topics: WorkerTopics, n: int, workdir: Path) -> dict[str, float]:
    """Seconds and CPU seconds of the quixstreams contender reading ``n`` input records."""
    out = workdir / "quix-count.json"
    subprocess.run([str(quix_python()), str(Path(__file__).with_name("quix_count.py")), bootstrap,
                    topics.payments, topics.likes, str(n), str(out)],
                   check=True, timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())


def offline_replay(path: Path) -> tuple[int, float]:
    summary = replay_file(path, Engine(EngineConfig()), lambda _a: None)
    return summary.records, summary.seconds


def scrape(workers: list[WorkerProcess]) -> dict[str, float]:
    """Totals over the workers of the series the benchmark follows."""
    tot: dict[str, float] = defaultdict(float)
    lag_views: dict[str, int] = {}
    for w in workers:
        for (name, labels), v in w.metrics().items():
            lb = dict(labels)
            if name == "likeguard_events_consumed_total":
                tot["consumed"] += v
            elif name == "likeguard_view_events_total":
                tot["view:" + lb["view"]] += v
            elif name == "likeguard_forwarded_likes_total":
                tot["forwarded"] += v
            elif name == "likeguard_late_events_total":
                tot["late"] += v
            elif name == "likeguard_consumer_lag" and ".view." in lb["topic"]:
                tot["view_lag"] += v
                lag_views[lb["topic"]] = lag_views.get(lb["topic"], 0) + 1
    tot["lag_partitions"] = sum(lag_views.values())
    return dict(tot)


def run_workers(bootstrap: str, path: Path, n_workers: int, workdir: Path
                ) -> dict[str, object]:
    topics = WorkerTopics.unique(f"bench-w{n_workers}")
    topics.create(bootstrap, partitions=PARTITIONS)
    records, parts = recording_records(path, topics)
    valid, per_view = expected_per_view(records, topics)
    t0 = time.perf_counter()
    produce(bootstrap, records, parts)
    produce_s = time.perf_counter() - t0
    bare_s = bare_consumer(bootstrap, topics, len(records))
    take = faust_take(bootstrap, topics, len(records), workdir)
    quix = quix_count(bootstrap, topics, len(records), workdir)

    settings = {"LIKEGUARD_IDLE_FLUSH": "0"}  # measure the stream, not the end-of-input flush
    workers = [WorkerProcess(bootstrap, topics, workdir / f"w{n_workers}-{i}", settings=settings)
               for i in range(n_workers)]
    for w in workers:
        w.start()
    try:
        for w in workers:  # the exporter is up before the worker consumes anything
            def serving(w: WorkerProcess = w) -> bool:
                return "metrics on http" in w.log_text()

            wait_for(serving, 120, w.tail, alive=w.alive)
        samples: list[tuple[float, dict[str, float], float]] = []
        t_first = cpu_first = None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if not all(w.alive() for w in workers):
                raise SystemExit(f"a worker died:\n{workers[0].tail()}")
            try:
                m = scrape(workers)
            except Exception:  # noqa: BLE001 - exporter not up yet
                time.sleep(0.2)
                continue
            now = time.perf_counter()
            cpu = sum(cpu_seconds(w.proc.pid) for w in workers if w.proc)
            if t_first is None and m.get("consumed", 0) > 0:
                t_first, cpu_first = now, cpu
            samples.append((now, m, cpu))
            fed = all(m.get("view:" + v, 0) >= n for v, n in per_view.items())
            forwarded = m.get("forwarded", 0)
            if fed and forwarded > 0 and m.get("view:lockstep", 0) >= forwarded and \
                    m.get("view_lag", 1) == 0 and m.get("lag_partitions", 0) >= 5 * PARTITIONS:
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"the workers did not finish in time:\n{workers[0].tail()}")
        t_done, m, cpu_done = samples[-1]
        seconds = t_done - (t_first or t_done)
        rss = [rss_mib(w.proc.pid) for w in workers if w.proc]
    finally:
        for w in workers:
            w.stop()
    return {
        "workers": n_workers,
        "records": len(records),
        "valid_events": valid,
        "view_events_expected": dict(per_view),
        "view_events_processed": {k[5:]: v for k, v in m.items() if k.startswith("view:")},
        "produce_events_per_s": round(len(records) / produce_s),
        "bare_consumer_events_per_s": round(len(records) / bare_s),
        "faust_take_events_per_s": round(take["records"] / take["seconds"]),
        "faust_take_cpu_ms_per_1000_events": round(1e6 * take["cpu_seconds"] / take["records"], 1),
        "quix_count_events_per_s": round(quix["records"] / quix["seconds"]),
        "quix_count_cpu_ms_per_1000_events": round(1e6 * quix["cpu_seconds"] / quix["records"], 1),
        "worker_seconds": round(seconds, 2),
        "worker_events_per_s": round(valid / seconds),
        "worker_cpu_ms_per_1000_events": round(1e6 * (cpu_done - (cpu_first or cpu_done)) / valid, 1),
        "worker_rss_mib": [round(r) for r in rss],
        # events dropped behind a watermark: a run that drops events does less
        # work than it should, and its rate is not a throughput
        "late_events": int(m.get("late", 0)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--seed", type=int, default=9002)
    p.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "bench_worker.json")
    a = p.parse_args(argv)
    path = recording(a.events, a.seed)
    n_replay, t_replay = offline_replay(path)
    replay_rate = n_replay / t_replay
    runs = []
    with Broker() as broker, tempfile.TemporaryDirectory(prefix="lg-bench-") as tmp:
        for n in (int(x) for x in a.workers.split(",")):
            cpu0 = broker.cpu_seconds()
            run = run_workers(broker.bootstrap, path, n, Path(tmp))
            cpu1 = broker.cpu_seconds()
            if cpu0 is not None and cpu1 is not None:
                run["broker_cpu_seconds_whole_run"] = round(cpu1 - cpu0, 1)
            rate = cast(float, run["worker_events_per_s"])  # run_workers' figures are numbers
            run["worker_over_bare_consumer"] = round(
                rate / cast(float, run["bare_consumer_events_per_s"]), 4)
            run["worker_over_replay"] = round(rate / replay_rate, 3)
            run["worker_over_faust_take"] = round(rate / cast(float, run["faust_take_events_per_s"]), 3)
            run["worker_over_quix_count"] = round(rate / cast(float, run["quix_count_events_per_s"]), 3)
            runs.append(run)
            print(f"{n} worker(s): {run['worker_events_per_s']:>8,} events/s "
                  f"({run['worker_seconds']} s for {run['valid_events']:,} events; "
                  f"{run['worker_cpu_ms_per_1000_events']} CPU ms per 1,000 events; "
                  f"RSS {run['worker_rss_mib']} MiB)")
            print(f"  bare consumer    {run['bare_consumer_events_per_s']:>8,} events/s   "
                  f"ratio worker/bare {run['worker_over_bare_consumer']:.4f}")
            print(f"  Faust take+decode {run['faust_take_events_per_s']:>7,} events/s   "
                  f"ratio worker/Faust {run['worker_over_faust_take']:.3f} "
                  f"({run['faust_take_cpu_ms_per_1000_events']} CPU ms per 1,000)")
            print(f"  quixstreams count {run['quix_count_events_per_s']:>7,} events/s   "
                  f"ratio worker/quix {run['worker_over_quix_count']:.3f} "
                  f"({run['quix_count_cpu_ms_per_1000_events']} CPU ms per 1,000)")
            print(f"  offline replay   {round(replay_rate):>8,} events/s   "
                  f"ratio worker/replay {run['worker_over_replay']:.3f}")
            if run["late_events"]:
                print(f"  WARNING: {run['late_events']:,} view deliveries were late (dropped): "
                      "this run did less work than it should have")
    write_figures({"recording": path.name, "replay_events_per_s": round(replay_rate),
                   "runs": runs}, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
