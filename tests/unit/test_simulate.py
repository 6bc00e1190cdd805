"""Tests for detectors.simulate: contract shape, labels, order, garbage, determinism."""

from __future__ import annotations

import argparse
import gzip
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from detectors.events import parse_time
from detectors.recording import read_records
from detectors.simulate import (
    BAD_KINDS,
    BENIGN_KINDS,
    CAMPAIGN_KINDS,
    MAX_DISORDER,
    TOPIC_LIKES,
    TOPIC_PAYMENTS,
    SimConfig,
    Simulation,
    add_arguments,
    iter_events,
    run,
    simulate,
)

CFG = SimConfig(seed=5, duration=1800, rate=4, n_users=1500, n_merchants=60,
                campaigns=6, benign=6, bad_rate=0.03, duplicate_rate=0.03, partitions=3)
CLEAN = SimConfig(seed=9, duration=1200, rate=3, n_users=800, n_merchants=40,
                  campaigns=2, benign=1)
ENTITY_LISTS = ("merchants", "targets", "users", "ips", "devices")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def contract_event(topic: str, payload: str | None) -> tuple[str, float] | None:
    """(id, event time) when ``payload`` is a valid, counted event per CONTRACT.md."""
    try:
        d = orjson.loads(payload or "")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(d, dict):
        return None

    def s(obj: Any, key: str) -> bool:
        return isinstance(obj, dict) and isinstance(obj.get(key), str) and bool(obj[key])

    def opt(obj: dict, key: str) -> bool:
        return key not in obj or isinstance(obj[key], str)

    try:
        if topic == TOPIC_PAYMENTS:
            ok = (all(s(d, k) for k in ("transaction_id", "mchid", "trade_state", "success_time"))
                  and s(d.get("payer"), "openid") and isinstance(d.get("amount"), dict)
                  and is_int(d["amount"].get("total")) and d["amount"]["total"] >= 1
                  and opt(d, "payer_client_ip") and opt(d, "appid") and opt(d, "out_trade_no")
                  and opt(d["amount"], "currency")
                  and ("scene_info" not in d or opt(d["scene_info"], "device_id")))
            if not ok or d["trade_state"] != "SUCCESS":
                return None
            return d["transaction_id"], parse_time(d["success_time"])
        ok = (all(s(d, k) for k in ("like_id", "user_openid", "target_id", "owner_mchid", "ts"))
              and d.get("action", "like") in ("like", "unlike")
              and opt(d, "client_ip") and opt(d, "device_id") and opt(d, "user_created"))
        if not ok:
            return None
        if "user_created" in d:
            parse_time(d["user_created"])
        return d["like_id"], parse_time(d["ts"])
    except ValueError:
        return None


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("sim")
    out, labels = d / "run.jsonl", d / "run.labels.json"
    summary = simulate(CFG, out, labels)
    return {
        "out": out,
        "labels_path": labels,
        "labels": orjson.loads(labels.read_bytes()),
        "records": list(read_records(out)),
        "summary": summary,
    }


def test_every_valid_record_follows_the_contract(run_files):
    recs = run_files["records"]
    ids: Counter[str] = Counter()
    topics: Counter[str] = Counter()
    for r in recs:
        assert r.topic in (TOPIC_LIKES, TOPIC_PAYMENTS)
        assert isinstance(r.payload, str) and is_int(r.ts) and is_int(r.offset)
        assert r.key is None or isinstance(r.key, str)
        ev = contract_event(r.topic, r.payload)
        if ev is not None:
            ids[ev[0]] += 1
            topics[r.topic] += 1
    s = run_files["summary"]
    unique = {i for i, n in ids.items()}
    assert len(unique) == s.events[TOPIC_LIKES] + s.events[TOPIC_PAYMENTS]
    assert topics[TOPIC_LIKES] > topics[TOPIC_PAYMENTS] > 0
    assert s.records == len(recs)


