#!/usr/bin/env python3
"""Validate a recording and a labels file against the likeguard data contract.

    python3 check.py REC.jsonl[.gz] LABELS.json [--strict] [--quiet]

Exit status 0 when clean, 1 on violations (listed on stdout), 2 on usage errors.

Contract checks (violations):
  * every line is a kcat -C -J object: topic, partition, offset, tstype, ts, key
    (string or null), payload (string); topic is payments.success or likes;
  * per topic/partition, offsets strictly increasing; 6 partitions per topic;
  * bad payloads (invalid JSON, missing required field, wrong type, out of
    range) are allowed by the contract but must stay rare (<= 1 % of records);
  * labels: {"campaigns": [...], "benign": [...]}, unique ids, snake_case kinds,
    RFC 3339 start <= end, entity lists of strings; every labelled entity occurs
    in the recording between the event's start and end; no entity is both in a
    campaign and in a benign event.
Generator-realism checks (warnings; violations with --strict, as othergen4
runs them on its own output):
  * a keyed record sits in Kafka's murmur2 partition for its key;
  * a re-delivered transaction_id / like_id carries the same payload;
  * Kafka ts within -60 s .. +10 min of the payload event time.
Warnings only: campaign durations outside 10-40 min, line order running
backwards by more than 60 s, no bad records or duplicates.
"""
import gzip
import ipaddress
import json
import re
import sys
from datetime import datetime

NPART = 6
TOPICS = ("payments.success", "likes")
RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?"
                     r"([Zz]|[+-]\d{2}:\d{2})$")
KIND = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
ENT_KEYS = ("merchants", "targets", "users", "ips", "devices")
_tcache = {}


def murmur2(data):
    length = len(data)
    m = 0x5bd1e995
    h = (0x9747b28c ^ length) & 0xffffffff
    for i in range(length // 4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= k
    extra = length % 4
    base = length & ~3
    if extra >= 3:
        h ^= data[base + 2] << 16
    if extra >= 2:
        h ^= data[base + 1] << 8
    if extra >= 1:
        h ^= data[base]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h


def parse_time(s):
    """RFC 3339 with offset -> epoch ms, or None."""
    if not isinstance(s, str):
        return None
    v = _tcache.get(s)
    if v is not None:
        return v
    mt = RFC3339.match(s)
    if not mt:
        return None
    y, mo, d, hh, mi, ss, frac, off = mt.groups()
    try:
        base = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss))
    except ValueError:
        return None
    if off in ("Z", "z"):
        o = 0
    else:
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        o = (oh * 60 + om) * (1 if off[0] == "+" else -1)
    ms = int((base - datetime(1970, 1, 1)).total_seconds()) * 1000 - o * 60000
    if frac:
        ms += int((frac[1:] + "000")[:3])
    if len(_tcache) < 500000:
        _tcache[s] = ms
    return ms


def is_str(x):
    return isinstance(x, str) and x != ""


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


_ipcache = {}


def valid_ip(s):
    v = _ipcache.get(s)
    if v is None:
        try:
            ipaddress.ip_address(s)
            v = True
        except ValueError:
            v = False
        if len(_ipcache) < 500000:
            _ipcache[s] = v
    return v


def validate_payment(d):
    """-> (reason or None, event_ms, entities)"""
    if not isinstance(d, dict):
        return "not an object", None, None
    for f in ("transaction_id", "mchid", "trade_state"):
        if f not in d:
            return "missing " + f, None, None
        if not is_str(d[f]):
            return "wrong type " + f, None, None
    if "success_time" not in d:
        return "missing success_time", None, None
    t = parse_time(d["success_time"])
    if t is None:
        return "bad success_time", None, None
    p = d.get("payer")
    if not isinstance(p, dict):
        return "missing payer" if p is None else "wrong type payer", None, None
    if "openid" not in p:
        return "missing payer.openid", None, None
    if not is_str(p["openid"]):
        return "wrong type payer.openid", None, None
    a = d.get("amount")
    if not isinstance(a, dict):
        return "missing amount" if a is None else "wrong type amount", None, None
    if "total" not in a:
        return "missing amount.total", None, None
    if not is_int(a["total"]):
        return "wrong type amount.total", None, None
    if a["total"] < 1:
        return "out of range amount.total", None, None
    if "currency" in a and not is_str(a["currency"]):
        return "wrong type amount.currency", None, None
    for f in ("out_trade_no", "appid"):
        if f in d and not isinstance(d[f], str):
            return "wrong type " + f, None, None
    ip = d.get("payer_client_ip")
    if ip is not None and not (isinstance(ip, str) and valid_ip(ip)):
        return "bad payer_client_ip", None, None
    dev = None
    si = d.get("scene_info")
    if si is not None:
        if not isinstance(si, dict):
            return "wrong type scene_info", None, None
        dev = si.get("device_id")
        if dev is not None and not isinstance(dev, str):
            return "wrong type scene_info.device_id", None, None
    return None, t, (p["openid"], ip, dev, None, d["mchid"], d["transaction_id"])


