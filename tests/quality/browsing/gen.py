#!/usr/bin/env python3
"""Independent test-traffic generator for a pay-for-likes fraud detector.

Writes a kcat -J style recording (JSON Lines) with the two input topics
`payments.success` and `likes` interleaved in (approximate) event-time order,
plus a labels file (campaigns + benign look-alikes) per /work/shared/CONTRACT.md.

Standard library only.  Deterministic for a given --seed/--hours/--rate.

    python gen.py --seed 1 --out rec.jsonl --labels labels.json [--hours 2] [--rate 40]
"""
import argparse
import bisect
import gzip
import json
import math
import random
import string
import sys
import zlib
from datetime import datetime, timedelta, timezone

TZ8 = timezone(timedelta(hours=8))
UTC = timezone.utc
B64 = string.ascii_letters + string.digits + "-_"
B36 = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"

# first octets of consumer broadband / mobile ranges (looks Chinese-ISP-ish)
HOME_OCT = [36, 39, 42, 49, 58, 59, 60, 61, 101, 106, 110, 113, 114, 115, 116,
            118, 119, 121, 122, 123, 124, 125, 171, 175, 180, 182, 202, 210,
            211, 218, 219, 220, 221, 222]
MOBILE_OCT = [39, 111, 112, 117, 120, 183, 223]
DC_PREFIX = [(47, 92), (47, 96), (47, 100), (47, 115), (119, 29), (129, 204),
             (121, 36), (101, 132), (139, 224), (8, 134), (43, 139)]


class User:
    __slots__ = ("oid", "devs", "home_ip", "created", "send_created", "w",
                 "nat", "liked", "idx")

    def __init__(self, oid, devs, home_ip, created, send_created, w=0.0):
        self.oid = oid
        self.devs = devs
        self.home_ip = home_ip
        self.created = created
        self.send_created = send_created
        self.w = w
        self.nat = None
        self.liked = None
        self.idx = -1


class Merchant:
    __slots__ = ("mchid", "w", "pw", "targets", "tcum", "prices", "appids",
                 "otn_style", "idx")


class Label:
    def __init__(self, kind, group, keep=("merchants", "targets", "users", "ips", "devices")):
        self.kind = kind
        self.group = group  # "campaigns" / "benign"
        self.keep = set(keep)
        self.sets = {k: {} for k in ("merchants", "targets", "users", "ips", "devices")}
        self.tmin = None
        self.tmax = None
        self.n_likes = 0
        self.n_pays = 0
        self.params = {}

    def add(self, t, **ents):
        if self.tmin is None or t < self.tmin:
            self.tmin = t
        if self.tmax is None or t > self.tmax:
            self.tmax = t
        for k, v in ents.items():
            if v is not None and k in self.keep:
                self.sets[k][v] = True


