#!/usr/bin/env python3
"""othergen3 checker -- validate a recording + labels against the likeguard data contract.

Written from /work/shared/CONTRACT.md only.  Standard library only.

    python check.py rec.jsonl[.gz] labels.json [--max-errors 5]

Checks every line is a `kcat -C -J` record (topic, partition, offset, tstype, ts, key,
payload), offsets increase per partition, every payload satisfies the contract's
field/type/range rules for its topic -- except the records listed in the labels'
`bad_records` (deliberately invalid, expected to go to the dead-letter topic), which
must be exactly the invalid ones -- duplicate ids carry identical payloads, and every
entity listed in a label really occurs in the recording inside that label's window.
Prints counts per topic, partition, trade state, action, label kind and more.
Exit status: 0 ok, 1 contract violations, 2 usage / unreadable input.
"""
import argparse
import collections
import gzip
import ipaddress
import json
import re
import sys
import zlib
from datetime import datetime

TOPICS = ("likes", "payments.success")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
CAMPAIGN_KINDS = ("paid_task_likes", "device_farm", "ip_farm", "fresh_account_burst", "slow_drip",
                  "camouflaged_ring")
ENT_KEYS = ("merchants", "targets", "users", "ips", "devices")


def parse_time(v):
    """RFC 3339 with offset -> epoch seconds (float), or None."""
    if not isinstance(v, str) or not RFC3339.match(v):
        return None
    s = v.replace("t", "T").replace("z", "Z")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d)$", s)
    base, frac, off = m.group(1), m.group(2) or "", m.group(3)
    try:
        dt = datetime.fromisoformat(base + off)
    except ValueError:
        return None
    return dt.timestamp() + (float("0" + frac) if frac else 0.0)


def time_style(v):
    z = v.endswith("Z") or v.endswith("z")
    frac = "." in v[19:]
    return ("Z" if z else v[-6:]) + ("+frac" if frac else "")


def valid_ip(v):
    try:
        return ipaddress.ip_address(v).version
    except ValueError:
        return None


def is_str(v):
    return isinstance(v, str) and v != ""


def val_like(d):
    """-> (reason or None, info dict)"""
    if not isinstance(d, dict):
        return "not_object", None
    for f in ("like_id", "user_openid", "target_id", "owner_mchid", "ts"):
        if f not in d:
            return "missing:" + f, None
        if not isinstance(d[f], str):
            return "type:" + f, None
        if d[f] == "":
            return "range:" + f, None
    t = parse_time(d["ts"])
    if t is None:
        return "range:ts", None
    act = d.get("action", "like")
    if "action" in d and not isinstance(act, str):
        return "type:action", None
    if act not in ("like", "unlike"):
        return "range:action", None
    ipv = None
    if "client_ip" in d:
        if not isinstance(d["client_ip"], str):
            return "type:client_ip", None
        ipv = valid_ip(d["client_ip"])
        if ipv is None:
            return "range:client_ip", None
    if "device_id" in d and not isinstance(d["device_id"], str):
        return "type:device_id", None
    if "user_created" in d:
        if not isinstance(d["user_created"], str):
            return "type:user_created", None
        if parse_time(d["user_created"]) is None:
            return "range:user_created", None
    return None, {"t": t, "action": act, "ipv": ipv}


def val_pay(d):
    if not isinstance(d, dict):
        return "not_object", None
    for f in ("transaction_id", "mchid", "trade_state", "success_time"):
        if f not in d:
            return "missing:" + f, None
        if not isinstance(d[f], str):
            return "type:" + f, None
        if d[f] == "":
            return "range:" + f, None
    t = parse_time(d["success_time"])
    if t is None:
        return "range:success_time", None
    p = d.get("payer")
    if p is None and "payer" not in d:
        return "missing:payer.openid", None
    if not isinstance(p, dict):
        return "type:payer", None
    if "openid" not in p:
        return "missing:payer.openid", None
    if not is_str(p["openid"]):
        return "type:payer.openid", None
    a = d.get("amount")
    if "amount" not in d:
        return "missing:amount.total", None
    if not isinstance(a, dict):
        return "type:amount", None
    if "total" not in a:
        return "missing:amount.total", None
    tot = a["total"]
    if isinstance(tot, bool) or not isinstance(tot, int):
        return "type:amount.total", None
    if tot < 1:
        return "range:amount.total", None
    if "currency" in a and not isinstance(a["currency"], str):
        return "type:amount.currency", None
    for f in ("out_trade_no", "appid"):
        if f in d and not isinstance(d[f], str):
            return "type:" + f, None
    ipv = None
    if "payer_client_ip" in d:
        if not isinstance(d["payer_client_ip"], str):
            return "type:payer_client_ip", None
        ipv = valid_ip(d["payer_client_ip"])
        if ipv is None:
            return "range:payer_client_ip", None
    if "scene_info" in d:
        if not isinstance(d["scene_info"], dict):
            return "type:scene_info", None
        if "device_id" in d["scene_info"] and not isinstance(d["scene_info"]["device_id"], str):
            return "type:scene_info.device_id", None
    return None, {"t": t, "state": d["trade_state"], "amount": tot, "ipv": ipv}


