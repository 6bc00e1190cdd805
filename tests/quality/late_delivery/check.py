#!/usr/bin/env python3
"""Validate a likeguard recording + labels file against /work/shared/CONTRACT.md.

usage: python check.py RECORDING.jsonl[.gz] LABELS.json [--max-errors 20]

Checks (errors make the exit status 1):
  * every line is a kcat -J style object: topic, partition, offset, tstype, ts,
    key (string or null), payload (string);
  * offsets strictly increase per (topic, partition) in file order;
  * payloads are JSON objects with every required field of their topic, of the
    right type and range (RFC 3339 times with offset, amount.total int >= 1,
    action like/unlike, IPs parse as IPv4/IPv6);
  * records sharing a transaction_id / like_id are byte-identical re-deliveries
    (a later payment record of the same transaction may only differ in
    trade_state / trade_state_desc, e.g. a REFUND notice);
  * labels: shape, unique ids, start <= end, entity lists of strings;
  * no entity is listed both in a campaign and in a benign event;
  * no record touches entities of both a campaign and a benign event;
  * every record by a campaign user lies inside that campaign's [start, end].
Informational output: counts per topic / partition / trade_state / action /
label kind, optional-field presence, Kafka-ts minus event-time lag.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import ipaddress
import json
import re
import sys
from collections import Counter, defaultdict

TOPICS = ("payments.success", "likes")
ENT_KEYS = ("merchants", "targets", "users", "ips", "devices")
KNOWN_CAMPAIGN = {"paid_task_likes", "device_farm", "ip_farm", "fresh_account_burst",
                  "slow_drip", "camouflaged_ring"}
KNOWN_BENIGN = {"viral_post", "office_nat", "coupon_campaign", "flash_sale",
                "post_purchase_likes", "family_shared_device"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class Report:
    def __init__(self, max_errors):
        self.max = max_errors
        self.errors = Counter()
        self.samples = defaultdict(list)
        self.warnings = []

    def err(self, kind, detail=""):
        self.errors[kind] += 1
        if len(self.samples[kind]) < self.max:
            self.samples[kind].append(detail)

    def warn(self, msg):
        self.warnings.append(msg)


def parse_time(s):
    """epoch ms of an RFC 3339 string, or None."""
    if not isinstance(s, str) or not RFC3339.match(s):
        return None
    try:
        d = dt.datetime.fromisoformat(s.upper().replace("Z", "+00:00") if s[-1] in "Zz" else s)
    except ValueError:
        return None
    if d.tzinfo is None:
        return None
    return int(round(d.timestamp() * 1000))


def is_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def pct(xs, q):
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


# ------------------------------------------------------------------ labels
def load_labels(path, rep):
    with open(path, encoding="utf-8") as f:
        lab = json.load(f)
    out = []
    if not isinstance(lab, dict):
        rep.err("labels: not an object")
        return out
    for k in lab:
        if k not in ("campaigns", "benign"):
            rep.warn(f"labels: unknown top-level key {k!r}")
    ids = set()
    for group in ("campaigns", "benign"):
        lst = lab.get(group)
        if not isinstance(lst, list):
            rep.err("labels: missing list", group)
            continue
        for e in lst:
            if not isinstance(e, dict):
                rep.err("labels: entry not an object", group)
                continue
            lid, kind = e.get("id"), e.get("kind")
            if not isinstance(lid, str) or not lid:
                rep.err("labels: bad id", repr(lid))
            elif lid in ids:
                rep.err("labels: duplicate id", lid)
            ids.add(lid)
            if not isinstance(kind, str):
                rep.err("labels: bad kind", f"{lid}: {kind!r}")
            elif kind not in (KNOWN_CAMPAIGN if group == "campaigns" else KNOWN_BENIGN):
                rep.warn(f"labels: {lid} has kind {kind!r} not known to this checker")
            s, en = parse_time(e.get("start")), parse_time(e.get("end"))
            if s is None or en is None:
                rep.err("labels: bad start/end", lid)
            elif s > en:
                rep.err("labels: start after end", lid)
            ents = {}
            for k in ENT_KEYS:
                v = e.get(k, [])
                if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
                    rep.err("labels: entity list not a list of strings", f"{lid}.{k}")
                    v = []
                if len(set(v)) != len(v):
                    rep.warn(f"labels: {lid}.{k} has repeated entries")
                ents[k] = set(v)
            for k in e:
                if k not in ("id", "kind", "start", "end") + ENT_KEYS:
                    rep.warn(f"labels: {lid} has extra key {k!r}")
            if not any(ents.values()):
                rep.err("labels: entry lists no entity", lid)
            out.append(dict(id=lid, kind=kind, group=group, start=s, end=en, ents=ents,
                            n_rec=0, out_of_window=0, seen={k: set() for k in ENT_KEYS}))
    return out


# ------------------------------------------------------------------ records
def open_rec(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def check_payment(p, rep, where):
    ok = True

    def bad(kind):
        nonlocal ok
        ok = False
        rep.err("payments: " + kind, where)

    for f in ("transaction_id", "mchid", "trade_state"):
        if not isinstance(p.get(f), str) or not p.get(f):
            bad(f"{f} missing or not a non-empty string")
    for f in ("out_trade_no", "appid"):
        if f in p and not isinstance(p[f], str):
            bad(f"{f} not a string")
    et = parse_time(p.get("success_time"))
    if et is None:
        bad("success_time missing or not RFC 3339")
    payer = p.get("payer")
    if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str) or not payer.get("openid"):
        bad("payer.openid missing")
    amt = p.get("amount")
    if not isinstance(amt, dict) or not is_int(amt.get("total")) or amt.get("total") < 1:
        bad("amount.total missing, not an integer or < 1")
    elif "currency" in amt and not isinstance(amt["currency"], str):
        bad("amount.currency not a string")
    if "payer_client_ip" in p and (not isinstance(p["payer_client_ip"], str) or not is_ip(p["payer_client_ip"])):
        bad("payer_client_ip not an IP")
    if "scene_info" in p:
        si = p["scene_info"]
        if not isinstance(si, dict) or ("device_id" in si and not isinstance(si["device_id"], str)):
            bad("scene_info.device_id not a string")
    return ok, et


def check_like(p, rep, where):
    ok = True

    def bad(kind):
        nonlocal ok
        ok = False
        rep.err("likes: " + kind, where)

    for f in ("like_id", "user_openid", "target_id", "owner_mchid"):
        if not isinstance(p.get(f), str) or not p.get(f):
            bad(f"{f} missing or not a non-empty string")
    if "action" in p and p["action"] not in ("like", "unlike"):
        bad("action not like/unlike")
    et = parse_time(p.get("ts"))
    if et is None:
        bad("ts missing or not RFC 3339")
    if "client_ip" in p and (not isinstance(p["client_ip"], str) or not is_ip(p["client_ip"])):
        bad("client_ip not an IP")
    if "device_id" in p and not isinstance(p["device_id"], str):
        bad("device_id not a string")
    if "user_created" in p and parse_time(p["user_created"]) is None:
        bad("user_created not RFC 3339")
    return ok, et


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("recording")
    ap.add_argument("labels")
    ap.add_argument("--max-errors", type=int, default=5)
    a = ap.parse_args(argv)
    rep = Report(a.max_errors)

    labels = load_labels(a.labels, rep)
    # entity -> label indices, per entity type
    idx = {k: defaultdict(list) for k in ENT_KEYS}
    for i, l in enumerate(labels):
        for k in ENT_KEYS:
            for v in l["ents"][k]:
                idx[k][v].append(i)
    # 1. label-level disjointness
    for k in ENT_KEYS:
        for v, ls in idx[k].items():
            groups = {labels[i]["group"] for i in ls}
            if len(groups) > 1:
                rep.err(f"labels: {k} entity listed in a campaign and a benign event",
                        f"{v} in {[labels[i]['id'] for i in ls]}")
            elif len(ls) > 1 and "campaigns" in groups:
                rep.warn(f"labels: {k} {v} listed in several campaigns {[labels[i]['id'] for i in ls]}")

    n_lines = 0
    topic_n = Counter()
    part_n = Counter()
    state_n = Counter()
    action_n = Counter()
    null_key = Counter()
    tstype_n = Counter()
    opt_present = Counter()
    first_seen = {}             # id -> payload
    dup_identical = Counter()
    refund_like = 0
    last_off = {}
    last_ts = {}
    ts_back = Counter()
    lags = {t: [] for t in TOPICS}
    ev_min, ev_max = None, None
    both_touch = 0
    camp_user_recs = 0
    camp_outside = 0
    amounts = []

    with open_rec(a.recording) as fh:
        for line in fh:
            n_lines += 1
            where = f"line {n_lines}"
            try:
                rec = json.loads(line)
            except ValueError:
                rep.err("record: not JSON", where)
                continue
            if not isinstance(rec, dict):
                rep.err("record: not an object", where)
                continue
            tp, part, off, ts = rec.get("topic"), rec.get("partition"), rec.get("offset"), rec.get("ts")
            if tp not in TOPICS:
                rep.err("record: unknown topic", f"{where}: {tp!r}")
                continue
            if not is_int(part) or part < 0 or not is_int(off) or off < 0 or not is_int(ts):
                rep.err("record: partition/offset/ts not non-negative integers", where)
                continue
            if "key" not in rec or not (rec["key"] is None or isinstance(rec["key"], str)):
                rep.err("record: key missing or not string/null", where)
            if not isinstance(rec.get("payload"), str):
                rep.err("record: payload not a string", where)
                continue
            tstype_n[rec.get("tstype")] += 1
            for k in rec:
                if k not in ("topic", "partition", "offset", "tstype", "ts", "key", "payload",
                             "broker", "headers"):
                    rep.err("record: unexpected field", f"{where}: {k}")
            pk = (tp, part)
            if pk in last_off and off <= last_off[pk]:
                rep.err("record: offset not increasing within partition", f"{where}: {pk} {off}")
            last_off[pk] = off
            if pk in last_ts and ts < last_ts[pk]:
                ts_back[tp] += 1
            last_ts[pk] = ts
            topic_n[tp] += 1
            part_n[pk] += 1
            if rec.get("key") is None:
                null_key[tp] += 1
            try:
                p = json.loads(rec["payload"])
            except ValueError:
                rep.err("payload: not JSON", where)
                continue
            if not isinstance(p, dict):
                rep.err("payload: not an object", where)
                continue
            if tp == "payments.success":
                ok, et = check_payment(p, rep, where)
                if not ok:
                    continue
                rid = "tx:" + p["transaction_id"]
                state_n[p["trade_state"]] += 1
                for f in ("out_trade_no", "appid", "payer_client_ip", "scene_info"):
                    opt_present[(tp, f)] += f in p
                opt_present[(tp, "amount.currency")] += "currency" in p["amount"]
                ents = {"users": p["payer"]["openid"], "merchants": p["mchid"],
                        "ips": p.get("payer_client_ip"),
                        "devices": (p.get("scene_info") or {}).get("device_id"),
                        "targets": None}
            else:
                ok, et = check_like(p, rep, where)
                if not ok:
                    continue
                rid = "like:" + p["like_id"]
                action_n[p.get("action", "(absent)")] += 1
                for f in ("action", "client_ip", "device_id", "user_created"):
                    opt_present[(tp, f)] += f in p
                ents = {"users": p["user_openid"], "merchants": p["owner_mchid"],
                        "ips": p.get("client_ip"), "devices": p.get("device_id"),
                        "targets": p["target_id"]}
            # duplicates
            prev = first_seen.get(rid)
            if prev is not None:
                if prev == rec["payload"]:
                    dup_identical[tp] += 1
                elif tp == "payments.success":
                    q = json.loads(prev)
                    q.pop("trade_state", None)
                    q.pop("trade_state_desc", None)
                    p2 = dict(p)
                    p2.pop("trade_state", None)
                    p2.pop("trade_state_desc", None)
                    if q == p2:
                        refund_like += 1
                    else:
                        rep.err("payments: same transaction_id, conflicting payload", where)
                else:
                    rep.err("likes: same like_id, different payload", where)
                continue
            first_seen[rid] = rec["payload"]
            lags[tp].append(ts - et)
            ev_min = et if ev_min is None or et < ev_min else ev_min
            ev_max = et if ev_max is None or et > ev_max else ev_max
            if tp == "payments.success" and p["trade_state"] == "SUCCESS":
                amounts.append(p["amount"]["total"])
            # label touches
            touched = set()
            for k in ENT_KEYS:
                v = ents[k]
                if v and v in idx[k]:
                    for i in idx[k][v]:
                        touched.add(i)
                        labels[i]["seen"][k].add(v)
            if touched:
                groups = {labels[i]["group"] for i in touched}
                if len(groups) > 1:
                    both_touch += 1
                    rep.err("record touches entities of a campaign and of a benign event",
                            f"{where}: {sorted(labels[i]['id'] for i in touched)}")
                for i in touched:
                    labels[i]["n_rec"] += 1
                    if not (labels[i]["start"] <= et <= labels[i]["end"]):
                        labels[i]["out_of_window"] += 1
                u = ents["users"]
                for i in idx["users"].get(u, ()):
                    if labels[i]["group"] == "campaigns":
                        camp_user_recs += 1
                        if not (labels[i]["start"] <= et <= labels[i]["end"]):
                            camp_outside += 1
                            rep.err("campaign user record outside campaign window",
                                    f"{where}: {labels[i]['id']}")

    # ------------------------------------------------------------ report
    def iso(ms):
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=8))).isoformat(timespec="seconds")

    print(f"recording: {a.recording}")
    print(f"  lines={n_lines}  " + "  ".join(f"{t}={topic_n[t]}" for t in TOPICS))
    if ev_min is not None:
        print(f"  event time {iso(ev_min)} .. {iso(ev_max)}  ({(ev_max - ev_min) / 3.6e6:.2f} h)")
    for t in TOPICS:
        parts = sorted(p for (tt, p) in part_n if tt == t)
        print(f"  {t}: partitions={parts} per-partition={[part_n[(t, p)] for p in parts]}"
              f" null-key={null_key[t]} exact-redeliveries={dup_identical[t]}"
              f" ts-steps-back-within-partition={ts_back[t]}")
    print(f"  tstype: {dict(tstype_n)}")
    print(f"  trade_state: {dict(state_n.most_common())}  (same-tx records differing only in state: {refund_like})")
    print(f"  action: {dict(action_n.most_common())}")
    for t in TOPICS:
        n = topic_n[t] - dup_identical[t] - (refund_like if t == 'payments.success' else 0)
        fields = sorted(f for (tt, f) in opt_present if tt == t)
        print(f"  {t} optional-field presence: " +
              ", ".join(f"{f}={opt_present[(t, f)] / max(1, n):.0%}" for f in fields))
        xs = sorted(lags[t])
        if xs:
            print(f"  {t} kafka ts - event time (s): min={xs[0]/1e3:.2f} p50={pct(xs, .5)/1e3:.2f} "
                  f"p99={pct(xs, .99)/1e3:.2f} max={xs[-1]/1e3:.2f} negative={sum(1 for x in xs if x < 0)}")
    if amounts:
        amounts.sort()
        print(f"  SUCCESS amounts (fen): n={len(amounts)} p1={pct(amounts, .01)} p50={pct(amounts, .5)} "
              f"p99={pct(amounts, .99)} <=100fen={sum(1 for x in amounts if x <= 100)}")

    print(f"labels: {a.labels}")
    kinds = Counter((l["group"], l["kind"]) for l in labels)
    for g in ("campaigns", "benign"):
        ks = {k: n for (gg, k), n in sorted(kinds.items()) if gg == g}
        print(f"  {g}: {sum(ks.values())}  {ks}")
    for l in labels:
        ent = " ".join(f"{k}={len(l['ents'][k])}" for k in ENT_KEYS if l["ents"][k])
        missing = sum(len(l["ents"][k] - l["seen"][k]) for k in ENT_KEYS)
        dur = (l["end"] - l["start"]) / 60000 if l["start"] is not None and l["end"] is not None else float("nan")
        print(f"  {l['id']:4s} {l['group'][:4]} {l['kind']:22s} {dur:6.1f} min  records={l['n_rec']:6d}"
              f"  outside-window={l['out_of_window']:5d}  {ent}  unseen-entities={missing}")
        if missing:
            rep.warn(f"{l['id']}: {missing} listed entities never appear in the recording")
    print(f"  records by campaign users: {camp_user_recs} (outside their window: {camp_outside})")
    print(f"  records touching both a campaign and a benign entity: {both_touch}")

    for w in rep.warnings[:50]:
        print("WARNING:", w)
    if len(rep.warnings) > 50:
        print(f"WARNING: ... {len(rep.warnings) - 50} more")
    if rep.errors:
        for k, n in rep.errors.most_common():
            print(f"ERROR x{n}: {k}  e.g. {rep.samples[k][:3]}")
        print("RESULT: FAIL")
        return 1
    print("RESULT: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