class Gen:
    def __init__(self, seed, hours, rate):
        self.seed = seed
        self.r = random.Random(seed)
        self.dur = hours * 3600.0
        self.rate = rate
        r = self.r
        day = datetime(2026, 11, 2, tzinfo=TZ8) + timedelta(days=r.randrange(0, 40))
        start = day.replace(hour=r.choice([9, 10, 11, 13, 14, 19, 20]),
                            minute=r.randrange(0, 60))
        self.T0 = start.timestamp()
        self.out = []          # (t_deliver, seq, topic, pkey, payload_str)
        self.seq = 0
        self.used_ips = set()
        self.used_devs = set()
        self.used_oids = set()
        self.used_tx = set()
        self.like_ctr = 0
        self.labels = []
        self.oid_prefix = "o" + "".join(r.choice(B64[:62]) for _ in range(4))
        self.profile_setup()

    # ------------------------------------------------------------------ ids
    def new_oid(self):
        r = self.r
        while True:
            s = self.oid_prefix + "".join(r.choice(B64) for _ in range(23))
            if s not in self.used_oids:
                self.used_oids.add(s)
                return s

    def new_dev(self):
        r = self.r
        while True:
            u = r.random()
            if u < 0.5:
                d = "".join(r.choice(HEX) for _ in range(16))
            elif u < 0.92:
                h = "".join(r.choice("0123456789ABCDEF") for _ in range(32))
                d = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            else:
                d = "dv-" + "".join(r.choice(B36) for _ in range(20))
            if d not in self.used_devs:
                self.used_devs.add(d)
                return d

    def _uniq_ip(self, f):
        while True:
            ip = f()
            if ip not in self.used_ips:
                self.used_ips.add(ip)
                return ip

    def new_home_ip(self):
        r = self.r
        return self._uniq_ip(lambda: f"{r.choice(HOME_OCT)}.{r.randrange(0, 256)}."
                                     f"{r.randrange(0, 256)}.{r.randrange(1, 255)}")

    def new_mobile_ip(self):
        r = self.r
        return self._uniq_ip(lambda: f"{r.choice(MOBILE_OCT)}.{r.randrange(0, 256)}."
                                     f"{r.randrange(0, 256)}.{r.randrange(1, 255)}")

    def new_dc_ip(self):
        r = self.r
        def f():
            a, b = r.choice(DC_PREFIX)
            return f"{a}.{b}.{r.randrange(0, 256)}.{r.randrange(1, 255)}"
        return self._uniq_ip(f)

    def new_ipv6(self):
        r = self.r
        def f():
            p = r.choice(["240e", "2409", "2408"])
            groups = [p] + [f"{r.randrange(0, 65536):x}" for _ in range(7)]
            if r.random() < 0.35:
                return ":".join(groups[:4]) + "::" + groups[7]
            return ":".join(groups)
        return self._uniq_ip(f)

    def new_like_id(self, t):
        self.like_ctr += 1
        ms = int(t * 1000) - 1288834974657
        return str((ms << 22) | (self.r.randrange(0, 1024) << 12) | (self.like_ctr & 0xFFF))

    def new_tx(self, t):
        r = self.r
        ds = datetime.fromtimestamp(t, TZ8).strftime("%Y%m%d")
        while True:
            s = f"42000{r.randrange(10000, 99999)}{ds}{r.randrange(0, 10**10):010d}"
            if s not in self.used_tx:
                self.used_tx.add(s)
                return s

    # ------------------------------------------------------------------ time
    def fmt(self, t, kind="like"):
        """RFC 3339; mostly +08:00 seconds, some Z / fractional."""
        u = self.r.random()
        if kind == "pay":
            cut = (0.93, 0.96, 0.99)
        elif kind == "created":
            cut = (0.9, 0.9, 0.97)
        else:
            cut = (0.75, 0.85, 0.97)
        if u < cut[0]:
            return datetime.fromtimestamp(t, TZ8).strftime("%Y-%m-%dT%H:%M:%S+08:00")
        if u < cut[1]:
            d = datetime.fromtimestamp(t, TZ8)
            return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{d.microsecond // 1000:03d}+08:00"
        if u < cut[2]:
            d = datetime.fromtimestamp(t, UTC)
            if self.r.random() < 0.1:
                return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{d.microsecond // 1000:03d}Z"
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def lab_time(self, t, up=False):
        t = math.ceil(t) if up else math.floor(t)
        return datetime.fromtimestamp(t, TZ8).strftime("%Y-%m-%dT%H:%M:%S+08:00")

    # ------------------------------------------------------------------ rate profile
    def profile_setup(self):
        r = self.r
        self.p_amp = r.uniform(0.15, 0.4)
        self.p_period = r.uniform(50, 150) * 60
        self.p_phase = r.uniform(0, 2 * math.pi)
        self.p_ramp = r.uniform(-0.3, 0.3)
        n = 2000
        vals = [self._f(self.dur * (i + 0.5) / n) for i in range(n)]
        self.p_norm = sum(vals) / n
        self.p_max = max(vals) / self.p_norm * 1.02

    def _f(self, t):
        return (1 + self.p_ramp * (2 * t / self.dur - 1)) * \
               (1 + self.p_amp * math.sin(2 * math.pi * t / self.p_period + self.p_phase))

    def prof(self, t):
        return self._f(t) / self.p_norm

    def poisson_times(self, mean_rate):
        r = self.r
        lam = mean_rate * self.p_max
        t = 0.0
        out = []
        while True:
            t += r.expovariate(lam)
            if t >= self.dur:
                return out
            if r.random() * self.p_max < self.prof(t):
                out.append(t)

    # ------------------------------------------------------------------ emit
    def _push(self, t, topic, pkey, payload, lag=None):
        r = self.r
        if lag is None:
            lag = r.expovariate(1 / 0.6)
            if r.random() < 0.01:
                lag += r.uniform(1.5, 5.0)
        s = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        self.seq += 1
        self.out.append((t + lag, self.seq, topic, pkey, s))
        return s, lag

    def like(self, t, u, target, owner, ip="home", dev="own", action="like",
             tag=None, p_ip=0.96, p_dev=0.95, p_action=0.8, p_created=None):
        """Emit one like/unlike. ip/dev: explicit string, None, or 'home'/'own'."""
        r = self.r
        if t < 0 or t >= self.dur:
            return None
        if ip == "home":
            ip = u.home_ip
        if dev == "own":
            dev = u.devs[0] if len(u.devs) == 1 or r.random() < 0.8 else r.choice(u.devs)
        if ip is not None and r.random() >= p_ip:
            ip = None
        if dev is not None and r.random() >= p_dev:
            dev = None
        ts = self.T0 + t
        p = {"like_id": self.new_like_id(ts), "user_openid": u.oid,
             "target_id": target, "owner_mchid": owner}
        if action != "like" or r.random() < p_action:
            p["action"] = action
        p["ts"] = self.fmt(ts)
        if ip is not None:
            p["client_ip"] = ip
        if dev is not None:
            p["device_id"] = dev
        send_c = u.send_created if p_created is None else (r.random() < p_created)
        if u.created is not None and send_c and r.random() < 0.98:
            p["user_created"] = self.fmt(u.created, "created")
        _, lag = self._push(t, "likes", u.oid, p)
        if r.random() < 0.0012:   # producer retry: duplicate delivery
            self._push(t, "likes", u.oid, p, lag=lag + r.uniform(0.2, 4.0))
        if tag is not None:
            tag.add(t, merchants=owner, targets=target, users=u.oid, ips=ip, devices=dev)
            tag.n_likes += 1
        if u.liked is not None:
            if action == "like":
                u.liked.add(target)
            else:
                u.liked.discard(target)
        return p

    def pay(self, t, u, m, amount, ip="home", dev="own", tag=None, state="SUCCESS",
            p_ip=0.85, p_dev=0.6):
        r = self.r
        if t < 0 or t >= self.dur:
            return None
        if ip == "home":
            ip = u.home_ip
        if dev == "own":
            dev = u.devs[0] if len(u.devs) == 1 or r.random() < 0.8 else r.choice(u.devs)
        if ip is not None and r.random() >= p_ip:
            ip = None
        if dev is not None and r.random() >= p_dev:
            dev = None
        ts = self.T0 + t
        tx = self.new_tx(ts)
        p = {}
        if m.otn_style == 0:
            p["out_trade_no"] = datetime.fromtimestamp(ts, TZ8).strftime("%Y%m%d%H%M%S") + \
                f"{r.randrange(0, 10**6):06d}"
        elif m.otn_style == 1:
            p["out_trade_no"] = "".join(r.choice(HEX) for _ in range(32))
        elif m.otn_style == 2:
            p["out_trade_no"] = f"ORD{r.randrange(10**11, 10**12)}"
        p["transaction_id"] = tx
        p["mchid"] = m.mchid
        if r.random() < 0.97:
            p["appid"] = r.choice(m.appids)
        p["trade_state"] = state
        if r.random() < 0.9:
            p["trade_type"] = r.choice(["JSAPI", "JSAPI", "JSAPI", "APP", "NATIVE", "H5"])
            p["trade_state_desc"] = "支付成功" if state == "SUCCESS" else "未成功"
        if r.random() < 0.8:
            p["bank_type"] = r.choice(["OTHERS", "CMB_CREDIT", "ICBC_DEBIT", "CCB_DEBIT",
                                       "ABC_DEBIT", "BOC_CREDIT"])
        p["success_time"] = self.fmt(ts, "pay")
        p["payer"] = {"openid": u.oid}
        amt = {"total": int(amount)}
        if r.random() < 0.95:
            amt["currency"] = "CNY"
        if r.random() < 0.7:
            amt["payer_total"] = int(amount)
            amt["payer_currency"] = "CNY"
        p["amount"] = amt
        if ip is not None:
            p["payer_client_ip"] = ip
        if dev is not None:
            p["scene_info"] = {"device_id": dev}
        if r.random() < 0.2:
            p["attach"] = ""
        _, lag = self._push(t, "payments.success", tx, p, lag=r.uniform(0.3, 3.0))
        if r.random() < 0.004:    # notify retry: duplicate delivery
            self._push(t, "payments.success", tx, p, lag=lag + r.uniform(5, 15))
        if tag is not None and state == "SUCCESS":
            tag.add(t, merchants=m.mchid, users=u.oid, ips=ip, devices=dev)
            tag.n_pays += 1
        return p

    # ------------------------------------------------------------------ world
    def build_world(self):
        r = self.r
        # merchants
        nm = r.randint(250, 400)
        self.merchants = []
        tid = r.randrange(1000, 9000)
        styles = ["video:{}", "note_{}", "post:{}", "live/{}", "item-{}", "v{}", "post_{}"]
        self.targets = []   # (target_id, merchant)
        seen_mch = set()
        for i in range(nm):
            m = Merchant()
            while True:
                mc = str(r.randrange(1230000000, 1699999999))
                if mc not in seen_mch:
                    seen_mch.add(mc)
                    break
            m.mchid = mc
            m.idx = i
            m.w = min(r.paretovariate(1.1), 400)
            m.pw = m.w ** 0.8 * r.lognormvariate(0, 0.8)
            nt = 1 + int(min(22, r.paretovariate(1.4) * 2))
            st = r.sample(styles, r.randint(1, 2))
            m.targets = []
            tw = []
            for j in range(nt):
                tid += r.randint(1, 40)
                m.targets.append(r.choice(st).format(tid))
                tw.append(r.paretovariate(1.3))
            if r.random() < 0.15:
                m.targets.append(f"store:{mc}")
                tw.append(1.0)
            c, acc = [], 0.0
            for w in tw:
                acc += w
                c.append(acc)
            m.tcum = c
            lvl = min(max(r.lognormvariate(math.log(3500), 0.8), 300), 40000)
            m.prices = [self.nice_price(lvl * r.lognormvariate(0, 0.5))
                        for _ in range(r.randint(3, 8))]
            m.appids = ["wx" + "".join(r.choice(HEX) for _ in range(16))
                        for _ in range(r.randint(1, 2))]
            m.otn_style = r.choice([0, 0, 1, 2, 3])
            for j, t in enumerate(m.targets):
                self.targets.append((t, m, (c[j] - (c[j - 1] if j else 0)) / c[-1] * m.w))
            self.merchants.append(m)
        self.tg_cum = []
        acc = 0.0
        for _, _, w in self.targets:
            acc += w
            self.tg_cum.append(acc)
        self.mw_cum = self._cum([m.w for m in self.merchants])
        self.mp_cum = self._cum([m.pw for m in self.merchants])
        # rank merchants by like popularity
        self.m_rank = sorted(self.merchants, key=lambda m: -m.w)

        # users
        nu = r.randint(8000, 15000)
        self.users = []
        now = self.T0
        i = 0
        while i < nu:
            # household: 80% single, else 2-4 sharing a home IP
            hh = 1 if r.random() < 0.8 else r.randint(2, 4)
            v6 = r.random() < 0.1
            hip = self.new_ipv6() if v6 else self.new_home_ip()
            for _ in range(hh):
                nd = 1 if r.random() < 0.88 else (2 if r.random() < 0.85 else 3)
                devs = [self.new_dev() for _ in range(nd)]
                x = r.random()
                if x < 0.70:
                    age = r.uniform(365, 8 * 365) * 86400
                elif x < 0.95:
                    age = r.uniform(30, 365) * 86400
                elif x < 0.99:
                    age = r.uniform(1, 30) * 86400
                else:
                    age = r.uniform(600, 86400)
                u = User(self.new_oid(), devs, hip, now - age,   # created: absolute epoch
                         r.random() < 0.85, min(r.lognormvariate(0, 0.8), 12))
                u.liked = set()
                u.idx = len(self.users)
                self.users.append(u)
                i += 1
        self.home_count = {}
        for u in self.users:
            self.home_count[u.home_ip] = self.home_count.get(u.home_ip, 0) + 1
        self.mobile_pool = [self.new_mobile_ip() for _ in range(max(500, nu // 4))]
        self.assigned = set()

    @staticmethod
    def _cum(ws):
        out, acc = [], 0.0
        for w in ws:
            acc += w
            out.append(acc)
        return out

    def nice_price(self, p):
        r = self.r
        p = max(100, p)
        if p < 1000:
            return int(round(p / 100.0)) * 100 - r.choice([0, 10, 10, 20])
        k = r.random()
        if k < 0.55:
            return int(math.ceil(p / 1000.0)) * 1000 - 10   # 2990, 9990
        if k < 0.8:
            return int(math.ceil(p / 1000.0)) * 1000 - 100  # 2900, 9900
        if k < 0.9:
            return int(math.ceil(p / 100.0)) * 100 - 12     # 3588 style
        return int(round(p / 100.0)) * 100                  # 3500

    def organic_amount(self, m):
        r = self.r
        x = r.random()
        if x < 0.002:
            return r.randint(1, 300)                 # rare tiny payments / tests / tips
        if x < 0.15:
            return max(1, int(r.lognormvariate(math.log(max(m.prices) * 0.8), 0.7)))
        q = 1 if r.random() < 0.85 else (2 if r.random() < 0.75 else r.randint(3, 5))
        a = r.choice(m.prices) * q
        if r.random() < 0.15:
            c = r.choice([300, 500, 1000, 2000])
            if a > c + 100:
                a -= c
        return a

    # pickers
    def pick_target(self):
        i = bisect.bisect_left(self.tg_cum, self.r.random() * self.tg_cum[-1])
        t, m, _ = self.targets[min(i, len(self.targets) - 1)]
        return t, m

    def pick_target_of(self, m):
        i = bisect.bisect_left(m.tcum, self.r.random() * m.tcum[-1])
        return m.targets[min(i, len(m.targets) - 1)]

    def pick_pay_merchant(self):
        i = bisect.bisect_left(self.mp_cum, self.r.random() * self.mp_cum[-1])
        return self.merchants[min(i, len(self.merchants) - 1)]

    def pick_user(self, cum):
        i = bisect.bisect_left(cum, self.r.random() * cum[-1])
        return self.users[min(i, len(self.users) - 1)]

    def free_users(self, n, singleton_home=False):
        r = self.r
        out = []
        tries = 0
        while len(out) < n and tries < n * 50:
            tries += 1
            u = r.choice(self.users)
            if u.idx in self.assigned:
                continue
            if singleton_home and self.home_count.get(u.home_ip, 0) != 1:
                continue
            self.assigned.add(u.idx)
            out.append(u)
        return out

    def session_ip(self, u, t):
        r = self.r
        if u.nat is not None and u.nat[1] <= t <= u.nat[2]:
            return u.nat[0] if r.random() < 0.85 else r.choice(self.mobile_pool)
        x = r.random()
        if x < 0.70:
            return u.home_ip
        if x < 0.97:
            return r.choice(self.mobile_pool)
        return None

    def nat_fix(self, u, ip, t):
        """office IP only inside the working stretch; returns (ip, label tag)"""
        if u.nat is None or ip != u.nat[0]:
            return ip, None
        if u.nat[1] <= t <= u.nat[2]:
            return ip, self.nat_label
        return u.home_ip, None

    def free_merchant(self, lo=0.1, hi=0.95):
        """A merchant not used by other labelled events, rank in [lo, hi] quantile."""
        r = self.r
        n = len(self.m_rank)
        while True:
            m = self.m_rank[r.randrange(int(lo * n), int(hi * n))]
            if m.idx not in self.used_mch:
                self.used_mch.add(m.idx)
                return m

    # ------------------------------------------------------------------ organic
    def organic(self):
        r = self.r
        R = self.rate
        ucum = self._cum([u.w for u in self.users])
        pcum = self._cum([u.w ** 0.5 for u in self.users])
        mean_len = 4.15   # calibrated: E[len] minus skipped repeat likes
        for t0 in self.poisson_times(0.86 * R / mean_len):
            u = self.pick_user(ucum)
            L = max(1, int(r.lognormvariate(1.2, 0.9)))
            dev = u.devs[0] if len(u.devs) == 1 or r.random() < 0.85 else r.choice(u.devs)
            ip = self.session_ip(u, t0)
            t = t0
            lastm = None
            for k in range(L):
                if k:
                    t += min(max(r.lognormvariate(math.log(12), 1.0), 1.0), 600)
                if t >= self.dur:
                    break
                ip, tag = self.nat_fix(u, ip, t)
                if r.random() < 0.015 and u.liked:
                    tgt = r.choice(sorted(u.liked))
                    m = self.tmap[tgt]
                    self.like(t, u, tgt, m.mchid, ip=ip, dev=dev, action="unlike", tag=tag)
                    continue
                if lastm is not None and r.random() < 0.35:
                    m = lastm
                    tgt = self.pick_target_of(m)
                else:
                    tgt, m = self.pick_target()
                if tgt in u.liked:
                    tgt, m = self.pick_target()
                    if tgt in u.liked:
                        continue
                lastm = m
                self.like(t, u, tgt, m.mchid, ip=ip, dev=dev, tag=tag)
                if r.random() < 0.02:
                    tu = t + min(max(r.lognormvariate(math.log(90), 1.3), 3), 3600)
                    ipu, tagu = self.nat_fix(u, ip, tu)
                    self.like(tu, u, tgt, m.mchid, ip=ipu, dev=dev, action="unlike", tag=tagu)
        # payments
        states = ["REFUND", "CLOSED", "NOTPAY", "PAYERROR", "USERPAYING", "REVOKED"]
        for t in self.poisson_times(0.085 * R):
            u = self.pick_user(pcum)
            m = self.pick_pay_merchant()
            ip, tag = self.nat_fix(u, self.session_ip(u, t), t)
            st = "SUCCESS" if r.random() < 0.988 else r.choice(states)
            self.pay(t, u, m, self.organic_amount(m), ip=ip, tag=tag, state=st)
            if st == "SUCCESS" and r.random() < 0.18:
                d = min(max(r.lognormvariate(math.log(600), 0.9), 20), 5400)
                tg = self.pick_target_of(m)
                if tg not in u.liked:
                    ip2 = ip if r.random() < 0.8 else self.session_ip(u, t + d)
                    ip2, tag2 = self.nat_fix(u, ip2, t + d)
                    self.like(t + d, u, tg, m.mchid, ip=ip2, tag=tag2)

    # ------------------------------------------------------------------ helpers
    def new_account(self, created, p_created=0.9, dev=None, home_ip=None):
        u = User(self.new_oid(), [dev or self.new_dev()], home_ip or self.new_home_ip(),
                 created, self.r.random() < p_created)
        u.liked = set()
        return u

    def span_start(self, span, margin=120):
        hi = max(margin, self.dur - span - margin)
        return self.r.uniform(margin, hi)

    def beta_times(self, n, t0, D, a, b):
        return sorted(t0 + D * self.r.betavariate(a, b) for _ in range(n))

    def token_amount(self, lab):
        r = self.r
        x = r.random()
        if x < 0.7:
            amt = r.choice([1, 1, 1, 2, 3, 5, 6, 8, 10])
            lab.params["amount"] = amt
            return lambda: amt
        if x < 0.85:
            amt = r.choice([18, 20, 50, 66, 88, 99])
            lab.params["amount"] = amt
            return lambda: amt
        lab.params["amount"] = "uniform 1-10 per account"
        return lambda: r.randint(1, 10)

    # ------------------------------------------------------------------ campaigns
    def c_paid_task(self):
        r = self.r
        lab = Label("paid_task_likes", "campaigns")
        m = self.free_merchant(0.15, 0.98)
        n = r.randint(20, 200)
        D = r.uniform(10, 40) * 60
        t0 = self.span_start(D + 150)
        tg = r.sample(m.targets, min(len(m.targets), r.randint(1, 3)))
        amount = self.token_amount(lab)
        med = r.uniform(8, 50)
        crowd_frac = r.uniform(0.0, 0.5)
        n_crowd = int(n * crowd_frac)
        n_st = n - n_crowd
        ndev = max(1, round(n_st / r.uniform(4, 25)))
        ip_mode = r.choice(["few", "few", "rotating"])
        nip = r.randint(1, 5)
        devs = [self.new_dev() for _ in range(ndev)]
        ips = [self.new_home_ip() if r.random() < 0.7 else self.new_mobile_ip()
               for _ in range(nip)]
        proxy = [self.new_mobile_ip() for _ in range(max(5, n_st // 2))]
        p_dev_like = r.uniform(0.75, 1.0)
        p_dev_pay = r.uniform(0.3, 1.0)
        p_cr = r.uniform(0.4, 1.0)
        workers = []
        old_frac = r.uniform(0.4, 0.8)
        for i in range(n_st):
            age = r.uniform(20, 1500) * 86400 if r.random() < old_frac \
                else r.uniform(1, 20) * 86400
            u = self.new_account(self.T0 + t0 - age, p_cr)
            workers.append((u, None, None))
        for u in self.free_users(n_crowd, singleton_home=True):
            workers.append((u, "own", "home"))
        r.shuffle(workers)
        times = self.beta_times(len(workers), t0, D, r.uniform(1.0, 2.0), r.uniform(1.2, 3.0))
        si = 0
        for (u, dev, ip0), t in zip(workers, times):
            if dev is None:
                # studio phones take turns: consecutive studio accounts rotate over devices
                dev = devs[si % ndev]
                si += 1
            ip = ip0 if ip0 else (r.choice(ips) if ip_mode == "few" else r.choice(proxy))
            x = r.random()
            self.pay(t, u, m, amount(), ip=ip, dev=dev, tag=lab, p_dev=p_dev_pay, p_ip=0.9)
            if x < 0.04:
                continue                      # paid, never liked
            d = min(max(r.lognormvariate(math.log(med), 0.6), 2), 150)
            target = r.choice(tg)
            self.like(t + d, u, target, m.mchid, ip=ip, dev=dev, tag=lab, p_dev=p_dev_like)
            if x > 0.97 and len(tg) > 1:
                t2 = [z for z in tg if z != target][0]
                self.like(t + d + r.uniform(3, 30), u, t2, m.mchid, ip=ip, dev=dev, tag=lab,
                          p_dev=p_dev_like)
        lab.params.update(accounts=n, crowd_accounts=n_crowd, shared_devices=ndev,
                          ip_mode=ip_mode, n_ips=nip if ip_mode == "few" else len(proxy),
                          duration_min=round(D / 60, 1), n_targets=len(tg),
                          pay_to_like_median_s=round(med, 1))
        return lab

    def c_farm(self, kind):
        r = self.r
        lab = Label(kind, "campaigns")
        m = self.free_merchant(0.1, 0.98)
        n = r.randint(50, 300)
        D = r.uniform(15, 60) * 60 if kind == "device_farm" else r.uniform(10, 45) * 60
        t0 = self.span_start(D + 120)
        tg = r.sample(m.targets, min(len(m.targets), r.randint(1, 5)))
        p_cr = r.uniform(0.5, 1.0)
        paying = r.random() < 0.35
        famt = r.choice([1, 1, 2, 5, 10, 20, 50, 100])
        batch = r.random() < 0.6
        bc = r.uniform(14, 84) * 86400
        accts = []
        for _ in range(n):
            if kind == "ip_farm":
                age = r.uniform(1, 30) * 86400
            elif batch:
                age = bc + r.gauss(0, 2 * 86400)
            else:
                age = r.uniform(180, 1100) * 86400
            accts.append(self.new_account(self.T0 + t0 - max(age, 3600), p_cr))
        if kind == "device_farm":
            ndev = r.randint(2, 8)
            devs = [self.new_dev() for _ in range(ndev)]
            ip_mode = r.choice(["proxy", "proxy", "home"])
            if ip_mode == "proxy":
                pool = [self.new_mobile_ip() for _ in range(r.randint(max(3, n // 5), n))]
            else:
                pool = [self.new_home_ip() for _ in range(r.randint(1, 3))]
            queues = [accts[i::ndev] for i in range(ndev)]
            for di, q in enumerate(queues):
                if not q:
                    continue
                k_avg = (1 + len(tg)) / 2
                per = D / len(q)
                gap_mean = max(3.0, per - k_avg * 7)
                t = t0 + r.uniform(0, min(120, per))
                for u in q:
                    ip = r.choice(pool)
                    k = r.randint(1, len(tg))
                    if paying:
                        self.pay(t, u, m, famt, ip=ip, dev=devs[di], tag=lab, p_dev=0.7)
                        t += r.uniform(3, 30)
                    for target in r.sample(tg, k):
                        self.like(t, u, target, m.mchid, ip=ip, dev=devs[di], tag=lab,
                                  p_dev=0.97)
                        t += r.uniform(2, 12)
                    t += min(max(r.lognormvariate(math.log(gap_mean), 0.5), 3), 6 * gap_mean)
            lab.params.update(devices=ndev, ip_mode=ip_mode, n_ips=len(pool))
        else:
            nip = r.randint(1, 6)
            dc = r.random() < 0.7
            pool = [self.new_dc_ip() if dc else self.new_home_ip() for _ in range(nip)]
            p_dev = r.uniform(0.3, 1.0)
            times = self.beta_times(n, t0, D, 1.0, r.uniform(1.0, 2.0))
            for u, t in zip(accts, times):
                ip = r.choice(pool)
                if paying:
                    self.pay(t, u, m, famt, ip=ip, tag=lab, p_dev=p_dev * 0.6)
                    t += r.uniform(2, 20)
                for target in r.sample(tg, r.randint(1, len(tg))):
                    self.like(t, u, target, m.mchid, ip=ip, tag=lab, p_dev=p_dev)
                    t += r.uniform(1, 8)
            lab.params.update(n_ips=nip, datacenter_ips=dc, p_device_present=round(p_dev, 2))
        lab.params.update(accounts=n, duration_min=round(D / 60, 1), n_targets=len(tg),
                          token_payments=famt if paying else None, batch_created=batch)
        return lab

    def c_fresh(self):
        r = self.r
        lab = Label("fresh_account_burst", "campaigns")
        m = self.free_merchant(0.05, 0.98)
        target = r.choice(m.targets)
        n = r.randint(30, 200)
        W = r.uniform(2, 8) * 60
        t0 = self.span_start(W + 60)
        mode = r.choice(["minutes", "days", "mixed"])
        p_cr = r.uniform(0.85, 1.0)
        pool = [self.new_mobile_ip() for _ in range(r.randint(max(3, n // 4), n))]
        p_dev = r.uniform(0.7, 1.0)
        paying = r.random() < 0.25
        famt = r.choice([1, 1, 2, 5, 10])
        times = self.beta_times(n, t0, W, r.uniform(1.0, 1.5), r.uniform(1.5, 3.0))
        for t in times:
            mm = mode if mode != "mixed" else r.choice(["minutes", "days"])
            age = r.uniform(180, 6 * 3600) if mm == "minutes" else r.uniform(1, 5) * 86400
            ip = self.new_ipv6() if r.random() < 0.2 else r.choice(pool)
            u = self.new_account(self.T0 + t - age, p_cr, home_ip=ip)
            if paying:
                self.pay(t - r.uniform(5, 60), u, m, famt, ip=ip, tag=lab)
            self.like(t, u, target, m.mchid, ip=ip, tag=lab, p_dev=p_dev, p_created=p_cr)
        lab.params.update(accounts=n, window_min=round(W / 60, 1), created_mode=mode,
                          n_ips=len(pool), token_payments=famt if paying else None)
        return lab

    def c_slow_drip(self):
        r = self.r
        lab = Label("slow_drip", "campaigns")
        m = self.free_merchant(0.2, 0.99)
        D = min(r.uniform(2, 6) * 3600, self.dur * r.uniform(0.7, 0.92))
        t0 = r.uniform(60, max(61, self.dur - D - 60))
        per10 = r.uniform(2, 6)
        n = max(20, min(200, int(round(D / 600 * per10))))
        tg = r.sample(m.targets, min(len(m.targets), r.randint(1, 2)))
        amount = self.token_amount(lab)
        crowd = r.uniform(0.3, 1.0)
        few_dev = r.random() < 0.3
        devs = [self.new_dev() for _ in range(r.randint(2, 5))]
        med = r.uniform(15, 70)
        shape = r.uniform(1.5, 4)  # gamma shape: more regular than Poisson
        gaps = [r.gammavariate(shape, 1.0) for _ in range(n)]
        sc = (D - 200) / sum(gaps)
        n_crowd = int(n * crowd)
        accts = [(u, "own", "home") for u in self.free_users(n_crowd, singleton_home=True)]
        while len(accts) < n:
            u = self.new_account(self.T0 + t0 - r.uniform(60, 2000) * 86400, 0.85,
                                 home_ip=self.new_mobile_ip())
            accts.append((u, r.choice(devs) if few_dev else "own", "home"))
        r.shuffle(accts)
        t = t0
        for (u, dev, ip), g in zip(accts, gaps):
            self.pay(t, u, m, amount(), ip=ip, dev=dev, tag=lab)
            d = min(max(r.lognormvariate(math.log(med), 0.7), 5), 180)
            self.like(t + d, u, r.choice(tg), m.mchid, ip=ip, dev=dev, tag=lab)
            t += g * sc
        lab.params.update(accounts=n, duration_min=round(D / 60, 1),
                          per_10min=round(per10, 1), crowd_accounts=n_crowd,
                          shared_devices=len(devs) if few_dev else None,
                          pay_to_like_median_s=round(med, 1), n_targets=len(tg))
        return lab

    def c_ring(self):
        r = self.r
        lab = Label("camouflaged_ring", "campaigns")
        nmch = r.randint(1, 3)
        ms = [self.free_merchant(0.1, 0.98) for _ in range(nmch)]
        n = r.randint(20, 60)
        span = min(r.uniform(50, 110) * 60, self.dur - 900)
        t0 = self.span_start(span + 600)
        members = []
        for _ in range(n):
            ip = self.new_ipv6() if r.random() < 0.1 else self.new_home_ip()
            u = self.new_account(self.T0 - r.uniform(90, 1200) * 86400, 0.85, home_ip=ip)
            members.append(u)
        # blend: organic-looking sessions on popular content over the whole run
        for u in members:
            rate_h = r.uniform(3, 12)
            t = r.expovariate(rate_h / 3600 / 3)
            while t < self.dur:
                ip = u.home_ip if r.random() < 0.75 else r.choice(self.mobile_pool)
                tt = t
                for _ in range(max(1, int(r.lognormvariate(0.9, 0.6)))):
                    tgt, mm = self.pick_target()
                    if mm in ms or tgt in u.liked:
                        continue
                    self.like(tt, u, tgt, mm.mchid, ip=ip)
                    tt += min(max(r.lognormvariate(math.log(15), 0.9), 1), 300)
                if r.random() < 0.05:
                    pm = self.pick_pay_merchant()
                    self.pay(tt + r.uniform(10, 200), u, pm, self.organic_amount(pm), ip=ip)
                t = tt + r.expovariate(rate_h / 3600 / 3)
        # rounds
        series = []
        for mm in ms:
            series += [(x, mm) for x in mm.targets]
        r.shuffle(series)
        nround = r.randint(3, 8)
        gap = span / nround
        med = r.uniform(50, 180)
        part = r.uniform(0.7, 1.0)
        paying = r.random() < 0.3
        t = t0
        for k in range(nround):
            tgt, mm = series[k % len(series)]
            for u in members:
                if r.random() > part:
                    continue
                d = min(max(r.lognormvariate(math.log(med), 0.7), 5), 480)
                if paying:
                    self.pay(t + d - r.uniform(20, 120), u, mm, r.randint(1, 20), tag=lab)
                if tgt in u.liked:
                    continue
                self.like(t + d, u, tgt, mm.mchid, tag=lab)
            t += gap * r.uniform(0.6, 1.3)
        lab.params.update(accounts=n, merchants=nmch, rounds=nround,
                          round_gap_min=round(gap / 60, 1), participation=round(part, 2),
                          like_delay_median_s=round(med), token_payments=paying)
        return lab

    # ------------------------------------------------------------------ benign
    def b_viral(self):
        r = self.r
        lab = Label("viral_post", "benign")
        D = r.uniform(20, 40) * 60
        factor = r.uniform(10, 30)
        N = r.randint(250, 1500)
        # normal like rate of a target (likes per second)
        tot = self.tg_cum[-1]
        per_s = 0.86 * self.rate
        want = N / (factor - 1) / D        # baseline likes/s wanted
        best = None
        for tgt, m, w in self.targets:
            if m.idx in self.used_mch:
                continue
            b = per_s * w / tot
            s = abs(math.log(max(b, 1e-9) / want))
            if best is None or s < best[0]:
                best = (s, tgt, m, b)
        _, tgt, m, base = best
        self.used_mch.add(m.idx)
        N = int(round(max(base * D * (factor - 1), 150)))
        t0 = self.span_start(D + 60)
        ucum = self._cum([u.w for u in self.users])
        times = self.beta_times(N, t0, D, r.uniform(1.3, 2.0), r.uniform(2.5, 4.0))
        for t in times:
            if r.random() < 0.05:
                u = self.new_account(self.T0 + t - r.uniform(300, 4 * 86400), 0.9,
                                     home_ip=self.new_mobile_ip())
            else:
                for _ in range(6):            # resample users who already liked it
                    u = self.pick_user(ucum)
                    if u.idx not in self.assigned and tgt not in u.liked:
                        break
                else:
                    continue
            ip = u.home_ip if r.random() < 0.6 else r.choice(self.mobile_pool)
            self.like(t, u, tgt, m.mchid, ip=ip, tag=lab)
            if r.random() < 0.02:
                self.like(t + r.uniform(5, 600), u, tgt, m.mchid, ip=ip, action="unlike")
        lab.params.update(target=tgt, duration_min=round(D / 60, 1), factor=round(factor, 1),
                          extra_likes=N, base_likes_per_min=round(base * 60, 2))
        return lab

    def b_nat(self):
        r = self.r
        lab = Label("office_nat", "benign", keep=("users", "ips", "devices"))
        self.nat_label = lab
        n = r.randint(150, 400)
        D = min(r.uniform(3, 8) * 3600, r.uniform(0.5, 0.9) * self.dur)
        t0 = self.span_start(D, margin=60)
        nip = f"{r.choice([202, 58, 61, 218, 116])}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        while nip in self.used_ips:
            nip = f"{r.choice([202, 58, 61, 218, 116])}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        self.used_ips.add(nip)
        us = self.free_users(n)
        for u in us:
            u.nat = (nip, t0, t0 + D)
        self.nat_users = us
        lab.params.update(users=n, duration_min=round(D / 60, 1), ip=nip)
        return lab

    def b_nat_extra(self):
        """explicit office sessions (after organic world exists)"""
        r = self.r
        lab = self.nat_label
        nip, a, b = self.nat_users[0].nat
        for u in self.nat_users:
            for _ in range(r.randint(1, 4)):
                t = r.uniform(a, b)
                for _ in range(r.randint(1, 8)):
                    tgt, m = self.pick_target()
                    if tgt not in u.liked:
                        self.like(t, u, tgt, m.mchid, ip=nip, tag=lab)
                    t += min(max(r.lognormvariate(math.log(20), 1.0), 1), 400)
                    if t > b:
                        break
            if r.random() < 0.35:
                m = self.pick_pay_merchant()
                self.pay(r.uniform(a, b), u, m, self.organic_amount(m), ip=nip, tag=lab)

    def b_coupon(self):
        r = self.r
        lab = Label("coupon_campaign", "benign")
        m = self.free_merchant(0.05, 0.8)
        post = f"post:{r.randrange(900000, 999999)}" if r.random() < 0.5 else r.choice(m.targets)
        n = r.randint(60, 250)
        D = r.uniform(30, 90) * 60
        t0 = self.span_start(D + 700)
        frac = r.uniform(0.55, 0.85)
        coupon = r.choice([300, 500, 800, 1000, 2000])
        times = self.beta_times(n, t0, D, 1.0, r.uniform(1.0, 3.0))
        for u, t in zip(self.free_users(n), times):
            ip = u.home_ip if r.random() < 0.7 else r.choice(self.mobile_pool)
            self.like(t, u, post, m.mchid, ip=ip, tag=lab)
            if r.random() < frac:
                d = min(max(r.lognormvariate(math.log(180), 0.6), 60), 600)
                a = self.organic_amount(m)
                if a > coupon + 100:
                    a -= coupon
                self.pay(t + d, u, m, a, ip=ip, tag=lab)
        lab.params.update(likers=n, duration_min=round(D / 60, 1), pay_frac=round(frac, 2),
                          coupon_fen=coupon, target=post)
        return lab

    def b_flash(self):
        r = self.r
        lab = Label("flash_sale", "benign")
        m = self.free_merchant(0.02, 0.7)
        price = r.choice([990, 1990, 4990, 6900, 9900, 9900, 12900, 19900])
        n = r.randint(80, 400)
        D = r.uniform(10, 30) * 60
        t0 = self.span_start(D + 2400)
        lf = r.uniform(0.1, 0.3)
        times = self.beta_times(n, t0, D, r.uniform(0.7, 1.0), r.uniform(2.0, 4.0))
        for u, t in zip(self.free_users(n), times):
            ip = u.home_ip if r.random() < 0.65 else r.choice(self.mobile_pool)
            q = 1 if r.random() < 0.9 else 2
            self.pay(t, u, m, price * q, ip=ip, tag=lab)
            if r.random() < 0.04:
                self.pay(t + r.uniform(20, 300), u, m, price, ip=ip, tag=lab)
            if r.random() < lf:
                d = min(max(r.lognormvariate(math.log(420), 0.9), 45), 2400)
                tg = self.pick_target_of(m)
                if tg not in u.liked:
                    self.like(t + d, u, tg, m.mchid, ip=ip, tag=lab)
        lab.params.update(buyers=n, price_fen=price, duration_min=round(D / 60, 1),
                          like_after_frac=round(lf, 2))
        return lab

    def b_family(self):
        r = self.r
        lab = Label("family_shared_device", "benign", keep=("users", "ips", "devices"))
        k = r.randint(3, 5)
        dev = self.new_dev()
        hip = self.new_home_ip()
        fam = []
        for _ in range(k):
            u = self.new_account(self.T0 - r.uniform(30, 2500) * 86400, 0.85, dev=dev,
                                 home_ip=hip)
            fam.append(u)
        # each account browses alone sometimes; sometimes they take turns on the tablet
        for u in fam:
            t = r.uniform(0, 1200)
            while t < self.dur:
                for _ in range(max(1, int(r.lognormvariate(1.0, 0.7)))):
                    tgt, m = self.pick_target()
                    if tgt not in u.liked:
                        self.like(t, u, tgt, m.mchid, ip=hip, dev=dev, tag=lab)
                    t += min(max(r.lognormvariate(math.log(15), 1.0), 1), 300)
                if r.random() < 0.1:
                    m = self.pick_pay_merchant()
                    self.pay(t, u, m, self.organic_amount(m), ip=hip, dev=dev, tag=lab)
                t += r.expovariate(1 / r.uniform(600, 1500))
        for _ in range(r.randint(2, 5)):
            t = r.uniform(0, self.dur - 900)
            tg = [self.pick_target() for _ in range(r.randint(2, 5))]
            for u in r.sample(fam, r.randint(2, k)):
                for tgt, m in tg:
                    if tgt not in u.liked:
                        self.like(t, u, tgt, m.mchid, ip=hip, dev=dev, tag=lab)
                    t += r.uniform(3, 40)
                t += r.uniform(20, 180)
        lab.params.update(accounts=k, device=dev, ip=hip)
        return lab

    # ------------------------------------------------------------------ run
    def run(self):
        r = self.r
        self.build_world()
        self.tmap = {t: m for t, m, _ in self.targets}
        self.used_mch = set()
        self.nat_label = None
        scale = max(1.0, self.dur / 7200)

        # ---- choose kinds
        main4 = ["viral", "nat", "coupon", "flash"]
        bk = []
        for _ in range(int(round(scale))):       # one block of 3-5 benign events per 2h
            k = r.randint(3, 5)
            pop = main4 if "nat" not in bk else [x for x in main4 if x != "nat"]
            ks = r.sample(pop, min(k, len(pop)))
            if k > len(ks) or (k == 4 and r.random() < 0.3):
                ks = ks[:k - 1] + ["family"]
            bk += ks
        kinds5 = ["paid_task_likes", "farm", "fresh_account_burst", "slow_drip", "camouflaged_ring"]
        ck = []
        for _ in range(int(round(scale))):       # one block of 4-6 campaigns per 2h
            k = r.randint(4, 6)
            ck += r.sample(kinds5, min(k, 5)) + [r.choice(kinds5) for _ in range(k - 5)]
        self.kinds = (bk, ck)

        # NAT and family must exist before organic traffic is generated
        benign = []
        if "nat" in bk:
            benign.append(self.b_nat())
        fam_labels = [self.b_family() for x in bk if x == "family"]

        # campaigns grab their crowd workers first (so benign users don't overlap)
        camps = []
        for k in ck:
            if k == "paid_task_likes":
                camps.append(self.c_paid_task())
            elif k == "farm":
                camps.append(self.c_farm(r.choice(["device_farm", "ip_farm"])))
            elif k == "fresh_account_burst":
                camps.append(self.c_fresh())
            elif k == "slow_drip":
                camps.append(self.c_slow_drip())
            else:
                camps.append(self.c_ring())

        self.organic()
        if "nat" in bk:
            self.b_nat_extra()
        for k in bk:
            if k == "viral":
                benign.append(self.b_viral())
            elif k == "coupon":
                benign.append(self.b_coupon())
            elif k == "flash":
                benign.append(self.b_flash())
        benign += fam_labels
        return camps, benign

    def write(self, out_path, labels_path, camps, benign, params_path=None):
        self.out.sort(key=lambda x: (x[0], x[1]))
        offs = {}
        op = gzip.open if out_path.endswith(".gz") else open
        with op(out_path, "wt", encoding="utf-8") as f:
            for td, _, topic, pkey, s in self.out:
                part = zlib.crc32(pkey.encode()) % 3
                o = offs.get((topic, part), 0)
                offs[(topic, part)] = o + 1
                f.write(json.dumps({"topic": topic, "partition": part, "offset": o,
                                    "tstype": "create", "ts": int((self.T0 + td) * 1000),
                                    "key": None, "payload": s},
                                   separators=(",", ":"), ensure_ascii=False))
                f.write("\n")
        camps = sorted([c for c in camps if c.tmin is not None], key=lambda c: c.tmin)
        benign = sorted([b for b in benign if b.tmin is not None], key=lambda b: b.tmin)
        doc = {"campaigns": [], "benign": []}
        params = {"seed": self.seed, "start": self.lab_time(self.T0),
                  "hours": self.dur / 3600, "rate": self.rate,
                  "rate_profile": {"sin_amp": round(self.p_amp, 3),
                                   "period_min": round(self.p_period / 60, 1),
                                   "ramp": round(self.p_ramp, 3)},
                  "campaigns": [], "benign": []}
        for grp, lst, pre in (("campaigns", camps, "c"), ("benign", benign, "b")):
            for i, lab in enumerate(lst, 1):
                e = {"id": f"{pre}{i}", "kind": lab.kind,
                     "start": self.lab_time(self.T0 + lab.tmin),
                     "end": self.lab_time(self.T0 + lab.tmax, up=True)}
                for k in ("merchants", "targets", "users", "ips", "devices"):
                    e[k] = list(lab.sets[k])
                doc[grp].append(e)
                params[grp].append(dict(id=e["id"], kind=lab.kind, likes=lab.n_likes,
                                        payments=lab.n_pays, **lab.params))
        with open(labels_path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, ensure_ascii=False)
        if params_path:
            with open(params_path, "w", encoding="utf-8") as f:
                json.dump(params, f, indent=1, ensure_ascii=False)
        return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="recording (.jsonl or .jsonl.gz)")
    ap.add_argument("--labels", required=True)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=40.0, help="mean organic events/s")
    ap.add_argument("--params", default=None,
                    help="optional sidecar JSON with the drawn parameters of every event")
    a = ap.parse_args()
    g = Gen(a.seed, a.hours, a.rate)
    camps, benign = g.run()
    p = g.write(a.out, a.labels, camps, benign, a.params)
    print(f"wrote {len(g.out)} records to {a.out}; "
          f"{len(p['campaigns'])} campaigns, {len(p['benign'])} benign events", file=sys.stderr)


if __name__ == "__main__":
    main()