def validate_like(d):
    if not isinstance(d, dict):
        return "not an object", None, None
    for f in ("like_id", "user_openid", "target_id", "owner_mchid"):
        if f not in d:
            return "missing " + f, None, None
        if not is_str(d[f]):
            return "wrong type " + f, None, None
    if "ts" not in d:
        return "missing ts", None, None
    t = parse_time(d["ts"])
    if t is None:
        return "bad ts", None, None
    act = d.get("action")
    if act is not None and act not in ("like", "unlike"):
        return "bad action", None, None
    ip = d.get("client_ip")
    if ip is not None and not (isinstance(ip, str) and valid_ip(ip)):
        return "bad client_ip", None, None
    dev = d.get("device_id")
    if dev is not None and not isinstance(dev, str):
        return "wrong type device_id", None, None
    uc = d.get("user_created")
    if uc is not None and parse_time(uc) is None:
        return "bad user_created", None, None
    return None, t, (d["user_openid"], ip, dev, d["target_id"], d["owner_mchid"], d["like_id"])


def open_any(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


class Report:
    def __init__(self, strict=False):
        self.viol = {}
        self.warn = []
        self.strict = strict
        self.soft = {}

    def s(self, kind, msg):
        """generator-realism finding: violation with --strict, else warning"""
        if self.strict:
            self.v(kind, msg)
        else:
            self.soft[kind] = self.soft.get(kind, 0) + 1
            if self.soft[kind] <= 3:
                self.warn.append("[%s] %s" % (kind, msg))

    def v(self, kind, msg):
        lst = self.viol.setdefault(kind, [])
        if len(lst) < 5:
            lst.append(msg)
        else:
            lst.append(None)


def load_labels(path, rep):
    try:
        with open(path, "r", encoding="utf-8") as f:
            lab = json.load(f)
    except (OSError, ValueError) as e:
        rep.v("labels", "cannot read labels: %s" % e)
        return []
    if not isinstance(lab, dict) or not isinstance(lab.get("campaigns"), list) \
            or not isinstance(lab.get("benign"), list):
        rep.v("labels", "labels must be an object with lists 'campaigns' and 'benign'")
        return []
    events = []
    ids = set()
    for cls in ("campaigns", "benign"):
        for e in lab[cls]:
            if not isinstance(e, dict):
                rep.v("labels", "%s entry is not an object" % cls)
                continue
            eid = e.get("id")
            if not is_str(eid) or eid in ids:
                rep.v("labels", "missing or duplicate id %r" % (eid,))
            ids.add(eid)
            if not (isinstance(e.get("kind"), str) and KIND.match(e["kind"])):
                rep.v("labels", "%s: kind %r is not snake_case" % (eid, e.get("kind")))
            s, t = parse_time(e.get("start")), parse_time(e.get("end"))
            if s is None or t is None:
                rep.v("labels", "%s: start/end not RFC 3339 with offset" % eid)
                continue
            if s > t:
                rep.v("labels", "%s: start after end" % eid)
            ents = {}
            for k in ENT_KEYS:
                if k not in e:
                    if cls == "campaigns":
                        rep.v("labels", "%s: campaign lacks %s" % (eid, k))
                    ents[k] = []
                    continue
                lst = e[k]
                if not isinstance(lst, list) or not all(is_str(x) for x in lst):
                    rep.v("labels", "%s: %s must be a list of strings" % (eid, k))
                    lst = []
                if len(set(lst)) != len(lst):
                    rep.v("labels", "%s: %s has repeated entries" % (eid, k))
                ents[k] = lst
            for k in e:
                if k not in ENT_KEYS and k not in ("id", "kind", "start", "end"):
                    rep.warn.append("%s: extra label field %r" % (eid, k))
            if not any(ents[k] for k in ENT_KEYS):
                rep.v("labels", "%s: names no entity" % eid)
            if cls == "campaigns":
                dur = (t - s) / 60000.0
                if dur < 10 or dur > 40:
                    rep.warn.append("%s (%s): duration %.1f min outside 10-40" % (eid, e.get("kind"), dur))
            events.append((cls, eid, e.get("kind"), s, t, ents))
    # overlap between campaigns and benign events
    camp = {}
    for cls, eid, kind, s, t, ents in events:
        if cls == "campaigns":
            for k in ENT_KEYS:
                for x in ents[k]:
                    camp.setdefault((k, x), eid)
    for cls, eid, kind, s, t, ents in events:
        if cls == "benign":
            for k in ENT_KEYS:
                for x in ents[k]:
                    if (k, x) in camp:
                        rep.v("overlap", "%s %s is in campaign %s and benign %s" % (k, x, camp[(k, x)], eid))
    return events


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quiet = "--quiet" in sys.argv
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    rec_path, lab_path = args
    rep = Report(strict="--strict" in sys.argv)
    events = load_labels(lab_path, rep)
    # labelled entity -> list of (event index); seen flags
    idx = {k: {} for k in ENT_KEYS}
    for i, (cls, eid, kind, s, t, ents) in enumerate(events):
        for k in ENT_KEYS:
            for x in ents[k]:
                idx[k].setdefault(x, []).append(i)
    seen = [{k: set() for k in ENT_KEYS} for _ in events]

    last_off = {}
    parts = {TOPICS[0]: set(), TOPICS[1]: set()}
    pcache = {}
    n = 0
    n_topic = {TOPICS[0]: 0, TOPICS[1]: 0}
    bad = {}
    ids = {}
    dups = 0
    max_ts = None
    max_back = 0
    lag_min, lag_max = None, None
    n_nonsuccess = 0
    styles = {"Z": 0, "+08:00": 0, "frac": 0, "other": 0}
    t_min = t_max = None
    users = set()
    ipv6 = 0
    ipn = 0
    keys_needed = {"topic", "partition", "offset", "tstype", "ts", "key", "payload"}
    try:
        fh = open_any(rec_path)
    except OSError as e:
        print("VIOLATION cannot open recording: %s" % e)
        return 1
    with fh:
        for ln, line in enumerate(fh, 1):
            n += 1
            try:
                r = json.loads(line)
            except ValueError:
                rep.v("line", "line %d: not JSON" % ln)
                continue
            if not isinstance(r, dict):
                rep.v("line", "line %d: not an object" % ln)
                continue
            ks = set(r)
            if not keys_needed <= ks:
                rep.v("line", "line %d: missing %s" % (ln, sorted(keys_needed - ks)))
                continue
            extra = ks - keys_needed - {"broker", "headers"}
            if extra:
                rep.v("line", "line %d: unexpected keys %s" % (ln, sorted(extra)))
            topic, part, off, ts, key, payload = (r["topic"], r["partition"], r["offset"],
                                                  r["ts"], r["key"], r["payload"])
            if topic not in TOPICS:
                rep.v("line", "line %d: unknown topic %r" % (ln, topic))
                continue
            if not is_int(part) or not 0 <= part < NPART:
                rep.v("line", "line %d: partition %r" % (ln, part))
                continue
            if not is_int(off) or off < 0 or not is_int(ts) or r["tstype"] != "create":
                rep.v("line", "line %d: offset/ts/tstype types" % ln)
                continue
            if key is not None and not isinstance(key, str):
                rep.v("line", "line %d: key must be string or null" % ln)
            if not isinstance(payload, str):
                rep.v("line", "line %d: payload must be a string" % ln)
                continue
            n_topic[topic] += 1
            parts[topic].add(part)
            tp = (topic, part)
            lo = last_off.get(tp)
            if lo is not None and off <= lo:
                rep.v("offsets", "line %d: %s/%d offset %d after %d" % (ln, topic, part, off, lo))
            last_off[tp] = off
            if isinstance(key, str):
                p = pcache.get(key)
                if p is None:
                    p = pcache[key] = (murmur2(key.encode("utf-8")) & 0x7fffffff) % NPART
                if p != part:
                    rep.s("partitioning", "line %d: key %r in partition %d, murmur2 says %d"
                          % (ln, key, part, p))
            if max_ts is None or ts > max_ts:
                max_ts = ts
            elif max_ts - ts > max_back:
                max_back = max_ts - ts
            # payload
            try:
                d = json.loads(payload)
            except ValueError:
                bad["invalid JSON"] = bad.get("invalid JSON", 0) + 1
                continue
            if topic == TOPICS[0]:
                reason, et, ent = validate_payment(d)
                tf = d.get("success_time") if isinstance(d, dict) else None
            else:
                reason, et, ent = validate_like(d)
                tf = d.get("ts") if isinstance(d, dict) else None
            if reason:
                bad[reason] = bad.get(reason, 0) + 1
                continue
            if tf.endswith("Z"):
                styles["Z"] += 1
            elif tf.endswith("+08:00"):
                styles["+08:00"] += 1
            else:
                styles["other"] += 1
            if "." in tf:
                styles["frac"] += 1
            if topic == TOPICS[0] and d["trade_state"] != "SUCCESS":
                n_nonsuccess += 1
            user, ip, dev, target, merchant, rid = ent
            lag = ts - et
            if lag_min is None or lag < lag_min:
                lag_min = lag
            if lag_max is None or lag > lag_max:
                lag_max = lag
            if lag < -60000 or lag > 600000:
                rep.s("kafka_ts", "line %d: Kafka ts %d ms away from event time" % (ln, lag))
            if t_min is None or et < t_min:
                t_min = et
            if t_max is None or et > t_max:
                t_max = et
            idk = (topic, rid)
            h = hash(payload)
            prev = ids.get(idk)
            if prev is None:
                ids[idk] = h
            elif prev == h:
                dups += 1
            else:
                rep.s("duplicates", "line %d: id %s re-used with a different payload" % (ln, rid))
            users.add(user)
            if ip:
                ipn += 1
                if ":" in ip:
                    ipv6 += 1
            for k, x in (("users", user), ("ips", ip), ("devices", dev),
                         ("targets", target), ("merchants", merchant)):
                if x is None:
                    continue
                evs = idx[k].get(x)
                if evs:
                    for i in evs:
                        s, t = events[i][3], events[i][4]
                        if s - 1000 <= et <= t + 1000:
                            seen[i][k].add(x)
    if n == 0:
        rep.v("line", "recording is empty")
    for topic in TOPICS:
        if parts[topic] and len(parts[topic]) != NPART:
            rep.warn.append("%s uses partitions %s (expected 6)" % (topic, sorted(parts[topic])))
    n_bad = sum(bad.values())
    if n and n_bad > 0.01 * n:
        rep.v("bad_records", "%d bad payloads (> 1%% of %d records)" % (n_bad, n))
    if n_bad == 0:
        rep.warn.append("no bad records")
    if dups == 0:
        rep.warn.append("no duplicate deliveries")
    if max_back > 60000:
        rep.warn.append("line order runs backwards by %.1f s" % (max_back / 1000.0))
    for i, (cls, eid, kind, s, t, ents) in enumerate(events):
        for k in ENT_KEYS:
            missing = [x for x in ents[k] if x not in seen[i][k]]
            if missing:
                rep.v("label_entities", "%s (%s): %d of %d %s not seen in its window, e.g. %s"
                      % (eid, kind, len(missing), len(ents[k]), k, missing[0]))
    nviol = sum(len(v) for v in rep.viol.values())
    if not quiet:
        print("records: %d (payments.success %d, likes %d)" % (n, n_topic[TOPICS[0]], n_topic[TOPICS[1]]))
        if t_min is not None:
            print("event time span: %s .. %s (%.1f min)" % (
                datetime.utcfromtimestamp(t_min / 1000).isoformat() + "Z",
                datetime.utcfromtimestamp(t_max / 1000).isoformat() + "Z", (t_max - t_min) / 60000.0))
        print("bad payloads: %d %s" % (n_bad, json.dumps(bad, sort_keys=True, ensure_ascii=False)))
        print("duplicate deliveries: %d; non-SUCCESS payments: %d" % (dups, n_nonsuccess))
        print("Kafka ts - event time: %s .. %s ms; max backwards step in line order: %.1f s"
              % (lag_min, lag_max, max_back / 1000.0))
        print("time styles: %s" % json.dumps(styles, sort_keys=True))
        print("distinct users: %d; IPv6 share of IPs: %.1f%%" % (len(users), 100.0 * ipv6 / max(1, ipn)))
        kinds_c, kinds_b = {}, {}
        for cls, eid, kind, s, t, ents in events:
            dct = kinds_c if cls == "campaigns" else kinds_b
            dct[kind] = dct.get(kind, 0) + 1
        print("campaigns: %d %s" % (sum(kinds_c.values()), json.dumps(kinds_c, sort_keys=True)))
        print("benign: %d %s" % (sum(kinds_b.values()), json.dumps(kinds_b, sort_keys=True)))
        for w in rep.warn:
            print("WARNING " + w)
        for k in sorted(rep.soft):
            if rep.soft[k] > 3:
                print("WARNING [%s] %d findings in all" % (k, rep.soft[k]))
    for kind in sorted(rep.viol):
        lst = rep.viol[kind]
        for msg in lst:
            if msg is not None:
                print("VIOLATION [%s] %s" % (kind, msg))
        more = sum(1 for m in lst if m is None)
        if more:
            print("VIOLATION [%s] ... and %d more" % (kind, more))
    print("OK" if nviol == 0 else "FAILED: %d violations" % nviol)
    return 0 if nviol == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