class Errors:
    def __init__(self, limit):
        self.limit = limit
        self.n = 0
        self.by = collections.Counter()

    def __call__(self, kind, msg):
        self.n += 1
        self.by[kind] += 1
        if self.by[kind] <= self.limit:
            print("ERROR [%s] %s" % (kind, msg))


def pct(sorted_vals, q):
    if not sorted_vals:
        return 0
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def main(argv=None):
    ap = argparse.ArgumentParser(description="validate a likeguard recording + labels")
    ap.add_argument("recording")
    ap.add_argument("labels")
    ap.add_argument("--max-errors", type=int, default=5, help="errors printed per kind")
    a = ap.parse_args(argv)
    err = Errors(a.max_errors)

    # ------------------------------------------------------------------ labels
    try:
        with open(a.labels, encoding="utf-8") as f:
            labels = json.load(f)
    except (OSError, ValueError) as e:
        print("cannot read labels: %s" % e)
        return 2
    if not isinstance(labels, dict) or not isinstance(labels.get("campaigns"), list) \
            or not isinstance(labels.get("benign"), list):
        err("labels", "labels must be an object with lists 'campaigns' and 'benign'")
        labels = {"campaigns": [], "benign": []}
    watch = collections.defaultdict(list)      # (key, value) -> [label index]
    lab_list = []
    ids = set()
    for group in ("campaigns", "benign"):
        for L in labels[group]:
            if not isinstance(L, dict):
                err("labels", "%s entry is not an object" % group)
                continue
            lid = L.get("id")
            if not isinstance(lid, str) or lid in ids:
                err("labels", "missing or duplicate id %r" % (lid,))
            ids.add(lid)
            if not isinstance(L.get("kind"), str) or not L["kind"]:
                err("labels", "%s: kind missing" % lid)
            elif group == "campaigns" and L["kind"] not in CAMPAIGN_KINDS:
                err("labels", "%s: unknown campaign kind %r" % (lid, L["kind"]))
            st, en = parse_time(L.get("start")), parse_time(L.get("end"))
            if st is None or en is None or en < st:
                err("labels", "%s: bad start/end %r %r" % (lid, L.get("start"), L.get("end")))
                st, en = 0, 0
            for k in ENT_KEYS:
                v = L.get(k, [])
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    err("labels", "%s: %s must be a list of strings" % (lid, k))
                    continue
            if group == "campaigns" and not (L.get("users") or L.get("ips") or L.get("devices")):
                err("labels", "%s: campaign lists no users/ips/devices" % lid)
            if not L.get("merchants") and not L.get("targets"):
                err("labels", "%s: lists no merchants or targets" % lid)
            idx = len(lab_list)
            lab_list.append({"group": group, "id": lid, "kind": L.get("kind"), "st": st, "en": en,
                             "found": collections.Counter(), "n": {k: len(L.get(k, []) or []) for k in ENT_KEYS}})
            for k in ENT_KEYS:
                for x in L.get(k, []) or []:
                    if isinstance(x, str):
                        watch[(k, x)].append(idx)
    bad_expected = {}
    for b in labels.get("bad_records", []) or []:
        try:
            bad_expected[(b["topic"], int(b["partition"]), int(b["offset"]))] = b.get("reason", "?")
        except (KeyError, TypeError, ValueError):
            err("labels", "malformed bad_records entry %r" % (b,))
    # entity overlap between fraud and benign labels (warning only)
    overlap = 0
    for (k, x), idxs in watch.items():
        groups = {lab_list[i]["group"] for i in idxs}
        if len(groups) > 1:
            overlap += 1
    # ------------------------------------------------------------------ recording
    opener = gzip.open if a.recording.endswith(".gz") else open
    c_topic = collections.Counter()
    c_part = collections.Counter()
    c_state = collections.Counter()
    c_action = collections.Counter()
    c_bad = collections.Counter()
    c_tstyle = collections.Counter()
    c_opt = collections.Counter()
    c_keyed = collections.Counter()
    lastoff = {}
    seen_ids = {}
    dups = collections.Counter()
    bad_found = set()
    lags = []
    users = set()
    n_lines = 0
    tmin, tmax = None, None
    max_et = None
    late = 0
    late_max = 0.0
    try:
        fh = opener(a.recording, "rt", encoding="utf-8")
    except OSError as e:
        print("cannot open recording: %s" % e)
        return 2
    with fh:
        for ln, line in enumerate(fh, 1):
            n_lines += 1
            try:
                rec = json.loads(line)
            except ValueError:
                err("envelope", "line %d: not JSON" % ln)
                continue
            if not isinstance(rec, dict):
                err("envelope", "line %d: not an object" % ln)
                continue
            topic, part, off = rec.get("topic"), rec.get("partition"), rec.get("offset")
            ok = True
            if topic not in TOPICS:
                err("envelope", "line %d: topic %r" % (ln, topic)); ok = False
            for f, v in (("partition", part), ("offset", off), ("ts", rec.get("ts"))):
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    err("envelope", "line %d: %s %r" % (ln, f, v)); ok = False
            if not isinstance(rec.get("tstype"), str):
                err("envelope", "line %d: tstype" % ln); ok = False
            if "key" not in rec or not (rec["key"] is None or isinstance(rec["key"], str)):
                err("envelope", "line %d: key must be string or null" % ln); ok = False
            if not isinstance(rec.get("payload"), str):
                err("envelope", "line %d: payload must be a string" % ln); ok = False
            if not ok:
                continue
            tp = (topic, part)
            if tp in lastoff and off <= lastoff[tp]:
                err("offsets", "line %d: %s/%d offset %d after %d" % (ln, topic, part, off, lastoff[tp]))
            lastoff[tp] = off
            c_topic[topic] += 1
            c_part["%s/%d" % tp] += 1
            c_keyed["keyed" if rec["key"] is not None else "null-key"] += 1
            payload = rec["payload"]
            pos = (topic, part, off)
            try:
                d = json.loads(payload)
                reason = None
            except ValueError:
                d, reason = None, "not_json"
            info = None
            if reason is None:
                reason, info = (val_like if topic == "likes" else val_pay)(d)
            if reason is not None:
                c_bad[reason] += 1
                bad_found.add(pos)
                if pos not in bad_expected:
                    err("payload", "line %d (%s/%d@%d): %s, not listed in bad_records: %.160s"
                        % (ln, topic, part, off, reason, payload))
                continue
            if pos in bad_expected:
                err("bad_records", "line %d (%s/%d@%d) listed as bad (%s) but is valid"
                    % (ln, topic, part, off, bad_expected[pos]))
            # ---- valid record
            idf = "like_id" if topic == "likes" else "transaction_id"
            sig = (zlib.crc32(payload.encode("utf-8")), len(payload))
            k = (topic, d[idf])
            if k in seen_ids:
                dups[topic] += 1
                if seen_ids[k] != sig:
                    err("duplicate", "line %d: %s %s re-delivered with a different payload" % (ln, idf, d[idf]))
                continue
            seen_ids[k] = sig
            t = info["t"]
            lags.append(rec["ts"] / 1000.0 - t)
            tmin = t if tmin is None or t < tmin else tmin
            tmax = t if tmax is None or t > tmax else tmax
            if max_et is not None and t < max_et - 1.0:
                late += 1
                late_max = max(late_max, max_et - t)
            max_et = t if max_et is None or t > max_et else max_et
            if topic == "likes":
                c_action[info["action"]] += 1
                c_tstyle["likes.ts " + time_style(d["ts"])] += 1
                for f in ("action", "client_ip", "device_id", "user_created"):
                    c_opt["likes." + f] += f in d
                if info["ipv"] == 6:
                    c_opt["likes.client_ip IPv6"] += 1
                ents = (("users", d["user_openid"]), ("targets", d["target_id"]),
                        ("merchants", d["owner_mchid"]), ("ips", d.get("client_ip")),
                        ("devices", d.get("device_id")))
                users.add(d["user_openid"])
            else:
                c_state[d["trade_state"]] += 1
                c_tstyle["payments.success_time " + time_style(d["success_time"])] += 1
                for f in ("out_trade_no", "appid", "payer_client_ip"):
                    c_opt["payments." + f] += f in d
                c_opt["payments.amount.currency"] += "currency" in d["amount"]
                dev = d["scene_info"].get("device_id") if isinstance(d.get("scene_info"), dict) else None
                c_opt["payments.scene_info.device_id"] += dev is not None
                if info["ipv"] == 6:
                    c_opt["payments.payer_client_ip IPv6"] += 1
                ents = (("users", d["payer"]["openid"]), ("merchants", d["mchid"]),
                        ("ips", d.get("payer_client_ip")), ("devices", dev))
                users.add(d["payer"]["openid"])
            for ek, ev in ents:
                if ev is None:
                    continue
                idxs = watch.get((ek, ev))
                if idxs:
                    for i in idxs:
                        L = lab_list[i]
                        if L["st"] - 1 <= t <= L["en"] + 1:
                            L["found"][(ek, ev)] += 1
    for pos, why in bad_expected.items():
        if pos not in bad_found:
            err("bad_records", "%s/%d@%d listed as bad (%s) but not found or valid" % (pos + (why,)))
    # every labelled entity must occur inside its label's window
    for (ek, ev), idxs in watch.items():
        for i in idxs:
            L = lab_list[i]
            if (ek, ev) not in L["found"]:
                err("label-entity", "%s %s: %s %s does not occur in [start, end]" % (L["id"], L["kind"], ek, ev))

    # ------------------------------------------------------------------ report
    def show(title, c):
        print("%s:" % title)
        for k in sorted(c):
            print("  %-40s %8d" % (k, c[k]))
    print("recording: %s  lines=%d" % (a.recording, n_lines))
    show("records per topic", c_topic)
    show("records per partition", c_part)
    show("record keys", c_keyed)
    show("payments trade_state (valid, de-duplicated)", c_state)
    show("likes action (valid, de-duplicated)", c_action)
    show("duplicate deliveries", dups)
    show("bad records (invalid payloads)", c_bad)
    print("  listed in labels bad_records: %d, found invalid: %d" % (len(bad_expected), len(bad_found)))
    show("time styles", c_tstyle)
    print("optional fields present (valid, de-duplicated):")
    for k in sorted(c_opt):
        tot = c_topic["likes"] - dups["likes"] - sum(1 for p in bad_found if p[0] == "likes") \
            if k.startswith("likes") else \
            c_topic["payments.success"] - dups["payments.success"] - sum(1 for p in bad_found if p[0] != "likes")
        print("  %-40s %8d  (%.1f%%)" % (k, c_opt[k], 100.0 * c_opt[k] / max(1, tot)))
    if tmin is not None:
        print("event time: %s .. %s  (%.2f h), distinct users %d"
              % (datetime.utcfromtimestamp(tmin).isoformat() + "Z",
                 datetime.utcfromtimestamp(tmax).isoformat() + "Z", (tmax - tmin) / 3600.0, len(users)))
    lags.sort()
    print("delivery lag (kafka ts - event time) s: p50 %.2f  p90 %.2f  p99 %.1f  max %.0f  (min %.1f)"
          % (pct(lags, .5), pct(lags, .9), pct(lags, .99), lags[-1] if lags else 0, lags[0] if lags else 0))
    print("event time behind running max (>1 s) in file order: %d records, max %.0f s" % (late, late_max))
    ck = collections.Counter("campaign " + L["kind"] for L in lab_list if L["group"] == "campaigns")
    bk = collections.Counter("benign " + L["kind"] for L in lab_list if L["group"] == "benign")
    show("labels per kind", ck + bk)
    print("labels: %d campaigns, %d benign; entities listed: %s"
          % (sum(ck.values()), sum(bk.values()),
             ", ".join("%s=%d" % (k, sum(L["n"][k] for L in lab_list)) for k in ENT_KEYS)))
    if overlap:
        print("WARNING: %d entities are listed in both a campaign and a benign event" % overlap)
    if err.n:
        print("FAIL: %d contract violations (%s)" % (err.n, ", ".join("%s=%d" % kv for kv in sorted(err.by.items()))))
        return 1
    print("OK: recording and labels conform to the contract")
    return 0


if __name__ == "__main__":
    sys.exit(main())