def test_realistic_ids_and_formats(run_files):
    tz: Counter[str] = Counter()
    for _, d in Simulation(CLEAN).events():
        if "transaction_id" in d:
            assert len(d["transaction_id"]) == 28 and d["transaction_id"].isdigit()
            assert d["mchid"].startswith("19000") and len(d["mchid"]) == 10
            openid, t = d["payer"]["openid"], d["success_time"]
        else:
            assert d["owner_mchid"].startswith("19000")
            assert d["target_id"].split(":")[0] in ("post", "video", "store")
            openid, t = d["user_openid"], d["ts"]
        assert openid[0] == "o" and len(openid) == 28
        tz["Z" if t.endswith("Z") else t[-6:]] += 1
    assert set(tz) == {"Z", "+08:00"}


def test_event_time_order_and_kafka_ts(run_files):
    high = float("-inf")
    for r in run_files["records"]:
        ev = contract_event(r.topic, r.payload)
        if ev is None:
            continue
        t = ev[1]
        assert high - t <= MAX_DISORDER
        assert -0.001 <= r.ts / 1000 - t <= MAX_DISORDER
        high = max(high, t)
    start, end = CFG.start, CFG.start + CFG.duration
    times = [contract_event(r.topic, r.payload) for r in run_files["records"][:50]]
    assert all(start <= t[1] <= end for t in times if t)


def test_partitions_keys_and_offsets(run_files):
    parts = Counter(r.partition for r in run_files["records"])
    assert set(parts) == {0, 1, 2}
    offsets: dict[tuple[str, int], list[int]] = defaultdict(list)
    keyed = 0
    for r in run_files["records"]:
        offsets[(r.topic, r.partition)].append(r.offset)
        if r.key is not None:
            keyed += 1
            d = orjson.loads(r.payload)
            assert r.key == d.get("mchid", d.get("owner_mchid"))
    assert all(v == list(range(len(v))) for v in offsets.values())
    assert 0 < keyed < len(run_files["records"]) / 2


def test_labels_shape(run_files):
    labels = run_files["labels"]
    assert set(labels) == {"campaigns", "benign"}
    assert {c["kind"] for c in labels["campaigns"]} == set(CAMPAIGN_KINDS)
    assert {b["kind"] for b in labels["benign"]} == set(BENIGN_KINDS)
    assert len(labels["campaigns"]) == CFG.campaigns and len(labels["benign"]) == CFG.benign
    ids = [e["id"] for e in labels["campaigns"] + labels["benign"]]
    assert len(ids) == len(set(ids))
    warm = CFG.start + min(600, CFG.duration * 0.2)
    for section in ("campaigns", "benign"):
        for e in labels[section]:
            start, end = parse_time(e["start"]), parse_time(e["end"])
            assert warm <= start < end <= CFG.start + CFG.duration, e["id"]
            for key in ENTITY_LISTS:
                assert all(isinstance(x, str) for x in e.get(key, []))
            if section == "campaigns":
                assert all(e[key] for key in ENTITY_LISTS), e["id"]
            elif e["kind"] == "office_nat":
                assert len(e["ips"]) == 1 and len(e["users"]) >= 30
            else:
                assert e["merchants"] and e["targets"]
    fraud_users = {u for c in labels["campaigns"] for u in c["users"]}
    benign_users = {u for b in labels["benign"] for u in b["users"]}
    assert not fraud_users & benign_users
    c_merchants = [m for c in labels["campaigns"] for m in c["merchants"]]
    assert len(c_merchants) == len(set(c_merchants))


