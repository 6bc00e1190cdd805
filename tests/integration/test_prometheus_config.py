"""Checks of deploy/prometheus: promtool on the configs, rules and rule tests.

promtool is required (Debian package ``prometheus``; CI installs it). When it
is missing these tests fail with that message instead of skipping, so a CI
image without it cannot pass silently. ``PROMTOOL`` may name the binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
CONFIGS = [PROM_DIR / "prometheus.yml", PROM_DIR / "prometheus.local.yml"]
RULES = PROM_DIR / "rules" / "likeguard.rules.yml"
RULE_TESTS = PROM_DIR / "rules" / "likeguard.rules.test.yml"

EXPECTED_ALERTS = {
    "LikeguardWorkerDown",
    "LikeguardConsumerLagGrowing",
    "LikeguardDeadLetterRateHigh",
    "LikeguardNoEvents",
    "LikeguardAlertRateSpike",
    "LikeguardCheckpointStale",
}


def promtool() -> str:
    """Path of promtool, or fail the test saying how to get it."""
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.fail(
            "promtool not found on PATH (set PROMTOOL or install it: "
            "`apt-get install prometheus` on Debian/Ubuntu); "
            "the Prometheus config and alert rules cannot be verified without it",
            pytrace=False,
        )
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_promtool_check_config(config: Path) -> None:
    res = run_promtool("check", "config", str(config))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_promtool_check_rules() -> None:
    res = run_promtool("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in res.stdout


def test_promtool_test_rules() -> None:
    res = run_promtool("test", "rules", str(RULE_TESTS))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_configs_scrape_worker_and_load_rules() -> None:
    targets = {}
    for config in CONFIGS:
        doc = load(config)
        jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
        assert "likeguard" in jobs, config
        targets[config.name] = [t for sc in jobs["likeguard"]["static_configs"]
                                for t in sc["targets"]]
        rule_paths = {(config.parent / p).resolve() for p in doc["rule_files"]}
        assert rule_paths == {RULES.resolve()}, config
    assert targets["prometheus.yml"] == ["worker:9108"]
    assert targets["prometheus.local.yml"] == ["127.0.0.1:9108"]


def test_rules_cover_expected_alerts_with_severity() -> None:
    rules = [r for g in load(RULES)["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == EXPECTED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert rule["annotations"].get("summary"), rule["alert"]


def test_rule_tests_cover_firing_and_not_firing() -> None:
    doc = load(RULE_TESTS)
    assert [Path(p).name for p in doc["rule_files"]] == [RULES.name]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fired == EXPECTED_ALERTS, EXPECTED_ALERTS - fired
    assert quiet == EXPECTED_ALERTS, EXPECTED_ALERTS - quiet


def test_rules_use_only_exported_metrics() -> None:
    exported: set[str] = set()
    for family in Metrics(version="t").registry.collect():
        exported.add(family.name)
        exported.update(s.name for s in family.samples)
        if family.type == "counter":
            exported.add(family.name + "_total")
        if family.type == "histogram":
            exported.update(family.name + sfx for sfx in ("_bucket", "_sum", "_count"))
    text = "\n".join(r["expr"] for g in load(RULES)["groups"] for r in g["rules"])
    used = set(re.findall(r"\b(?:likeguard|process)_[a-zA-Z0-9_]+", text))
    assert used, "no metric names found in the rules"
    assert used <= exported, used - exported
