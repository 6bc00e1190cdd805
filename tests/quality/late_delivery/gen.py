#!/usr/bin/env python3
"""othergen2 -- independent, labelled traffic generator for likeguard.

Produces a kcat -J style recording of the `payments.success` and `likes`
topics plus a ground-truth labels file, both in the shapes fixed by
/work/shared/CONTRACT.md.  Standard library only, Python 3.11.

Deterministic: every random draw comes from a `random.Random` seeded with a
string derived from --seed (string seeds are hashed with SHA-512 by CPython,
not with the per-process salted hash()); partitioning uses zlib.crc32; no
wall-clock time and no iteration over sets.  A rerun with the same arguments
writes byte-identical files (gzip output is written with mtime=0).

The traffic model and every parameter range is documented in README.md.

usage: python gen.py --seed N --out rec.jsonl[.gz] --labels labels.json
                     [--hours 2] [--rate 33]
"""
from __future__ import annotations

import argparse
import base64
import bisect
import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import math
import random
import sys
import zlib

GEN_NAME = "othergen2"
TZ8 = dt.timezone(dt.timedelta(hours=8))
UTC = dt.timezone.utc
LIKES = "likes"
PAYS = "payments.success"
PARTITIONS = {LIKES: 12, PAYS: 6}
ENT_KEYS = ("merchants", "targets", "users", "ips", "devices")
# snowflake epoch of the (fictional) likes service: 2021-01-01T00:00:00+08:00
SNOW_EPOCH_MS = 1609430400000

STATE_DESC = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "未支付",
    "CLOSED": "已关闭",
    "REVOKED": "已撤销（仅付款码支付会返回）",
    "USERPAYING": "用户支付中（仅付款码支付会返回）",
    "PAYERROR": "支付失败（仅付款码支付会返回）",
}
FAIL_STATES = ["CLOSED", "NOTPAY", "PAYERROR", "USERPAYING", "REVOKED"]
FAIL_WEIGHTS = [30, 25, 20, 15, 10]
BANKS = ["OTHERS", "CFT", "CMB_DEBIT", "ICBC_DEBIT", "CCB_DEBIT", "ABC_DEBIT",
         "BOC_CREDIT", "CMB_CREDIT", "SPDB_DEBIT", "COMM_DEBIT"]
BANK_W = [30, 22, 10, 9, 8, 6, 4, 5, 3, 3]

# IPv4 first octets of (plausible) fixed-broadband ranges per carrier
HOME_BLOCKS = {
    "CT": [113, 114, 115, 116, 171, 180, 182, 183, 222],
    "CU": [27, 42, 60, 61, 123, 124, 221],
    "CM": [36, 39, 111, 120, 223],
}
# carrier-grade NAT gateways of mobile networks: (first, second octet ranges)
CGNAT_BLOCKS = {
    "CM": [(117, range(136, 144)), (223, range(104, 105))],
    "CU": [(112, range(96, 98)), (157, range(0, 2))],
    "CT": [(106, range(120, 122)), (182, range(80, 82))],
}
CGNAT_POOL = {"CM": 600, "CU": 260, "CT": 200}
V6_PREFIX = {"CM": 0x240989, "CU": 0x240884, "CT": 0x240e04}
IDC_BLOCKS = [(47, range(92, 120)), (119, range(29, 30)), (81, range(68, 72)),
              (124, range(70, 72)), (139, range(224, 228)), (101, range(35, 37))]
CAMPUS_BLOCKS = [(202, range(112, 121)), (211, range(80, 88)), (58, range(246, 248))]


