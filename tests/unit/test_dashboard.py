"""Checks of the Grafana dashboard and provisioning under deploy/grafana.

The central check: every metric named in a panel's PromQL is exported by
``streams.metrics.Metrics`` (``up`` is Prometheus's own). Expressions are
also parsed by ``promtool check rules`` (as recording rules), so a syntax
error fails here rather than on a dashboard; promtool is required, as in
tests/integration/test_prometheus_config.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "likeguard.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "likeguard.yml"

# Metrics from Prometheus itself that panels may use.
PROMETHEUS_METRICS = {"up"}

PROMQL_FUNCTIONS = {
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
    # functions
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta",
    "deriv", "exp", "floor", "histogram_quantile", "histogram_count", "histogram_sum",
    "histogram_fraction", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "ln", "log2", "log10", "minute", "month",
    "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sqrt", "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time",
    "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
    "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
}
PROMQL_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_BARE_MODIFIER = re.compile(r"\b(?:group_left|group_right)\b")
_IDENT = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_LIKEGUARD = re.compile(r"likeguard_[a-zA-Z0-9_]+")


def exported_names() -> set[str]:
    """Every series name a fresh Metrics() exposes, incl. suffixed variants."""
    names: set[str] = set()
    for family in Metrics(version="t").registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "counter":
            names.update({family.name + "_total", family.name + "_created"})
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count", "_created"))
    return names


def metric_identifiers(expr: str) -> tuple[set[str], set[str]]:
    """Split a PromQL expression into (metric names, function names) it uses.

    Strings, label matchers, range selectors, grouping clauses and Grafana
    variables are removed first; an identifier followed by ``(`` is a
    function or aggregation, any other non-keyword identifier a metric.

    >>> m, f = metric_identifiers('sum by (le) (rate(a_b{x="y(z)"}[$__rate_interval]))')
    >>> sorted(m), sorted(f)
    (['a_b'], ['rate', 'sum'])
    >>> m, f = metric_identifiers('time() - max(up) > 0 and on (job) b offset 5m')
    >>> sorted(m), sorted(f)
    (['b', 'up'], ['max', 'time'])
    """
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)
    text = _GROUPING.sub(" ", text)
    text = _BARE_MODIFIER.sub(" ", text)
    text = re.sub(r"\b\d[\w.]*", " ", text)  # numbers and durations (5m, 1e-3)
    metrics: set[str] = set()
    functions: set[str] = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call:
            functions.add(name)
        elif name.lower() not in PROMQL_KEYWORDS:
            metrics.add(name)
    return metrics, functions


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in walk_panels(dashboard["panels"]) if p.get("type") != "row"]


@pytest.fixture(scope="module")
def exprs(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels for t in p["targets"]]


def test_dashboard_is_valid_json_with_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard or dashboard["id"] is None  # provisioned, not exported


def test_every_panel_has_targets(panels: list[dict[str, Any]]) -> None:
    assert len(panels) >= 10
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        targets = panel.get("targets") or []
        assert targets, f"panel {panel['title']!r} has no targets"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target.get("expr", "").strip(), f"empty expr in {panel['title']!r}"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]


def test_panels_use_the_provisioned_datasource(panels: list[dict[str, Any]]) -> None:
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    uids = {s["uid"] for s in sources if s["type"] == "prometheus"}
    assert uids
    for panel in panels:
        for ds in [panel.get("datasource"), *(t.get("datasource") for t in panel["targets"])]:
            if ds is not None:
                assert ds.get("uid") in uids, (panel["title"], ds)


def test_required_panels_present(exprs: list[tuple[str, str]]) -> None:
    text = "\n".join(e for _, e in exprs)
    for needle in [
        "rate(likeguard_events_consumed_total",
        "likeguard_consumer_lag",
        "histogram_quantile(0.5, sum by (le) (rate(likeguard_end_to_end_latency_seconds_bucket",
        "histogram_quantile(0.95, sum by (le) (rate(likeguard_end_to_end_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(likeguard_end_to_end_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(likeguard_processing_latency_seconds_bucket",
        "sum by (reason) (rate(likeguard_alert_reasons_total",
        "sum by (severity) (rate(likeguard_alerts_total",
        "rate(likeguard_events_rejected_total",
        "likeguard_anomaly_score_bucket",
        "likeguard_state_keys",
        "likeguard_model_warm",
        "time() - (max by (instance) (likeguard_last_checkpoint_timestamp_seconds)",
        "time() - max by (view) (likeguard_watermark_seconds)",
    ]:
        assert needle in text, needle


def test_heatmap_reads_histogram_buckets(panels: list[dict[str, Any]]) -> None:
    heatmaps = [p for p in panels if p["type"] == "heatmap"]
    assert heatmaps
    for panel in heatmaps:
        for target in panel["targets"]:
            assert target.get("format") == "heatmap"
            assert "_bucket" in target["expr"] and "by (le)" in target["expr"]


def test_every_metric_in_expressions_is_exported(exprs: list[tuple[str, str]]) -> None:
    exported = exported_names()
    used: set[str] = set()
    for title, expr in exprs:
        for name in _LIKEGUARD.findall(expr):
            assert name in exported, f"{title!r}: {name} is not exported by Metrics"
            used.add(name)
        metrics, functions = metric_identifiers(expr)
        assert functions <= PROMQL_FUNCTIONS, (title, functions - PROMQL_FUNCTIONS)
        others = metrics - exported - PROMETHEUS_METRICS
        assert not others, f"{title!r} uses unknown metric-like identifiers {others}"
    # the dashboard shows every likeguard_ family the worker exports
    family_of = {}
    for family in Metrics(version="t").registry.collect():
        for suffix in ("", "_total", "_bucket", "_sum", "_count"):
            family_of[family.name + suffix] = family.name
    families = {f for f in family_of.values() if f.startswith("likeguard_")}
    shown = {family_of[n] for n in used}
    assert shown == families, f"not on the dashboard: {sorted(families - shown)}"


def test_identifier_parser_catches_unknown_names() -> None:
    metrics, _ = metric_identifiers('sum by (topic) (rate(likegaurd_events_total{a="b"}[5m]))')
    assert metrics == {"likegaurd_events_total"}
    assert not _LIKEGUARD.findall("likegaurd_events_total")


def test_promtool_parses_every_expression(
    exprs: list[tuple[str, str]], tmp_path: Path
) -> None:
    promtool = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool not found on PATH (set PROMTOOL or `apt-get install "
                    "prometheus`); dashboard PromQL cannot be parsed without it",
                    pytrace=False)
    rules = [
        {"record": f"dashboard:expr_{i}",
         "expr": re.sub(r"\$__(?:rate_)?interval|\$__range", "1m", expr)}
        for i, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    res = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_dashboard_provider_points_at_dashboards() -> None:
    doc = yaml.safe_load(PROVIDERS.read_text())
    providers = doc["providers"]
    assert len(providers) == 1 and providers[0]["type"] == "file"
    assert providers[0]["options"]["path"] == "/etc/grafana/dashboards"
    assert DASHBOARD.parent.name == "dashboards"
