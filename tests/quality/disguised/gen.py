#!/usr/bin/env python3
"""othergen4 - independent, labelled traffic generator for the likeguard contract.

Written from /work/shared/CONTRACT.md and a list of behaviours only.
Standard library only.  See README.md.

    python3 gen.py --seed N --out rec.jsonl[.gz] --labels labels.json \
                   [--hours H] [--rate R] [--quiet]
"""
import argparse
import bisect
import gzip
import json
import math
import random
import sys
import time as _walltime
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring as jstr  # C accelerated, UTF-8 kept

NPART = 6
TOPICS = ("payments.success", "likes")
TZ8 = timezone(timedelta(hours=8))
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MASK64 = (1 << 64) - 1
MIN = 60000

CAMPAIGN_KINDS = (
    "coordinated_ring",      # 20-80 accounts, rounds over 4-8 merchants' new posts
    "camouflaged_ring",      # aged accounts: pay ~1-2 CNY, like 1-2 min later, noise
    "like_exchange",         # several merchants' real accounts like each other's posts
    "paid_task_like_first",  # workers like, then pay (coupon-unlock order)
    "paid_task_real_amount", # workers pay 9.9-39.9 CNY, like seconds later
    "paid_task_token",       # workers pay 0.01-1 CNY, like within seconds
    "proxy_farm",            # bought aged accounts, 1 residential IP each, few emulators
    "device_farm",           # hundreds of accounts on few devices and/or IPs
    "fresh_account_flood",   # accounts created minutes-hours ago flood one post
    "drip",                  # a few likes per minute for a long time, rotating accounts
)
BENIGN_KINDS = (
    "fan_club_burst", "class_likes_teacher", "office_staff", "family_shared_device",
    "livestream_tips", "coupon_like_to_unlock", "one_yuan_deal", "viral_post",
    "flash_sale",
)

# first octets of Chinese residential / business broadband ranges
RES_FIRST = (1, 14, 27, 36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 111, 112,
             113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 171,
             175, 180, 182, 183, 218, 219, 220, 221, 222, 223)
# carrier-grade NAT /16s of three mobile carriers (shared by many users)
NAT16 = (("117.136", "223.104", "39.144"), ("112.97", "112.96", "42.84"),
         ("106.39", "101.88", "180.97"))
NAT16_SET = frozenset(p for c in NAT16 for p in c)
SCHOOL_FIRST = (202, 210, 211)
V6_HOME = ("240e", "2408", "2409")
V6_MOB = ("2409:89", "2408:84", "240e:47")

DIURNAL = (0.35, 0.22, 0.14, 0.10, 0.08, 0.10, 0.20, 0.40, 0.60, 0.75, 0.85, 0.90,
           1.00, 0.95, 0.85, 0.85, 0.90, 0.95, 1.00, 1.10, 1.25, 1.30, 1.15, 0.70)

# (cumulative prob, time style, sends action, sends user_created, created style)
# styles: 0 +08:00 s, 1 +08:00 ms, 2 Z ms, 3 Z s, 4 +08:00 us
CLIENTS = ((0.55, 1, True, True, 0),    # android app
           (0.85, 2, True, True, 3),    # ios app
           (0.95, 0, False, False, 0),  # web
           (1.00, 4, False, True, 1))   # mini program

PAY_STATES = (("REFUND", "转入退款"), ("CLOSED", "已关闭"), ("PAYERROR", "支付失败"),
              ("NOTPAY", "未支付"), ("REVOKED", "已撤销"), ("USERPAYING", "用户支付中"))
BANKS = ("OTHERS", "CMC", "ICBC_DEBIT", "CMB_CREDIT", "CCB_DEBIT", "ABC_DEBIT",
         "BOC_CREDIT", "SPDB_DEBIT")


def mkrng(seed, comp):
    # random.Random(str) hashes the string with sha512: PYTHONHASHSEED-independent
    return random.Random("othergen4|%s|%s" % (seed, comp))


def murmur2(data):
    """Kafka's murmur2 (as in org.apache.kafka.common.utils.Utils)."""
    length = len(data)
    m = 0x5bd1e995
    h = (0x9747b28c ^ length) & 0xffffffff
    n4 = length // 4
    for i in range(n4):
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


def kafka_partition(key, n=NPART):
    return (murmur2(key.encode("utf-8")) & 0x7fffffff) % n


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam < 40:
        lim = math.exp(-lam)
        k, p = 0, 1.0
        while True:
            p *= rng.random()
            if p <= lim:
                return k
            k += 1
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


class Clock:
    def __init__(self, t0_ms):
        self.t0 = t0_ms
        self._loc = {}
        self._utc = {}

    def loc(self, sec):
        s = self._loc.get(sec)
        if s is None:
            s = datetime.fromtimestamp(sec, TZ8).strftime("%Y-%m-%dT%H:%M:%S")
            if len(self._loc) < 400000:
                self._loc[sec] = s
        return s

    def utc(self, sec):
        s = self._utc.get(sec)
        if s is None:
            s = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            if len(self._utc) < 400000:
                self._utc[sec] = s
        return s

    def fmt(self, ams, style):
        sec, ms = divmod(ams, 1000)
        if style == 1:
            return "%s.%03d+08:00" % (self.loc(sec), ms)
        if style == 2:
            return "%s.%03dZ" % (self.utc(sec), ms)
        if style == 0:
            return self.loc(sec) + "+08:00"
        if style == 3:
            return self.utc(sec) + "Z"
        return "%s.%03d%03d+08:00" % (self.loc(sec), ms, (ams * 37) % 1000)


class User:
    __slots__ = ("oid", "created", "cstr", "style", "act", "sendc", "home", "v6",
                 "carrier", "salt", "pm", "office", "devs", "favs", "hh", "recent", "idx")


class Merchant:
    __slots__ = ("idx", "id", "appid", "otp", "w", "pw", "price", "targets", "tcw", "ttot")


class Label:
    __slots__ = ("kind", "cls", "t0", "t1", "m", "tg", "u", "ip", "dv", "cap", "side")

    def __init__(self, kind, cls, cap):
        self.kind, self.cls, self.cap = kind, cls, cap
        self.t0 = self.t1 = None
        self.m, self.tg, self.u, self.ip, self.dv = {}, {}, {}, {}, {}
        self.side = []   # (t, user, ip, dev) of side activity (noise likes etc.)

    def finish(self):
        """side activity names its account, IP and device only when it happened
        inside the event's window (the window is set by the core records)."""
        if self.t0 is None:
            return
        for t, user, ip, dev in self.side:
            if self.t0 <= t <= self.t1:
                self.u[user] = 1
                if ip:
                    self.ip[ip] = 1
                if dev:
                    self.dv[dev] = 1
        self.side = []

    def add(self, t, user, ip, dev, target, merchant, core):
        if not core:
            self.side.append((t, user, ip, dev))
            return
        if self.t0 is None or t < self.t0:
            self.t0 = t
        if self.t1 is None or t > self.t1:
            self.t1 = t
        if target:
            self.tg[target] = 1
        if merchant:
            self.m[merchant] = 1
        self.u[user] = 1
        if ip:
            self.ip[ip] = 1
        if dev:
            self.dv[dev] = 1