# ----------------------------------------------------------------- helpers
def lognorm(r: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(r.gauss(0.0, sigma))


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def poisson(r: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, int(round(r.gauss(lam, math.sqrt(lam)))))
    L, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= L:
            return k
        k += 1


def cumulate(ws):
    out, acc = [], 0.0
    for w in ws:
        acc += w
        out.append(acc)
    return out


def pick_cum(r: random.Random, cum) -> int:
    return bisect.bisect_right(cum, r.random() * cum[-1])


def fmt_cst(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms // 1000, TZ8).strftime("%Y-%m-%dT%H:%M:%S+08:00")


def fmt_cst_ms(ms: int) -> str:
    return (dt.datetime.fromtimestamp(ms // 1000, TZ8).strftime("%Y-%m-%dT%H:%M:%S")
            + ".%03d+08:00" % (ms % 1000))


def fmt_utc_ms(ms: int) -> str:
    return (dt.datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            + ".%03dZ" % (ms % 1000))


# relative like activity per local hour (China Standard Time), interpolated
# linearly between the hour marks; 21:00 is the daily peak (1.0).
DIURNAL = [0.55, 0.35, 0.20, 0.13, 0.10, 0.11, 0.18, 0.35, 0.52, 0.60, 0.64, 0.70,
           0.85, 0.80, 0.66, 0.64, 0.66, 0.70, 0.76, 0.86, 0.95, 1.00, 0.92, 0.75]


def diurnal(h: float) -> float:
    """Relative activity of a Chinese consumer app at local hour h (0..24)."""
    i = int(h) % 24
    fr = h - int(h)
    return DIURNAL[i] * (1 - fr) + DIURNAL[(i + 1) % 24] * fr


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ----------------------------------------------------------------- entities
class User:
    __slots__ = ("oid", "created_ms", "home_ip", "carrier", "v6", "devs",
                 "sends_created", "web_pref", "office_ip", "family_dev", "taint")

    def __init__(self):
        self.v6 = None
        self.devs = []
        self.office_ip = None
        self.family_dev = None
        self.taint = False
        self.web_pref = False
        self.sends_created = True


class Merchant:
    __slots__ = ("mchid", "rank", "tidx", "tcum", "store", "skus", "ono_style")


class Label:
    """Ground-truth entry.  Entities are registered as candidates with add();
    only candidates that actually occur in a tagged record are written out
    (users of tagged records are always listed)."""

    def __init__(self, lid: str, kind: str, group: str):
        self.id, self.kind, self.group = lid, kind, group
        self.t_min = None
        self.t_max = None
        self.n_rec = 0
        self.cand = {k: set() for k in ENT_KEYS}
        self.ent = {k: {} for k in ENT_KEYS}
        self.note = ""

    def see(self, ms: int, user, target, merchant, ip, dev):
        self.n_rec += 1
        if self.t_min is None or ms < self.t_min:
            self.t_min = ms
        if self.t_max is None or ms > self.t_max:
            self.t_max = ms
        self.ent["users"][user] = None
        for k, v in (("targets", target), ("merchants", merchant), ("ips", ip), ("devices", dev)):
            if v and v in self.cand[k]:
                self.ent[k][v] = None

    def add(self, key: str, val):
        if val:
            self.cand[key].add(val)

    def to_json(self):
        o = {"id": self.id, "kind": self.kind,
             "start": fmt_cst((self.t_min // 1000) * 1000),
             "end": fmt_cst(-(-self.t_max // 1000) * 1000)}
        for k in ENT_KEYS:
            if self.ent[k]:
                o[k] = list(self.ent[k])
        return o


SIZE_RANGES = {
    "paid_task_likes": {"small": (25, 40), "medium": (60, 150), "large": (200, 420)},
    "device_farm": {"small": (25, 40), "medium": (60, 160), "large": (180, 500)},
    "ip_farm": {"small": (25, 40), "medium": (60, 160), "large": (180, 450)},
    "fresh_account_burst": {"small": (30, 45), "medium": (80, 200), "large": (250, 800)},
    "slow_drip": {"small": (25, 40), "medium": (50, 100), "large": (100, 160)},
    "camouflaged_ring": {"small": (25, 40), "medium": (40, 70), "large": (70, 110)},
}
CAMPAIGN_KINDS = list(SIZE_RANGES)


# ----------------------------------------------------------------- generator
class Gen:
    def __init__(self, seed: int, hours: float, rate: float):
        self.seed, self.hours, self.rate = seed, hours, rate
        self.H = hours * 3600.0
        r = self.rng("calendar")
        day = dt.date(2026, 11, 2) + dt.timedelta(days=r.randrange(45))
        self.start_min = r.randrange(7 * 60, 21 * 60 + 1, 5)
        t0 = dt.datetime(day.year, day.month, day.day, tzinfo=TZ8).timestamp()
        self.t0ms = int(t0) * 1000 + self.start_min * 60000
        self.end_ms = self.t0ms + int(self.H * 1000)
        self.recs = []
        self.seq = 0
        self.rd = self.rng("delivery")
        self.used_ip, self.used_dev, self.used_tx = set(), set(), set()
        self.like_ctr = self.tx_ctr = self.oid_ctr = 0
        self.labels = []
        self.camp_m, self.camp_t = set(), set()
        self.ben_m, self.ben_t = set(), set()
        self.ben_ip, self.ben_dev = {}, {}
        hd = hashlib.blake2b(f"{GEN_NAME}/{seed}/openid".encode(), digest_size=8).digest()
        self.oid_prefix = "o" + base64.urlsafe_b64encode(hd).decode()[:5]

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{GEN_NAME}/{self.seed}/{name}")

    # ---------------------------------------------------------- id makers
    def new_oid(self, salt: str) -> str:
        self.oid_ctr += 1
        d = hashlib.blake2b(f"{self.seed}/{salt}/{self.oid_ctr}".encode(), digest_size=18).digest()
        return self.oid_prefix + base64.urlsafe_b64encode(d).decode()[:22]

    def new_dev(self, r: random.Random, ios: bool) -> str:
        while True:
            if ios:
                h = "%032X" % r.getrandbits(128)
                d = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            elif r.random() < 0.7:
                d = "%016x" % r.getrandbits(64)          # android_id
            else:
                h = "%032x" % r.getrandbits(128)          # OAID
                d = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            if d not in self.used_dev:
                self.used_dev.add(d)
                return d

    def alloc_v4(self, r: random.Random, blocks) -> str:
        """blocks: list of first octets, or list of (first, range(second))."""
        while True:
            b = r.choice(blocks)
            if isinstance(b, tuple):
                a, b2 = b[0], r.choice(b[1])
            else:
                a, b2 = b, r.randrange(0, 256)
            ip = f"{a}.{b2}.{r.randrange(0, 256)}.{r.randrange(1, 255)}"
            if ip not in self.used_ip:
                self.used_ip.add(ip)
                return ip

    def home_ip(self, r, carrier=None):
        return self.alloc_v4(r, HOME_BLOCKS[carrier or r.choice(["CT", "CT", "CU", "CM"])])

    def new_tx(self, ms: int) -> str:
        day = dt.datetime.fromtimestamp(ms // 1000, TZ8).strftime("%Y%m%d")
        while True:
            self.tx_ctr += 1
            d = hashlib.blake2b(f"{self.seed}/tx/{self.tx_ctr}".encode(), digest_size=8).digest()
            n = int.from_bytes(d, "big")
            tx = "42000%05d%s%010d" % (n % 3000, day, (n >> 16) % 10 ** 10)
            if tx not in self.used_tx:
                self.used_tx.add(tx)
                return tx

    def new_ono(self, r: random.Random, m: Merchant, ms: int):
        if r.random() < 0.04:
            return None
        st = m.ono_style
        if st == 0:
            return dt.datetime.fromtimestamp(ms // 1000, TZ8).strftime("%Y%m%d%H%M%S") + "%06d" % r.randrange(10 ** 6)
        if st == 1:
            return "E" + dt.datetime.fromtimestamp(ms // 1000, TZ8).strftime("%Y%m%d") + "%010d" % r.randrange(10 ** 10)
        if st == 2:
            return "%032x" % r.getrandbits(128)
        return "TB%016d" % r.randrange(10 ** 16)

    # ---------------------------------------------------------- world
    def build_world(self):
        r = self.rng("world")
        self.zipf_s = r.uniform(0.90, 1.05)
        NM = 4000
        ids = r.sample(range(200_000_000, 700_000_000), NM)
        self.appid_mini = "wx" + "%016x" % r.getrandbits(64)
        self.appid_app = "wx" + "%016x" % r.getrandbits(64)
        self.merchants = []
        self.t_ids, self.t_owner, t_w = [], [], []
        next_id = r.randrange(1_000_000, 4_000_000)
        kinds, kw = ["video", "post", "note", "live"], [45, 30, 20, 5]
        for rank in range(NM):
            m = Merchant()
            m.mchid = str(1_000_000_000 + ids[rank])
            m.rank = rank
            m.ono_style = r.choices([0, 1, 2, 3], [40, 25, 20, 15])[0]
            wm = (rank + 1) ** -self.zipf_s
            n = min(500, 1 + int(lognorm(r, 4.0, 0.9)) + int(150 * (rank + 1) ** -0.6))
            cw = [(j + 1) ** -0.85 for j in range(n)]
            sw = 0.08 * sum(cw)
            tot = sum(cw) + sw
            m.tidx = []
            m.store = "store:" + m.mchid
            self.t_ids.append(m.store)
            self.t_owner.append(m.mchid)
            t_w.append(wm * sw / tot)
            m.tidx.append(len(self.t_ids) - 1)
            for j in range(n):
                next_id += r.randrange(1, 40)
                self.t_ids.append(r.choices(kinds, kw)[0] + ":" + str(next_id))
                self.t_owner.append(m.mchid)
                t_w.append(wm * cw[j] / tot)
                m.tidx.append(len(self.t_ids) - 1)
            m.tcum = cumulate([t_w[i] for i in m.tidx])
            level = lognorm(r, 5900, 0.8)
            style = r.choice(["00", "900", "990", "99"])
            m.skus = []
            for _ in range(r.randint(3, 20)):
                p = max(99, level * math.exp(r.gauss(0, 0.5)))
                if style == "00":
                    p = max(100, int(round(p / 100.0)) * 100)
                elif style == "900":
                    p = max(900, int(round(p / 1000.0)) * 1000 - 100)
                elif style == "990":
                    p = max(990, int(round(p / 1000.0)) * 1000 - 10)
                else:
                    p = max(99, int(round(p / 100.0)) * 100 - 1)
                m.skus.append(p)
            self.merchants.append(m)
        self.next_tid = next_id + 1000
        self.m_by_id = {m.mchid: m for m in self.merchants}
        self.t_cum = cumulate(t_w)
        self.t_w = t_w
        self.s_cum = cumulate([((m.rank + 1) ** -self.zipf_s) ** 0.75 * lognorm(r, 1.0, 0.8)
                               for m in self.merchants])
        # popular targets (camouflage material for rings / task workers)
        order = sorted(range(len(t_w)), key=lambda i: (-t_w[i], i))
        self.popular = order[:600]

        # mobile CGNAT gateway pools
        self.cgnat = {}
        for c, n in CGNAT_POOL.items():
            ips = [self.alloc_v4(r, CGNAT_BLOCKS[c]) for _ in range(n)]
            self.cgnat[c] = (ips, cumulate([(i + 1) ** -0.7 for i in range(n)]))

        # organic users
        NU = max(4000, int(self.rate * self.H / 4.6))
        self.users, uw = [], []
        for i in range(NU):
            u = User()
            u.oid = self.new_oid("u")
            x = r.random()
            if x < 0.68:
                age = min(12 * 365, lognorm(r, 1100, 0.6)) * 86400
            elif x < 0.92:
                age = r.uniform(30, 400) * 86400
            elif x < 0.99:
                age = r.uniform(1, 30) * 86400
            else:
                age = r.uniform(600, 86400)
            u.created_ms = self.t0ms - int(age * 1000)
            u.carrier = r.choices(["CM", "CU", "CT"], [56, 24, 20])[0]
            if i and r.random() < 0.22:
                u.home_ip = self.users[-1].home_ip       # household
            else:
                u.home_ip = self.home_ip(r)
            if r.random() < 0.38:
                u.v6 = (V6_PREFIX[u.carrier] << 40) | r.getrandbits(40)
            ios = r.random() < 0.27
            if i and r.random() < 0.02:
                # second WeChat account of the same person ("dual-open" phone)
                prev = self.users[-1]
                u.devs = [prev.devs[0]]
                u.home_ip, u.carrier, u.v6 = prev.home_ip, prev.carrier, prev.v6
            else:
                u.devs = [self.new_dev(r, ios)]
            if r.random() < 0.09:
                u.devs.append(self.new_dev(r, r.random() < 0.5))
            u.sends_created = r.random() < 0.78
            u.web_pref = r.random() < 0.10
            self.users.append(u)
            uw.append(min(300.0, (1.0 - r.random()) ** (-1 / 1.25)))
        self.u_cum = cumulate(uw)

    # ---------------------------------------------------------- networking
    def pick_ip(self, r: random.Random, u: User) -> str:
        if u.office_ip and r.random() < 0.85:
            return u.office_ip
        if r.random() < 0.45:
            return u.home_ip
        if u.v6 is not None and r.random() < 0.5:
            return str(ipaddress.IPv6Address((u.v6 << 64) | r.getrandbits(64)))
        ips, cum = self.cgnat[u.carrier]
        return ips[pick_cum(r, cum)]

    def cgnat_ip(self, r, carrier=None):
        ips, cum = self.cgnat[carrier or r.choice(["CM", "CM", "CU", "CT"])]
        return ips[pick_cum(r, cum)]

    # ---------------------------------------------------------- emission
    def push(self, topic, key, payload, kms, part=None):
        if part is None:
            part = (zlib.crc32(key.encode()) % PARTITIONS[topic] if key is not None
                    else self.rd.randrange(PARTITIONS[topic]))
        # broker append order = create time + producer linger / network
        arrival = kms + int(lognorm(self.rd, 8.0, 1.0))
        self.recs.append((arrival, topic, part, self.seq, key, payload, kms))
        self.seq += 1
        return part

    def like(self, t, u, target, owner, ip, dev, producer="app", action="like", tag=None):
        if t < 0 or t >= self.H:
            return None
        rd = self.rd
        ms = self.t0ms + int(t * 1000)
        self.like_ctr += 1
        c = self.like_ctr
        if producer == "app":
            lid = str(((ms - SNOW_EPOCH_MS) << 22) | (((c >> 12) & 1023) << 12) | (c & 4095))
            p = {"like_id": lid, "user_openid": u.oid, "target_id": target,
                 "owner_mchid": owner, "action": action, "ts": fmt_utc_ms(ms)}
            if ip and rd.random() < 0.97:
                p["client_ip"] = ip
            if dev:
                p["device_id"] = dev
            else:
                dev = None
            if u.sends_created:
                p["user_created"] = fmt_cst(u.created_ms)
            key = u.oid
            delay = lognorm(rd, 0.25, 0.9)
        else:
            lid = "h5" + hashlib.blake2b(f"{self.seed}/like/{c}".encode(), digest_size=10).hexdigest()
            p = {"ts": fmt_cst_ms(ms), "like_id": lid, "target_id": target,
                 "owner_mchid": owner, "user_openid": u.oid}
            if action != "like":
                p["action"] = action
            if ip and rd.random() < 0.90:
                p["client_ip"] = ip
            dev = None
            key = None
            delay = lognorm(rd, 0.45, 0.8)
        x = rd.random()
        if x < 0.006:
            delay += rd.uniform(20, 600)          # offline queue flushed late
        elif x < 0.009:
            delay = -rd.uniform(0.05, 2.0)         # client clock slightly ahead
        payload = dumps(p)
        kms = ms + int(delay * 1000)
        part = self.push(LIKES, key, payload, kms)
        if rd.random() < 0.005:                    # producer retry: same bytes again
            self.push(LIKES, key, payload, kms + int(rd.uniform(0.2, 8.0) * 1000), part)
        if tag is not None:
            tag.see(ms, u.oid, target, owner, p.get("client_ip"), dev)
        return ms

    def pay(self, t, u, m: Merchant, amount: int, state="SUCCESS", ip=None, dev=None,
            producer="app", tag=None, ono=None, dev_p=0.45, ip_p=0.65, refund_p=0.004):
        if t < 0 or t >= self.H:
            return None
        rd = self.rd
        ms = self.t0ms + int(t) * 1000
        tx = self.new_tx(ms)
        if producer == "app" and rd.random() < 0.3:
            ttype, appid = "APP", self.appid_app
        else:
            ttype, appid = ("JSAPI" if rd.random() < 0.93 else "MWEB"), self.appid_mini
        p = {"mchid": m.mchid}
        if rd.random() < 0.94:
            p["appid"] = appid
        if ono is None:
            ono = self.new_ono(rd, m, ms)
        if ono:
            p["out_trade_no"] = ono
        p["transaction_id"] = tx
        p["trade_type"] = ttype
        p["trade_state"] = state
        p["trade_state_desc"] = STATE_DESC[state]
        p["bank_type"] = rd.choices(BANKS, BANK_W)[0]
        if rd.random() < 0.25:
            p["attach"] = ""
        p["success_time"] = fmt_cst(ms)
        p["payer"] = {"openid": u.oid}
        amt = {"total": amount}
        if amount > 2000 and rd.random() < 0.05:
            amt["payer_total"] = amount - rd.randrange(100, min(1000, amount // 2))
        else:
            amt["payer_total"] = amount
        if rd.random() < 0.92:
            amt["currency"] = "CNY"
            amt["payer_currency"] = "CNY"
        p["amount"] = amt
        if dev and rd.random() < dev_p:
            p["scene_info"] = {"device_id": dev}
        if ip and rd.random() < ip_p:
            p["payer_client_ip"] = ip
        payload = dumps(p)
        delay = lognorm(rd, 2.5, 0.8)
        if rd.random() < 0.015:
            delay += rd.uniform(30, 300)
        kms = ms + int(delay * 1000)
        part = self.push(PAYS, tx, payload, kms)
        if rd.random() < 0.02:                    # notification retried (same bytes)
            sched = [15, 30, 60, 180, 600]
            for i in range(rd.choices([1, 2, 3], [70, 20, 10])[0]):
                self.push(PAYS, tx, payload, kms + int((sched[i] + rd.uniform(-2, 2)) * 1000), part)
        if state == "SUCCESS" and rd.random() < refund_p:
            q = dict(p)
            q["trade_state"] = "REFUND"
            q["trade_state_desc"] = STATE_DESC["REFUND"]
            rk = kms + int(rd.uniform(300, 3600) * 1000)
            if rk <= self.end_ms:
                self.push(PAYS, tx, dumps(q), rk, part)
        if tag is not None:
            tag.see(ms, u.oid, None, m.mchid, p.get("payer_client_ip"),
                    p.get("scene_info", {}).get("device_id"))
        return ono

    # ---------------------------------------------------------- organic
    def sku_amount(self, r, m: Merchant) -> int:
        if r.random() < 0.003:
            return r.choice([1, 1, 1, 10, 100])        # 1-fen trial / sample offers
        a = r.choice(m.skus) * r.choices([1, 2, 3], [85, 11, 4])[0]
        if r.random() < 0.12:
            c = r.choice([300, 500, 1000, 2000])
            if a > 2 * c:
                a -= c
        if r.random() < 0.10:
            a += r.choice([600, 800, 1000])
        return max(1, a)

    def buy(self, r, t, u, m, ip, dev, producer, tag, like_after=0.10):
        """An honest purchase, possibly preceded by a failed attempt and followed
        by the buyer liking the shop."""
        if r.random() < 0.03:
            st = r.choices(FAIL_STATES, FAIL_WEIGHTS)[0]
            ono = self.pay(t, u, m, self.sku_amount(r, m), st, ip, dev, producer, tag)
            if r.random() > 0.6:
                return
            t += r.uniform(20, 120)
            self.pay(t, u, m, self.sku_amount(r, m), "SUCCESS", ip, dev, producer, tag, ono=ono)
        else:
            self.pay(t, u, m, self.sku_amount(r, m), "SUCCESS", ip, dev, producer, tag)
        if r.random() < like_after:
            tl = t + clamp(lognorm(r, 180, 0.9), 20, 2400)
            tgt = m.store if r.random() < 0.7 else self.t_ids[m.tidx[min(len(m.tidx) - 1, 1 + r.randrange(3))]]
            self.like(tl, u, tgt, m.mchid, ip, dev, producer, tag=tag)

    def pick_target(self, r, cur_m, taint):
        for _ in range(8):
            if cur_m is not None and r.random() < 0.4:
                ti = cur_m.tidx[pick_cum(r, cur_m.tcum)]
            else:
                ti = pick_cum(r, self.t_cum)
            if not taint or (self.t_owner[ti] not in self.camp_m and self.t_ids[ti] not in self.camp_t):
                return ti
        return None

    def session(self, r, u: User, t, ip=None, dev=None, producer=None, n_likes=None,
                buy_p=None, tag=None):
        if producer is None:
            producer = "web" if (u.web_pref and r.random() < 0.75) or r.random() < 0.06 else "app"
        if producer == "app" and dev is None:
            if u.family_dev and r.random() < 0.35:
                dev = u.family_dev
            else:
                dev = u.devs[0] if len(u.devs) == 1 or r.random() < 0.75 else u.devs[1]
        if producer != "app":
            dev = None
        if ip is None:
            ip = self.pick_ip(r, u)
        if tag is None:
            tag = self.ben_ip.get(ip) or (self.ben_dev.get(dev) if dev else None)
        taint = u.taint or tag is not None
        if n_likes is None:
            n_likes = 0 if r.random() < 0.30 else min(150, math.ceil(lognorm(r, 3.5, 1.0)))
        if buy_p is None:
            buy_p = 0.35 if n_likes == 0 else 0.14
        cur, cur_m = t, None
        liked, seen_m = set(), []
        for i in range(n_likes):
            cur += r.uniform(1, 30) if i == 0 else min(900.0, 2 + lognorm(r, 16, 1.1))
            if cur >= self.H:
                break
            ti = self.pick_target(r, cur_m, taint)
            if ti is None or ti in liked:
                continue
            liked.add(ti)
            tgt, owner = self.t_ids[ti], self.t_owner[ti]
            self.like(cur, u, tgt, owner, ip, dev, producer, tag=tag)
            cur_m = self.m_by_id[owner]
            seen_m.append(cur_m)
            x = r.random()
            if x < 0.012:
                self.like(cur + clamp(lognorm(r, 25, 0.8), 2, 300), u, tgt, owner, ip, dev,
                          producer, "unlike", tag)
            elif x < 0.015:
                self.like(cur + r.uniform(300, 3600), u, tgt, owner, ip, dev, producer, "unlike", tag)
        if r.random() < 0.002:     # unlike of something liked before the recording
            ti = pick_cum(r, self.t_cum)
            if not taint or self.t_owner[ti] not in self.camp_m:
                self.like(t + r.uniform(0, 60), u, self.t_ids[ti], self.t_owner[ti], ip, dev,
                          producer, "unlike", tag)
        if r.random() < buy_p:
            for _ in range(r.choices([1, 2], [85, 15])[0]):
                for _ in range(8):
                    if seen_m and r.random() < 0.5:
                        m = r.choice(seen_m)
                    else:
                        m = self.merchants[pick_cum(r, self.s_cum)]
                    if not taint or m.mchid not in self.camp_m:
                        break
                else:
                    continue
                self.buy(r, r.uniform(t, cur + 60), u, m, ip, dev, producer, tag)

    def organic(self):
        r = self.rng("organic")
        B = 30.0
        nb = int(math.ceil(self.H / B))
        tau, sig = 900.0, 0.15
        a = math.exp(-B / tau)
        b = sig * math.sqrt(1 - a * a)
        x, f = r.gauss(0, sig), []
        for k in range(nb):
            h = (self.start_min / 60.0 + (k + 0.5) * B / 3600.0) % 24.0
            f.append(diurnal(h) * math.exp(x - sig * sig / 2))
            x = a * x + b * r.gauss(0, 1)
        mean_f = sum(f) / nb
        E_K = 4.4            # mean likes per session (see README)
        self.n_sessions = 0
        # sessions are simulated from WARMUP seconds before the recording
        # starts, so that sessions already in progress at t=0 are present;
        # their events before t=0 are dropped by like()/pay().
        WARMUP = 1200.0
        for k in range(-int(WARMUP / B), nb):
            n = poisson(r, self.rate * f[max(0, k)] / mean_f * B / E_K)
            for _ in range(n):
                t = (k + r.random()) * B
                if t >= self.H:
                    continue
                self.n_sessions += 1
                self.session(r, self.users[pick_cum(r, self.u_cum)], t)

    # ---------------------------------------------------------- labels
    def new_label(self, kind, group):
        n = sum(1 for l in self.labels if l.group == group) + 1
        lab = Label(("c" if group == "campaign" else "b") + str(n), kind, group)
        self.labels.append(lab)
        return lab

    def pool_users(self, r, n, uniform=0.0):
        """n distinct organic users; a share `uniform` drawn uniformly, the rest
        by activity weight."""
        out, seen = [], set()
        tries = 0
        while len(out) < n and tries < n * 20:
            tries += 1
            i = r.randrange(len(self.users)) if r.random() < uniform else pick_cum(r, self.u_cum)
            if i in seen:
                continue
            seen.add(i)
            out.append(self.users[i])
        return out

    def pick_merchant(self, r, lo, hi):
        while True:
            m = self.merchants[r.randrange(lo, min(hi, len(self.merchants)))]
            if m.mchid not in self.camp_m and m.mchid not in self.ben_m:
                return m

    def new_target(self, r, m, kind=None):
        self.next_tid += r.randrange(1, 40)
        return (kind or r.choices(["video", "post", "note"], [50, 30, 20])[0]) + ":" + str(self.next_tid)

    # ---------------------------------------------------------- benign plan
    def plan_benign(self):
        r = self.rng("benign-plan")
        reps = max(1, int(round(self.hours / 2.0)))
        self.benign_jobs = []
        scale = self.rate / 33.0
        for _ in range(reps):
            # viral post
            lab = self.new_label("viral_post", "benign")
            m = self.pick_merchant(r, 0, 60)
            tgt = self.new_target(r, m, "video")
            self.ben_m.add(m.mchid)
            self.ben_t.add(tgt)
            n = int(r.randint(2000, 6000) * scale)
            users = self.pool_users(r, min(n, len(self.users) // 3), uniform=0.7)
            for u in users:
                u.taint = True
            self.benign_jobs.append(("viral", lab, dict(m=m, tgt=tgt, users=users)))
            # office / campus NAT
            lab = self.new_label("office_nat", "benign")
            ip = self.alloc_v4(r, CAMPUS_BLOCKS)
            members = self.pool_users(r, r.randint(200, 600), uniform=0.6)
            members = [u for u in members if u.office_ip is None]
            for u in members:
                u.office_ip = ip
                u.taint = True
            self.ben_ip[ip] = lab
            self.benign_jobs.append(("office", lab, dict(ip=ip, users=members)))
            # like-to-unlock coupon
            lab = self.new_label("coupon_campaign", "benign")
            m = self.pick_merchant(r, 30, 600)
            tgt = self.new_target(r, m, "post")
            self.ben_m.add(m.mchid)
            self.ben_t.add(tgt)
            users = self.pool_users(r, r.randint(150, 700), uniform=0.5)
            for u in users:
                u.taint = True
            self.benign_jobs.append(("coupon", lab, dict(m=m, tgt=tgt, users=users)))
            # flash sale
            lab = self.new_label("flash_sale", "benign")
            m = self.pick_merchant(r, 10, 300)
            tgt = self.new_target(r, m, r.choice(["live", "video"]))
            self.ben_m.add(m.mchid)
            self.ben_t.add(tgt)
            n_buy = r.randint(300, 1500)
            users = self.pool_users(r, int(n_buy * 1.5), uniform=0.5)
            for u in users:
                u.taint = True
            self.benign_jobs.append(("flash", lab, dict(m=m, tgt=tgt, users=users, n_buy=n_buy)))
            # honest buyers liking the shop after paying
            lab = self.new_label("post_purchase_likes", "benign")
            m = self.pick_merchant(r, 80, 1200)
            self.ben_m.add(m.mchid)
            self.ben_t.add(m.store)
            users = self.pool_users(r, r.randint(80, 250), uniform=0.5)
            for u in users:
                u.taint = True
            self.benign_jobs.append(("ppl", lab, dict(m=m, users=users)))
            # families sharing one device
            for _ in range(2):
                lab = self.new_label("family_shared_device", "benign")
                fam = [u for u in self.pool_users(r, r.randint(3, 5), uniform=1.0) if u.family_dev is None]
                dev = self.new_dev(r, r.random() < 0.5)
                hip = self.home_ip(r)
                for u in fam:
                    u.family_dev = dev
                    u.home_ip = hip
                    u.taint = True
                self.ben_dev[dev] = lab
                self.ben_ip[hip] = lab
                self.benign_jobs.append(("family", lab, dict(dev=dev, ip=hip, users=fam)))

    def run_benign(self):
        for i, (kind, lab, a) in enumerate(self.benign_jobs):
            r = self.rng(f"benign/{i}/{kind}")
            getattr(self, "b_" + kind)(r, lab, **a)

    def b_viral(self, r, lab, m, tgt, users):
        H = self.H
        tv = r.uniform(0.05, 0.5) * H
        dur = min(H - tv - 60, r.uniform(45, 75) * 60)
        rise = r.uniform(4, 10) * 60
        lab.add("merchants", m.mchid)
        lab.add("targets", tgt)
        lab.note = f"{len(users)} likers, rise {rise/60:.0f} min, tail {dur/60:.0f} min"
        for u in users:
            if r.random() < 0.15:
                t = tv + rise * math.sqrt(r.random())
            else:
                t = tv + rise + 360 * ((1 - r.random()) ** (-1 / 1.3) - 1)
                if t > tv + dur:
                    t = tv + rise + r.random() * (dur - rise)
            ip = self.pick_ip(r, u)
            prod = "web" if r.random() < 0.1 else "app"
            dev = u.devs[0] if prod == "app" else None
            lab.add("users", u.oid)
            self.like(t, u, tgt, m.mchid, ip, dev, prod, tag=lab)
            if r.random() < 0.015:
                self.like(t + clamp(lognorm(r, 30, 0.8), 2, 600), u, tgt, m.mchid, ip, dev, prod,
                          "unlike", lab)
            if r.random() < 0.12:        # browse the creator's other content
                for _ in range(r.randint(1, 2)):
                    ti = m.tidx[pick_cum(r, m.tcum)]
                    t += r.uniform(20, 300)
                    self.like(t, u, self.t_ids[ti], m.mchid, ip, dev, prod, tag=lab)

    def b_office(self, r, lab, ip, users):
        lab.add("ips", ip)
        lab.note = f"{len(users)} users behind {ip}"
        for u in users:
            lab.add("users", u.oid)
            for _ in range(r.choices([1, 2, 3], [45, 35, 20])[0]):
                self.session(r, u, r.uniform(0, self.H - 60), ip=ip, tag=lab)

    def b_coupon(self, r, lab, m, tgt, users):
        H = self.H
        ts = r.uniform(0.05, 0.6) * H
        dur = min(H - ts - 1800, r.uniform(25, 60) * 60)
        dur = max(dur, 300)
        pay_frac = r.uniform(0.35, 0.6)
        offers = []
        for sku in r.sample(m.skus, min(len(m.skus), r.randint(1, 3))):
            if r.random() < 0.5 and sku > 2000:
                c = r.choice([500, 1000, 2000])
                offers.append(sku - c if sku > 2 * c else int(sku * 0.8 / 10) * 10)
            else:
                offers.append(max(1, int(sku * r.choice([0.8, 0.85, 0.9]) / 10) * 10))
        lab.add("merchants", m.mchid)
        lab.add("targets", tgt)
        lab.note = f"{len(users)} likers, {pay_frac:.0%} pay one of {offers} fen"
        for u in users:
            t = ts + min(dur, r.expovariate(3.0 / dur))
            ip = self.pick_ip(r, u)
            prod = "web" if r.random() < 0.15 else "app"
            dev = u.devs[0] if prod == "app" else None
            lab.add("users", u.oid)
            self.like(t, u, tgt, m.mchid, ip, dev, prod, tag=lab)
            if r.random() < pay_frac:
                tp = t + clamp(lognorm(r, 300, 0.7), 60, 1800)
                self.pay(tp, u, m, r.choice(offers), "SUCCESS", ip, dev, prod, lab)

    def b_flash(self, r, lab, m, tgt, users, n_buy):
        H = self.H
        T = int(r.uniform(0.1, 0.8) * H / 300) * 300 + 300.0     # on a 5-minute mark
        T = min(T, H - 1200)
        price = max(990, int(round(lognorm(r, 9900, 0.6) / 1000.0)) * 1000 - r.choice([10, 100, 1]))
        lab.add("merchants", m.mchid)
        lab.add("targets", tgt)
        lab.note = f"{n_buy} buyers at {price} fen from T+0"
        buyers, viewers = users[:n_buy], users[n_buy:]
        for u in buyers:
            t = T + clamp(lognorm(r, 45, 0.9), 1, 900)
            ip = self.pick_ip(r, u)
            prod = "web" if r.random() < 0.1 else "app"
            dev = u.devs[0] if prod == "app" else None
            lab.add("users", u.oid)
            st = "SUCCESS" if r.random() > 0.06 else r.choice(["CLOSED", "PAYERROR"])
            self.pay(t, u, m, price * (2 if r.random() < 0.08 else 1), st, ip, dev, prod, lab)
            if r.random() < 0.15:
                self.like(T + r.uniform(-600, 900), u, tgt, m.mchid, ip, dev, prod, tag=lab)
        for u in viewers:
            ip = self.pick_ip(r, u)
            dev = u.devs[0]
            lab.add("users", u.oid)
            self.like(T + r.uniform(-900, 1200), u, tgt, m.mchid, ip, dev, "app", tag=lab)

    def b_ppl(self, r, lab, m, users):
        H = self.H
        ts = r.uniform(0.05, 0.4) * H
        dur = min(H - ts - 600, r.uniform(40, 90) * 60)
        p_like = r.uniform(0.7, 0.9)
        lab.add("merchants", m.mchid)
        lab.add("targets", m.store)
        lab.note = f"{len(users)} buyers, {p_like:.0%} like the store page after paying"
        for u in users:
            t = ts + r.random() * dur
            ip = self.pick_ip(r, u)
            prod = "web" if r.random() < 0.1 else "app"
            dev = u.devs[0] if prod == "app" else None
            lab.add("users", u.oid)
            self.pay(t, u, m, self.sku_amount(r, m), "SUCCESS", ip, dev, prod, lab)
            if r.random() < p_like:
                self.like(t + clamp(lognorm(r, 90, 0.8), 15, 600), u, m.store, m.mchid, ip, dev,
                          prod, tag=lab)

    def b_family(self, r, lab, dev, ip, users):
        lab.add("devices", dev)
        lab.add("ips", ip)
        lab.note = f"{len(users)} family members on one device"
        for u in users:
            lab.add("users", u.oid)
            for _ in range(r.randint(2, 4)):
                self.session(r, u, r.uniform(0, self.H - 60), ip=ip, dev=dev, producer="app",
                             buy_p=0.3, tag=lab)

    # ---------------------------------------------------------- campaigns
    def camp_account(self, r, age: str, ref_t: float = 0.0) -> User:
        u = User()
        u.oid = self.new_oid("c")
        if age == "aged":
            days = lognorm(r, 240, 0.9)
        elif age == "old":
            days = r.uniform(200, 2000)
        elif age == "young":
            days = r.uniform(1, 10)
        else:
            days = r.uniform(1, 400)
        u.created_ms = self.t0ms + int(ref_t * 1000) - int(days * 86400000)
        u.sends_created = r.random() < 0.85
        u.carrier = r.choices(["CM", "CU", "CT"], [56, 24, 20])[0]
        return u

    def token_amounts(self, r):
        x = r.random()
        if x < 0.7:
            return [r.choice([1, 1, 1, 10, 100, 1, 50, 88, 2, 5])]
        if x < 0.9:
            return list(range(1, r.randint(10, 31)))
        return r.sample([1, 2, 5, 8, 10, 18, 20, 50], r.randint(2, 3))

    def fraud_merchant(self, r, lab):
        m = self.pick_merchant(r, 250, len(self.merchants))
        self.camp_m.add(m.mchid)
        lab.add("merchants", m.mchid)
        return m

    def camp_targets(self, r, lab, m, k):
        out = []
        for _ in range(k):
            if r.random() < 0.6:
                tgt = self.new_target(r, m)
            else:
                tgt = self.t_ids[m.tidx[pick_cum(r, m.tcum)]]
                if tgt in out or tgt in self.camp_t:
                    tgt = self.new_target(r, m)
            self.camp_t.add(tgt)
            lab.add("targets", tgt)
            out.append(tgt)
        return out

    def popular_like(self, r, t, u, ip, dev, lab):
        for _ in range(10):
            ti = r.choice(self.popular)
            if self.t_owner[ti] not in self.ben_m and self.t_ids[ti] not in self.camp_t:
                self.like(t, u, self.t_ids[ti], self.t_owner[ti], ip, dev, "app", tag=lab)
                return

    def start_for(self, r, est):
        lo = 0.03 * self.H
        hi = max(lo, self.H - est - 0.03 * self.H)
        return r.uniform(lo, hi)

    def plan_campaigns(self):
        r = self.rng("campaign-plan")
        n = max(4, int(round(3.5 * self.hours)))
        kinds = CAMPAIGN_KINDS[:]
        r.shuffle(kinds)
        kinds = kinds[:n]
        while len(kinds) < n:
            kinds.append(r.choices(CAMPAIGN_KINDS, [25, 20, 20, 15, 12, 8])[0])
        sizes = []
        while len(sizes) < n:
            blk = ["small", "medium", "large"]
            r.shuffle(blk)
            sizes += blk
        self.camp_jobs = []
        for i, k in enumerate(kinds):
            lo, hi = SIZE_RANGES[k][sizes[i]]
            self.camp_jobs.append((k, sizes[i], r.randint(lo, hi)))

    def run_campaigns(self):
        for i, (kind, cls, n) in enumerate(self.camp_jobs):
            r = self.rng(f"campaign/{i}/{kind}")
            lab = self.new_label(kind, "campaign")
            getattr(self, "c_" + kind)(r, lab, n)
            lab.note = f"[{cls}] " + lab.note

    def c_paid_task_likes(self, r, lab, n):
        m = self.fraud_merchant(r, lab)
        targets = self.camp_targets(r, lab, m, r.choice([1, 1, 1, 2, 3]))
        n_dev = max(2, int(round(n / r.uniform(5, 14))))
        devs = [self.new_dev(r, r.random() < 0.15) for _ in range(n_dev)]
        ipmode = r.choices(["home", "cgnat", "mixed"], [40, 35, 25])[0]
        dev_home = {d: self.home_ip(r) for d in devs}
        dev_car = {d: r.choice(["CM", "CM", "CU", "CT"]) for d in devs}
        amounts = self.token_amounts(r)
        dev_p, ip_p = r.choice([0.0, 0.5, 0.9]), r.choice([0.0, 0.6, 0.95])
        rush = r.uniform(3, 12) * 60
        per = -(-n // n_dev)
        start = self.start_for(r, 2 * rush + per * 80)
        lab.note = (f"{n} worker accounts on {n_dev} phones, ip={ipmode}, pays {amounts[:6]} fen, "
                    f"{len(targets)} target(s)")
        accs = [self.camp_account(r, "aged", start) for _ in range(n)]
        for d in devs:
            lab.add("devices", d)
        for j, d in enumerate(devs):
            t = start + min(3 * rush, r.expovariate(1.0 / rush))
            for a in accs[j::n_dev]:
                lab.add("users", a.oid)
                home = ipmode == "home" or (ipmode == "mixed" and r.random() < 0.5)
                ip = dev_home[d] if home else self.cgnat_ip(r, dev_car[d])
                if home:
                    lab.add("ips", ip)
                if r.random() < 0.02:
                    self.pay(t, a, m, r.choice(amounts), "PAYERROR", ip, d, tag=lab, dev_p=dev_p,
                             ip_p=ip_p, refund_p=0)
                    t += r.uniform(5, 20)
                self.pay(t, a, m, r.choice(amounts), "SUCCESS", ip, d, tag=lab, dev_p=dev_p,
                         ip_p=ip_p, refund_p=0.02)
                tl = t + clamp(lognorm(r, 9, 0.5), 2, 60)
                for tgt in (targets if r.random() < 0.6 else [r.choice(targets)]):
                    self.like(tl, a, tgt, m.mchid, ip, d, "app", tag=lab)
                    if r.random() < 0.03:
                        self.like(tl + r.uniform(900, 2400), a, tgt, m.mchid, ip, d, "app",
                                  "unlike", lab)
                    tl += r.uniform(3, 12)
                if r.random() < 0.25:
                    for _ in range(r.randint(1, 3)):
                        self.popular_like(r, t + r.uniform(-300, 300), a, ip, d, lab)
                t = tl + r.uniform(8, 50)

    def c_device_farm(self, r, lab, n):
        m = self.fraud_merchant(r, lab)
        targets = self.camp_targets(r, lab, m, r.randint(1, 4))
        n_ph = int(clamp(round(n / r.uniform(25, 60)), 3, 12))
        phones = [self.new_dev(r, False) for _ in range(n_ph)]
        ipmode = r.choices(["wifi", "4g", "wifi+4g"], [45, 35, 20])[0]
        wifi = [self.home_ip(r) for _ in range(r.randint(1, 2))]
        pays = r.random() < 0.35
        amounts = self.token_amounts(r)
        step = r.uniform(6, 20)
        per = -(-n // n_ph)
        start = self.start_for(r, per * (step + 8 * len(targets)) + 120)
        lab.note = (f"{n} accounts on {n_ph} phones, ip={ipmode}, step {step:.0f}s, "
                    f"{len(targets)} target(s), pays={amounts[:6] if pays else 'no'}")
        for ph in phones:
            lab.add("devices", ph)
        car = r.choice(["CM", "CU", "CT"])
        accs = [self.camp_account(r, "aged" if r.random() < 0.7 else "young", start) for _ in range(n)]
        for j, ph in enumerate(phones):
            t = start + r.uniform(0, 120)
            for a in accs[j::n_ph]:
                lab.add("users", a.oid)
                use_wifi = ipmode == "wifi" or (ipmode == "wifi+4g" and r.random() < 0.5)
                ip = r.choice(wifi) if use_wifi else self.cgnat_ip(r, car)
                if use_wifi:
                    lab.add("ips", ip)
                if pays:
                    self.pay(t, a, m, r.choice(amounts), "SUCCESS", ip, ph, tag=lab, dev_p=0.6,
                             ip_p=0.8, refund_p=0)
                    t += clamp(lognorm(r, 6, 0.4), 2, 30)
                k = len(targets) if r.random() < 0.5 else r.randint(1, len(targets))
                for tgt in r.sample(targets, k):
                    self.like(t, a, tgt, m.mchid, ip, ph, "app", tag=lab)
                    t += r.uniform(1.5, 5)
                t += step * lognorm(r, 1.0, 0.3)

    def c_ip_farm(self, r, lab, n):
        m = self.fraud_merchant(r, lab)
        targets = self.camp_targets(r, lab, m, r.randint(1, 3))
        kind = r.choice(["idc", "idc", "broadband"])
        n_ip = r.randint(1, 4)
        ips = [self.alloc_v4(r, IDC_BLOCKS) if kind == "idc" else self.home_ip(r) for _ in range(n_ip)]
        devmode = r.choice(["emulator", "none", "mixed"])
        pays = r.random() < 0.30
        amounts = self.token_amounts(r)
        dur = r.uniform(12, 50) * 60
        start = self.start_for(r, dur + 120)
        lab.note = (f"{n} accounts behind {n_ip} {kind} IP(s), devices={devmode}, "
                    f"{dur/60:.0f} min, pays={amounts[:6] if pays else 'no'}")
        for ip in ips:
            lab.add("ips", ip)
        for _ in range(n):
            a = self.camp_account(r, "mixed", start)
            if r.random() < 0.5:
                a.sends_created = False
            lab.add("users", a.oid)
            ip = r.choice(ips)
            has_dev = devmode == "emulator" or (devmode == "mixed" and r.random() < 0.5)
            dev = self.new_dev(r, False) if has_dev else None
            prod = "app" if has_dev else "web"
            lab.add("devices", dev)
            t = start + dur * r.betavariate(0.9, 1.3)
            if pays:
                self.pay(t, a, m, r.choice(amounts), "SUCCESS", ip, dev, prod, lab, dev_p=0.7,
                         ip_p=0.9, refund_p=0)
                t += clamp(lognorm(r, 12, 0.6), 2, 120)
            for tgt in r.sample(targets, r.randint(1, len(targets))):
                self.like(t, a, tgt, m.mchid, ip, dev, prod, tag=lab)
                t += r.uniform(2, 20)

    def c_fresh_account_burst(self, r, lab, n):
        m = self.fraud_merchant(r, lab)
        tgt = self.camp_targets(r, lab, m, 1)[0]
        dur = r.uniform(3, 15) * 60
        start = self.start_for(r, dur + 60)
        ipmode = r.choice(["proxy", "proxy", "cgnat"])
        devmode = r.choice(["unique", "unique", "none"])
        pays = r.random() < 0.15
        amounts = self.token_amounts(r)
        proxies = [self.home_ip(r) for _ in range(max(1, int(n / r.uniform(1.5, 5))))]
        lab.note = (f"{n} fresh accounts, {dur/60:.0f} min burst, ip={ipmode}"
                    f"({len(proxies) if ipmode == 'proxy' else 'shared'}), devices={devmode}")
        # batch registration: batches of 10-60 accounts created seconds apart
        accs = []
        while len(accs) < n:
            bt = start - r.uniform(0.3, 36) * 3600
            for _ in range(min(n - len(accs), r.randint(10, 60))):
                a = User()
                a.oid = self.new_oid("f")
                bt += r.uniform(5, 40)
                a.created_ms = self.t0ms + int(bt * 1000)
                a.sends_created = r.random() < 0.9
                a.carrier = r.choice(["CM", "CU", "CT"])
                accs.append(a)
        r.shuffle(accs)
        for a in accs:
            lab.add("users", a.oid)
            t = start + dur * r.triangular(0, 1, 0.25)
            if ipmode == "proxy":
                ip = r.choice(proxies)
                lab.add("ips", ip)
            else:
                ip = self.cgnat_ip(r, a.carrier)
            dev = self.new_dev(r, r.random() < 0.1) if devmode == "unique" else None
            prod = "app" if dev else "web"
            lab.add("devices", dev)
            if pays:
                self.pay(t - r.uniform(5, 40), a, m, r.choice(amounts), "SUCCESS", ip, dev, prod,
                         lab, refund_p=0)
            self.like(t, a, tgt, m.mchid, ip, dev, prod, tag=lab)

    def c_slow_drip(self, r, lab, n):
        m = self.fraud_merchant(r, lab)
        targets = self.camp_targets(r, lab, m, r.choice([1, 1, 2]))
        dur = r.uniform(70, 150) * 60
        dur = min(dur, self.H * 0.92)
        start = self.start_for(r, dur)
        n_dev = r.randint(4, 12)
        devs = [self.new_dev(r, r.random() < 0.2) for _ in range(n_dev)]
        ipmode = r.choice(["home", "cgnat"])
        dev_ip = {d: self.home_ip(r) for d in devs}
        amounts = self.token_amounts(r)
        dev_p = r.choice([0.0, 0.5, 0.9])
        lab.note = (f"{n} accounts over {dur/60:.0f} min on {n_dev} phones, ip={ipmode}, "
                    f"pays {amounts[:6]} fen")
        for d in devs:
            lab.add("devices", d)
        for i in range(n):
            a = self.camp_account(r, "aged", start)
            lab.add("users", a.oid)
            d = r.choice(devs)
            ip = dev_ip[d] if ipmode == "home" else self.cgnat_ip(r, a.carrier)
            if ipmode == "home":
                lab.add("ips", ip)
            t = start + dur * (i + r.random()) / n
            self.pay(t, a, m, r.choice(amounts), "SUCCESS", ip, d, tag=lab, dev_p=dev_p,
                     ip_p=0.7, refund_p=0.01)
            self.like(t + clamp(lognorm(r, 25, 0.8), 5, 120), a, r.choice(targets), m.mchid, ip, d,
                      "app", tag=lab)

    def c_camouflaged_ring(self, r, lab, n):
        ms = [self.fraud_merchant(r, lab) for _ in range(r.randint(1, 3))]
        n_t = r.randint(3, 8)
        waves = []
        for _ in range(n_t):
            m = r.choice(ms)
            waves.append((m, self.camp_targets(r, lab, m, 1)[0]))
        gaps = [r.uniform(6, 20) * 60 for _ in range(n_t - 1)]
        span = sum(gaps)
        if span > self.H * 0.85:
            f = self.H * 0.85 / span
            gaps = [g * f for g in gaps]
            span = sum(gaps)
        start = self.start_for(r, span + 600)
        part = r.uniform(0.8, 0.97)
        spread = r.uniform(40, 150)
        pays = r.random() < 0.4
        lab.note = (f"{n} members, {n_t} waves over {span/60:.0f} min, participation {part:.0%}, "
                    f"median lag {spread:.0f}s, pays={'yes' if pays else 'no'}")
        members = []
        for i in range(n):
            a = self.camp_account(r, "old", start)
            a.sends_created = r.random() < 0.9
            if members and r.random() < 0.15:
                dev = members[-1][1]                # two members sharing a phone
            else:
                dev = self.new_dev(r, r.random() < 0.3)
            hip = self.home_ip(r)
            members.append((a, dev, hip))
            lab.add("users", a.oid)
            lab.add("devices", dev)
            lab.add("ips", hip)

        def net(a, hip):
            return hip if r.random() < 0.5 else self.cgnat_ip(r, a.carrier)

        tw = start
        for w, (m, tgt) in enumerate(waves):
            if w:
                tw += gaps[w - 1]
            for a, dev, hip in members:
                if r.random() < part:
                    self.like(tw + clamp(lognorm(r, spread, 0.7), 3, 900), a, tgt, m.mchid,
                              net(a, hip), dev, "app", tag=lab)
        for a, dev, hip in members:
            for _ in range(r.randint(4, 20)):
                self.popular_like(r, start - 300 + r.random() * (span + 900), a, net(a, hip), dev, lab)
            if pays:
                m = r.choice(ms)
                self.pay(start + r.random() * span, a, m, r.choice(m.skus), "SUCCESS", hip, dev,
                         tag=lab, refund_p=0)

    # ---------------------------------------------------------- output
    def run(self):
        self.build_world()
        self.plan_benign()
        self.plan_campaigns()
        self.run_campaigns()
        self.run_benign()
        self.organic()

    def write(self, out_path, labels_path):
        self.recs.sort(key=lambda x: (x[0], x[1], x[2], x[3]))
        r = self.rng("offsets")
        nxt = {}
        for tp in (PAYS, LIKES):
            for p in range(PARTITIONS[tp]):
                nxt[(tp, p)] = r.randrange(10 ** 6, 10 ** 8)
        if out_path.endswith(".gz"):
            raw = open(out_path, "wb")
            fh = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
        else:
            raw = None
            fh = open(out_path, "wb")
        buf = []
        counts = {PAYS: 0, LIKES: 0}
        for _, tp, part, _, key, payload, kms in self.recs:
            off = nxt[(tp, part)]
            nxt[(tp, part)] = off + 1
            counts[tp] += 1
            buf.append('{"topic":"%s","partition":%d,"offset":%d,"tstype":"create","ts":%d,'
                       '"key":%s,"payload":%s}\n'
                       % (tp, part, off, kms, "null" if key is None else dumps(key), dumps(payload)))
            if len(buf) >= 5000:
                fh.write("".join(buf).encode("utf-8"))
                buf = []
        fh.write("".join(buf).encode("utf-8"))
        fh.close()
        if raw:
            raw.close()
        labs = {"campaigns": [l.to_json() for l in self.labels if l.group == "campaign" and l.n_rec],
                "benign": [l.to_json() for l in self.labels if l.group == "benign" and l.n_rec]}
        with open(labels_path, "w", encoding="utf-8") as f:
            json.dump(labs, f, indent=1, ensure_ascii=False)
            f.write("\n")
        return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description="labelled traffic generator for likeguard (othergen2)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="recording, .jsonl or .jsonl.gz")
    ap.add_argument("--labels", required=True, help="labels JSON file")
    ap.add_argument("--hours", type=float, default=2.0, help="event-time length of the run")
    ap.add_argument("--rate", type=float, default=33.0,
                    help="mean organic like rate over the run, likes per second")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.hours <= 0 or a.rate <= 0:
        ap.error("--hours and --rate must be positive")
    g = Gen(a.seed, a.hours, a.rate)
    g.run()
    counts = g.write(a.out, a.labels)
    if not a.quiet:
        w = sys.stderr.write
        w(f"{GEN_NAME} seed={a.seed} start={fmt_cst(g.t0ms)} hours={a.hours} rate={a.rate}\n")
        w(f"records: {PAYS}={counts[PAYS]} {LIKES}={counts[LIKES]} "
          f"total={counts[PAYS] + counts[LIKES]} organic_sessions={g.n_sessions}\n")
        for l in g.labels:
            if not l.n_rec:
                continue
            w(f"  {l.id:4s} {l.kind:22s} {fmt_cst(l.t_min)[11:19]}-{fmt_cst(l.t_max)[11:19]} "
              f"rec={l.n_rec:6d} users={len(l.ent['users']):5d} {l.note}\n")


if __name__ == "__main__":
    main()
