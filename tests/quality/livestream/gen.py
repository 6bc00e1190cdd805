#!/usr/bin/env python3
"""othergen3 -- independent, labelled traffic generator for likeguard.

Written from /work/shared/CONTRACT.md only (no detector, simulator or test code
was read).  Standard library only.

    python gen.py --seed N --out rec.jsonl[.gz] --labels labels.json \
                  [--hours 2] [--rate R] [--quiet]

World: "Kuaigou", a short-video / livestream-shopping app (Android, iOS, a
WeChat mini-program and an H5 web client) whose merchants are paid through
WeChat Pay.  See README.md for the exact shapes of every campaign and benign
event.  Same arguments => byte-identical recording and labels.
"""
import argparse
import bisect
import calendar
import gzip
import ipaddress
import json
import math
import random
import sys
import time as _time

TOPIC_LIKE = "likes"
TOPIC_PAY = "payments.success"
NPART = {TOPIC_LIKE: 6, TOPIC_PAY: 3}
PART_ORDER = [(TOPIC_LIKE, p) for p in range(6)] + [(TOPIC_PAY, p) for p in range(3)]
PIDX = {tp: i for i, tp in enumerate(PART_ORDER)}

US = 1_000_000
SEC = US
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR
CST = 8 * HOUR          # China Standard Time offset
GEN_NAME = "othergen3 1.0"

# organic records per session, measured (used to turn --rate into a session count)
REC_PER_SESSION = 3.57


# --------------------------------------------------------------------------- time formats
def _parts(us, off=0):
    s, frac = divmod(us + off, US)
    t = _time.gmtime(s)
    return "%04d-%02d-%02dT%02d:%02d:%02d" % (t[0], t[1], t[2], t[3], t[4], t[5]), frac


def t_z(us):
    return _parts(us)[0] + "Z"