def test_labelled_entities_appear_and_campaigns_lie_in_their_window(run_files):
    seen: dict[str, set[str]] = {k: set() for k in ENTITY_LISTS}
    by_user: dict[str, list[float]] = defaultdict(list)
    organic_merchants: set[str] = set()
    for r in run_files["records"]:
        if contract_event(r.topic, r.payload) is None:
            continue
        d = orjson.loads(r.payload)
        if r.topic == TOPIC_LIKES:
            user, t = d["user_openid"], parse_time(d["ts"])
            seen["targets"].add(d["target_id"])
            seen["merchants"].add(d["owner_mchid"])
            ip, dev = d.get("client_ip"), d.get("device_id")
        else:
            user, t = d["payer"]["openid"], parse_time(d["success_time"])
            seen["merchants"].add(d["mchid"])
            ip, dev = d.get("payer_client_ip"), d.get("scene_info", {}).get("device_id")
        seen["users"].add(user)
        by_user[user].append(t)
        if ip:
            seen["ips"].add(ip)
        if dev:
            seen["devices"].add(dev)
        if r.topic == TOPIC_LIKES:
            organic_merchants.add(d["owner_mchid"])
    labels = run_files["labels"]
    for e in labels["campaigns"] + labels["benign"]:
        for key in ENTITY_LISTS:
            assert set(e.get(key, [])) <= seen[key], (e["id"], key)
    for c in labels["campaigns"]:
        start, end = parse_time(c["start"]), parse_time(c["end"])
        times = [t for u in c["users"] for t in by_user[u]]
        assert min(times) <= start + 0.001 and max(times) >= end - 0.001
        if c["kind"] != "camouflaged_ring":  # rings also like popular content around
            assert start - 0.001 <= min(times) and max(times) <= end + 0.001


def campaign_events(recs, campaign) -> tuple[list[dict], list[dict]]:
    users = set(campaign["users"])
    pays, likes = [], []
    for r in recs:
        if contract_event(r.topic, r.payload) is None:
            continue
        d = orjson.loads(r.payload)
        if r.topic == TOPIC_PAYMENTS and d["payer"]["openid"] in users:
            pays.append(d)
        elif r.topic == TOPIC_LIKES and d["user_openid"] in users:
            likes.append(d)
    return pays, likes


