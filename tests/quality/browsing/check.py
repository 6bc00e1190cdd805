#!/usr/bin/env python3
"""Validate a recording + labels produced by gen.py against CONTRACT.md and print stats.

    python check.py REC.jsonl LABELS.json
"""
import gzip
import json
import sys
from collections import Counter, defaultdict
from datetime import datetime


def ts(s):
    return datetime.fromisoformat(s).timestamp()


def main(rec, labels):
    op = gzip.open if rec.endswith(".gz") else open
    topics = Counter()
    errors = Counter()
    last_off = {}
    max_ev = None
    worst_late = 0.0
    late_gt5 = 0
    first = last = None
    ids = Counter()
    actions = Counter()
    states = Counter()
    missing = Counter()
    zfmt = Counter()
    n = 0
    ev_by_user = defaultdict(list)
    with op(rec, "rt", encoding="utf-8") as f:
        for line in f:
            n += 1
            rr = json.loads(line)
            if list(rr.keys()) != ["topic", "partition", "offset", "tstype", "ts", "key", "payload"]:
                errors["record keys"] += 1
            if rr["tstype"] != "create" or rr["key"] is not None or not isinstance(rr["ts"], int):
                errors["record fields"] += 1
            tp, part, off = rr["topic"], rr["partition"], rr["offset"]
            if part not in (0, 1, 2):
                errors["partition"] += 1
            if (tp, part) in last_off and off != last_off[(tp, part)] + 1:
                errors["offset not consecutive"] += 1
            if (tp, part) not in last_off and off != 0:
                errors["offset start"] += 1
            last_off[(tp, part)] = off
            p = json.loads(rr["payload"])
            topics[tp] += 1
            if tp == "likes":
                for k in ("like_id", "user_openid", "target_id", "owner_mchid", "ts"):
                    if not isinstance(p.get(k), str) or not p[k]:
                        errors[f"likes.{k}"] += 1
                t = ts(p["ts"])
                a = p.get("action", "like")
                if a not in ("like", "unlike"):
                    errors["action"] += 1
                actions[a] += 1
                if "action" not in p:
                    missing["likes.action"] += 1
                for k in ("client_ip", "device_id", "user_created"):
                    if k not in p:
                        missing["likes." + k] += 1
                if "user_created" in p:
                    ts(p["user_created"])
                ids[("l", p["like_id"])] += 1
                zfmt["Z" if p["ts"].endswith("Z") else "+08:00"] += 1
                ev_by_user[p["user_openid"]].append(t)
            elif tp == "payments.success":
                for k in ("transaction_id", "mchid", "trade_state", "success_time"):
                    if not isinstance(p.get(k), str) or not p[k]:
                        errors[f"pay.{k}"] += 1
                if not isinstance(p.get("payer", {}).get("openid"), str):
                    errors["pay.payer.openid"] += 1
                tot = p.get("amount", {}).get("total")
                if not isinstance(tot, int) or isinstance(tot, bool) or tot < 1:
                    errors["pay.amount.total"] += 1
                if not (p["mchid"].isdigit() and len(p["mchid"]) == 10):
                    errors["mchid format"] += 1
                t = ts(p["success_time"])
                states[p["trade_state"]] += 1
                for k in ("payer_client_ip", "scene_info", "out_trade_no", "appid"):
                    if k not in p:
                        missing["pay." + k] += 1
                ids[("t", p["transaction_id"])] += 1
                zfmt["Z" if p["success_time"].endswith("Z") else "+08:00"] += 1
            else:
                errors["topic"] += 1
                continue
            if first is None:
                first = t
            last = t
            if max_ev is not None and max_ev - t > worst_late:
                worst_late = max_ev - t
            if max_ev is not None and max_ev - t > 5:
                late_gt5 += 1
            max_ev = t if max_ev is None else max(max_ev, t)
    dups = sum(c - 1 for c in ids.values() if c > 1)
    print(f"records: {n}  per topic: {dict(topics)}")
    print(f"span: {(max_ev - first) / 3600:.2f} h   avg rate {n / (max_ev - first):.1f} ev/s")
    print(f"likes actions: {dict(actions)}   trade_state: {dict(states)}")
    print(f"duplicate deliveries: {dups}   time formats: {dict(zfmt)}")
    print(f"missing optional fields: {dict(missing)}")
    print(f"out-of-order: max lateness {worst_late:.1f}s, records >5s late: {late_gt5}")
    print(f"distinct users in likes: {len(ev_by_user)}")
    print("ERRORS:", dict(errors) if errors else "none")

    lab = json.load(open(labels))
    assert set(lab) == {"campaigns", "benign"}
    for grp in ("campaigns", "benign"):
        print(f"--- {grp}")
        for e in lab[grp]:
            s, en = ts(e["start"]), ts(e["end"])
            assert s <= en
            print(f"  {e['id']:4s} {e['kind']:22s} {e['start']} .. {e['end'][11:19]} "
                  f"({(en - s) / 60:5.1f} min) merchants={len(e['merchants'])} "
                  f"targets={len(e['targets'])} users={len(e['users'])} "
                  f"ips={len(e['ips'])} devices={len(e['devices'])}")
    # overlaps between campaign and benign entities
    ov = Counter()
    for c in lab["campaigns"]:
        for b in lab["benign"]:
            for k in ("merchants", "targets", "users", "ips", "devices"):
                x = set(c[k]) & set(b[k])
                if x:
                    ov[(c["id"], b["id"], k)] += len(x)
    print("campaign/benign entity overlaps:", dict(ov) if ov else "none")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
