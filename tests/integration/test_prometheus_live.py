"""A real Prometheus server scrapes a worker processing a simulated campaign.

Starts Debian's ``prometheus`` on loopback with a scrape config pointing at the
worker's ``/metrics`` (1 s interval) and the project's alerting rules, feeds the
worker a campaign, and asserts through Prometheus's HTTP query API that the key
series exist and move.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker_harness import (
    REPO,
    WorkerTopics,
    campaign_records,
    free_port,
    like_value,
    produce,
    wait_for,
)

pytestmark = pytest.mark.kafka


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed (Debian package 'prometheus'; make test installs it)"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = REPO / "deploy" / "prometheus" / "rules" / "likeguard.rules.yml"
        cfg = workdir / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {rules}\n"
            "scrape_configs:\n  - job_name: likeguard\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.logfile = workdir / "prometheus.log"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict]:
        q = urllib.parse.urlencode({"query": expr})
        data = _get(f"{self.url}/api/v1/query?{q}")
        assert data["status"] == "success", data
        return data["data"]["result"]

    def value(self, expr: str) -> float:
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator:
    started: list[Prometheus] = []

    def make(target: str) -> Prometheus:
        p = Prometheus(tmp_path, target)
        started.append(p)
        wait_for(p.ready, 60, lambda: "prometheus not ready:\n" + p.logfile.read_text()[-3000:])
        return p

    yield make
    for p in started:
        p.stop()


def test_prometheus_scrapes_a_working_worker(kafka_bootstrap, worker_factory, prometheus_factory):
    topics = WorkerTopics.unique("lg-prom")
    topics.create(kafka_bootstrap)
    worker = worker_factory(topics, {"LIKEGUARD_IDLE_FLUSH": "2", "LIKEGUARD_GRACE": "3600",
                                     "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}).start()
    worker.wait_ready()
    target = worker.metrics_url.removeprefix("http://").removesuffix("/metrics")
    prom = prometheus_factory(target)

    wait_for(lambda: prom.value('up{job="likeguard"}') == 1.0, 60,
             lambda: f"target never up: {prom.query('up')}")
    records = campaign_records(topics)
    produce(kafka_bootstrap, records)

    key_series = {  # expression -> what it must reach
        "sum(likeguard_events_consumed_total)": len(records),
        "sum(likeguard_alerts_total)": 1,
        "sum(likeguard_end_to_end_latency_seconds_count)": 1,
        "sum(likeguard_processing_latency_seconds_count)": 1,
        "sum(likeguard_alert_reasons_total)": 1,
        "count(likeguard_state_keys)": 1,  # gauges are set by the worker's timer
        "likeguard_interned_ids": 1,
        "likeguard_build_info": 1,
    }

    def missing() -> dict[str, float]:
        return {e: v for e in key_series if (v := prom.value(e)) < key_series[e]}

    wait_for(lambda: not missing(), 90,
             lambda: f"series did not move: {missing()}; worker {worker.tail()}")
    consumed = prom.value("sum(likeguard_events_consumed_total)")
    assert prom.query("likeguard_alerts_total")[0]["metric"]["detector"]
    # a histogram quantile over the scraped buckets is a number, as dashboards use it
    q = prom.query("histogram_quantile(0.95, sum by (le) "
                   "(rate(likeguard_end_to_end_latency_seconds_bucket[1m])))")
    assert q is not None

    # more input: the counters keep moving, as a dashboard would show
    extra = [(topics.likes, None, like_value(f"l-more-{i}", f"o-more-{i}", "post:more",
                                             "1900000099", 1_800_000_000.0 + i))
             for i in range(50)]
    produce(kafka_bootstrap, extra)
    wait_for(lambda: prom.value("sum(likeguard_events_consumed_total)") >= consumed + 50, 60,
             lambda: f"consumed did not move past {consumed}; {worker.tail()}")

    # the project's alerting rules are loaded and evaluated against the live series
    groups = _get(prom.url + "/api/v1/rules")["data"]["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {"LikeguardWorkerDown", "LikeguardDeadLetterRateHigh", "LikeguardNoEvents"} <= names
    assert all(r.get("health") in ("ok", "unknown") for g in groups for r in g["rules"])