def test_campaign_shapes(run_files):
    recs = run_files["records"]
    for c in run_files["labels"]["campaigns"]:
        pays, likes = campaign_events(recs, c)
        kind = c["kind"]
        assert likes, c["id"]
        if kind == "camouflaged_ring":
            assert {x["target_id"] for x in likes} - set(c["targets"])  # camouflage
            continue
        assert {x["target_id"] for x in likes} <= set(c["targets"])
        assert all(p["amount"]["total"] <= 100 for p in pays)  # token amounts
        if kind in ("paid_task_likes", "slow_drip"):
            assert len(pays) >= 6 and len({p["amount"]["total"] for p in pays}) <= 2
            like_times: dict[str, list[float]] = defaultdict(list)
            for x in likes:
                like_times[x["user_openid"]].append(parse_time(x["ts"]))
            delays = []
            for p in pays:
                t = parse_time(p["success_time"])
                after = [lt - t for lt in like_times[p["payer"]["openid"]] if lt >= t]
                delays.append(min(after, default=999.0))
            # paid likes follow the payment seconds later (pay times may be whole seconds)
            assert sorted(delays)[len(delays) * 3 // 4] <= 72
        if kind == "device_farm":
            assert len(c["users"]) >= 80 and len(c["devices"]) <= 15 and len(c["ips"]) <= 5
        if kind == "fresh_account_burst":
            assert len(c["targets"]) == 1
            start = parse_time(c["start"])
            created = [parse_time(x["user_created"]) for x in likes if "user_created" in x]
            assert created and all(start - 7 * 3600 <= t < start for t in created)


def test_bad_and_duplicate_records(run_files):
    recs = run_files["records"]
    s = run_files["summary"]
    valid_ids: Counter[str] = Counter()
    invalid = 0
    for r in recs:
        ev = contract_event(r.topic, r.payload)
        if ev is None:
            invalid += 1
        else:
            valid_ids[ev[0]] += 1
    dups = sum(n - 1 for n in valid_ids.values())
    assert s.duplicates > 0 and dups == s.duplicates + s.bad_kinds.get("redelivered", 0)
    assert set(s.bad_kinds) == set(BAD_KINDS)
    assert invalid == s.bad - s.bad_kinds["redelivered"]
    n_events = sum(s.events.values())
    assert 0.01 < s.bad / n_events < 0.06 and 0.01 < s.duplicates / n_events < 0.06
    assert s.records == n_events + s.duplicates + s.bad
    # garbage is spread through the stream, not bunched at one end
    sim = Simulation(CFG)
    positions = [i for i, r in enumerate(sim.records()) if r.kind in BAD_KINDS]
    n = len(recs)
    assert positions[0] < n * 0.2 and positions[-1] > n * 0.8


def test_no_garbage_when_not_requested():
    kinds = Counter(r.kind for r in Simulation(CLEAN).records())
    assert set(kinds) == {"event"}


def test_determinism_plain_and_gzip(tmp_path: Path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    simulate(CLEAN, a, tmp_path / "a.json")
    simulate(CLEAN, b, tmp_path / "b.json")
    simulate(SimConfig(**{**CLEAN.__dict__, "seed": CLEAN.seed + 1}), c, tmp_path / "c.json")
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "c.json").read_bytes()
    g1, g2 = tmp_path / "g1.jsonl.gz", tmp_path / "x" / "g2.jsonl.gz"
    simulate(CLEAN, g1, tmp_path / "g1.json.gz")
    simulate(CLEAN, g2, tmp_path / "g2.json")
    assert g1.read_bytes() == g2.read_bytes()  # no mtime / file name in the header
    assert gzip.decompress(g1.read_bytes()) == a.read_bytes()
    assert [r.payload for r in read_records(g1)] == [r.payload for r in read_records(a)]
    assert orjson.loads(gzip.decompress((tmp_path / "g1.json.gz").read_bytes())) == \
        orjson.loads((tmp_path / "a.json").read_bytes())


def test_iter_events_matches_recording(tmp_path: Path):
    out = tmp_path / "r.jsonl"
    simulate(CLEAN, out, tmp_path / "l.json")
    records = list(read_records(out))
    assert all(r.payload is not None for r in records)
    from_file = [(r.topic, orjson.loads(r.payload or b"")) for r in records]
    assert list(iter_events(CLEAN)) == from_file
    sim = Simulation(CLEAN)
    assert sim.labels() == orjson.loads((tmp_path / "l.json").read_bytes())


def test_kinds_without_all_five_and_zero_counts():
    cfg = SimConfig(seed=3, duration=900, rate=2, n_users=300, n_merchants=20,
                    campaigns=3, benign=0)
    labels = Simulation(cfg).labels()
    kinds = [c["kind"] for c in labels["campaigns"]]
    assert len(kinds) == len(set(kinds)) == 3 and labels["benign"] == []
    cfg0 = SimConfig(seed=3, duration=600, rate=0, n_users=100, n_merchants=5,
                     campaigns=0, benign=0)
    assert list(Simulation(cfg0).records()) == []


def test_daily_rhythm_and_rate():
    # 24 h at a low rate: the evening (local) is busier than the early morning
    cfg = SimConfig(seed=2, duration=86400, rate=0.3, n_users=500, n_merchants=30,
                    campaigns=0, benign=0)
    hours: Counter[int] = Counter()
    total = 0
    for topic, d in iter_events(cfg):
        t = parse_time(d["ts"] if topic == TOPIC_LIKES else d["success_time"])
        hours[int((t - cfg.start) // 3600 + cfg.tz_offset) % 24] += 1
        total += 1
    assert abs(total - 0.3 * 86400) < 0.1 * 0.3 * 86400
    assert hours[21] > 2 * hours[9]


def test_invalid_config_rejected():
    with pytest.raises(ValueError, match="duration"):
        Simulation(SimConfig(duration=0))
    with pytest.raises(ValueError, match="bad_rate"):
        SimConfig(bad_rate=2).validate()


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "cli.jsonl.gz"
    args = cli([str(out), "--seed", "4", "--duration", "900", "--rate", "2", "--users", "300",
                "--merchants", "30", "--campaigns", "1", "--benign", "1", "--bad-rate", "0.01",
                "--duplicate-rate", "0.01", "--no-progress"])
    assert run(args) == 0
    assert "records" in capsys.readouterr().out
    labels = orjson.loads((tmp_path / "cli.labels.json").read_bytes())
    assert len(labels["campaigns"]) == 1 and len(labels["benign"]) == 1
    assert sum(1 for _ in read_records(out)) > 100
    assert run(cli([str(out), "--rate", "-1"])) == 2
    assert "rate" in capsys.readouterr().err
    assert run(cli([str(out), "--start", "yesterday"])) == 2