class Out:
    """Buckets records by Kafka-timestamp minute, assigns partitions/offsets and
    writes kcat -J lines in an approximately time-ordered, per-partition
    consistent order."""

    def __init__(self, path, t0_ms, seed, n_dup_target, expect_records):
        self.t0 = t0_ms
        self.buckets = {}
        self.seq = 0
        self.krng = mkrng(seed, "kafka")
        self.drng = mkrng(seed, "dup")
        self.lrng = mkrng(seed, "lag")
        self.p_dup = n_dup_target / max(1.0, expect_records)
        self.rr = [0, 0]
        self.off = [0] * (2 * NPART)
        self.last = [-10 ** 15] * (2 * NPART)
        self.lags = {}
        self.pcache = {}
        self.n = [0, 0]
        self.n_dup = 0
        self.gz = path.endswith(".gz")
        self.raw = open(path, "wb")
        self.f = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0,
                               compresslevel=6) if self.gz else self.raw

    def put(self, topic, key, payload, t, dup_ok=True):
        r = self.krng
        if topic == 1:
            d = 30 + int(r.lognormvariate(5.7, 0.8))      # median ~330 ms
            if d > 12000:
                d = 12000
        else:
            d = 120 + int(r.lognormvariate(6.8, 0.7))     # webhook, median ~1 s
            if d > 20000:
                d = 20000
        kts = t + d
        b = kts // MIN
        lst = self.buckets.get(b)
        if lst is None:
            lst = self.buckets[b] = []
        lst.append((kts, self.seq, topic, key, payload))
        self.seq += 1
        if dup_ok and self.drng.random() < self.p_dup:
            # duplicate delivery: same bytes re-sent (producer retry / pay re-notify)
            if topic == 1:
                kts2 = kts + 200 + int(self.drng.random() * 5000)
            else:
                kts2 = kts + self.drng.choice((15000, 30000, 45000, 180000)) + \
                    int(self.drng.random() * 2000)
            b = kts2 // MIN
            lst = self.buckets.get(b)
            if lst is None:
                lst = self.buckets[b] = []
            lst.append((kts2, self.seq, topic, key, payload))
            self.seq += 1
            self.n_dup += 1

    def lag(self, tp, kts):
        blk = kts // 20000
        k = (tp, blk)
        v = self.lags.get(k)
        if v is None:
            r = self.lrng.random()
            if r < 0.80:
                v = int(self.lrng.random() * 500)
            elif r < 0.95:
                v = 500 + int(self.lrng.random() * 1500)
            else:
                v = 2000 + int(self.lrng.random() * 4000)
            self.lags[k] = v
        return v

    def flush(self, upto):
        keys = sorted(k for k in self.buckets if k < upto)
        t0 = self.t0
        for b in keys:
            recs = self.buckets.pop(b)
            recs.sort()
            staged = []
            for kts, seq, topic, key, payload in recs:
                if key is None:
                    p = self.rr[topic]
                    self.rr[topic] = (p + 1) % NPART
                else:
                    p = self.pcache.get(key)
                    if p is None:
                        p = self.pcache[key] = kafka_partition(key)
                tp = topic * NPART + p
                off = self.off[tp]
                self.off[tp] = off + 1
                ok = kts + self.lag(tp, kts)
                if ok < self.last[tp]:
                    ok = self.last[tp]
                self.last[tp] = ok
                staged.append((ok, tp, off, kts, key, payload))
            staged.sort(key=lambda x: (x[0], x[1], x[2]))
            lines = []
            ap = lines.append
            for ok, tp, off, kts, key, payload in staged:
                topic, p = divmod(tp, NPART)
                self.n[topic] += 1
                ap('{"topic":"%s","partition":%d,"offset":%d,"tstype":"create","ts":%d,'
                   '"key":%s,"payload":%s}' % (TOPICS[topic], p, off, t0 + kts,
                                                "null" if key is None else jstr(key),
                                                jstr(payload)))
            if lines:
                lines.append("")
                self.f.write("\n".join(lines).encode("utf-8"))

    def close(self):
        self.flush(10 ** 12)
        if self.gz:
            self.f.close()
        self.raw.close()