def t_z_ms(us):
    b, f = _parts(us)
    return "%s.%03dZ" % (b, f // 1000)


def t_z_us(us):
    b, f = _parts(us)
    return "%s.%06dZ" % (b, f)


def t_cst(us):
    return _parts(us, CST)[0] + "+08:00"


def t_cst_ms(us):
    b, f = _parts(us, CST)
    return "%s.%03d+08:00" % (b, f // 1000)


def local_hour(us):
    return ((us + CST) % DAY) / HOUR


def local_date(us):
    t = _time.gmtime((us + CST) // US)
    return "%04d%02d%02d" % (t[0], t[1], t[2])


# --------------------------------------------------------------------------- helpers
def murmur2(data):
    """Kafka's default partitioner hash (murmur2, seed 0x9747b28c)."""
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    base = length & ~3
    if extra >= 3:
        h ^= data[base + 2] << 16
    if extra >= 2:
        h ^= data[base + 1] << 8
    if extra >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


class Sampler:
    def __init__(self, items, weights):
        self.items = items
        self.cum = []
        acc = 0.0
        for w in weights:
            acc += w
            self.cum.append(acc)
        self.total = acc

    def sample(self, r):
        return self.items[bisect.bisect_right(self.cum, r.random() * self.total)]


def lognorm_us(r, median_s, sigma, lo_s=None, hi_s=None):
    v = median_s * math.exp(r.gauss(0.0, sigma))
    if lo_s is not None and v < lo_s:
        v = lo_s
    if hi_s is not None and v > hi_s:
        v = hi_s
    return int(v * US)


def wchoice(r, pairs):
    tot = sum(w for _, w in pairs)
    x = r.random() * tot
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --------------------------------------------------------------------------- world objects
class Target:
    __slots__ = ("tid", "m")

    def __init__(self, tid, m):
        self.tid = tid
        self.m = m


class Merchant:
    __slots__ = ("idx", "mchid", "cat", "pop", "targets", "tcum", "prod", "ots", "appid",
                 "scene", "ipflag", "skus", "skucum", "live", "shop", "oseq")

    def pick_target(self, r):
        return self.targets[bisect.bisect_right(self.tcum, r.random() * self.tcum[-1])]

    def amount(self, r):
        sku = self.skus[bisect.bisect_right(self.skucum, r.random() * self.skucum[-1])]
        q = r.random()
        qty = 1 if q < 0.86 else (2 if q < 0.96 else r.randint(3, 6))
        amt = sku * qty
        if amt > 2000 and r.random() < 0.07:
            amt -= r.choice((300, 500, 1000, 2000))
        return max(1, amt)


class User:
    __slots__ = ("oid", "client", "dev", "created", "cvis", "carrier", "home4", "home6",
                 "cell6", "wifi", "office", "favs")


CATS = [  # name, weight, median price (fen), sigma
    ("apparel", 17, 12900, 0.6), ("beauty", 12, 15900, 0.7), ("snacks", 14, 3990, 0.5),
    ("fresh", 8, 5980, 0.45), ("digital", 6, 29900, 1.0), ("home", 12, 6990, 0.7),
    ("books", 5, 4590, 0.45), ("courses", 3, 19900, 0.8), ("game", 7, 0, 0),
    ("tea", 8, 2200, 0.3), ("pets", 5, 8900, 0.6), ("jewelry", 3, 59900, 0.9),
]
GAME_TIERS = [100, 600, 1200, 3000, 6800, 12800, 32800, 64800, 98, 198, 648]


def price_point(r, median, sigma):
    p = median * math.exp(r.gauss(0.0, sigma))
    if p < 200:
        return max(1, int(round(p / 10.0)) * 10 - r.choice((0, 1, 10)))
    if p < 3000:
        q = int(round(p / 100.0)) * 100
        return q - r.choice((10, 10, 10, 0, 20, 1))
    if p < 30000:
        q = int(round(p / 1000.0)) * 1000
        return q - r.choice((100, 100, 10, 0, 20, 1000 if q > 1000 else 0))
    q = int(round(p / 10000.0)) * 10000
    return q - r.choice((100, 1000, 0, 10))


BB_PREFIX = {  # home broadband IPv4 /16s
    "ct": ["183.14", "180.160", "114.86", "58.33", "101.86", "222.66", "61.152", "116.228", "124.78"],
    "cu": ["123.112", "221.216", "60.10", "112.224", "27.18", "61.48", "218.68"],
    "cm": ["120.229", "39.144", "111.18", "183.240", "36.110"],
}
CGNAT_PREFIX = {  # carrier mobile NAT egress /16s
    "cm": ["117.136", "223.104", "111.30", "39.144", "112.17"],
    "cu": ["112.97", "112.96", "42.49", "157.0"],
    "ct": ["106.39", "223.73", "27.38", "1.203"],
}
V6_CELL = {"cm": 0x24098900, "cu": 0x24088400, "ct": 0x240E0400}
V6_HOME = {"cm": 0x24098A00, "cu": 0x24088200, "ct": 0x240E0300}
DC_PREFIX = ["47.92", "47.101", "39.105", "120.79", "119.29", "43.138", "101.34", "8.134",
             "121.40", "49.235", "114.55"]
ENT_PREFIX = ["202.120", "210.72", "211.144", "59.108", "218.17", "61.129", "222.73",
              "140.207", "101.230", "116.236"]


class World:
    def __init__(self, seed, hours, rate):
        self.seed = seed
        self.hours = hours
        self.rate = rate
        r = self.rng("world")
        # -- run window: a local (UTC+8) date in Nov/Dec 2026 and a start hour
        day = r.randint(0, 48)
        hour = r.randint(8, 21)
        minute = r.choice((0, 0, 10, 20, 30, 40, 50))
        base = calendar.timegm((2026, 11, 2, 0, 0, 0)) * US
        self.T0 = base + day * DAY + hour * HOUR + minute * MINUTE - CST
        self.span = int(hours * HOUR)
        self.T1 = self.T0 + self.span
        self.used_ips = set()
        self.ids = set()
        self._cgnat = {}
        self.oid_prefix = "o" + "".join(r.choice(B64[:52]) for _ in range(5))
        self.app_appid = "wx" + "%016x" % r.getrandbits(64)
        self.mini_appid = "wx" + "%016x" % r.getrandbits(64)
        self._build_rhythm()
        self._build_merchants()
        self._build_users()
        self._build_lives()
        self.used_m = set()

    def rng(self, name):
        return random.Random("othergen3|%s|%s" % (self.seed, name))

    # ----------------------------------------------------------------- ids
    def uniq(self, f):
        while True:
            x = f()
            if x not in self.ids:
                self.ids.add(x)
                return x

    def new_openid(self, r):
        def f():
            b = r.getrandbits(132)
            return self.oid_prefix + "".join(B64[(b >> (6 * i)) & 63] for i in range(22))
        return self.uniq(f)

    def new_device(self, r, client):
        if client == "android":
            return self.uniq(lambda: "%016x" % r.getrandbits(64))
        if client == "ios":
            def f():
                h = "%032X" % r.getrandbits(128)
                return "%s-%s-4%s-%s-%s" % (h[:8], h[8:12], h[13:16], h[16:20], h[20:])
            return self.uniq(f)
        return None

    # ----------------------------------------------------------------- IPs
    def _ip4(self, r, prefixes):
        def f():
            return "%s.%d.%d" % (r.choice(prefixes), r.randint(0, 255), r.randint(1, 254))
        x = f()
        while x in self.used_ips:
            x = f()
        self.used_ips.add(x)
        return x

    def v6prefix(self, r, top32):
        return (top32 + r.randint(0, 255)) << 32 | r.getrandbits(32)

    @staticmethod
    def v6addr(prefix, iid):
        return ipaddress.IPv6Address((prefix << 64) | iid).compressed

    def dc_ip(self, r):
        return self._ip4(r, DC_PREFIX)

    def bb_ip(self, r, carrier=None):
        return self._ip4(r, BB_PREFIX[carrier or r.choice(("ct", "cu", "cm"))])

    def ent_ip(self, r):
        return self._ip4(r, ENT_PREFIX)

    # ----------------------------------------------------------------- rhythm
    DIURNAL = [0.55, 0.36, 0.22, 0.14, 0.10, 0.12, 0.24, 0.42, 0.58, 0.64, 0.70, 0.80,
               0.95, 0.88, 0.72, 0.70, 0.72, 0.78, 0.86, 0.96, 1.00, 1.00, 0.90, 0.74]

    def diurnal(self, us):
        h = local_hour(us)
        i = int(h)
        f = h - i
        return self.DIURNAL[i] * (1 - f) + self.DIURNAL[(i + 1) % 24] * f

    def _build_rhythm(self):
        r = self.rng("rhythm")
        nmin = max(1, int(math.ceil(self.span / MINUTE)))
        x = 0.0
        mod = []
        for _ in range(nmin):
            x = 0.88 * x + r.gauss(0.0, 0.045)
            mod.append(math.exp(x))
        # app push notifications: short platform-wide bumps
        for _ in range(max(1, int(round(self.hours * r.uniform(0.8, 1.6))))):
            m0 = r.randrange(nmin)
            amp = r.uniform(0.2, 0.5)
            for k in range(8):
                if m0 + k < nmin:
                    mod[m0 + k] *= 1 + amp * math.exp(-k / 2.5)
        self.min_w = [self.diurnal(self.T0 + m * MINUTE + 30 * SEC) * mod[m] for m in range(nmin)]
        cum = []
        acc = 0.0
        for w in self.min_w:
            acc += w
            cum.append(acc)
        self.min_cum = cum

    def sample_time(self, r):
        m = bisect.bisect_right(self.min_cum, r.random() * self.min_cum[-1])
        return self.T0 + m * MINUTE + r.randrange(MINUTE)

    # ----------------------------------------------------------------- merchants
    def _build_merchants(self):
        r = self.rng("merchants")
        n = 900 + int(self.rate * self.hours * 10)
        n = min(n, 6000)
        cat_s = Sampler(CATS, [c[1] for c in CATS])
        self.merchants = []
        seen = set()
        for i in range(n):
            m = Merchant()
            m.idx = i
            while True:
                mid = str(r.choice((1, 1, 1, 1, 1))) + str(r.randint(200000000, 699999999))
                if mid not in seen:
                    seen.add(mid)
                    break
            m.mchid = mid
            c = cat_s.sample(r)
            m.cat = c[0]
            m.pop = 1.0 / (i + 8) ** 1.08
            m.prod = "relay" if r.random() < 0.13 else "gw"
            m.ots = r.randrange(5) if m.prod == "relay" else r.randrange(4)
            m.appid = ("wx" + "%016x" % r.getrandbits(64)) if r.random() < 0.25 else None
            m.scene = r.random() < 0.4
            m.ipflag = r.random() < 0.88
            m.oseq = r.randint(10 ** 6, 9 * 10 ** 7)
            if c[0] == "game":
                skus = r.sample(GAME_TIERS, r.randint(3, 8))
            else:
                skus = [price_point(r, c[2] * math.exp(r.gauss(0, 0.3)), c[3])
                        for _ in range(r.randint(2, 24))]
            m.skus = skus
            m.skucum = []
            acc = 0.0
            for k in range(len(skus)):
                acc += 1.0 / (k + 1) ** 1.1
                m.skucum.append(acc)
            # content
            m.targets = []
            w = []
            m.shop = Target("shop:%08d" % r.randint(10 ** 7, 10 ** 8 - 1), m)
            m.targets.append(m.shop)
            w.append(0.6)
            nvid = 1 + int(r.lognormvariate(math.log(3 + 40 * (n - i) / n / 8), 0.8))
            nvid = min(nvid, 60)
            for k in range(nvid):
                if r.random() < 0.8:
                    t = Target("video:%d" % self.uniq(lambda: r.randint(7_100_000_000_000_000_000,
                                                                         7_399_999_999_999_999_999)), m)
                else:
                    t = Target("post:%d" % self.uniq(lambda: r.randint(10 ** 9, 10 ** 10 - 1)), m)
                m.targets.append(t)
                w.append(1.0 / (k + 1) ** 0.9 * r.lognormvariate(0, 0.5))
            if r.random() < (0.55 if i < 200 else 0.18):
                m.live = Target("live:%d" % self.uniq(lambda: r.randint(10 ** 8, 10 ** 9 - 1)), m)
                m.targets.append(m.live)
                w.append(0.3)
            else:
                m.live = None
            tot = sum(w)
            m.tcum = []
            acc = 0.0
            for x in w:
                acc += x / tot
                m.tcum.append(acc)
            self.merchants.append(m)
        items = []
        weights = []
        for m in self.merchants:
            prev = 0.0
            for t, c in zip(m.targets, m.tcum):
                items.append(t)
                weights.append(m.pop * (c - prev))
                prev = c
        self.content = Sampler(items, weights)
        self.msampler = Sampler(self.merchants, [m.pop ** 0.85 for m in self.merchants])

    def new_target(self, r, m, kind="video"):
        if kind == "video":
            t = Target("video:%d" % self.uniq(lambda: r.randint(7_100_000_000_000_000_000,
                                                                 7_399_999_999_999_999_999)), m)
        elif kind == "post":
            t = Target("post:%d" % self.uniq(lambda: r.randint(10 ** 9, 10 ** 10 - 1)), m)
        else:
            t = Target("live:%d" % self.uniq(lambda: r.randint(10 ** 8, 10 ** 9 - 1)), m)
        return t

    def pick_merchant(self, r, lo, hi, cat=None, need_live=False):
        hi = min(hi, len(self.merchants))
        for _ in range(5000):
            m = self.merchants[r.randrange(lo, hi)]
            if m.mchid in self.used_m:
                continue
            if cat and m.cat not in cat:
                continue
            if need_live and m.live is None:
                continue
            self.used_m.add(m.mchid)
            return m
        for m in self.merchants[lo:]:
            if m.mchid not in self.used_m:
                self.used_m.add(m.mchid)
                return m
        raise RuntimeError("out of merchants")

    # ----------------------------------------------------------------- users
    def _build_users(self):
        r = self.rng("users")
        n_sess = self.rate * self.span / SEC / REC_PER_SESSION
        n = int(min(400000, max(3000, n_sess * 1.15)))
        self.users = []
        acts = []
        households = []
        n_off = max(3, n // 55)
        self.offices = [self.ent_ip(r) for _ in range(n_off)]
        off_s = Sampler(list(range(n_off)), [min(30.0, r.paretovariate(1.2)) for _ in range(n_off)])
        for _ in range(n):
            acts.append(min(150.0, r.paretovariate(1.35)))
            self.users.append(self.make_user(r, households=households, office_s=off_s))
        self.user_sampler = Sampler(self.users, acts)

    def make_user(self, r, client=None, created=None, households=None, office_s=None,
                  dev=True):
        u = User()
        u.oid = self.new_openid(r)
        u.client = client or wchoice(r, (("android", 50), ("ios", 31), ("mini", 14), ("h5", 5)))
        u.dev = self.new_device(r, u.client) if dev else None
        if created is None:
            x = r.random()
            if x < 0.60:
                created = self.T0 - r.randint(365 * DAY, 8 * 365 * DAY)
            elif x < 0.89:
                created = self.T0 - r.randint(7 * DAY, 365 * DAY)
            elif x < 0.975:
                created = self.T0 - r.randint(DAY, 7 * DAY)
            else:
                created = self.T0 - r.randint(10 * MINUTE, DAY)
        u.created = created
        u.cvis = u.client in ("android", "ios") or (u.client == "h5" and r.random() < 0.4)
        u.carrier = wchoice(r, (("cm", 55), ("cu", 25), ("ct", 20)))
        if households is not None and households and r.random() < 0.38:
            hh = households[r.randrange(max(0, len(households) - 400), len(households))]
            u.home4, u.home6 = hh[0], hh[1]
            if hh[2] == u.client and hh[3] is not None and r.random() < 0.12:
                u.dev = hh[3]            # family members sharing one phone / tablet
        else:
            u.home4 = self.bb_ip(r)
            u.home6 = self.v6prefix(r, V6_HOME[r.choice(("cm", "cu", "ct"))]) if r.random() < 0.35 else None
            if households is not None:
                households.append((u.home4, u.home6, u.client, u.dev))
        u.cell6 = self.v6prefix(r, V6_CELL[u.carrier])
        u.wifi = r.uniform(0.25, 0.85)
        u.office = office_s.sample(r) if (office_s is not None and r.random() < 0.3) else None
        u.favs = [self.msampler.sample(r) for _ in range(r.choice((0, 1, 2, 3, 4, 5)))] \
            if hasattr(self, "msampler") else []
        return u

    def cgnat(self, r, carrier):
        # carrier NAT egress: a small pool (/24s) per carrier shared by many subscribers
        pool = self._cgnat.get(carrier)
        if pool is None:
            rr = self.rng("cgnat-" + carrier)
            pool = []
            for _ in range(max(60, len(self.users) // 300)):
                p = "%s.%d" % (rr.choice(CGNAT_PREFIX[carrier]), rr.randint(0, 255))
                pool.append(p)
            self._cgnat[carrier] = pool
        return "%s.%d" % (r.choice(pool), r.randint(1, 254))

    def session_net(self, r, u, t):
        h = local_hour(t)
        if u.office is not None and 9.0 <= h < 18.5 and r.random() < 0.6:
            return self.offices[u.office]
        if u.client == "h5":
            if u.home6 is not None and r.random() < 0.3:
                return self.v6addr(u.home6, r.getrandbits(64))
            return u.home4
        if r.random() < u.wifi:
            if u.home6 is not None and r.random() < 0.55:
                return self.v6addr(u.home6, r.getrandbits(64))
            return u.home4
        if r.random() < 0.5:
            return self.v6addr(u.cell6, r.getrandbits(64))
        return self.cgnat(r, u.carrier)

    # ----------------------------------------------------------------- livestreams
    def _build_lives(self):
        r = self.rng("lives")
        cands = [m for m in self.merchants[:600] if m.live is not None]
        s = Sampler(cands, [m.pop for m in cands])
        self.lives = []
        picked = set()
        for _ in range(max(3, int(self.hours * 7))):
            m = s.sample(r)
            if m.mchid in picked:
                continue
            picked.add(m.mchid)
            st = self.T0 + r.randint(-HOUR, self.span)
            self.lives.append((st, st + r.randint(30 * MINUTE, 180 * MINUTE),
                               r.lognormvariate(0, 0.6), m.live))

    def active_lives(self, t):
        return [lv for lv in self.lives if lv[0] <= t < lv[1]]

    # ----------------------------------------------------------------- sessions
    def session(self, r, s, u, t0, ip):
        lives = self.active_lives(t0)
        tot = sum(lv[2] for lv in lives)
        if lives and r.random() < min(0.3, 0.07 * tot):
            lv = wchoice(r, [(lv, lv[2]) for lv in lives])
            tgt = lv[3]
            dur = lognorm_us(r, 360, 0.8, 60, 2400)
            taps = 1 + min(7, int(r.expovariate(0.8)))
            for t in sorted(t0 + r.randrange(dur) for _ in range(taps)):
                s.like(t, u, tgt, ip)
            if r.random() < 0.13:
                tb = t0 + r.randrange(dur)
                s.pay(tb, u, tgt.m, tgt.m.amount(r), ip)
            return
        x = r.random()
        n = 0 if x < 0.12 else 1 + int(r.lognormvariate(math.log(3.0), 0.75))
        n = min(n, 60)
        t = t0
        liked = []
        for _ in range(n):
            t += lognorm_us(r, 16, 1.0, 1, 900)
            if u.favs and r.random() < 0.25:
                tgt = u.favs[r.randrange(len(u.favs))].pick_target(r)
            else:
                tgt = self.content.sample(r)
            if tgt in liked:
                continue
            liked.append(tgt)
            s.like(t, u, tgt, ip)
            if r.random() < 0.018:
                s.like(t + lognorm_us(r, 60, 1.2, 3, 900), u, tgt, ip, action="unlike")
        x = r.random()
        nb = 1 if x < 0.27 else (2 if x < 0.30 else 0)
        for _ in range(nb):
            tb = t0 + r.randint(10 * SEC, max(60 * SEC, t - t0 + 120 * SEC))
            y = r.random()
            if liked and y < 0.5:
                m = liked[r.randrange(len(liked))].m
            elif u.favs and y < 0.7:
                m = u.favs[r.randrange(len(u.favs))]
            else:
                m = self.msampler.sample(r)
            s.pay(tb, u, m, m.amount(r), ip)
            if r.random() < 0.06:
                s.like(tb + lognorm_us(r, 240, 0.8, 30, 1800), u,
                       m.shop if r.random() < 0.5 else m.pick_target(r), ip)


# --------------------------------------------------------------------------- labels
ENT_KEYS = ("merchants", "targets", "users", "ips", "devices")


class Label:
    def __init__(self, kind, fraud, auto_users=True):
        self.kind = kind
        self.fraud = fraud
        self.ent = {k: {} for k in ENT_KEYS}
        self.watch_ips = set()
        self.watch_devs = set()
        self.auto_users = auto_users
        self.tmin = None
        self.tmax = None
        self.shape = {}
        self.n_events = 0

    def seen(self, t, full, user, mch, tgt, ip, dev):
        self.n_events += 1
        if self.tmin is None or t < self.tmin:
            self.tmin = t
        if self.tmax is None or t > self.tmax:
            self.tmax = t
        if full:
            self.ent["merchants"][mch] = None
            if tgt is not None:
                self.ent["targets"][tgt] = None
        if self.auto_users:
            self.ent["users"][user] = None
        if ip is not None and ip in self.watch_ips:
            self.ent["ips"][ip] = None
        if dev is not None and dev in self.watch_devs:
            self.ent["devices"][dev] = None

    def to_json(self, lid):
        d = {"id": lid, "kind": self.kind,
             "start": t_z(self.tmin // US * US), "end": t_z(-(-self.tmax // US) * US)}
        for k in ENT_KEYS:
            v = sorted(self.ent[k])
            if self.fraud or v or k in ("merchants", "targets"):
                d[k] = v
        d["shape"] = self.shape
        d["events"] = self.n_events
        return d


# --------------------------------------------------------------------------- sink / producers
PAY_DESC = {"SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "未支付", "CLOSED": "已关闭",
            "USERPAYING": "用户支付中（付款码支付）", "PAYERROR": "支付失败", "REVOKED": "已撤销"}
BANKS = (("OTHERS", 40), ("CMB_DEBIT", 10), ("ICBC_DEBIT", 10), ("CCB_DEBIT", 8), ("ABC_DEBIT", 6),
         ("BOC_DEBIT", 5), ("CMB_CREDIT", 6), ("CCB_CREDIT", 4), ("SPDB_CREDIT", 3), ("COMM_DEBIT", 3))
DEFAULT = object()


class Sink:
    def __init__(self, w):
        self.w = w
        self.r = w.rng("sink")
        self.recs = []
        self.seq = 0
        self.workers = {p: self.r.randint(0, 1023) for p in ("app", "mini", "h5")}
        self.snow_seq = 0
        self.n_valid = 0

    def add(self, deliver, topic, prod, key, payload, bad=None):
        self.recs.append((deliver, self.seq, topic, prod, key, payload, bad))
        self.seq += 1

    def snowflake(self, t):
        ms = t // 1000 - 1288834974657

        def f():
            self.snow_seq = (self.snow_seq + 1) & 4095
            return str((ms << 22) | (self.workers["app"] << 12) | self.snow_seq)
        return self.w.uniq(f)

    # ----------------------------------------------------------------- likes
    def like_payload(self, t, u, tgt, ip, action):
        """returns (prod, key, payload, like_id, ip_included, dev_included, lag)"""
        r = self.r
        c = u.client
        if c in ("android", "ios"):
            lid = self.snowflake(t)
            d = {"like_id": lid, "user_openid": u.oid, "target_id": tgt.tid,
                 "owner_mchid": tgt.m.mchid, "action": action, "ts": t_z_ms(t)}
            ipi = ip if (ip is not None and r.random() < 0.93) else None
            if ipi is not None:
                d["client_ip"] = ipi
            if u.dev is not None:
                d["device_id"] = u.dev
            if u.cvis:
                d["user_created"] = t_z(u.created)
            lag = lognorm_us(r, 0.18, 0.8)
            if r.random() < 0.025:          # offline client flushing its queue later
                lag += r.randint(5 * SEC, 8 * MINUTE)
            return "app", None, json.dumps(d, separators=(",", ":")), lid, ipi, u.dev, lag
        if c == "mini":
            lid = self.w.uniq(lambda: "lk_%024x" % r.getrandbits(96))
            d = {"ts": t_cst(t), "target_id": tgt.tid, "owner_mchid": tgt.m.mchid,
                 "user_openid": u.oid, "like_id": lid}
            if action != "like":
                d["action"] = action
            ipi = ip if (ip is not None and r.random() < 0.55) else None
            if ipi is not None:
                d["client_ip"] = ipi
            lag = lognorm_us(r, 0.4, 0.7)
            return "mini", u.oid, json.dumps(d), lid, ipi, None, lag
        def f():
            h = "%032x" % r.getrandbits(128)
            return "%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:])
        lid = self.w.uniq(f)
        d = {"like_id": lid, "action": action, "target_id": tgt.tid, "owner_mchid": tgt.m.mchid,
             "user_openid": u.oid, "ts": t_z_us(t)}
        ipi = ip
        if ipi is not None:
            d["client_ip"] = ipi
        if u.cvis:
            d["user_created"] = t_cst(u.created)
        lag = lognorm_us(r, 0.25, 0.6)
        return "h5", None, json.dumps(d, separators=(",", ":")), lid, ipi, None, lag

    def like(self, t, u, tgt, ip, action="like", lab=None, full=True):
        if t < self.w.T0 or t >= self.w.T1:
            return None
        prod, key, payload, lid, ipi, devi, lag = self.like_payload(t, u, tgt, ip, action)
        self.add(t + lag, TOPIC_LIKE, prod, key, payload)
        self.n_valid += 1
        if self.r.random() < 0.006:      # producer retry -> duplicate delivery
            self.add(t + lag + lognorm_us(self.r, 1.5, 0.8), TOPIC_LIKE, prod, key, payload)
        if lab is not None and action == "like":
            lab.seen(t, full, u.oid, tgt.m.mchid, tgt.tid, ipi, devi)
        return lid

    # ----------------------------------------------------------------- payments
    def out_trade_no(self, m, t):
        r = self.r
        m.oseq += r.randint(1, 40)
        if m.ots == 0:
            return _parts(t, CST)[0].replace("-", "").replace("T", "").replace(":", "") + "%05d" % (m.oseq % 100000)
        if m.ots == 1:
            return "T%d%02d" % (t // 1000, r.randint(0, 99))
        if m.ots == 2:
            return "%032x" % r.getrandbits(128)
        if m.ots == 3:
            return "SO%016d" % m.oseq
        return None

    def pay(self, t, u, m, amount, ip, dev=DEFAULT, state=None, lab=None, full=True):
        if t < self.w.T0 or t >= self.w.T1:
            return None
        r = self.r
        if state is None:
            state = wchoice(r, (("SUCCESS", 955), ("NOTPAY", 12), ("CLOSED", 12), ("USERPAYING", 5),
                                ("PAYERROR", 4), ("REVOKED", 2), ("REFUND", 10)))
        st = t
        if state == "REFUND":        # a refund of an order paid some hours ago
            st = t - r.randint(5 * MINUTE, 90 * MINUTE)
        txid = self.w.uniq(lambda: "4200%06d%s%010d" % (r.randint(1000, 3000), local_date(st),
                                                       r.randrange(10 ** 10)))
        otn = self.out_trade_no(m, st)
        if dev is DEFAULT:
            dev = u.dev
        devi = dev if (dev is not None and m.scene and u.client in ("android", "ios")) else None
        ipi = ip if (ip is not None and m.ipflag and (u.client != "mini" or r.random() < 0.7)) else None
        if m.prod == "gw":
            ttype = {"android": "APP", "ios": "APP", "mini": "JSAPI", "h5": "MWEB"}[u.client]
            appid = m.appid if (u.client == "mini" and m.appid) else \
                (self.w.mini_appid if u.client == "mini" else self.w.app_appid)
            d = {"mchid": m.mchid, "appid": appid}
            if otn is not None:
                d["out_trade_no"] = otn
            d.update({"transaction_id": txid, "trade_type": ttype, "trade_state": state,
                      "trade_state_desc": PAY_DESC[state], "bank_type": wchoice(r, BANKS),
                      "attach": "", "success_time": t_cst(st), "payer": {"openid": u.oid},
                      "amount": {"total": amount, "payer_total": amount, "currency": "CNY",
                                 "payer_currency": "CNY"}})
            if devi is not None:
                d["scene_info"] = {"device_id": devi}
            if ipi is not None:
                d["payer_client_ip"] = ipi
            payload = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
            key = None
            lag = lognorm_us(r, 1.2, 0.9)
            if r.random() < 0.01:
                lag += r.randint(10 * SEC, 120 * SEC)
        else:
            d = {"transaction_id": txid, "mchid": m.mchid, "trade_state": state,
                 "success_time": t_z_us(st), "payer": {"openid": u.oid}, "amount": {"total": amount}}
            if otn is not None:
                d["out_trade_no"] = otn
            if ipi is not None:
                d["payer_client_ip"] = ipi
            if devi is not None:
                d["scene_info"] = {"device_id": devi}
            payload = json.dumps(d)
            key = otn or txid
            lag = lognorm_us(r, 0.6, 0.7)
        self.add(t + lag, TOPIC_PAY, m.prod, key, payload)
        self.n_valid += 1
        if r.random() < 0.025:       # WeChat re-notification (15s, 15s, 30s, 3m, 10m ...)
            extra = 0
            for step in (15, 15, 30, 180, 600):
                extra += step * SEC + r.randint(0, 3 * SEC)
                self.add(t + lag + extra, TOPIC_PAY, m.prod, key, payload)
                if r.random() < 0.6:
                    break
        if lab is not None:
            lab.seen(t, full, u.oid, m.mchid, None, ipi, devi)
        return txid


# --------------------------------------------------------------------------- fraud campaigns
def camp_paid_task(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 120, len(w.merchants))
    ntg = r.choice((1, 1, 2, 3))
    targets = [w.new_target(r, m, "video") if r.random() < 0.5 else m.pick_target(r) for _ in range(ntg)]
    targets = list(dict.fromkeys(targets))
    n_dev = r.randint(3, 10)
    n_acc = r.randint(max(n_dev * 2, 18), 110)
    studio = r.random() < 0.5
    studio_ips = [w.bb_ip(r) for _ in range(r.randint(1, 2))] if studio else []
    devs = []
    for i in range(n_dev):
        c = "android" if r.random() < 0.75 else "ios"
        devs.append((c, w.new_device(r, c), studio_ips[i % len(studio_ips)] if studio else None,
                     r.choice(("cm", "cu", "ct"))))
        lab.watch_devs.add(devs[-1][1])
    for ip in studio_ips:
        lab.watch_ips.add(ip)
    fixed = r.random() < 0.6
    base = r.choice((1, 2, 5, 10, 10, 20, 50, 66, 88, 99, 100)) if fixed else r.randint(20, 95)
    accs = []
    for i in range(n_acc):
        c, dv, ip, car = devs[i % n_dev] if i < n_dev else devs[r.randrange(n_dev)]
        u = w.make_user(r, client=c, created=t0 - r.randint(15 * DAY, 3 * 365 * DAY), dev=False)
        u.dev = dv
        u.carrier = car
        accs.append((u, ip))
    for u, sip in accs:
        t = t0 + int(dur * r.random() ** 1.5)
        ip = sip if sip is not None else (w.v6addr(u.cell6, r.getrandbits(64)) if r.random() < 0.4
                                          else w.cgnat(r, u.carrier))
        amt = base if fixed else base + r.randint(-3, 3)
        if r.random() < 0.05:
            s.pay(t, u, m, amt, ip, state=r.choice(("NOTPAY", "CLOSED")), lab=lab)
            t += lognorm_us(r, 40, 0.4)
        s.pay(t, u, m, amt, ip, state="SUCCESS", lab=lab)
        if r.random() < 0.06:
            continue
        tl = t + lognorm_us(r, 22, 0.6, 4, 120)
        for k, tg in enumerate(targets):
            if k and r.random() < 0.3:
                continue
            s.like(tl, u, tg, ip, lab=lab)
            if r.random() < 0.05:
                s.like(tl + r.randint(8 * MINUTE, 30 * MINUTE), u, tg, ip, action="unlike")
            tl += lognorm_us(r, 7, 0.5)
    lab.shape = {"accounts": n_acc, "devices": n_dev, "studio_ips": len(studio_ips),
                 "amount_fen": base if fixed else "%d..%d" % (base - 3, base + 3),
                 "like_delay_s": "4..120 (median 22)", "targets": len(targets)}


def camp_device_farm(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 120, len(w.merchants))
    targets = list(dict.fromkeys([w.new_target(r, m, "video")] +
                                 [m.pick_target(r) for _ in range(r.randint(0, 2))]))
    n_dev = r.randint(2, 6)
    n_acc = r.randint(30, 160)
    fixed_net = r.random() < 0.5
    farm_ip = w.bb_ip(r) if fixed_net else None
    if farm_ip:
        lab.watch_ips.add(farm_ip)
    devs = [w.new_device(r, "android") for _ in range(n_dev)]
    for d in devs:
        lab.watch_devs.add(d)
    # accounts registered in batches some weeks ago
    batches = [t0 - r.randint(10 * DAY, 90 * DAY) for _ in range(r.randint(1, 3))]
    per_dev = [[] for _ in range(n_dev)]
    for i in range(n_acc):
        b = batches[r.randrange(len(batches))] + r.randint(0, 3 * HOUR)
        u = w.make_user(r, client="android", created=b, dev=False)
        u.dev = devs[i % n_dev]
        per_dev[i % n_dev].append(u)
    carrier = r.choice(("cm", "cu", "ct"))
    for k, lst in enumerate(per_dev):
        t = t0 + r.randint(0, 3 * MINUTE)
        for u in lst:
            ip = farm_ip or w.cgnat(r, carrier)     # 4G dongle: new egress IP after each re-login
            t += lognorm_us(r, 30, 0.45, 8, 240)
            if t > t0 + dur:
                break
            if r.random() < 0.25:
                s.like(t, u, w.content.sample(r), ip)   # "warming" like on popular content
                t += lognorm_us(r, 6, 0.5)
            for tg in r.sample(targets, r.randint(1, len(targets))):
                s.like(t, u, tg, ip, lab=lab)
                t += lognorm_us(r, 7, 0.5, 2, 40)
    lab.shape = {"accounts": n_acc, "devices": n_dev, "network": "fixed_ip" if fixed_net else "rotating_4g",
                 "account_switch_s": "8..240 (median 30)", "targets": len(targets)}


def camp_ip_farm(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 120, len(w.merchants))
    targets = list(dict.fromkeys([w.new_target(r, m, r.choice(("video", "post")))] +
                                 ([m.pick_target(r)] if r.random() < 0.5 else [])))
    n_ip = r.choice((1, 1, 2, 3, 4))
    ips = [w.dc_ip(r) for _ in range(n_ip)]
    for ip in ips:
        lab.watch_ips.add(ip)
    n_acc = r.randint(40, 220)
    client = "h5" if r.random() < 0.55 else "android"
    accs = []
    for i in range(n_acc):
        u = w.make_user(r, client=client, created=t0 - r.randint(20 * DAY, 2 * 365 * DAY))
        if u.dev:
            lab.watch_devs.add(u.dev)
        accs.append(u)
    r.shuffle(accs)
    n_w = r.randint(2, 4)
    wave_starts = sorted(t0 + r.randrange(max(1, dur - 5 * MINUTE)) for _ in range(n_w))
    wave_starts[0] = t0
    idx = 0
    per = max(1, n_acc // n_w)
    for k, ws in enumerate(wave_starts):
        t = ws
        chunk = accs[idx: idx + per] if k < n_w - 1 else accs[idx:]
        idx += per
        for j, u in enumerate(chunk):
            t += lognorm_us(r, 2.5, 0.9, 0.2, 60)
            ip = ips[(j + k) % n_ip] if r.random() < 0.8 else ips[r.randrange(n_ip)]
            s.like(t, u, targets[0], ip, lab=lab)
            if len(targets) > 1 and r.random() < 0.5:
                s.like(t + lognorm_us(r, 1.5, 0.5), u, targets[1], ip, lab=lab)
    lab.shape = {"accounts": n_acc, "ips": n_ip, "client": client, "waves": n_w,
                 "interarrival_s": "0.2..60 (median 2.5)", "targets": len(targets)}


def camp_fresh_burst(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 60, len(w.merchants))
    tg = w.new_target(r, m, "video") if r.random() < 0.6 else m.pick_target(r)
    other = m.pick_target(r)
    n_acc = r.randint(60, 350)
    pooled = r.random() < 0.5
    pool = []
    if pooled:
        for _ in range(r.randint(10, 30)):
            c = "android" if r.random() < 0.7 else "ios"
            pool.append((c, w.new_device(r, c)))
    for i in range(n_acc):
        tl = t0 + int(dur * (r.random() + r.random()) / 2)
        created = tl - lognorm_us(r, 12 * 60, 0.7, 60, 90 * 60)
        if pooled:
            c, dv = pool[r.randrange(len(pool))]
            u = w.make_user(r, client=c, created=created, dev=False)
            u.dev = dv
        else:
            u = w.make_user(r, client="android" if r.random() < 0.7 else "ios", created=created)
        lab.watch_devs.add(u.dev)
        ip = w.v6addr(u.cell6, r.getrandbits(64)) if r.random() < 0.45 else w.cgnat(r, u.carrier)
        s.like(tl, u, tg, ip, lab=lab)
        if other is not tg and r.random() < 0.3:
            s.like(tl + lognorm_us(r, 20, 0.6), u, other, ip, lab=lab)
    lab.shape = {"accounts": n_acc, "window_min": round(dur / MINUTE, 1),
                 "account_age_min": "1..90 (median 12)", "devices": len(pool) if pooled else "one per account"}


def camp_slow_drip(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 120, len(w.merchants))
    targets = list(dict.fromkeys([m.pick_target(r)] + ([w.new_target(r, m)] if r.random() < 0.5 else [])))
    n_dev = r.randint(2, 5)
    ips = [w.bb_ip(r) for _ in range(r.randint(1, 3))]
    devs = []
    for i in range(n_dev):
        c = r.choice(("android", "android", "ios"))
        devs.append((c, w.new_device(r, c), ips[i % len(ips)]))
        lab.watch_devs.add(devs[-1][1])
    for ip in ips:
        lab.watch_ips.add(ip)
    paid = r.random() < 0.5
    base = r.choice((10, 20, 50, 88, 100))
    gap = r.uniform(1.5, 4.0)
    t = t0
    n = 0
    while t < t0 + dur:
        c, dv, ip = devs[r.randrange(n_dev)]
        u = w.make_user(r, client=c, created=t0 - r.randint(60 * DAY, 900 * DAY), dev=False)
        u.dev = dv
        tl = t
        if paid:
            s.pay(t, u, m, base + r.randint(-2, 2), ip, state="SUCCESS", lab=lab)
            tl = t + lognorm_us(r, 25, 0.5, 5, 90)
        s.like(tl, u, targets[n % len(targets)] if r.random() < 0.8 else targets[0], ip, lab=lab)
        n += 1
        t += int(gap * MINUTE * r.uniform(0.55, 1.45))
    lab.shape = {"likes": n, "mean_gap_min": round(gap, 2), "devices": n_dev, "ips": len(ips),
                 "paid": paid, "amount_fen": ("%d..%d" % (base - 2, base + 2)) if paid else None}


def camp_ring(w, s, r, lab, t0, dur):
    n_cl = r.randint(3, 6)
    clients = [w.pick_merchant(r, 80, len(w.merchants)) for _ in range(n_cl)]
    g = r.randint(8, 25)
    members = []
    for _ in range(g):
        c = "android" if r.random() < 0.55 else "ios"
        u = w.make_user(r, client=c, created=t0 - r.randint(200 * DAY, 4 * 365 * DAY))
        u.office = None
        lab.watch_devs.add(u.dev)
        members.append(u)
    # camouflage: ordinary scrolling sessions on popular content
    for u in members:
        for _ in range(r.randint(2, 5)):
            ts = t0 - 10 * MINUTE + r.randrange(dur + 20 * MINUTE)
            ip = w.session_net(r, u, ts)
            t = ts
            for _ in range(r.randint(2, 9)):
                t += lognorm_us(r, 15, 0.9)
                s.like(t, u, w.content.sample(r), ip)
    gap_med = r.uniform(7, 14) * MINUTE
    n_jobs = max(4, int(round(dur / gap_med)))
    step = min(dur, w.T1 - 5 * MINUTE - t0) / n_jobs
    jobs = 0
    for j in range(n_jobs):
        t = t0 + int(j * step + (r.uniform(-0.3, 0.3) * step if j else 0))
        m = clients[jobs % n_cl] if r.random() < 0.7 else clients[r.randrange(n_cl)]
        tg = w.new_target(r, m, r.choice(("video", "video", "post"))) if r.random() < 0.5 else m.pick_target(r)
        part = r.uniform(0.75, 1.0)
        for u in members:
            if r.random() > part:
                continue
            tl = t + lognorm_us(r, 90, 0.7, 10, 480)
            s.like(tl, u, tg, w.session_net(r, u, tl), lab=lab)
        jobs += 1
    lab.shape = {"members": g, "client_merchants": n_cl, "jobs": jobs,
                 "member_delay_s": "10..480 (median 90)", "job_gap_min": round(step / MINUTE, 1)}


CAMPAIGNS = {
    "paid_task_likes": (camp_paid_task, (12, 45)),
    "device_farm": (camp_device_farm, (15, 50)),
    "ip_farm": (camp_ip_farm, (10, 40)),
    "fresh_account_burst": (camp_fresh_burst, (3, 12)),
    "slow_drip": (camp_slow_drip, None),
    "camouflaged_ring": (camp_ring, (35, 90)),
}


# --------------------------------------------------------------------------- benign look-alikes
def organic_user(w, r):
    return w.user_sampler.sample(r)


def ben_viral(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 20, 500)
    tg = w.new_target(r, m, "video")
    n = r.randint(1500, 5000)
    tau = r.uniform(5, 14) * MINUTE
    seen = set()
    for _ in range(n):
        dt = int(r.gammavariate(2.0, 1.0) * tau)
        if dt > dur:
            dt = r.randrange(dur)
        t = t0 + dt
        u = organic_user(w, r)
        if u.oid in seen:
            continue
        seen.add(u.oid)
        ip = w.session_net(r, u, t)
        s.like(t, u, tg, ip, lab=lab)
        if r.random() < 0.025:
            s.like(t + lognorm_us(r, 120, 1.0, 5, 1800), u, tg, ip, action="unlike")
        if r.random() < 0.015:
            tb = t + lognorm_us(r, 300, 0.8, 30, 3600)
            s.pay(tb, u, m, m.amount(r), ip, lab=lab)
    lab.shape = {"likers": len(seen), "rise_decay_tau_min": round(tau / MINUTE, 1)}


def ben_office(w, s, r, lab, t0, dur):
    ip = w.ent_ip(r)
    lab.watch_ips.add(ip)
    m = w.pick_merchant(r, 30, 800)
    post = w.new_target(r, m, "post")
    n = r.randint(150, 500)
    staff = []
    for _ in range(n):
        u = w.make_user(r, client=wchoice(r, (("android", 45), ("ios", 45), ("h5", 10))))
        staff.append(u)
    for u in staff:
        for _ in range(r.randint(1, 4)):
            ts = t0 + r.randrange(dur)
            t = ts
            for _ in range(r.randint(1, 9)):
                t += lognorm_us(r, 20, 1.0, 1, 600)
                s.like(t, u, w.content.sample(r), ip, lab=lab, full=False)
            if r.random() < 0.12:
                mm = w.msampler.sample(r)
                s.pay(t + r.randint(10 * SEC, 5 * MINUTE), u, mm, mm.amount(r), ip, lab=lab, full=False)
    t_ann = t0 + r.randrange(max(1, dur // 2))
    share = r.uniform(0.25, 0.55)
    k = 0
    for u in staff:
        if r.random() < share:
            t = t_ann + lognorm_us(r, 6 * 60, 1.0, 20, 45 * 60)
            s.like(t, u, post, ip, lab=lab)
            k += 1
            if r.random() < 0.03:
                s.pay(t + lognorm_us(r, 120, 0.5), u, m, m.amount(r), ip, lab=lab)
    lab.shape = {"staff": n, "employer_post_likers": k, "window_min": round(dur / MINUTE)}


def ben_coupon(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 20, 600, cat=("apparel", "beauty", "snacks", "fresh", "home", "tea", "pets"))
    tg = w.new_target(r, m, "post")
    n = r.randint(200, 900)
    coupon = r.choice((300, 500, 1000, 2000))
    convert = r.uniform(0.35, 0.65)
    for _ in range(n):
        dt = int(r.expovariate(1.0 / (dur / 3))) if r.random() < 0.7 else r.randrange(dur)
        t = t0 + min(dt, dur)
        if r.random() < 0.15:
            u = w.make_user(r, created=t - r.randint(HOUR, 10 * DAY))
        else:
            u = organic_user(w, r)
        ip = w.session_net(r, u, t)
        s.like(t, u, tg, ip, lab=lab)
        if r.random() < convert:
            tb = t + lognorm_us(r, 5 * 60, 0.8, 60, 30 * 60)
            amt = max(1, m.amount(r) - coupon)
            if amt < 100:
                amt = m.skus[0]
            s.pay(tb, u, m, amt, ip, lab=lab)
        elif r.random() < 0.05:
            s.like(t + lognorm_us(r, 300, 0.8), u, tg, ip, action="unlike")
    lab.shape = {"likers": n, "coupon_fen": coupon, "conversion": round(convert, 2)}


def ben_flash(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 5, 150, cat=("apparel", "beauty", "snacks", "fresh", "digital", "home", "pets"))
    tg = m.live if (m.live is not None and r.random() < 0.5) else w.new_target(r, m, "video")
    # sale starts on the next local :00 or :30
    lt = (t0 + CST) % (30 * MINUTE)
    sale = t0 + (30 * MINUTE - lt) % (30 * MINUTE)
    if sale >= w.T1 - 5 * MINUTE:
        sale = t0
    skus = [price_point(r, r.choice((990, 1990, 4990, 9900, 19900)), 0.05) for _ in range(r.randint(1, 3))]
    for _ in range(r.randint(100, 400)):            # teaser likes before the sale
        t = sale - r.randrange(20 * MINUTE)
        u = organic_user(w, r)
        s.like(t, u, tg, w.session_net(r, u, t), lab=lab)
    n = r.randint(300, 1500)
    fast = r.uniform(40, 90)
    for _ in range(n):
        dt = r.expovariate(1.0 / fast) if r.random() < 0.7 else r.expovariate(1.0 / 480)
        t = sale + int(dt * SEC)
        u = organic_user(w, r)
        ip = w.session_net(r, u, t)
        amt = skus[r.randrange(len(skus))] * (1 if r.random() < 0.9 else 2)
        st = "SUCCESS" if r.random() < 0.92 else r.choice(("NOTPAY", "CLOSED", "USERPAYING"))
        s.pay(t, u, m, amt, ip, state=st, lab=lab)
        if st == "SUCCESS" and r.random() < 0.16:
            s.like(t + lognorm_us(r, 180, 0.9, 30, 1200), u, tg, ip, lab=lab)
    lab.shape = {"buyers": n, "sale_prices_fen": skus, "fast_decay_s": round(fast)}


def ben_buyer_likes(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 30, 900)
    n = r.randint(80, 300)
    share = r.uniform(0.6, 0.85)
    for _ in range(n):
        t = t0 + r.randrange(dur)
        u = organic_user(w, r)
        ip = w.session_net(r, u, t)
        s.pay(t, u, m, m.amount(r), ip, lab=lab)
        if r.random() < share:
            s.like(t + lognorm_us(r, 240, 0.7, 45, 900), u, m.shop, ip, lab=lab)
    lab.shape = {"buyers": n, "like_share": round(share, 2), "like_delay_s": "45..900 (median 240)"}


def ben_giveaway(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 10, 400, need_live=True)
    tg = m.live
    n = r.randint(400, 2500)
    fresh_share = r.uniform(0.08, 0.15)
    for _ in range(n):
        t = t0 + int(dur * r.random() ** 1.3)
        if r.random() < fresh_share:
            u = w.make_user(r, client=r.choice(("android", "ios", "mini")),
                            created=t - lognorm_us(r, 40 * 60, 1.2, 60, 6 * 3600))
        else:
            u = organic_user(w, r)
        ip = w.session_net(r, u, t)
        for k in range(r.choice((1, 1, 1, 2, 3))):
            s.like(t + k * lognorm_us(r, 4, 0.6), u, tg, ip, lab=lab)
        if r.random() < 0.04:
            s.pay(t + lognorm_us(r, 200, 0.7), u, m, m.amount(r), ip, lab=lab)
    lab.shape = {"participants": n, "fresh_account_share": round(fresh_share, 2),
                 "window_min": round(dur / MINUTE, 1)}


def ben_gifting(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 10, 400, need_live=True)
    tg = m.live
    n_g = r.randint(60, 250)
    gifters = [organic_user(w, r) for _ in range(n_g)]
    n = r.randint(100, 400)
    tiers = ((10, 30), (100, 30), (520, 10), (990, 8), (1314, 6), (200, 8), (3344, 3), (9999, 1))
    for _ in range(n):
        u = gifters[min(n_g - 1, int(n_g * r.random() ** 1.6))]
        t = t0 + r.randrange(dur)
        ip = w.session_net(r, u, t)
        s.pay(t, u, m, wchoice(r, tiers), ip, state="SUCCESS", lab=lab)
        if r.random() < 0.7:
            s.like(t + lognorm_us(r, 10, 0.6, 2, 60), u, tg, ip, lab=lab)
    lab.shape = {"gifters": n_g, "gifts": n, "gift_tiers_fen": [x for x, _ in tiers]}


def ben_kiosk(w, s, r, lab, t0, dur):
    m = w.pick_merchant(r, 40, 1000, cat=("tea", "snacks", "fresh"))
    ip = w.bb_ip(r, "ct")
    kiosk = w.new_device(r, "android")
    lab.watch_ips.add(ip)
    lab.watch_devs.add(kiosk)
    m.scene = True
    m.ipflag = True
    n = r.randint(60, 200)
    share = r.uniform(0.15, 0.35)
    for _ in range(n):
        t = t0 + r.randrange(dur)
        u = organic_user(w, r)
        if u.client not in ("android", "ios"):
            u = w.make_user(r, client="android")
        s.pay(t, u, m, m.amount(r), ip, dev=kiosk, state="SUCCESS", lab=lab)
        if r.random() < share:
            s.like(t + lognorm_us(r, 180, 0.6, 30, 900), u, m.shop, ip, lab=lab)
    lab.shape = {"payments": n, "like_share": round(share, 2), "kiosk_device": kiosk}


BENIGN = {
    "viral_post": (ben_viral, (30, 70)),
    "office_nat": (ben_office, (60, 120)),
    "coupon_campaign": (ben_coupon, (40, 100)),
    "flash_sale": (ben_flash, (25, 40)),
    "honest_buyer_likes": (ben_buyer_likes, (40, 100)),
    "livestream_giveaway": (ben_giveaway, (3, 8)),
    "live_gifting": (ben_gifting, (30, 90)),
    "shop_kiosk": (ben_kiosk, (60, 120)),
}


# --------------------------------------------------------------------------- bad records
def bad_records(w, s, r):
    n = max(3, r.randint(int(round(10 * w.hours)), int(round(22 * w.hours))))
    kinds = ["like_not_json", "like_missing", "like_type", "like_time", "like_action",
             "pay_not_json", "pay_missing", "pay_type", "pay_amount0", "pay_amount_neg",
             "pay_amount_str", "pay_amount_float", "empty", "array"]
    weights = [3, 4, 3, 2, 1, 2, 3, 2, 3, 1, 2, 1, 1, 1]
    ks = Sampler(kinds, weights)
    for _ in range(n):
        k = ks.sample(r)
        t = w.sample_time(r)
        u = organic_user(w, r)
        tg = w.content.sample(r)
        if k.startswith("like") or k in ("empty", "array"):
            prod, key, payload, lid, _, _, lag = s.like_payload(t, u, tg, w.session_net(r, u, t), "like")
            d = json.loads(payload)
            if k == "like_not_json":
                payload, why = payload[: r.randint(5, len(payload) - 5)], "not_json"
            elif k == "like_missing":
                f = r.choice(("like_id", "user_openid", "target_id", "owner_mchid", "ts"))
                del d[f]
                payload, why = json.dumps(d, separators=(",", ":")), "missing:" + f
            elif k == "like_type":
                f = r.choice(("ts", "user_openid", "owner_mchid"))
                d[f] = (t // US) if f == "ts" else (r.randint(10 ** 8, 10 ** 9) if f == "user_openid" else int(tg.m.mchid))
                payload, why = json.dumps(d, separators=(",", ":")), "type:" + f
            elif k == "like_time":
                d["ts"] = _parts(t, CST)[0].replace("T", " ")
                payload, why = json.dumps(d, separators=(",", ":")), "range:ts"
            elif k == "like_action":
                d["action"] = r.choice(("LIKE", "dislike", "share"))
                payload, why = json.dumps(d, separators=(",", ":")), "range:action"
            elif k == "empty":
                payload, why = "", "not_json"
            else:
                payload, why = json.dumps([d]), "not_object"
            s.add(t + lag, TOPIC_LIKE, prod, key, payload, bad=why)
        else:
            m = w.msampler.sample(r)
            txid = "4200%06d%s%010d" % (r.randint(1000, 3000), local_date(t), r.randrange(10 ** 10))
            d = {"mchid": m.mchid, "appid": w.app_appid, "out_trade_no": "%032x" % r.getrandbits(128),
                 "transaction_id": txid, "trade_type": "APP", "trade_state": "SUCCESS",
                 "trade_state_desc": PAY_DESC["SUCCESS"], "bank_type": "OTHERS", "attach": "",
                 "success_time": t_cst(t), "payer": {"openid": u.oid},
                 "amount": {"total": m.amount(r), "payer_total": 0, "currency": "CNY", "payer_currency": "CNY"}}
            d["amount"]["payer_total"] = d["amount"]["total"]
            if k == "pay_not_json":
                p = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
                payload, why = p[: r.randint(5, len(p) - 5)], "not_json"
            elif k == "pay_missing":
                f = r.choice(("transaction_id", "mchid", "success_time", "payer", "amount", "trade_state"))
                del d[f]
                payload, why = json.dumps(d, ensure_ascii=False, separators=(",", ":")), \
                    "missing:" + {"payer": "payer.openid", "amount": "amount.total"}.get(f, f)
            elif k == "pay_type":
                f = r.choice(("mchid", "payer"))
                d[f] = int(m.mchid) if f == "mchid" else u.oid
                payload, why = json.dumps(d, ensure_ascii=False, separators=(",", ":")), "type:" + f
            else:
                a = d["amount"]
                if k == "pay_amount0":
                    a["total"] = 0
                    why = "range:amount.total"
                elif k == "pay_amount_neg":
                    a["total"] = -a["total"]
                    why = "range:amount.total"
                elif k == "pay_amount_str":
                    a["total"] = str(a["total"])
                    why = "type:amount.total"
                else:
                    a["total"] = a["total"] / 100.0 + 0.001
                    why = "type:amount.total"
                payload = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
            s.add(t + lognorm_us(r, 1.2, 0.9), TOPIC_PAY, "gw", None, payload, bad=why)


# --------------------------------------------------------------------------- schedule
def schedule(w, r, n, kinds_all, table, min_kinds):
    k = min(len(kinds_all), r.randint(min_kinds, len(kinds_all)))
    kinds = r.sample(kinds_all, k)
    lst = list(kinds)
    while len(lst) < n:                  # fill round-robin (shuffled each pass): balanced mix
        extra = list(kinds)
        r.shuffle(extra)
        lst.extend(extra[: n - len(lst)])
    r.shuffle(lst)
    out = []
    margin = 3 * MINUTE
    slot = (w.span - 2 * margin) / max(1, n)
    for i, kind in enumerate(lst):
        rng_ = table[kind][1]
        if rng_ is None:      # slow drip: a large part of the run
            dur = int(w.span * r.uniform(0.45, 0.85))
        else:
            dur = int(r.uniform(*rng_) * MINUTE)
        dur = min(dur, int((w.span - 2 * margin) * 0.8))
        st = w.T0 + margin + int(slot * i + r.random() * slot)
        st = min(st, w.T1 - margin - dur)
        st = max(st, w.T0 + margin)
        out.append((kind, st, dur))
    return out


# --------------------------------------------------------------------------- main
def generate(seed, hours, rate, quiet):
    t_start = _time.perf_counter()
    w = World(seed, hours, rate)
    s = Sink(w)
    # organic traffic
    r = w.rng("organic")
    n_sess = int(rate * w.span / SEC / REC_PER_SESSION)
    for _ in range(n_sess):
        t0 = w.sample_time(r)
        u = w.user_sampler.sample(r)
        w.session(r, s, u, t0, w.session_net(r, u, t0))
    n_org = len(s.recs)
    # benign look-alikes
    rb = w.rng("benign")
    nb = max(5, rb.randint(int(round(3 * hours)), int(round(4.5 * hours))))
    blabels = []
    for kind, st, dur in schedule(w, rb, nb, list(BENIGN), BENIGN, 5):
        lab = Label(kind, False, auto_users=kind in ("office_nat",))
        BENIGN[kind][0](w, s, w.rng("benign-%d-%s" % (len(blabels), kind)), lab, st, dur)
        blabels.append(lab)
    # fraud campaigns
    rc = w.rng("campaigns")
    nc = max(3, rc.randint(int(round(4 * hours)), int(round(7.5 * hours))))
    clabels = []
    sched = schedule(w, rc, nc, list(CAMPAIGNS), CAMPAIGNS, 5)
    drips = 0
    for kind, st, dur in sched:
        if kind == "slow_drip":
            drips += 1
            if drips > 2:
                kind = "paid_task_likes"
                dur = int(rc.uniform(12, 45) * MINUTE)
        lab = Label(kind, True)
        CAMPAIGNS[kind][0](w, s, w.rng("camp-%d-%s" % (len(clabels), kind)), lab, st, dur)
        clabels.append(lab)
    bad_records(w, s, w.rng("bad"))
    return w, s, n_org, clabels, blabels, t_start


def finalize(w, s):
    recs = s.recs
    recs.sort(key=lambda x: (x[0], x[1]))
    r = w.rng("kafka")
    nextoff = {tp: r.randint(200_000, 40_000_000) for tp in PART_ORDER}
    sticky = {}
    out = []
    bad = []
    for i in range(len(recs)):
        d_us, seq, topic, prod, key, payload, why = recs[i]
        recs[i] = None                       # free payloads as lines are built
        n = NPART[topic]
        if key is None:
            st = sticky.get((prod, topic))
            if st is None or st[1] <= 0:
                p = r.randrange(n)
                if st is not None and n > 1 and p == st[0]:
                    p = (p + 1 + r.randrange(n - 1)) % n
                st = [p, r.randint(6, 90)]
                sticky[(prod, topic)] = st
            p = st[0]
            st[1] -= 1
        else:
            p = (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % n
        off = nextoff[(topic, p)]
        nextoff[(topic, p)] = off + 1
        ts = d_us // 1000
        rnd = ts // 400                      # one consumer fetch round ~ 400 ms
        okey = (rnd, (PIDX[(topic, p)] + rnd * 4) % len(PART_ORDER), off)
        line = json.dumps({"topic": topic, "partition": p, "offset": off, "tstype": "create",
                           "ts": ts, "key": key, "payload": payload},
                          ensure_ascii=False, separators=(",", ":"))
        out.append((okey, line))
        if why is not None:
            bad.append({"topic": topic, "partition": p, "offset": off, "reason": why})
    out.sort(key=lambda x: x[0])
    bad.sort(key=lambda b: (b["topic"], b["partition"], b["offset"]))
    return [l for _, l in out], bad


def write_lines(path, lines):
    data_iter = (("\n".join(lines[i:i + 20000]) + "\n").encode("utf-8") for i in range(0, len(lines), 20000))
    with open(path, "wb") as f:
        if path.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=6) as g:
                for chunk in data_iter:
                    g.write(chunk)
        else:
            for chunk in data_iter:
                f.write(chunk)


def main(argv=None):
    ap = argparse.ArgumentParser(description="othergen3: labelled likeguard traffic generator")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="recording, .jsonl or .jsonl.gz")
    ap.add_argument("--labels", required=True, help="labels JSON")
    ap.add_argument("--hours", type=float, default=2.0, help="event-time span (default 2)")
    ap.add_argument("--rate", type=float, default=32.0,
                    help="mean organic records per second over the run (default 32)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.hours <= 0.1 or a.rate <= 0:
        ap.error("--hours must be > 0.1 and --rate > 0")
    w, s, n_org, clabels, blabels, t_start = generate(a.seed, a.hours, a.rate, a.quiet)
    lines, bad = finalize(w, s)
    write_lines(a.out, lines)
    clabels.sort(key=lambda l: (l.tmin, l.kind))
    blabels.sort(key=lambda l: (l.tmin, l.kind))
    labels = {
        "campaigns": [l.to_json("c%d" % (i + 1)) for i, l in enumerate(clabels) if l.tmin is not None],
        "benign": [l.to_json("b%d" % (i + 1)) for i, l in enumerate(blabels) if l.tmin is not None],
        "bad_records": bad,
        "meta": {"generator": GEN_NAME, "seed": a.seed, "hours": a.hours, "rate": a.rate,
                 "start": t_z(w.T0), "end": t_z(w.T1), "records": len(lines),
                 "bad_records": len(bad),
                 "note": "bad_records lists the deliberately invalid records (dead-letter expected); "
                         "they are not part of any label"},
    }
    with open(a.labels, "w", encoding="utf-8") as f:
        f.write(json.dumps(labels, ensure_ascii=False, indent=1))
        f.write("\n")
    if not a.quiet:
        el = _time.perf_counter() - t_start
        print("othergen3 seed=%d: %d records (%d organic), %d campaigns, %d benign, %d bad, "
              "%s .. %s, %.1fs" % (a.seed, len(lines), n_org, len(labels["campaigns"]),
                                   len(labels["benign"]), len(bad), t_z(w.T0), t_z(w.T1), el),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
