"""Detection quality on simulated traffic of seeds never used while tuning.

Tuning used seeds 101-199 (``tests/bench/quality.py``); these seeds are for
testing only. Each is an hour of organic traffic with five fraud campaigns
(one of each kind) and five honest look-alikes (viral post, office NAT,
coupon campaign, flash sale, honest buyers), plus garbage and duplicates.
"""

from __future__ import annotations

import io
import statistics
from pathlib import Path

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.evaluate import Evaluation, Labels, evaluate, load_labels
from detectors.replay import replay
from detectors.simulate import SimConfig, simulate

TEST_SEEDS = (7, 8, 9)


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, Labels]]:
    out = {}
    for seed in TEST_SEEDS:
        d = tmp_path_factory.mktemp(f"seed{seed}")
        rec, lab = d / "r.jsonl.gz", d / "labels.json"
        simulate(SimConfig(seed=seed, bad_rate=0.002, duplicate_rate=0.01), rec, lab)
        out[seed] = (rec, load_labels(lab))
    return out


def _evaluate(rec: Path, labels: Labels, mode: str) -> Evaluation:
    buf = io.StringIO()
    replay(rec, buf, EngineConfig(mode=mode))
    return evaluate(labels, [orjson.loads(x) for x in buf.getvalue().splitlines()])


@pytest.fixture(scope="module")
def results(traffic: dict[int, tuple[Path, Labels]]) -> dict[str, dict[int, Evaluation]]:
    return {mode: {seed: _evaluate(rec, lab, mode) for seed, (rec, lab) in traffic.items()}
            for mode in ("both", "rules", "models")}


@pytest.mark.parametrize("seed", TEST_SEEDS)
def test_quality_targets(seed: int, results: dict[str, dict[int, Evaluation]],
                         traffic: dict[int, tuple[Path, Labels]]) -> None:
    ev = results["both"][seed]
    labels = traffic[seed][1]
    assert {c.kind for c in labels.campaigns} == {
        "paid_task_likes", "device_farm", "fresh_account_burst", "slow_drip", "camouflaged_ring"}
    assert {b.kind for b in labels.benign} == {
        "viral_post", "office_nat", "coupon_campaign", "flash_sale", "honest_buyers"}
    assert ev.f1 >= 0.95, ev.to_dict()
    assert ev.missed == [] and ev.not_started == [], (ev.missed, ev.not_started)
    assert ev.false_alarms_total == 0 and all(n == 0 for n in ev.false_alarms.values())
    assert ev.false_alarms_any_time == {} or all(
        n == 0 for n in ev.false_alarms_any_time.values())
    assert ev.median_delay is not None and ev.median_delay <= 60.0


def test_median_delay_over_all_test_campaigns(results: dict[str, dict[int, Evaluation]]) -> None:
    delays = [d for ev in results["both"].values() for d in ev.delays.values()]
    assert len(delays) == 5 * len(TEST_SEEDS)
    assert statistics.median(delays) <= 60.0


def test_models_carry_weight(results: dict[str, dict[int, Evaluation]]) -> None:
    """Ablation: the models alone find campaigns, and with the rules they find them sooner."""
    def pooled(mode: str) -> list[float]:
        return [d for ev in results[mode].values() for d in ev.delays.values()]

    models_only_recall = statistics.fmean(ev.recall for ev in results["models"].values())
    assert models_only_recall >= 0.8
    assert all(ev.false_alarms_total == 0 for ev in results["models"].values())
    both, rules = pooled("both"), pooled("rules")
    assert len(both) >= len(rules)
    assert sum(both) < sum(rules)  # earlier detection with the models on