class Gen:
    def __init__(self, seed, rate, hours, out_path):
        self.seed = seed
        self.rate = float(rate)
        self.hours = float(hours)
        self.end = int(round(self.hours * 3600000))
        self.n_min = (self.end + MIN - 1) // MIN
        self.S = math.sqrt(self.rate / 40.0)          # crowd-size scale for benign events
        wr = mkrng(seed, "world")
        self.wr = wr
        day = wr.randint(1, 30)
        hour = wr.choice((8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 21, 20, 19, 12))
        minute = wr.randint(0, 59)
        sec = wr.randint(0, 59)
        start = datetime(2026, 11, day, hour, minute, sec, tzinfo=TZ8)
        self.start_dt = start
        self.t0 = int(start.timestamp()) * 1000
        self.clock = Clock(self.t0)
        self.date8 = start.strftime("%Y%m%d")
        self.used_oid = set()
        self.used_ip = set()
        self.used_dev = set()
        self.used_tg = set()
        self.like_n = 0
        self.like_salt = wr.getrandbits(64)
        self.tx_n = 0
        self.tx_salt = wr.randrange(10 ** 10)
        self.labels = []
        self.reserved_users = set()     # organic user indices used by campaigns
        self.tainted_hh = set()         # households of campaign workers
        self.benign_users = set()
        self.reserved_m = set()
        self.n_bad = 0
        self.n_nonsuccess = 0
        self.n_org = 0
        # minute tables: rate multiplier and working hours
        mins = []
        work = []
        for m in range(self.n_min):
            lt = start + timedelta(minutes=m + 0.5)
            h = lt.hour + lt.minute / 60.0
            i = int(h) % 24
            frac = h - int(h)
            v = DIURNAL[i] * (1 - frac) + DIURNAL[(i + 1) % 24] * frac
            v *= max(0.6, 1 + 0.07 * wr.gauss(0, 1))
            mins.append(v)
            work.append(lt.weekday() < 5 and 9 <= lt.hour < 18)
        mean = sum(mins) / len(mins)
        self.minute_mult = [v / mean for v in mins]
        self.workmin = work
        self.build_world()
        expect = self.rate * self.hours * 3600 * 1.08
        dense = math.log10(max(1.0, self.rate / 40.0))
        self.n_dup_target = int(wr.randint(12, 25) * (1 + dense) * max(1.0, self.hours) ** 0.5)
        self.out = Out(out_path, self.t0, seed, self.n_dup_target, expect)

    # ------------------------------------------------------------ id factories
    def new_oid(self, r):
        while True:
            x = r.getrandbits(144)
            s = "o" + "".join(B64[(x >> (6 * i)) & 63] for i in range(24))
            s = s[:1] + "V5c" + s[1:]
            if s not in self.used_oid:
                self.used_oid.add(s)
                return s

    def new_dev(self, r):
        while True:
            k = r.random()
            if k < 0.5:
                s = "%016x" % r.getrandbits(64)
            elif k < 0.85:
                x = "%032X" % r.getrandbits(128)
                s = "%s-%s-%s-%s-%s" % (x[:8], x[8:12], x[12:16], x[16:20], x[20:])
            else:
                s = "86%013d" % r.randrange(10 ** 13)
            if s not in self.used_dev:
                self.used_dev.add(s)
                return s

    def new_ip4(self, r, firsts=RES_FIRST):
        while True:
            a = r.choice(firsts)
            b = r.randrange(256)
            ab = "%d.%d" % (a, b)
            if ab in NAT16_SET:
                continue
            s = "%s.%d.%d" % (ab, r.randrange(256), 1 + r.randrange(254))
            if s not in self.used_ip:
                self.used_ip.add(s)
                return s

    def new_ip6(self, r, prefix=None):
        while True:
            p = prefix or "%s:%x:%x:%x" % (r.choice(V6_HOME), r.randrange(0x100, 0xfff),
                                          r.randrange(0x10000), r.randrange(0x10000))
            s = "%s:%x:%x:%x:%x" % (p, r.randrange(0x10000), r.randrange(0x10000),
                                    r.randrange(0x10000), r.randrange(0x10000))
            if s not in self.used_ip:
                self.used_ip.add(s)
                return s

    def new_ip_res(self, r, p6=0.2):
        return self.new_ip6(r) if r.random() < p6 else self.new_ip4(r)

    def new_target(self, r, kind="post"):
        while True:
            s = "%s:%d" % (kind, r.randrange(10 ** 5, 10 ** 8))
            if s not in self.used_tg:
                self.used_tg.add(s)
                return s

    def like_id(self):
        self.like_n += 1
        x = (self.like_n * 0x9E3779B97F4A7C15 + self.like_salt) & MASK64
        x ^= x >> 29
        x = (x * 0xBF58476D1CE4E5B9) & MASK64
        x ^= x >> 32
        return "lk_%016x" % x

    def tx_id(self, r):
        self.tx_n += 1
        x = (self.tx_n * 3141592653 + self.tx_salt) % (10 ** 10)
        return "42000%05d%s%010d" % (r.randrange(100000), self.date8, x)

    # ------------------------------------------------------------ users
    def make_user(self, r, created_rel, home=None, devs=None, client=None, v6=None):
        u = User()
        u.oid = self.new_oid(r)
        u.created = created_rel
        c = r.random() if client is None else client
        for cp, st, act, sendc, cst in CLIENTS:
            if c < cp:
                break
        u.style, u.act, u.sendc = st, act, sendc
        u.cstr = self.clock.fmt(self.t0 + created_rel, cst) if sendc else None
        u.home = home if home is not None else self.new_ip_res(r, 0.15)
        u.v6 = v6
        u.carrier = r.randrange(3)
        u.salt = r.getrandbits(24)
        u.pm = 0.0
        u.office = None
        if devs is None:
            devs = (self.new_dev(r),) if r.random() < 0.93 else ()
        u.devs = devs
        u.favs = None
        u.hh = -1
        u.recent = None
        u.idx = -1
        return u

    @staticmethod
    def org_age(r):
        x = r.random()
        if x < 0.55:
            d = r.uniform(365, 8 * 365)
        elif x < 0.80:
            d = r.uniform(60, 365)
        elif x < 0.95:
            d = r.uniform(3, 60)
        elif x < 0.99:
            d = r.uniform(0.5, 3)
        else:
            d = r.uniform(0.01, 0.5)
        return -int(d * 86400000)

    @staticmethod
    def age_days(r, lo, hi):
        return -int(math.exp(r.uniform(math.log(lo), math.log(hi))) * 86400000)

    def build_world(self):
        r = mkrng(self.seed, "population")
        # merchants ------------------------------------------------------
        NM = 1500
        self.merchants = []
        used_m = set()
        for rank in range(NM):
            m = Merchant()
            m.idx = rank
            while True:
                mid = "%s%08d" % (r.choice(("19", "19", "16", "15")), r.randrange(10 ** 8))
                if mid not in used_m:
                    used_m.add(mid)
                    break
            m.id = mid
            m.appid = "wx%016x" % r.getrandbits(64)
            m.otp = r.choice(("", "ORD", "T", "WX", "P")) + ("%d" % r.randrange(10, 99))
            m.w = (1.0 / (rank + 4) ** 1.05) * r.lognormvariate(0, 0.3)
            sells = r.random() < (0.5 if rank < 15 else 0.78)
            m.pw = m.w * r.lognormvariate(0, 0.6) if sells else 0.0
            m.price = clamp(r.lognormvariate(math.log(6000), 0.9), 500, 80000)
            np_ = int(clamp(3 + 160.0 / (rank / 15.0 + 1) * r.uniform(0.4, 1.6)
                            + r.expovariate(1 / 6.0), 2, 400))
            tg = [self.new_target(r, "store")]
            for i in range(np_):
                tg.append(self.new_target(r, "video" if r.random() < 0.35 else "post"))
            r.shuffle(tg)
            m.targets = tg
            acc, cw = 0.0, []
            for i in range(len(tg)):
                acc += 1.0 / (i + 1) ** 1.1
                cw.append(acc)
            m.tcw, m.ttot = cw, acc
            self.merchants.append(m)
        acc, cw, pacc, pcw = 0.0, [], 0.0, []
        for m in self.merchants:
            acc += m.w
            cw.append(acc)
            pacc += m.pw
            pcw.append(pacc)
        self.mcw, self.mtot, self.pcw, self.ptot = cw, acc, pcw, pacc
        # carrier NAT pools -----------------------------------------------
        self.nat = []
        for c in range(3):
            pool = []
            for i in range(25):
                while True:
                    s = "%s.%d.%d" % (r.choice(NAT16[c]), r.randrange(256), 1 + r.randrange(254))
                    if s not in self.used_ip:
                        self.used_ip.add(s)
                        pool.append(s)
                        break
            self.nat.append(pool)
        # organic users ----------------------------------------------------
        N = int(28000 * (self.rate / 40.0) ** 0.7 * max(1.0, self.hours) ** 0.5)
        self.users = []
        hh = 0
        while len(self.users) < N:
            x = r.random()
            size = 1 if x < 0.55 else 2 if x < 0.80 else 3 if x < 0.92 else r.randint(4, 6)
            v6home = r.random() < 0.25
            if v6home:
                pref = "%s:%x:%x:%x" % (r.choice(V6_HOME), r.randrange(0x100, 0xfff),
                                        r.randrange(0x10000), r.randrange(0x10000))
                home4 = None
            else:
                home4 = self.new_ip4(r)
            tablet = self.new_dev(r) if size >= 2 and r.random() < 0.04 else None
            for j in range(size):
                home = self.new_ip6(r, pref) if v6home else home4
                x = r.random()
                if x < 0.88:
                    devs = (self.new_dev(r),)
                elif x < 0.94:
                    devs = (self.new_dev(r), self.new_dev(r))
                else:
                    devs = ()
                if tablet and r.random() < 0.8:
                    devs = devs + (tablet,)
                mob6 = self.new_ip6(r, "%s%02x:%x:%x" % (r.choice(V6_MOB), r.randrange(256),
                                                         r.randrange(0x10000), r.randrange(0x10000))) \
                    if r.random() < 0.45 else None
                u = self.make_user(r, self.org_age(r), home=home, devs=devs, v6=mob6)
                u.pm = r.betavariate(1.3, 1.0)
                u.hh = hh
                u.idx = len(self.users)
                self.users.append(u)
            hh += 1
        # offices
        ncomp = max(10, N // 120)
        self.offices = [self.new_ip4(r) for _ in range(ncomp)]
        ocw, acc = [], 0.0
        for i in range(ncomp):
            acc += 1.0 / (i + 2) ** 0.8
            ocw.append(acc)
        for u in self.users:
            if r.random() < 0.12:
                u.office = self.offices[bisect.bisect(ocw, r.random() * acc)]
        # activity weights (Pareto)
        acc, cw = 0.0, []
        self.uw = []
        for u in self.users:
            w = min(30.0, r.paretovariate(1.6))
            self.uw.append(w)
            acc += w
            cw.append(acc)
        self.ucw, self.utot = cw, acc

    # ------------------------------------------------------------ behaviour helpers
    def ip_for(self, u, t, r):
        """organic network choice: office, carrier NAT (v4), mobile v6 or home."""
        x = r.random()
        if u.office is not None and x < 0.55 and self.workmin[min(t // MIN, self.n_min - 1)]:
            return u.office
        x = r.random()
        if x < u.pm:
            if u.v6 is not None and x < u.pm * 0.45:
                return u.v6
            pool = self.nat[u.carrier]
            return pool[(u.salt + (t + u.salt * 37) // 900000) % len(pool)]
        return u.home

    def own_ip(self, u, r):
        """campaign network choice: the account's own home line or own mobile v6."""
        if u.v6 is not None and r.random() < 0.3:
            return u.v6
        return u.home

    @staticmethod
    def dev_for(u, r):
        d = u.devs
        if not d:
            return None
        if len(d) == 1:
            return d[0]
        return d[0] if r.random() < 0.6 else d[1 + int(r.random() * (len(d) - 1))]

    def pop_target(self, r):
        m = self.merchants[bisect.bisect(self.mcw, r.random() * self.mtot)]
        return m.targets[bisect.bisect(m.tcw, r.random() * m.ttot)], m.id

    def merchant_target(self, m, r):
        return m.targets[bisect.bisect(m.tcw, r.random() * m.ttot)]

    def init_favs(self, u, r):
        n = 2 + int(r.random() * 8)
        u.favs = [bisect.bisect(self.mcw, r.random() * self.mtot) for _ in range(n)]

    def take_merchant(self, r, lo, hi, sells=False):
        hi = min(hi, len(self.merchants) - 1)
        for _ in range(10000):
            i = r.randint(lo, hi)
            if i in self.reserved_m:
                continue
            if sells and self.merchants[i].pw <= 0:
                continue
            self.reserved_m.add(i)
            return self.merchants[i]
        raise RuntimeError("no merchant left")

    def pick_organic(self, r, n, campaign=False, min_age_days=0):
        """distinct organic users; campaign picks are reserved and their households
        tainted; benign picks avoid both."""
        out, seen = [], set()
        tries = 0
        while len(out) < n and tries < n * 50:
            tries += 1
            if r.random() < 0.5:
                i = bisect.bisect(self.ucw, r.random() * self.utot)
            else:
                i = int(r.random() * len(self.users))
            if i in seen or i in self.reserved_users:
                continue
            u = self.users[i]
            if u.hh in self.tainted_hh:
                continue
            if campaign and (i in self.benign_users):
                continue
            if min_age_days and u.created > -min_age_days * 86400000:
                continue
            seen.add(i)
            out.append(u)
        for u in out:
            if campaign:
                self.reserved_users.add(u.idx)
                self.tainted_hh.add(u.hh)
            else:
                self.benign_users.add(u.idx)
        return out

    # ------------------------------------------------------------ record builders
    def like(self, u, target, owner, t, ip, dev, action="like", tag=None, core=True):
        if t < 0 or t >= self.end or (tag is not None and t > tag.cap):
            return False
        r = self.out.krng
        lid = self.like_id()
        p = ['{"like_id":"', lid, '","user_openid":"', u.oid, '","target_id":"', target,
             '","owner_mchid":"', owner, '"']
        if u.act or action != "like":
            p += (',"action":"', action, '"')
        p += (',"ts":"', self.clock.fmt(self.t0 + t, u.style), '"')
        if ip is not None and r.random() < 0.97:
            p += (',"client_ip":"', ip, '"')
        else:
            ip = None
        if dev is not None:
            p += (',"device_id":"', dev, '"')
        if u.sendc and r.random() < 0.96:
            p += (',"user_created":"', u.cstr, '"')
        p.append("}")
        self.out.put(1, None, "".join(p), t)
        if tag is not None:
            tag.add(t, u.oid, ip, dev, target, owner, core)
        return True

    def pay(self, u, m, amount, t, ip, dev, tag=None, core=True, state=None):
        if t < 0 or t >= self.end or (tag is not None and t > tag.cap):
            return False
        r = self.out.krng
        amount = int(max(1, amount))
        tx = self.tx_id(r)
        otn = "%s%s%09d" % (m.otp, self.date8, (self.tx_n * 7919 + m.idx) % 10 ** 9)
        x = r.random()
        st = 0 if x < 0.85 else 2 if x < 0.95 else 1
        if state is None:
            state, desc = "SUCCESS", "支付成功"
        else:
            desc = dict(PAY_STATES)[state]
            self.n_nonsuccess += 1
        appid = m.appid if r.random() < 0.7 else "wx5e7c1a90b3d24f18"
        p = ['{"mchid":"', m.id, '","appid":"', appid, '","out_trade_no":"', otn,
             '","transaction_id":"', tx, '","trade_type":"JSAPI","trade_state":"', state,
             '","trade_state_desc":"', desc, '","bank_type":"', r.choice(BANKS),
             '","attach":"","success_time":"', self.clock.fmt(self.t0 + t, st),
             '","payer":{"openid":"', u.oid, '"},"amount":{"total":', str(amount),
             ',"payer_total":', str(amount)]
        if r.random() < 0.9:
            p.append(',"currency":"CNY","payer_currency":"CNY"}')
        else:
            p.append("}")
        if dev is not None and r.random() < 0.8:
            p += (',"scene_info":{"device_id":"', dev, '"}')
        else:
            dev = None
        if ip is not None and r.random() < 0.93:
            p += (',"payer_client_ip":"', ip, '"')
        else:
            ip = None
        p.append("}")
        self.out.put(0, m.id, "".join(p), t)
        if tag is not None:
            tag.add(t, u.oid, ip, dev, None, m.id, core)
        return True

    # ------------------------------------------------------------ organic world
    def org_amount(self, m, r):
        x = r.random()
        if x < 0.015:
            return r.randint(1, 199)          # tiny top-ups / tests
        if x < 0.035:
            return 100
        a = m.price * r.lognormvariate(0, 0.55)
        a = clamp(a, 300, 300000)
        y = r.random()
        if y < 0.35:
            return int(a / 100) * 100 + 90 if a > 1000 else int(a)
        if y < 0.55:
            return int(a / 100) * 100
        return int(a)

    def org_like(self, u, t, r, ip, dev, m=None):
        if m is None:
            if r.random() < 0.45:
                m = self.merchants[u.favs[int(r.random() * len(u.favs))]]
            else:
                m = self.merchants[bisect.bisect(self.mcw, r.random() * self.mtot)]
        tg = m.targets[bisect.bisect(m.tcw, r.random() * m.ttot)]
        if self.like(u, tg, m.id, t, ip, dev):
            self.n_org += 1
            rc = u.recent
            if rc is None:
                u.recent = [(tg, m.id)]
            else:
                rc.append((tg, m.id))
                if len(rc) > 4:
                    del rc[0]
            if m.pw > 0 and r.random() < 0.03:
                # honest "saw it, liked it, bought it" a few minutes later
                t2 = t + int(clamp(r.lognormvariate(math.log(180000), 0.9), 20000, 1800000))
                if self.pay(u, m, self.org_amount(m, r), t2, self.ip_for(u, t2, r), dev):
                    self.n_org += 1

    def org_pay(self, u, t, r, ip, dev, m=None):
        if m is None or m.pw <= 0:
            m = None
            if r.random() < 0.5:
                m = self.merchants[u.favs[int(r.random() * len(u.favs))]]
                if m.pw <= 0:
                    m = None
            if m is None:
                m = self.merchants[bisect.bisect(self.pcw, r.random() * self.ptot)]
        state = None
        if r.random() < 0.007:
            state = r.choice(PAY_STATES)[0]
        if self.pay(u, m, self.org_amount(m, r), t, ip, dev, state=state):
            self.n_org += 1
        if state is None and r.random() < 0.22:
            t2 = t + int(clamp(r.lognormvariate(math.log(240000), 1.0), 15000, 3600000))
            tg = self.merchant_target(m, r)
            if self.like(u, tg, m.id, t2, self.ip_for(u, t2, r), dev):
                self.n_org += 1

    def org_unlike(self, u, t, r, ip, dev):
        tg, mid = u.recent.pop(int(r.random() * len(u.recent)))
        if self.like(u, tg, mid, t, ip, dev, action="unlike"):
            self.n_org += 1

    def organic(self, bad_sched):
        """Organic traffic as user sessions: a user opens the app (network and
        device fixed for the session), does ~4 things seconds apart, sometimes
        browsing one merchant's content; payments sometimes lead to a like of
        the merchant's content minutes later, likes sometimes to a purchase."""
        r = mkrng(self.seed, "organic")
        users, ucw, utot = self.users, self.ucw, self.utot
        mean_k = 4.0
        lam_base = 1.02 * self.rate * 60.0 / (mean_k * (1 + 0.13 * 0.22 + 0.85 * 0.03 * 0.8))
        bi = 0
        bis = bisect.bisect
        rnd = r.random
        lnv = r.lognormvariate
        merchants = self.merchants
        for mi in range(self.n_min):
            span = min(MIN, self.end - mi * MIN)
            n = poisson(r, lam_base * self.minute_mult[mi] * span / MIN)
            base = mi * MIN
            for _ in range(n):
                t = base + int(rnd() * span)
                u = users[bis(ucw, rnd() * utot)]
                if u.favs is None:
                    self.init_favs(u, r)
                k = 1 + int(r.expovariate(1.0 / (mean_k - 0.5)))
                ip = self.ip_for(u, t, r)
                dev = self.dev_for(u, r)
                focus = merchants[u.favs[int(rnd() * len(u.favs))]] if rnd() < 0.3 else None
                for _j in range(k):
                    x = rnd()
                    if x < 0.13:
                        self.org_pay(u, t, r, ip, dev, focus)
                    elif x < 0.145 and u.recent:
                        self.org_unlike(u, t, r, ip, dev)
                    else:
                        self.org_like(u, t, r, ip, dev, focus if rnd() < 0.7 else None)
                    t += 1000 + int(min(lnv(9.6, 1.0), 300000))   # median ~16 s
                    if t >= self.end:
                        break
            while bi < len(bad_sched) and bad_sched[bi] < base + span:
                self.bad_record(bad_sched[bi], r)
                bi += 1
            self.out.flush(mi + 1)

    # ------------------------------------------------------------ bad records
    def bad_record(self, t, r):
        u = self.users[int(r.random() * len(self.users))]
        m = self.merchants[bisect.bisect(self.mcw, r.random() * self.mtot)]
        ts = self.clock.fmt(self.t0 + t, 1)
        if r.random() < 0.6:
            d = {"like_id": self.like_id(), "user_openid": u.oid,
                 "target_id": self.merchant_target(m, r), "owner_mchid": m.id,
                 "action": "like", "ts": ts}
            if u.devs:
                d["device_id"] = u.devs[0]
            kind = r.randrange(9)
            if kind == 0:
                s = json.dumps(d, separators=(",", ":"))
                s = s[:r.randint(5, len(s) - 2)]
            elif kind == 1:
                s = r.choice(("like_id=%s&user=%s" % (d["like_id"], u.oid), "", "null",
                              "[1,2,3]", "{\"like_id\":\"%s\",}" % d["like_id"]))
            elif kind in (2, 3, 4):
                del d[r.choice(("like_id", "user_openid", "target_id", "owner_mchid", "ts"))]
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 5:
                d["ts"] = self.t0 + t
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 6:
                d["target_id"] = r.randrange(10 ** 6)
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 7:
                d["user_openid"] = None
                s = json.dumps(d, separators=(",", ":"))
            else:
                d["ts"] = r.choice(("2026-13-41T25:61:00+08:00", "yesterday", "2026/11/24 12:00"))
                s = json.dumps(d, separators=(",", ":"))
            self.out.put(1, None, s, t, dup_ok=False)
        else:
            amt = self.org_amount(m, r)
            d = {"mchid": m.id, "appid": m.appid, "out_trade_no": "X%d" % r.randrange(10 ** 12),
                 "transaction_id": self.tx_id(r), "trade_type": "JSAPI",
                 "trade_state": "SUCCESS", "success_time": self.clock.fmt(self.t0 + t, 0),
                 "payer": {"openid": u.oid}, "amount": {"total": amt, "currency": "CNY"}}
            kind = r.randrange(9)
            if kind == 0:
                s = json.dumps(d, separators=(",", ":"), ensure_ascii=False)
                s = s[:r.randint(5, len(s) - 2)]
            elif kind == 1:
                s = "<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>"
            elif kind == 2:
                del d[r.choice(("transaction_id", "mchid", "trade_state", "success_time"))]
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 3:
                d["payer"] = {}
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 4:
                del d["amount"]["total"]
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 5:
                d["amount"]["total"] = str(amt)
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 6:
                d["amount"]["total"] = r.choice((0, -amt, amt / 100.0 + 0.5))
                s = json.dumps(d, separators=(",", ":"))
            elif kind == 7:
                d["payer"] = u.oid
                s = json.dumps(d, separators=(",", ":"))
            else:
                d["success_time"] = "2026-11-31T10:00:00+08:00"
                s = json.dumps(d, separators=(",", ":"))
            self.out.put(0, m.id, s, t, dup_ok=False)
        self.n_bad += 1

    # ------------------------------------------------------------ campaigns
    def worker_pool(self, r, n, p_org, lo_days, hi_days):
        n_org = int(round(n * p_org))
        ws = self.pick_organic(r, n_org, campaign=True, min_age_days=lo_days) if n_org else []
        while len(ws) < n:
            ws.append(self.make_user(r, self.age_days(r, lo_days, hi_days)))
        r.shuffle(ws)
        return ws

    def noise_like(self, a, t, r, L):
        tg, mid = self.pop_target(r)
        self.like(a, tg, mid, t, self.own_ip(a, r), self.dev_for(a, r), tag=L, core=False)

    def c_coordinated_ring(self, r, L, s, d):
        n = r.randint(20, 80)
        accs = self.worker_pool(r, n, 0.15, 60, 1500)
        ms = [self.take_merchant(r, 300, 1499) for _ in range(r.randint(4, 8))]
        gap = min(r.randint(4, 8) * MIN, (d - 2 * MIN) // 2)
        win = r.randint(2, 10) * MIN
        rounds = 1 + (d - 2 * MIN) // gap
        for k in range(rounds):
            rs = s + k * gap + r.randint(0, 30000)
            tgs = [(self.new_target(r, r.choice(("post", "post", "video"))), m.id) for m in ms]
            for a in accs:
                if r.random() > 0.88:
                    continue
                t = rs + int(min(r.expovariate(1 / 40000.0), win / 3))
                order = tgs[:]
                r.shuffle(order)
                step = max(3000, int((win - (t - rs)) / (len(order) + 1)))
                for tg, mid in order:
                    if r.random() < 0.07:
                        continue
                    self.like(a, tg, mid, t, self.own_ip(a, r), self.dev_for(a, r), tag=L)
                    t += r.randint(3000, step)
                for _ in range(r.randint(0, 2)):
                    self.noise_like(a, rs + r.randint(0, gap), r, L)

    def c_camouflaged_ring(self, r, L, s, d):
        n = r.randint(20, 45)
        accs = self.worker_pool(r, n, 0.5, 365, 6 * 365)
        m = self.take_merchant(r, 120, 1499, sells=True)
        gap = r.randint(5, 9) * MIN
        waves = max(2, 1 + -(-(d - 4 * MIN) // gap))
        for k in range(waves):
            ws = s + k * gap
            tg = self.new_target(r, "post")
            for a in accs:
                if r.random() > 0.75:
                    continue
                t = ws + r.randint(0, 150000)
                amt = r.choice((100, 100, 100, 120, 150, 168, 188, 199, 200)) \
                    if r.random() < 0.7 else r.randint(100, 200)
                dev = self.dev_for(a, r)
                self.pay(a, m, amt, t, self.own_ip(a, r), dev, tag=L)
                if r.random() < 0.6:
                    self.noise_like(a, t + r.randint(8000, 50000), r, L)
                self.like(a, tg, m.id, t + r.randint(60000, 150000), self.own_ip(a, r), dev, tag=L)
                if r.random() < 0.5:
                    self.noise_like(a, t + r.randint(160000, 400000), r, L)

    def c_like_exchange(self, r, L, s, d):
        nm = r.randint(3, 6)
        ms = [self.take_merchant(r, 400, 1499) for _ in range(nm)]
        groups = [self.pick_organic(r, r.randint(5, 10), campaign=True, min_age_days=180)
                  for _ in range(nm)]
        gap = r.randint(5, 10) * MIN
        rounds = max(2, 1 + -(-(d - 5 * MIN) // gap))
        for k in range(rounds):
            rs = s + k * gap
            for mi, m in enumerate(ms):
                if r.random() > 0.8 and k > 0:
                    continue
                tg = self.new_target(r, r.choice(("post", "video")))
                tp = rs + r.randint(0, 90000)
                for mj, grp in enumerate(groups):
                    for a in grp:
                        if r.random() < (0.4 if mj == mi else 0.92):
                            t = tp + int(min(r.lognormvariate(math.log(90000), 0.7), gap * 0.9))
                            self.like(a, tg, m.id, t, self.own_ip(a, r), self.dev_for(a, r), tag=L)

    def c_paid_task(self, r, L, s, d, variant):
        n = r.randint(30, 70) if variant != "token" else r.randint(30, 80)
        ws = self.worker_pool(r, n, 0.35, 180, 5 * 365)
        m = self.take_merchant(r, 120, 1499, sells=True)
        tgs = [self.new_target(r, "store")] if r.random() < 0.5 else []
        tgs += [self.merchant_target(m, r) for _ in range(r.randint(1, 2))]
        tgs = list(dict.fromkeys(tgs))
        if variant == "like_first":
            if r.random() < 0.5:
                prices = r.sample((1, 1, 10, 50, 66, 88, 99, 100), 3)
            else:
                prices = r.sample((590, 690, 880, 990, 1280, 1500), 2)
        elif variant == "real_amount":
            prices = r.sample((990, 1290, 1590, 1880, 1990, 2590, 2990, 3490, 3990), 4)
        else:
            prices = r.sample((1, 1, 1, 10, 10, 50, 88, 99, 100), 4)
        queue = ws[:] + r.sample(ws, len(ws) // 10)
        # the task platform dispatches batches of ~3-10 workers, spread over the
        # planned duration (first batch at the start, last ~2.5 min before end)
        nb = max(4, int(math.ceil(len(queue) / 6.5)))
        batches = [[] for _ in range(nb)]
        for i, a in enumerate(queue):
            batches[i % nb if i < nb else r.randrange(nb)].append(a)
        for k, batch in enumerate(batches):
            bt = s + int((d - 150000) * k / (nb - 1))
            if 0 < k < nb - 1:
                bt += r.randint(-20000, 20000)
            for a in batch:
                w0 = bt + r.randint(0, 90000)
                ip, dev = self.own_ip(a, r), self.dev_for(a, r)
                for _ in range(r.choice((0, 0, 1, 1, 2))):
                    self.noise_like(a, w0 - r.randint(30000, 300000), r, L)
                if variant == "real_amount" and r.random() < 0.25:
                    amt = r.randint(99, 399) * 10
                else:
                    amt = r.choice(prices)
                tg = r.choice(tgs)
                if variant == "like_first":
                    self.like(a, tg, m.id, w0, ip, dev, tag=L)
                    self.pay(a, m, amt, w0 + r.randint(25000, 70000), ip, dev, tag=L)
                elif variant == "real_amount":
                    self.pay(a, m, amt, w0, ip, dev, tag=L)
                    self.like(a, tg, m.id, w0 + r.randint(5000, 40000), ip, dev, tag=L)
                else:
                    self.pay(a, m, amt, w0, ip, dev, tag=L)
                    self.like(a, tg, m.id, w0 + r.randint(2000, 15000), ip, dev, tag=L)
                if r.random() < 0.3:
                    self.noise_like(a, w0 + r.randint(90000, 600000), r, L)

    def c_proxy_farm(self, r, L, s, d):
        n = r.randint(40, 120)
        emus = [self.new_dev(r) for _ in range(r.randint(3, 8))]
        accs = []
        for _ in range(n):
            a = self.make_user(r, self.age_days(r, 365, 6 * 365), home=self.new_ip_res(r, 0.2),
                               devs=(r.choice(emus),), client=r.random() * 0.55)
            accs.append(a)
        m = self.take_merchant(r, 120, 1499)
        tgs = [self.merchant_target(m, r) for _ in range(r.randint(1, 3))]
        tgs += [self.new_target(r, "post") for _ in range(r.randint(1, 2))]
        tgs = list(dict.fromkeys(tgs))
        acts = sorted(s + int(r.random() * (d - MIN)) for _ in range(n))
        for a, t in zip(accs, acts):
            dev = a.devs[0] if r.random() < 0.85 else r.choice(emus)
            for tg in r.sample(tgs, r.randint(1, min(3, len(tgs)))):
                self.like(a, tg, m.id, t, a.home, dev, tag=L)
                t += r.randint(5000, 60000)
            if r.random() < 0.3:
                tg, mid = self.pop_target(r)
                self.like(a, tg, mid, t + r.randint(5000, 60000), a.home, dev, tag=L, core=False)

    def c_device_farm(self, r, L, s, d):
        n = r.randint(200, 500)
        variant = r.choice(("both", "both", "devices", "ips"))
        devs = [self.new_dev(r) for _ in range(r.randint(2, 6))]
        if variant == "devices":
            ips = [self.new_ip4(r) for _ in range(r.randint(20, 40))]
        else:
            ips = [self.new_ip4(r) for _ in range(r.randint(1, 4))]
        m = self.take_merchant(r, 250, 1499)
        tgs = [self.merchant_target(m, r)] + [self.new_target(r, "post") for _ in range(r.randint(0, 2))]
        tgs = list(dict.fromkeys(tgs))
        lanes = len(devs)
        accs = []
        for i in range(n):
            if variant == "ips":
                dv = (self.new_dev(r),) if r.random() < 0.5 else ()
            else:
                dv = (devs[i % lanes],)
            accs.append(self.make_user(r, self.age_days(r, 14, 240), home=r.choice(ips),
                                       devs=dv, client=r.random() * 0.55))
        per_lane = (n + lanes - 1) // lanes
        step = max(3000, int((d - MIN) / per_lane))
        for ln in range(lanes):
            t = s + r.randint(0, 60000)
            for a in accs[ln::lanes]:
                ip = r.choice(ips) if variant == "devices" else a.home
                dv = a.devs[0] if a.devs else None
                for tg in r.sample(tgs, r.randint(1, min(2, len(tgs)))):
                    self.like(a, tg, m.id, t, ip, dv, tag=L)
                    t += r.randint(1500, 6000)
                t += int(step * r.uniform(0.6, 1.2))

    def c_fresh_account_flood(self, r, L, s, d):
        n = r.randint(120, 400)
        m = self.take_merchant(r, 250, 1499)
        tg = self.new_target(r, r.choice(("post", "video")))
        ips = [self.new_ip_res(r, 0.1) for _ in range(r.randint(15, 60))]
        for _ in range(n):
            t = s + int(d * r.betavariate(2, 3))
            created = t - int(math.exp(r.uniform(math.log(5 * MIN), math.log(8 * 60 * MIN))))
            dv = (self.new_dev(r),) if r.random() < 0.7 else ()
            a = self.make_user(r, created, home=r.choice(ips), devs=dv)
            self.like(a, tg, m.id, t, a.home, dv[0] if dv else None, tag=L)

    def c_drip(self, r, L, s, d):
        rate = r.uniform(2, 5)
        pool_n = r.randint(60, 150)
        ips = [self.new_ip_res(r, 0.2) for _ in range(r.randint(30, 80))]
        accs = [self.make_user(r, self.age_days(r, 30, 1000), home=r.choice(ips))
                for _ in range(pool_n)]
        m = self.take_merchant(r, 120, 1499)
        tgs = [self.new_target(r, "post")] + ([self.merchant_target(m, r)] if r.random() < 0.5 else [])
        order = accs[:]
        r.shuffle(order)
        gap = 60000.0 / rate
        t = s + r.randint(0, 20000)
        i = 0
        liked = set()
        while t < s + d:
            a = order[i % len(order)]
            i += 1
            tg = r.choice(tgs)
            if (a.oid, tg) in liked:
                tg = tgs[0] if tg != tgs[0] else tgs[-1]
            if (a.oid, tg) not in liked:
                liked.add((a.oid, tg))
                self.like(a, tg, m.id, int(t), r.choice(ips), self.dev_for(a, r), tag=L)
            t += gap * r.uniform(0.75, 1.25)

    # ------------------------------------------------------------ benign events
    def b_fan_club_burst(self, r, L, s, d):
        idol = self.take_merchant(r, 0, 15)
        n = int(r.randint(200, 600) * self.S)
        fans = self.pick_organic(r, n, min_age_days=30)
        tg = self.new_target(r, "video")
        for f in fans:
            t = s + int(min(r.lognormvariate(math.log(100000), 1.0), 35 * MIN)) + r.randint(0, 15000)
            dev = self.dev_for(f, r)
            self.like(f, tg, idol.id, t, self.ip_for(f, t, r), dev, tag=L)
            if r.random() < 0.2:
                t2 = t + r.randint(20000, 300000)
                self.like(f, self.merchant_target(idol, r), idol.id, t2, self.ip_for(f, t2, r), dev, tag=L)

    def b_class_likes_teacher(self, r, L, s, d):
        teacher = self.take_merchant(r, 500, 1499)
        school = self.new_ip4(r, SCHOOL_FIRST)
        n = r.randint(30, 50)
        kids = self.pick_organic(r, n, min_age_days=60)
        tg = self.new_target(r, "post")
        for k in kids:
            t = s + int(min(r.lognormvariate(math.log(120000), 0.6), 15 * MIN))
            ip = school if r.random() < 0.88 else self.ip_for(k, t, r)
            self.like(k, tg, teacher.id, t, ip, self.dev_for(k, r), tag=L)
            for _ in range(r.randint(0, 3)):
                t2 = s + r.randint(-5 * MIN, 20 * MIN)
                ptg, pm = self.pop_target(r)
                self.like(k, ptg, pm, t2, school, self.dev_for(k, r), tag=L, core=False)

    def b_office_staff(self, r, L, s, d):
        comp = self.take_merchant(r, 80, 1000)
        ips = [self.new_ip4(r) for _ in range(r.randint(1, 2))]
        n = int(r.randint(25, 120) * self.S ** 0.5)
        staff = self.pick_organic(r, n)
        posts = [(s + (0 if i == 0 else r.randint(0, int(d * 0.6))), self.new_target(r, "post"))
                 for i in range(r.randint(2, 4))]
        for a in staff:
            ip = ips[0] if len(ips) == 1 or r.random() < 0.7 else ips[1]
            for pt, tg in posts:
                if r.random() < 0.7:
                    t = pt + int(min(r.lognormvariate(math.log(300000), 0.9), 40 * MIN))
                    self.like(a, tg, comp.id, t, ip, self.dev_for(a, r), tag=L)
            for _ in range(r.randint(1, 5)):
                t = s + r.randint(0, d)
                ptg, pm = self.pop_target(r)
                self.like(a, ptg, pm, t, ip, self.dev_for(a, r), tag=L, core=False)

    def b_family_shared_device(self, r, L, s, d):
        favs = [self.take_merchant(r, 50, 600) for _ in range(r.randint(2, 3))]
        home = self.new_ip4(r)
        tablet = self.new_dev(r)
        members = []
        for j in range(r.randint(3, 5)):
            phone = (self.new_dev(r),) if (j < 2 or r.random() < 0.3) else ()
            members.append(self.make_user(r, self.age_days(r, 60, 8 * 365), home=home,
                                          devs=phone + (tablet,)))
        ftg = [(self.merchant_target(m, r), m) for m in favs for _ in range(3)]
        for a in members:
            t = s + r.randint(0, max(1, d - 15 * MIN))
            for _ in range(r.randint(5, 15)):
                dev = tablet if (len(a.devs) == 1 or r.random() < 0.65) else a.devs[0]
                if r.random() < 0.6:
                    tg, m = r.choice(ftg)
                    self.like(a, tg, m.id, t, home, dev, tag=L)
                else:
                    ptg, pm = self.pop_target(r)
                    self.like(a, ptg, pm, t, home, dev, tag=L, core=False)
                t += r.randint(20000, 240000)
        for _ in range(r.randint(1, 2)):
            a = r.choice(members)
            m = r.choice(favs)
            t = s + r.randint(0, d)
            self.pay(a, m, r.choice((600, 648, 1200, 1800, 3000, 3280, 6800)), t, home, tablet, tag=L)

    def b_livestream_tips(self, r, L, s, d):
        st = self.take_merchant(r, 20, 300, sells=True)
        live = self.new_target(r, "live")
        n = int(r.randint(80, 250) * self.S)
        viewers = self.pick_organic(r, n)
        moments = [s + r.randint(0, d) for _ in range(r.randint(3, 8))]
        denoms = (600, 666, 888, 1000, 1888, 2000, 5200, 6666, 8888, 9900, 13140, 18800, 20000)
        for v in viewers:
            join = s + r.randint(0, int(d * 0.8))
            dev = self.dev_for(v, r)
            if r.random() < 0.8:
                t = join + r.randint(10000, 300000)
                self.like(v, live, st.id, t, self.ip_for(v, t, r), dev, tag=L)
            if r.random() < 0.3:
                for _ in range(r.choice((1, 1, 1, 2, 3))):
                    if r.random() < 0.6:
                        t = r.choice(moments) + int(r.lognormvariate(math.log(30000), 0.8))
                    else:
                        t = join + r.randint(0, int(d * 0.5))
                    amt = r.choice(denoms) if r.random() < 0.7 else r.randint(600, 20000)
                    ip = self.ip_for(v, t, r)
                    self.pay(v, st, amt, t, ip, dev, tag=L)
                    if r.random() < 0.7:
                        self.like(v, live, st.id, t + r.randint(1000, 20000), ip, dev, tag=L)

    def b_coupon_like_to_unlock(self, r, L, s, d):
        m = self.take_merchant(r, 30, 300, sells=True)
        tg = self.new_target(r, "store")
        n = int(r.randint(150, 400) * self.S)
        us = self.pick_organic(r, n)
        for u in us:
            t = s + int(d * r.betavariate(1.2, 2.0))
            dev = self.dev_for(u, r)
            self.like(u, tg, m.id, t, self.ip_for(u, t, r), dev, tag=L)
            if r.random() < 0.45:
                t2 = t + int(clamp(r.lognormvariate(math.log(480000), 0.8), 60000, 50 * MIN))
                amt = int(clamp(r.lognormvariate(math.log(9000), 0.6), 990, 60000))
                if r.random() < 0.5:
                    amt = amt // 100 * 100 + r.choice((0, 80, 90, 0))
                self.pay(u, m, amt, t2, self.ip_for(u, t2, r), dev, tag=L)

    def b_one_yuan_deal(self, r, L, s, d):
        m = self.take_merchant(r, 10, 150, sells=True)
        tg = self.new_target(r, "post")
        n = int(r.randint(200, 600) * self.S)
        us = self.pick_organic(r, n)
        for u in us:
            t = s + int(d * r.betavariate(1.0, 2.5))
            dev = self.dev_for(u, r)
            x = r.random()
            amt = 100 if x < 0.9 else 200 if x < 0.98 else 300
            self.pay(u, m, amt, t, self.ip_for(u, t, r), dev, tag=L)
            if r.random() < 0.3:
                if r.random() < 0.1:
                    t2 = t - r.randint(10000, 300000)
                else:
                    t2 = t + int(clamp(r.lognormvariate(math.log(180000), 1.0), 20000, 30 * MIN))
                self.like(u, tg, m.id, t2, self.ip_for(u, t2, r), dev, tag=L)

    def b_viral_post(self, r, L, s, d):
        m = self.take_merchant(r, 50, 400)
        tg = m.targets[int(r.random() * min(4, len(m.targets)))]
        n = int(r.randint(500, 1500) * self.S)
        us = self.pick_organic(r, n)
        for u in us:
            t = s + int(d * r.betavariate(1.6, 4.0))
            dev = self.dev_for(u, r)
            self.like(u, tg, m.id, t, self.ip_for(u, t, r), dev, tag=L)
            if r.random() < 0.05:
                t2 = t + r.randint(10000, 600000)
                self.like(u, self.merchant_target(m, r), m.id, t2, self.ip_for(u, t2, r), dev, tag=L)

    def b_flash_sale(self, r, L, s, d):
        m = self.take_merchant(r, 20, 200, sells=True)
        tg = self.new_target(r, "post")
        n = int(r.randint(150, 500) * self.S)
        us = self.pick_organic(r, n)
        prices = (1990, 2990, 4990, 6990, 9900, 19900, 29900)
        for u in us:
            dev = self.dev_for(u, r)
            for k in range(2 if r.random() < 0.08 else 1):
                t = s + int(d * r.betavariate(1.0, 3.0)) + k * r.randint(20000, 120000)
                amt = r.choice(prices) * r.choice((1, 1, 1, 2, 3)) if r.random() < 0.85 \
                    else r.randint(1000, 50000)
                ip = self.ip_for(u, t, r)
                self.pay(u, m, amt, t, ip, dev, tag=L)
                if k == 0 and r.random() < 0.2:
                    t2 = t + r.randint(60000, 900000)
                    self.like(u, tg, m.id, t2, self.ip_for(u, t2, r), dev, tag=L)

    # ------------------------------------------------------------ schedule
    def schedule(self):
        r = mkrng(self.seed, "schedule")
        run_min = self.end // MIN
        if run_min < 20:
            raise SystemExit("--hours must be at least 0.34 (20 minutes)")
        H = self.hours
        n_c = max(len(CAMPAIGN_KINDS), int(round(r.randint(10, 14) * H)))
        kinds = list(CAMPAIGN_KINDS) + [r.choice(CAMPAIGN_KINDS) for _ in range(n_c - len(CAMPAIGN_KINDS))]
        r.shuffle(kinds)
        plan = []
        for i, k in enumerate(kinds):
            if k == "drip":
                dur = r.randint(25, 40)
            elif k in ("fresh_account_flood",):
                dur = r.randint(12, 20)
            else:
                dur = r.randint(14, 38)
            dur = min(dur, run_min - 8)
            st = r.randint(4, max(4, run_min - dur - 2))
            plan.append(("c", i, k, st * MIN + r.randint(0, 59999), dur * MIN))
        dense = math.log10(max(1.0, self.rate / 40.0))
        n_extra = int(round(r.randint(1, 3) * H * (1 + 2 * dense)))
        bk = list(BENIGN_KINDS) + [r.choice(BENIGN_KINDS) for _ in range(n_extra)]
        r.shuffle(bk)
        bdur = {"fan_club_burst": (15, 30), "class_likes_teacher": (15, 25),
                "office_staff": (30, 60), "family_shared_device": (40, 90),
                "livestream_tips": (20, 50), "coupon_like_to_unlock": (30, 60),
                "one_yuan_deal": (10, 30), "viral_post": (30, 50), "flash_sale": (5, 15)}
        flash = set()
        for i, k in enumerate(bk):
            lo, hi = bdur[k]
            dur = min(r.randint(lo, hi), run_min - 4)
            st = r.randint(1, max(1, run_min - dur - 1)) * MIN + r.randint(0, 59999)
            if k == "flash_sale":
                # flash sales open on the wall clock's round five minutes
                st = st - (self.t0 + st) % (5 * MIN) + 5 * MIN
                while st in flash or st + dur * MIN > self.end:
                    st -= 5 * MIN
                flash.add(st)
            plan.append(("b", i, k, st, dur * MIN))
        return plan

    def run(self):
        plan = self.schedule()
        # campaigns first (they reserve organic workers), then benign events
        for cls, i, kind, s, d in plan:
            if cls != "c":
                continue
            r = mkrng(self.seed, "campaign|%d|%s" % (i, kind))
            L = Label(kind, "c", s + d)   # the campaign stops at its planned end
            if kind.startswith("paid_task_"):
                self.c_paid_task(r, L, s, d, kind[len("paid_task_"):])
            else:
                getattr(self, "c_" + kind)(r, L, s, d)
            self.labels.append(L)
        for cls, i, kind, s, d in plan:
            if cls != "b":
                continue
            r = mkrng(self.seed, "benign|%d|%s" % (i, kind))
            if kind == "family_shared_device":
                for j in range(r.randint(1, 2)):
                    L = Label(kind, "b", self.end)
                    self.b_family_shared_device(r, L, s + r.randint(0, 10 * MIN), d - 10 * MIN)
                    self.labels.append(L)
                continue
            L = Label(kind, "b", self.end)
            getattr(self, "b_" + kind)(r, L, s, d)
            self.labels.append(L)
        # bad records schedule
        br = mkrng(self.seed, "bad")
        dense = math.log10(max(1.0, self.rate / 40.0))
        nb = int(br.randint(30, 50) * (1 + 0.6 * dense) * max(1.0, self.hours) ** 0.5)
        bad = sorted(br.randrange(self.end) for _ in range(nb))
        self.organic(bad)
        self.out.close()

    def labels_json(self):
        def iso(ms, up=False):
            sec = (self.t0 + ms) // 1000 + (1 if up and (self.t0 + ms) % 1000 else 0)
            return datetime.fromtimestamp(sec, TZ8).strftime("%Y-%m-%dT%H:%M:%S+08:00")
        camp, ben = [], []
        for L in self.labels:
            L.finish()
            if L.t0 is None:
                continue
            e = {"kind": L.kind, "start": iso(L.t0), "end": iso(L.t1, True),
                 "merchants": list(L.m), "targets": list(L.tg), "users": list(L.u),
                 "ips": list(L.ip), "devices": list(L.dv)}
            (camp if L.cls == "c" else ben).append((L.t0, L.kind, e))
        camp.sort(key=lambda x: (x[0], x[1]))
        ben.sort(key=lambda x: (x[0], x[1]))
        out = {"campaigns": [], "benign": []}
        for i, (_, _, e) in enumerate(camp):
            out["campaigns"].append(dict([("id", "c%d" % (i + 1))] + list(e.items())))
        for i, (_, _, e) in enumerate(ben):
            out["benign"].append(dict([("id", "b%d" % (i + 1))] + list(e.items())))
        return out


def main():
    ap = argparse.ArgumentParser(description="othergen4 labelled likeguard traffic generator")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="recording, .jsonl or .jsonl.gz")
    ap.add_argument("--labels", required=True, help="labels JSON file")
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--rate", type=float, default=40.0, help="mean organic events/s")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if a.rate <= 0:
        ap.error("--rate must be > 0")
    w0 = _walltime.time()
    g = Gen(a.seed, a.rate, a.hours, a.out)
    g.run()
    lab = g.labels_json()
    with open(a.labels, "w", encoding="utf-8") as f:
        json.dump(lab, f, indent=1, ensure_ascii=False)
        f.write("\n")
    if not a.quiet:
        try:
            import resource
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        except Exception:
            rss = float("nan")
        o = g.out
        kinds = {}
        for c in lab["campaigns"]:
            kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
        sys.stderr.write(
            "othergen4 seed=%d start=%s hours=%g rate=%g: records=%d (payments=%d likes=%d) "
            "organic=%d bad=%d dups=%d non_success=%d campaigns=%d benign=%d "
            "wall=%.1fs maxrss=%.0fMB\n" % (
                a.seed, g.start_dt.isoformat(), a.hours, a.rate, o.n[0] + o.n[1], o.n[0], o.n[1],
                g.n_org, g.n_bad, o.n_dup, g.n_nonsuccess, len(lab["campaigns"]),
                len(lab["benign"]), _walltime.time() - w0, rss))


if __name__ == "__main__":
    main()
