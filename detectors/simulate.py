"""Seeded, reproducible, labelled traffic generator (``likeguard simulate``).

Writes a recording of both input topics (``payments.success`` and ``likes``,
kcat ``-J`` JSON Lines, ``.gz`` allowed) plus a labels file, both following
``CONTRACT.md``. The traffic is:

* **organic** -- a non-homogeneous Poisson stream with a daily rhythm (a
  sinusoid over the local day, peaking in the evening), Zipf-popular
  merchants and content, users with stable devices, household and mobile
  IPs, account ages of months to years (a small share fresh), log-normal
  payment amounts and honest buyers who sometimes like the shop minutes
  after paying;
* **fraud campaigns** (labelled in ``campaigns``) of five kinds:
  ``paid_task_likes``, ``device_farm``, ``fresh_account_burst``,
  ``slow_drip`` and ``camouflaged_ring``;
* **benign look-alikes** (labelled in ``benign``) of five kinds:
  ``viral_post``, ``office_nat``, ``coupon_campaign``, ``flash_sale`` and
  ``honest_buyers``;
* optional **garbage** (``bad_rate``) and **duplicate deliveries**
  (``duplicate_rate``), labelled nowhere.

Records are written in delivery order: event time plus a small delivery lag
(likes up to 1 s, payment notifications up to 3 s, re-deliveries up to
1.5 s more), so event time is out of order by at most :data:`MAX_DISORDER`
seconds. Kafka ``ts`` is the delivery time.

Campaigns and benign events start after a warm-up (10 minutes, or a fifth
of shorter runs) and end before the run does; their durations are scaled
down to fit short runs (a 1-3 h slow drip becomes 15-45 minutes in a 1 h
run). Runs shorter than about 15 minutes may drop campaigns that cannot fit.

Everything is drawn from ``random.Random`` instances seeded from
``SimConfig.seed``: one config gives byte-identical files (gzip output too:
no mtime, no file name in the header).

Examples
--------
>>> cfg = SimConfig(seed=7, duration=1200, rate=2, n_users=400, n_merchants=40,
...                 campaigns=2, benign=1)
>>> sim = Simulation(cfg)
>>> [c["kind"] for c in sim.labels()["campaigns"]]
['device_farm', 'camouflaged_ring']
>>> topic, event = next(sim.events())
>>> topic, event["target_id"], event["ts"]
('likes', 'post:278823', '2026-11-24T00:00:00.131Z')
>>> list(sim.events()) == list(iter_events(cfg))  # reproducible
True
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import io
import math
import random
import sys
import time
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from detectors.events import format_time, parse_time
from detectors.recording import RecordingWriter, open_text

__all__ = [
    "SimConfig",
    "SimSummary",
    "SimRecord",
    "Simulation",
    "simulate",
    "iter_events",
    "add_arguments",
    "run",
    "main",
    "write_labels",
    "CAMPAIGN_KINDS",
    "BENIGN_KINDS",
    "BAD_KINDS",
    "MAX_DISORDER",
    "TOPIC_PAYMENTS",
    "TOPIC_LIKES",
]

TOPIC_PAYMENTS = "payments.success"
TOPIC_LIKES = "likes"

CAMPAIGN_KINDS = (
    "paid_task_likes",
    "device_farm",
    "fresh_account_burst",
    "slow_drip",
    "camouflaged_ring",
)
BENIGN_KINDS = ("viral_post", "office_nat", "coupon_campaign", "flash_sale", "honest_buyers")
#: Kinds of garbage records injected by ``bad_rate`` (``not_success`` and
#: ``redelivered`` are valid input that must be skipped / de-duplicated).
BAD_KINDS = (
    "invalid_json",
    "missing_field",
    "wrong_type",
    "amount_zero",
    "bad_time",
    "not_success",
    "redelivered",
)
#: Upper bound (seconds) on how far event time goes backwards in a recording.
MAX_DISORDER = 5.0

_DAY = 86400.0
_REF_EVENTS = 108_000.0  # organic events of the default config: benign sizes scale with it
_TOKEN_AMOUNTS = (1, 1, 2, 5, 8, 10, 10, 20, 50, 66, 88, 99, 100)
_RING_AMOUNTS = (100, 188, 200, 288, 500, 520, 660, 990)
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# (first octet, second octet low, high) of address blocks, by use.
_IP_BLOCKS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "home": (
        (58, 16, 63), (59, 32, 63), (60, 0, 63), (61, 128, 191), (110, 80, 95),
        (113, 64, 127), (114, 80, 111), (115, 192, 223), (116, 0, 31), (119, 120, 127),
        (121, 32, 63), (123, 112, 127), (124, 64, 127), (125, 64, 127), (180, 96, 127),
        (182, 96, 127), (183, 0, 63), (218, 0, 31), (219, 128, 159), (220, 160, 191),
        (222, 64, 95), (27, 8, 31), (36, 96, 127), (49, 64, 95), (171, 8, 15),
    ),
    "mobile": (
        (223, 104, 104), (117, 136, 136), (112, 96, 97), (39, 144, 191), (111, 0, 63),
        (120, 192, 255), (106, 32, 39), (183, 192, 255), (211, 136, 143),
    ),
    "idc": (
        (47, 88, 127), (8, 129, 136), (118, 89, 89), (139, 224, 224), (101, 132, 132),
        (119, 29, 29), (42, 192, 194), (106, 14, 14), (121, 40, 43), (114, 55, 55),
    ),
}
_IPV6_PREFIXES = ("240e", "2408", "2409")
_APP_COUNT = 6


# --------------------------------------------------------------------------- config


@dataclass
class SimConfig:
    """Parameters of one simulated run; equal configs give identical output.

    Attributes
    ----------
    seed : int
        Seed of every random stream.
    start : float
        Event time of the run's start, epoch seconds.
    duration : float
        Seconds of event time to simulate.
    rate : float
        Mean organic events per second (likes + payments) over the run; the
        daily rhythm shapes the rate within the run around this mean.
    n_users, n_merchants : int
        Size of the organic population.
    campaigns : int
        Number of fraud campaigns; kinds are cycled in shuffled blocks, so each
        of the five kinds occurs at least once when ``campaigns >= 5``.
    benign : int
        Number of benign look-alike events, kinds cycled likewise.
    bad_rate : float
        Extra garbage records per valid record (see :data:`BAD_KINDS`).
    duplicate_rate : float
        Fraction of valid records delivered a second time.
    partitions : int
        Records are spread over partitions ``0 .. partitions-1`` (keyed
        records by a hash of the key).
    tz_offset : float
        Local UTC offset in hours: the daily rhythm follows the local day and
        ``+HH:MM`` timestamps use it.
    rhythm : float
        Amplitude of the daily rhythm (0 = flat, 0.6 = evening peak 4x the
        early-morning trough).
    """

    seed: int = 1
    start: float = parse_time("2026-11-24T00:00:00Z")
    duration: float = 3600.0
    rate: float = 30.0
    n_users: int = 20000
    n_merchants: int = 500
    campaigns: int = 5
    benign: int = 5
    bad_rate: float = 0.0
    duplicate_rate: float = 0.0
    partitions: int = 1
    tz_offset: float = 8.0
    rhythm: float = 0.6

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first out-of-range parameter."""
        checks = (
            (self.duration > 0, "duration must be > 0"),
            (self.rate >= 0, "rate must be >= 0"),
            (self.n_users >= 50, "n_users must be >= 50"),
            (self.n_merchants >= 1, "n_merchants must be >= 1"),
            (self.campaigns >= 0, "campaigns must be >= 0"),
            (self.benign >= 0, "benign must be >= 0"),
            (0 <= self.bad_rate <= 1, "bad_rate must be in [0, 1]"),
            (0 <= self.duplicate_rate <= 1, "duplicate_rate must be in [0, 1]"),
            (self.partitions >= 1, "partitions must be >= 1"),
            (-14 <= self.tz_offset <= 14, "tz_offset must be in [-14, 14] hours"),
            (0 <= self.rhythm < 1, "rhythm must be in [0, 1)"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class SimSummary:
    """Counts of one :func:`simulate` run.

    ``events`` counts valid, unique events per topic; ``records`` every line
    written (events + ``duplicates`` + ``bad``).
    """

    records: int = 0
    events: dict[str, int] = field(default_factory=lambda: {TOPIC_PAYMENTS: 0, TOPIC_LIKES: 0})
    duplicates: int = 0
    bad: int = 0
    bad_kinds: dict[str, int] = field(default_factory=dict)
    campaigns: int = 0
    benign: int = 0
    campaign_kinds: dict[str, int] = field(default_factory=dict)
    benign_kinds: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


class SimRecord(NamedTuple):
    """One record of the simulated stream, in file order.

    ``kind`` is ``"event"`` for a valid first delivery, ``"duplicate"`` for a
    ``duplicate_rate`` re-delivery, or one of :data:`BAD_KINDS`. ``event`` is
    the payload dict of valid events and duplicates (``None`` for garbage);
    ``time_ms`` its event time (``None`` when it has none that parses).
    """

    topic: str
    partition: int
    ts_ms: int
    key: str | None
    payload: str
    kind: str
    event: dict[str, Any] | None
    time_ms: int | None


# --------------------------------------------------------------------------- ids, time


class _Ids:
    """Allocator of unique realistic identifiers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._openids: set[str] = set()
        self._devices: set[str] = set()
        self._ips: set[str] = set()
        self._mchids: set[str] = set()
        self._content = rng.randrange(100_000, 900_000)

    def openid(self) -> str:
        rng = self.rng
        while True:
            bits = rng.getrandbits(162)
            s = "o" + "".join([_B64[(bits >> (6 * i)) & 63] for i in range(27)])
            if s not in self._openids:
                self._openids.add(s)
                return s

    def device(self) -> str:
        rng = self.rng
        while True:
            if rng.random() < 0.4:  # iOS identifierForVendor
                h = f"{rng.getrandbits(128):032X}"
                s = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
            else:  # Android ID
                s = f"{rng.getrandbits(64):016x}"
            if s not in self._devices:
                self._devices.add(s)
                return s

    def ip(self, kind: str = "home", v6: float = 0.0) -> str:
        rng = self.rng
        while True:
            if rng.random() < v6:
                g = [f"{rng.getrandbits(16):x}" for _ in range(6)]
                s = f"{rng.choice(_IPV6_PREFIXES)}:{g[0]}:{g[1]}:{g[2]}:{g[3]}:{g[4]}:{g[5]}:1"
            else:
                a, lo, hi = rng.choice(_IP_BLOCKS[kind])
                s = f"{a}.{rng.randint(lo, hi)}.{rng.randrange(256)}.{rng.randint(1, 254)}"
            if s not in self._ips:
                self._ips.add(s)
                return s

    def content(self, kind: str) -> str:
        self._content += self.rng.randint(1, 40)
        return f"{kind}:{self._content}"

    def mchid(self) -> str:
        while True:
            s = f"19000{self.rng.randrange(100_000):05d}"
            if s not in self._mchids:
                self._mchids.add(s)
                return s


class _Clock:
    """Fast RFC 3339 formatting of integer milliseconds (``Z`` or local offset)."""

    def __init__(self, tz_offset_s: int) -> None:
        self.tz = tz_offset_s
        sign = "+" if tz_offset_s >= 0 else "-"
        a = abs(tz_offset_s)
        self.suffix = f"{sign}{a // 3600:02d}:{a % 3600 // 60:02d}"
        self._z: dict[int, str] = {}
        self._local: dict[int, str] = {}

    def fmt(self, ms: int, local: bool = False, micro: bool = False) -> str:
        sec, frac = divmod(ms, 1000)
        cache = self._local if local else self._z
        base = cache.get(sec)
        if base is None:
            if len(cache) > 4096:
                cache.clear()
            tm = time.gmtime(sec + self.tz if local else sec)
            base = (
                f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
                f"T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
            )
            cache[sec] = base
        suffix = self.suffix if local else "Z"
        if frac:
            return f"{base}.{frac:03d}000{suffix}" if micro else f"{base}.{frac:03d}{suffix}"
        return base + suffix

    def day(self, ms: int) -> str:
        """Local ``YYYYMMDD`` of ``ms``."""
        return self.fmt(ms - ms % 1000, local=True)[:10].replace("-", "")


# --------------------------------------------------------------------------- world


class _User:
    """An account: id, creation time, device, home IP, mobile share, app."""

    __slots__ = ("openid", "created", "device", "home_ip", "mobile_p", "appid")

    def __init__(
        self,
        openid: str,
        created: int,
        device: str,
        home_ip: str,
        mobile_p: float = 0.0,
        appid: str = "",
    ) -> None:
        self.openid = openid
        self.created = created
        self.device = device
        self.home_ip = home_ip
        self.mobile_p = mobile_p
        self.appid = appid


def _aged_created(rng: random.Random, t_ms: int, min_days: float = 30, max_days: float = 2900) -> int:
    """Creation time of an account months to years old at ``t_ms`` (log-uniform)."""
    days = math.exp(rng.uniform(math.log(min_days), math.log(max_days)))
    return t_ms - int(days * 86_400_000) - rng.randrange(86_400_000)


def _cum(weights: Iterable[float]) -> list[float]:
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


class _World:
    """Organic merchants, content and users."""

    def __init__(self, cfg: SimConfig, ids: _Ids, rng: random.Random) -> None:
        start_ms = int(cfg.start * 1000)
        self.apps = [f"wx{rng.getrandbits(64):016x}" for _ in range(_APP_COUNT)]
        app_cum = _cum(1 / (i + 1) for i in range(_APP_COUNT))

        # merchants in popularity rank order, each with a few targets
        self.mchids = [ids.mchid() for _ in range(cfg.n_merchants)]
        mweights = [1 / (r + 1) ** 1.05 for r in range(cfg.n_merchants)]
        self.m_targets: list[list[str]] = []
        self.targets: list[str] = []
        self.owners: list[str] = []
        tweights: list[float] = []
        for r, m in enumerate(self.mchids):
            k = 1 + min(40, int(rng.expovariate(1 / 5)))
            own = [f"store:{m}"] + [
                ids.content("post" if rng.random() < 0.6 else "video") for _ in range(k)
            ]
            rng.shuffle(own)
            within = [1 / (j + 1) ** 1.2 for j in range(len(own))]
            sw = sum(within)
            for j, t in enumerate(own):
                self.targets.append(t)
                self.owners.append(m)
                tweights.append(mweights[r] * within[j] / sw)
            self.m_targets.append(own)
        self.t_cum = _cum(tweights)
        self.m_pay_cum = _cum(w**0.9 for w in mweights)
        top = sorted(range(len(tweights)), key=lambda i: -tweights[i])[:200]
        self.popular = [(self.targets[i], self.owners[i]) for i in top]
        self.popular_cum = _cum(tweights[i] for i in top)

        # mobile carrier NAT pool shared by everybody on mobile data
        pool = max(64, cfg.n_users // 8)
        self.mobile_pool = [ids.ip("mobile", v6=0.1) for _ in range(pool)]

        # users: households share a home IP, devices rarely host two accounts
        self.users: list[_User] = []
        uweights: list[float] = []
        home = ""
        left = 0
        prev_device = ""
        prev_shared = True
        for _ in range(cfg.n_users):
            if left <= 0:
                home = ids.ip("home", v6=0.08)
                left = rng.choice((1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4))
            left -= 1
            if not prev_shared and rng.random() < 0.03:
                device = prev_device
                prev_shared = True
            else:
                device = ids.device()
                prev_shared = False
            prev_device = device
            if rng.random() < 0.01:  # organic fresh accounts
                created = start_ms - rng.randint(600_000, 48 * 3_600_000)
            else:
                created = _aged_created(rng, start_ms)
            appid = self.apps[bisect_right(app_cum, rng.random() * app_cum[-1])]
            self.users.append(
                _User(ids.openid(), created, device, home, rng.random() * 0.7, appid)
            )
            uweights.append(min(60.0, rng.paretovariate(1.3)))
        self.u_cum = _cum(uweights)

    def user_ip(self, rng: random.Random, u: _User) -> str:
        if rng.random() < u.mobile_p:
            return self.mobile_pool[rng.randrange(len(self.mobile_pool))]
        return u.home_ip

    def pick_user(self, rng: random.Random) -> _User:
        return self.users[bisect_right(self.u_cum, rng.random() * self.u_cum[-1])]

    def pick_popular(self, rng: random.Random) -> tuple[str, str]:
        return self.popular[bisect_right(self.popular_cum, rng.random() * self.popular_cum[-1])]

    def pick_target(self, rng: random.Random) -> tuple[str, str]:
        i = bisect_right(self.t_cum, rng.random() * self.t_cum[-1])
        return self.targets[i], self.owners[i]

    def pick_pay_merchant(self, rng: random.Random) -> int:
        return bisect_right(self.m_pay_cum, rng.random() * self.m_pay_cum[-1])


def _normal_amount(rng: random.Random, median_fen: float = 3500.0, sigma: float = 1.0) -> int:
    """An ordinary payment amount in fen (log-normal, >= 1 CNY, shop-like endings)."""
    a = int(rng.lognormvariate(math.log(median_fen), sigma))
    a = max(100, min(a, 2_000_000))
    r = rng.random()
    if r < 0.45:
        a = a // 100 * 100 + rng.choice((0, 0, 50, 80, 90, 99))
    elif r < 0.6:
        a = a // 1000 * 1000 + 990 if a >= 1000 else a
    return max(100, a)


# Internal event tuples, ordered by (ms, source, n) which is unique:
#   like:    (ms, src, n, 0, user, target, mchid, ip, device, action, keep)
#   payment: (ms, src, n, 1, user, mchid, amount, ip, device, keep)
# ``keep`` forces the optional ip/device fields to be present (fraud traffic).
_Ev = tuple


class _Script:
    """Events of one campaign or benign event, plus the entities they touch."""

    def __init__(self, src: int, rng: random.Random, lo_ms: int, hi_ms: int) -> None:
        self.src = src
        self.rng = rng
        self.lo = lo_ms
        self.hi = hi_ms
        self.events: list[_Ev] = []
        self.n = 0
        self.first: int | None = None
        self.last: int | None = None
        self.users: set[str] = set()
        self.ips: set[str] = set()
        self.devices: set[str] = set()
        self.targets: set[str] = set()
        self.merchants: set[str] = set()

    def _mark(self, ms: int, u: _User, ip: str | None, device: str | None) -> None:
        self.first = ms if self.first is None else min(self.first, ms)
        self.last = ms if self.last is None else max(self.last, ms)
        self.users.add(u.openid)
        if ip:
            self.ips.add(ip)
        if device:
            self.devices.add(device)

    def like(
        self,
        t: float,
        u: _User,
        target: str,
        mchid: str,
        ip: str | None,
        device: str | None,
        *,
        core: bool = True,
        keep: bool = True,
        action: str = "like",
    ) -> bool:
        ms = int(t * 1000)
        if not self.lo <= ms <= self.hi:
            return False
        self.events.append((ms, self.src, self.n, 0, u, target, mchid, ip, device, action, keep))
        self.n += 1
        if core:
            self._mark(ms, u, ip, device)
            self.targets.add(target)
            self.merchants.add(mchid)
        return True

    def pay(
        self,
        t: float,
        u: _User,
        mchid: str,
        amount: int,
        ip: str | None,
        device: str | None,
        *,
        core: bool = True,
        keep: bool = True,
    ) -> bool:
        ms = int(t * 1000)
        if self.rng.random() < 0.7:  # WeChat success_time has whole seconds
            ms -= ms % 1000
        if not self.lo <= ms <= self.hi:
            return False
        self.events.append((ms, self.src, self.n, 1, u, mchid, amount, ip, device, keep))
        self.n += 1
        if core:
            self._mark(ms, u, ip, device)
            self.merchants.add(mchid)
        return True


@dataclass
class _Ctx:
    cfg: SimConfig
    world: _World
    ids: _Ids
    rng: random.Random
    sc: _Script
    mchid: str
    targets: list[str]  # the merchant's targets, most popular first
    s: float  # window start / end (epoch seconds)
    e: float
    scale: float
    params: dict[str, Any] = field(default_factory=dict)

    def content_targets(self, k: int) -> list[str]:
        """Up to ``k`` of the merchant's posts/videos (store page only if nothing else)."""
        posts = [t for t in self.targets if not t.startswith("store:")] or list(self.targets)
        return posts[: max(1, k)] if len(posts) <= k else self.rng.sample(posts, k)


def _log_uniform_int(rng: random.Random, lo: float, hi: float) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


# --------------------------------------------------------------------------- campaigns


def _paid_task_likes(c: _Ctx) -> None:
    """Workers pay a token amount, then like the content seconds later."""
    rng, sc = c.rng, c.sc
    n = _log_uniform_int(rng, 20, 300)
    targets = c.content_targets(rng.randint(1, 3))
    amount = rng.choice(_TOKEN_AMOUNTS)
    amount2 = rng.choice(_TOKEN_AMOUNTS) if rng.random() < 0.15 else amount
    per_device = rng.uniform(1.5, 6.0)
    n_dev = max(2, round(n / per_device))
    devices = [c.ids.device() for _ in range(n_dev)]
    dev_ips = [[c.ids.ip("mobile") for _ in range(rng.randint(1, 2))] for _ in devices]
    base = rng.uniform(2.0, 40.0)
    jitter = rng.uniform(0.05, 0.25)
    multi = rng.uniform(0.0, 0.4)  # share of workers doing 2-3 task rounds
    span = max(1.0, c.e - c.s - base * (1 + jitter) - 1)
    t0_ms = int(c.s * 1000)
    for _ in range(n):
        d = rng.randrange(n_dev)
        u = _User(c.ids.openid(), _aged_created(rng, t0_ms), devices[d], "")
        # a posted task is grabbed by many workers at once, then demand tails off
        t = c.s + rng.random() ** 2 * span
        rounds = rng.randint(2, 3) if rng.random() < multi else 1
        for r in range(rounds):
            ip = rng.choice(dev_ips[d])
            a = amount if rng.random() < 0.8 else amount2
            delay = max(1.0, base * rng.uniform(1 - jitter, 1 + jitter))
            if sc.pay(t, u, c.mchid, a, ip, devices[d]):
                sc.like(t + delay, u, targets[r % len(targets)], c.mchid, ip, devices[d])
            t += rng.uniform(20, 180)
    c.params.update(workers=n, devices=n_dev, amounts=sorted({amount, amount2}),
                    delay_s=round(base, 1), jitter=round(jitter, 2))


def _device_farm(c: _Ctx) -> None:
    """Hundreds of accounts rotated over a few devices and IPs."""
    rng, sc = c.rng, c.sc
    n = _log_uniform_int(rng, 80, 300)
    n_dev = rng.randint(3, 15)
    n_ip = rng.randint(1, 5)
    devices = [c.ids.device() for _ in range(n_dev)]
    ips = [c.ids.ip("idc", v6=0.1) for _ in range(n_ip)]
    targets = c.content_targets(rng.randint(1, 3))
    pays = rng.random() < 0.5
    pay_share = rng.uniform(0.3, 1.0) if pays else 0.0
    amount = rng.choice(_TOKEN_AMOUNTS)
    t0_ms = int(c.s * 1000)
    lead = 35.0 if pays else 0.0
    span = max(1.0, c.e - c.s - lead - 10 * len(targets))
    accounts: list[list[_User]] = [[] for _ in range(n_dev)]
    for i in range(n):
        if rng.random() < 0.6:
            created = _aged_created(rng, t0_ms)
        else:
            created = _aged_created(rng, t0_ms, 3, 60)
        accounts[i % n_dev].append(_User(c.ids.openid(), created, devices[i % n_dev], ""))
    for d, users in enumerate(accounts):
        step = span / max(1, len(users))
        for k, u in enumerate(users):  # each phone works through its accounts in turn
            t = c.s + lead + (k + rng.random()) * step
            ip = ips[d % n_ip] if rng.random() < 0.8 else rng.choice(ips)
            if pays and rng.random() < pay_share:
                sc.pay(t - rng.uniform(5, 30), u, c.mchid, amount, ip, devices[d])
            for target in targets:
                if rng.random() < 0.85 or target == targets[0]:
                    sc.like(t, u, target, c.mchid, ip, devices[d])
                t += rng.uniform(1, 8)
    c.params.update(accounts=n, devices=n_dev, ips=n_ip,
                    amounts=[amount] if pays else [], pay_share=round(pay_share, 2))


def _fresh_account_burst(c: _Ctx) -> None:
    """Accounts created minutes-hours ago flood one post."""
    rng, sc = c.rng, c.sc
    n = _log_uniform_int(rng, 50, 300)
    target = c.content_targets(1)[0]
    s_ms = int(c.s * 1000)
    c0 = s_ms - rng.randint(10 * 60_000, 6 * 3_600_000)
    batch = max(1, min(30 * 60_000, s_ms - c0 - 60_000))
    n_dev = max(5, int(n * rng.uniform(0.3, 1.0)))
    devices = [c.ids.device() for _ in range(n_dev)]
    ips = [c.ids.ip(rng.choice(("idc", "mobile"))) for _ in range(rng.randint(5, 40))]
    pay_share = rng.uniform(0.0, 0.4)
    amount = rng.choice(_TOKEN_AMOUNTS)
    shape = rng.uniform(1.0, 2.0)  # > 1: front-loaded
    lead = 31.0
    span = max(1.0, c.e - c.s - lead)
    for _ in range(n):
        device = rng.choice(devices)
        u = _User(c.ids.openid(), c0 + rng.randrange(batch), device, "")
        t = c.s + lead + span * rng.random() ** shape
        ip = rng.choice(ips)
        if rng.random() < pay_share:
            sc.pay(t - rng.uniform(3, 30), u, c.mchid, amount, ip, device)
        sc.like(t, u, target, c.mchid, ip, device)
    c.params.update(accounts=n, devices=n_dev, ips=len(ips), pay_share=round(pay_share, 2),
                    amounts=[amount] if pay_share else [],
                    created_before_s=round((s_ms - c0) / 1000))


def _slow_drip(c: _Ctx) -> None:
    """One paid like every few minutes for hours, under simple rate limits."""
    rng, sc = c.rng, c.sc
    span = c.e - c.s
    interval = min(rng.uniform(120, 480), span / 6)
    pool = rng.randint(10, 40)
    devices = [c.ids.device() for _ in range(rng.randint(2, 8))]
    ips = [c.ids.ip("home") for _ in range(rng.randint(2, 6))]
    t0_ms = int(c.s * 1000)
    users = [
        _User(c.ids.openid(), _aged_created(rng, t0_ms), rng.choice(devices), rng.choice(ips))
        for _ in range(pool)
    ]
    targets = c.content_targets(rng.randint(1, 2))
    amount = rng.choice(_TOKEN_AMOUNTS)
    base = rng.uniform(5, 60)
    t = c.s + rng.uniform(0, interval * 0.3)
    k = 0
    order = list(range(pool))
    while t + base * 1.2 <= c.e:
        if k % pool == 0:
            rng.shuffle(order)
        u = users[order[k % pool]]
        ip = u.home_ip if rng.random() < 0.8 else rng.choice(ips)
        if sc.pay(t, u, c.mchid, amount, ip, u.device):
            sc.like(t + base * rng.uniform(0.8, 1.2), u, rng.choice(targets), c.mchid, ip,
                    u.device)
        k += 1
        t += interval * rng.uniform(0.7, 1.3)
    c.params.update(accounts=pool, devices=len(devices), ips=len(ips), amounts=[amount],
                    interval_s=round(interval, 1), delay_s=round(base, 1), paid_likes=k)


def _camouflaged_ring(c: _Ctx) -> None:
    """A fixed group likes the same targets together and popular content in between."""
    rng, sc = c.rng, c.sc
    k = rng.randint(8, 40)
    ips = [c.ids.ip("home") for _ in range(rng.randint(3, 10))]
    t0_ms = int(c.s * 1000)
    members: list[_User] = []
    for _ in range(k):
        if members and rng.random() < 0.15:
            device = members[-1].device
        else:
            device = c.ids.device()
        members.append(_User(c.ids.openid(), _aged_created(rng, t0_ms, 60), device,
                             rng.choice(ips), rng.uniform(0.0, 0.3)))
    mobile = {u.openid: c.ids.ip("mobile") for u in members if rng.random() < 0.2}
    targets = c.content_targets(rng.randint(2, 5)) + [f"store:{c.mchid}"]
    window = rng.uniform(120, 480)  # members like within this many seconds of the call
    n_jobs = rng.randint(3, 10)
    participation = rng.uniform(0.7, 1.0)
    p_pay = rng.uniform(0.0, 0.5)
    amount = rng.choice(_RING_AMOUNTS)
    lo = c.s + 120
    hi = max(lo + 1, c.e - window)
    jobs = sorted(rng.uniform(lo, hi) for _ in range(n_jobs))
    jobs[0] = lo

    def ip_of(u: _User) -> str:
        m = mobile.get(u.openid)
        return m if m and rng.random() < u.mobile_p * 3 else u.home_ip

    for tj in jobs:
        target = rng.choice(targets)
        for u in members:
            if rng.random() >= participation:
                continue
            t = tj + rng.random() * window
            ip = ip_of(u)
            if rng.random() < p_pay:
                sc.pay(t - rng.uniform(10, 120), u, c.mchid, amount, ip, u.device)
            sc.like(t, u, target, c.mchid, ip, u.device)
    # camouflage: ordinary likes on popular content, from the same accounts
    run_lo = c.cfg.start
    for u in members:
        gap = rng.uniform(180, 720)
        t = max(run_lo, c.s - 600) + rng.expovariate(1 / gap)
        while t < c.e:
            target, owner = c.world.pick_popular(rng)
            ip = ip_of(u)
            if sc.like(t, u, target, owner, ip, u.device, core=False):
                sc.users.add(u.openid)  # every member is listed, ...
                sc.ips.add(ip)  # ... with the IPs and devices of its camouflage too
                sc.devices.add(u.device)
            t += rng.expovariate(1 / gap)
    c.params.update(members=k, ips=len(ips), jobs=n_jobs, window_s=round(window),
                    participation=round(participation, 2),
                    amounts=[amount] if p_pay else [], pay_share=round(p_pay, 2))


# --------------------------------------------------------------------------- benign


def _viral_post(c: _Ctx) -> None:
    """Thousands of organic likes on one new post, from diverse users."""
    rng, sc, w = c.rng, c.sc, c.world
    kind = rng.choice(("post", "video"))
    target = c.ids.content(kind)
    n = int(rng.uniform(1500, 5000) * c.scale)
    n = min(max(100, n), max(2, len(w.users) // 2))
    fresh_share = rng.uniform(0.03, 0.1)
    n_fresh = int(n * fresh_share)
    span = c.e - c.s
    tau = span / rng.uniform(3, 6)
    likers = rng.sample(range(len(w.users)), n - n_fresh)

    def when() -> float:
        return c.s + min(span, rng.gammavariate(2.0, tau))

    for i in likers:
        u = w.users[i]
        sc.like(when(), u, target, c.mchid, w.user_ip(rng, u), u.device, keep=False)
    for _ in range(n_fresh):
        t = when()
        u = _User(c.ids.openid(), int((t - rng.uniform(600, 72 * 3600)) * 1000),
                  c.ids.device(), "")
        ip = rng.choice(w.mobile_pool) if rng.random() < 0.7 else c.ids.ip("home")
        sc.like(t, u, target, c.mchid, ip, u.device, keep=False)
    c.targets[:] = [target]
    c.params.update(likes=n, fresh=n_fresh)


def _office_nat(c: _Ctx) -> None:
    """Hundreds of honest users behind one NAT IP, liking diverse content all day."""
    rng, sc, w = c.rng, c.sc, c.world
    nat = c.ids.ip("home")
    n = max(30, int(rng.uniform(100, 400) * min(1.0, c.scale)))
    s_ms = int(c.s * 1000)
    span = c.e - c.s
    for _ in range(n):
        u = _User(c.ids.openid(), _aged_created(rng, s_ms), c.ids.device(), nat,
                  0.0, rng.choice(w.apps))
        for _ in range(rng.randint(1, 8)):
            target, owner = w.pick_target(rng)
            sc.like(c.s + rng.random() * span, u, target, owner, nat, u.device, keep=False)
        if rng.random() < 0.1:
            m = w.mchids[w.pick_pay_merchant(rng)]
            sc.pay(c.s + rng.random() * span, u, m, _normal_amount(rng), nat, u.device,
                   keep=False)
    c.params.update(users=n, ip=nat)


def _coupon_campaign(c: _Ctx) -> None:
    """Users like the merchant's post to unlock a coupon, then pay a normal amount."""
    rng, sc, w = c.rng, c.sc, c.world
    target = c.content_targets(1)[0]
    n = max(20, int(rng.uniform(50, 400) * c.scale))
    pay_share = rng.uniform(0.6, 0.85)
    median = rng.uniform(3000, 8000)
    span = c.e - c.s
    for i in rng.sample(range(len(w.users)), min(n, len(w.users))):
        u = w.users[i]
        t = c.s + rng.random() * span * 0.8
        ip = w.user_ip(rng, u)
        sc.like(t, u, target, c.mchid, ip, u.device, keep=False)
        if rng.random() < pay_share:
            t += 60 + rng.lognormvariate(math.log(240), 0.6)
            sc.pay(t, u, c.mchid, _normal_amount(rng, median, 0.5), ip, u.device, keep=False)
    c.params.update(users=n, pay_share=round(pay_share, 2))


def _flash_sale(c: _Ctx) -> None:
    """Many real-amount payments to one merchant in minutes; some buyers like after."""
    rng, sc, w = c.rng, c.sc, c.world
    n = max(40, int(rng.uniform(200, 1500) * c.scale))
    pay_span = min(rng.uniform(120, 600), (c.e - c.s) / 3)
    prices = [
        max(190, int(rng.lognormvariate(math.log(6000), 0.8)) // 100 * 100 - 10)
        for _ in range(rng.randint(1, 3))
    ]
    like_share = rng.uniform(0.1, 0.3)
    like_targets = [f"store:{c.mchid}"] + c.content_targets(1)
    for i in rng.sample(range(len(w.users)), min(n, len(w.users))):
        u = w.users[i]
        t = c.s + pay_span * rng.random() ** 1.5
        qty = 1 if rng.random() < 0.85 else rng.randint(2, 3)
        ip = w.user_ip(rng, u)
        sc.pay(t, u, c.mchid, rng.choice(prices) * qty, ip, u.device, keep=False)
        if rng.random() < like_share:
            t += 60 + rng.lognormvariate(math.log(300), 0.7)
            sc.like(t, u, rng.choice(like_targets), c.mchid, ip, u.device, keep=False)
    c.params.update(buyers=n, prices=sorted(prices), pay_span_s=round(pay_span),
                    like_share=round(like_share, 2))


def _honest_buyers(c: _Ctx) -> None:
    """Real-amount buyers who like the shop minutes after paying."""
    rng, sc, w = c.rng, c.sc, c.world
    n = max(15, int(rng.uniform(30, 150) * c.scale))
    like_share = rng.uniform(0.6, 0.9)
    top = next((t for t in c.targets if not t.startswith("store:")), c.targets[0])
    span = max(1.0, c.e - c.s - 600)
    for i in rng.sample(range(len(w.users)), min(n, len(w.users))):
        u = w.users[i]
        t = c.s + rng.random() * span
        ip = w.user_ip(rng, u)
        sc.pay(t, u, c.mchid, _normal_amount(rng), ip, u.device, keep=False)
        if rng.random() < like_share:
            target = f"store:{c.mchid}" if rng.random() < 0.8 else top
            t += 30 + rng.lognormvariate(math.log(150), 0.6)
            sc.like(t, u, target, c.mchid, w.user_ip(rng, u), u.device, keep=False)
    c.params.update(buyers=n, like_share=round(like_share, 2))


_BUILDERS: dict[str, tuple[Callable[[_Ctx], None], float, float]] = {
    # kind: (builder, min duration s, max duration s)
    "paid_task_likes": (_paid_task_likes, 300, 1800),
    "device_farm": (_device_farm, 300, 1800),
    "fresh_account_burst": (_fresh_account_burst, 300, 1200),
    "slow_drip": (_slow_drip, 3600, 10800),
    "camouflaged_ring": (_camouflaged_ring, 1200, 3600),
    "viral_post": (_viral_post, 1200, 5400),
    "office_nat": (_office_nat, 0, 0),  # most of the run
    "coupon_campaign": (_coupon_campaign, 1200, 5400),
    "flash_sale": (_flash_sale, 1800, 2400),
    "honest_buyers": (_honest_buyers, 1800, 7200),
}


def _kind_cycle(rng: random.Random, kinds: tuple[str, ...], k: int) -> list[str]:
    """``k`` kinds in shuffled blocks of all kinds (each present once ``k >= len``)."""
    out: list[str] = []
    while len(out) < k:
        block = list(kinds)
        rng.shuffle(block)
        out.extend(block)
    return out[:k]


# --------------------------------------------------------------------------- simulation


class Simulation:
    """A planned run: world, campaigns and benign events are built at init.

    :meth:`records` regenerates the full stream (identically) on each call;
    :meth:`events` is the valid, first-delivery subset; :meth:`labels` the
    ground truth.

    Parameters
    ----------
    cfg : SimConfig
        The run's parameters (validated here).
    """

    def __init__(self, cfg: SimConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        seed = cfg.seed
        self._clock = _Clock(int(round(cfg.tz_offset * 3600)))
        self._start_ms = int(cfg.start * 1000)
        self._end_ms = int((cfg.start + cfg.duration) * 1000)
        self._ids = _Ids(random.Random(f"{seed}/ids"))
        self.world = _World(cfg, self._ids, random.Random(f"{seed}/world"))
        self._scripts: list[list[_Ev]] = []
        self._labels: dict[str, list[dict[str, Any]]] = {"campaigns": [], "benign": []}
        self._plan(random.Random(f"{seed}/plan"))

    # -- planning
    def _plan(self, rng: random.Random) -> None:
        cfg = self.cfg
        warm = min(600.0, cfg.duration * 0.2)
        margin = min(120.0, cfg.duration * 0.05)
        ws, we = cfg.start + warm, cfg.start + cfg.duration - margin
        avail = max(1.0, we - ws)
        scale = max(0.05, min(5.0, cfg.rate * cfg.duration / _REF_EVENTS))
        c_kinds = _kind_cycle(rng, CAMPAIGN_KINDS, cfg.campaigns)
        b_kinds = _kind_cycle(rng, BENIGN_KINDS, cfg.benign)
        # distinct mid-popularity merchants when there are enough of them
        nm = cfg.n_merchants
        lo = min(5, nm - 1)
        pool = list(range(lo, max(lo + 1, int(nm * 0.6))))
        need = len(c_kinds) + len(b_kinds)
        if len(pool) >= need:
            ranks = rng.sample(pool, need)
        else:
            ranks = [rng.choice(range(nm)) for _ in range(need)]
        jobs = [("campaigns", k) for k in c_kinds] + [("benign", k) for k in b_kinds]
        for i, ((section, kind), rank) in enumerate(zip(jobs, ranks, strict=True)):
            builder, dmin, dmax = _BUILDERS[kind]
            if kind == "office_nat":
                dur = avail * rng.uniform(0.7, 0.95)
            else:
                dur = rng.uniform(dmin, dmax)
                if dur > avail * 0.9:
                    dur = avail * rng.uniform(0.5, 0.9)
            s = ws + rng.random() * (avail - dur)
            e = s + dur
            src = i + 1
            sub = random.Random(f"{cfg.seed}/{section}/{i}/{kind}")
            sc = _Script(src, sub, int(s * 1000), int(e * 1000))
            ctx = _Ctx(cfg, self.world, self._ids, sub, sc, self.world.mchids[rank],
                       list(self.world.m_targets[rank]), s, e, scale)
            builder(ctx)
            if sc.first is None or sc.last is None or sc.first >= sc.last:
                continue  # too small a window to hold the event
            sc.events.sort()
            self._scripts.append(sc.events)
            n = len(self._labels[section]) + 1
            entry: dict[str, Any] = {
                "id": f"{section[0]}{n}",
                "kind": kind,
                "start": format_time(sc.first / 1000),
                "end": format_time(sc.last / 1000),
                "merchants": sorted(sc.merchants),
                "targets": sorted(sc.targets),
                "users": sorted(sc.users),
            }
            if section == "campaigns":
                entry["ips"] = sorted(sc.ips)
                entry["devices"] = sorted(sc.devices)
            elif kind == "office_nat":
                entry["merchants"] = []
                entry["targets"] = []
                entry["ips"] = [ctx.params["ip"]]
            entry["params"] = ctx.params
            self._labels[section].append(entry)

    def labels(self) -> dict[str, list[dict[str, Any]]]:
        """The labels object (``campaigns`` and ``benign``) as in CONTRACT.md."""
        return self._labels

    # -- organic traffic
    def _rhythm(self) -> tuple[float, float, float]:
        """(omega, phase, normaliser) of ``1 + A cos(omega t + phase)``, mean 1 over the run."""
        cfg = self.cfg
        omega = 2 * math.pi / _DAY
        # local 21:00 is the peak
        phase = omega * (cfg.tz_offset * 3600 - 21 * 3600)
        t0, t1 = cfg.start, cfg.start + cfg.duration
        mean = 1 + cfg.rhythm * (
            math.sin(omega * t1 + phase) - math.sin(omega * t0 + phase)
        ) / (omega * (t1 - t0))
        return omega, phase, 1 / mean

    def _organic(self, rng: random.Random) -> Iterator[_Ev]:
        cfg = self.cfg
        if cfg.rate <= 0:
            return
        w = self.world
        users, u_cum = w.users, w.u_cum
        u_tot = u_cum[-1]
        targets, owners, t_cum = w.targets, w.owners, w.t_cum
        t_tot = t_cum[-1]
        m_cum, m_tot, mchids, m_targets = w.m_pay_cum, w.m_pay_cum[-1], w.mchids, w.m_targets
        pool, n_pool = w.mobile_pool, len(w.mobile_pool)
        omega, phase, norm = self._rhythm()
        amp = cfg.rhythm
        base = cfg.rate * norm
        rand = rng.random
        expo = rng.expovariate
        cos = math.cos
        pending: list[_Ev] = []
        t = cfg.start
        end = cfg.start + cfg.duration
        end_ms = self._end_ms
        n = 0
        while True:
            t += expo(base * (1 + amp * cos(omega * t + phase)))
            if t >= end:
                break
            ms = int(t * 1000)
            while pending and pending[0][0] <= ms:
                yield heapq.heappop(pending)
            u = users[bisect_right(u_cum, rand() * u_tot)]
            ip = pool[int(rand() * n_pool)] if rand() < u.mobile_p else u.home_ip
            r = rand()
            if r < 0.12:  # payment
                mi = bisect_right(m_cum, rand() * m_tot)
                m = mchids[mi]
                if rand() < 0.7:
                    ms -= ms % 1000
                yield (ms, 0, n, 1, u, m, _normal_amount(rng), ip, u.device, False)
                n += 1
                if rand() < 0.07:  # honest buyer likes the shop minutes later
                    later = ms + 30_000 + int(rng.lognormvariate(math.log(180_000), 0.7))
                    if later < end_ms:
                        own = m_targets[mi]
                        target = f"store:{m}" if rand() < 0.7 else own[0]
                        heapq.heappush(
                            pending, (later, 0, n, 0, u, target, m, ip, u.device, "like", False)
                        )
                        n += 1
            else:
                i = bisect_right(t_cum, rand() * t_tot)
                action = "unlike" if r > 0.985 else "like"
                yield (ms, 0, n, 0, u, targets[i], owners[i], ip, u.device, action, False)
                n += 1
        while pending:
            yield heapq.heappop(pending)

    # -- payloads
    def _like_payload(self, ev: _Ev, bits: int, seq: int) -> dict[str, Any]:
        ms, _, _, _, u, target, mchid, ip, device, action, keep = ev
        d: dict[str, Any] = {
            "like_id": f"lk{ms:011x}{seq:06x}",
            "user_openid": u.openid,
            "target_id": target,
            "owner_mchid": mchid,
        }
        if action != "like" or bits & 7 < 5:
            d["action"] = action
        d["ts"] = self._clock.fmt(ms, local=(bits >> 3) & 7 < 2, micro=(bits >> 6) & 31 == 0)
        if ip and (keep or (bits >> 11) & 31 != 0):
            d["client_ip"] = ip
        if device and (keep or (bits >> 16) & 31 > 1):
            d["device_id"] = device
        if u.created and (bits >> 21) & 15 != 0:
            d["user_created"] = self._clock.fmt(
                u.created - u.created % 1000, local=(bits >> 25) & 1 == 0
            )
        return d

    def _pay_payload(self, ev: _Ev, bits: int, seq: int) -> dict[str, Any]:
        ms, _, _, _, u, mchid, amount, ip, device, keep = ev
        clock = self._clock
        d: dict[str, Any] = {"transaction_id": f"42000{bits & 0xFFFF:05d}{clock.day(ms)}{seq:010d}"}
        if (bits >> 16) & 7:
            d["out_trade_no"] = f"{mchid[-4:]}{ms // 1000}{(bits >> 19) & 0x3FF:04d}"
        d["mchid"] = mchid
        if u.appid and (bits >> 29) & 7:
            d["appid"] = u.appid
        d["trade_type"] = "JSAPI" if (bits >> 32) & 3 else "NATIVE"
        d["trade_state"] = "SUCCESS"
        d["trade_state_desc"] = "支付成功"
        d["success_time"] = clock.fmt(ms, local=(bits >> 34) & 7 != 0)
        d["payer"] = {"openid": u.openid}
        amt: dict[str, Any] = {"total": amount}
        if (bits >> 37) & 7:
            amt["payer_total"] = amount
            amt["currency"] = "CNY"
            amt["payer_currency"] = "CNY"
        d["amount"] = amt
        if ip and (keep or (bits >> 40) & 7):
            d["payer_client_ip"] = ip
        if device and (keep or (bits >> 43) & 7 > 1):
            d["scene_info"] = {"device_id": device}
        return d

    # -- garbage
    def _bad(
        self, rng: random.Random, now: int, seq: int, recent: deque[SimRecord]
    ) -> SimRecord:
        kind = rng.choices(BAD_KINDS, weights=(3, 3, 3, 2, 2, 3, 2))[0]
        if kind == "redelivered":
            fresh = [r for r in recent if r.time_ms is not None and r.time_ms >= now - 4000]
            if fresh:
                r = rng.choice(fresh)
                return r._replace(ts_ms=now, kind=kind)
            kind = "invalid_json"
        pay = kind in ("amount_zero", "not_success") or rng.random() < 0.4
        w = self.world
        u = w.pick_user(rng)
        bits = rng.getrandbits(48)
        ev_ms = now - rng.randrange(1000)
        if pay:
            topic = TOPIC_PAYMENTS
            m = w.mchids[w.pick_pay_merchant(rng)]
            d = self._pay_payload(
                (ev_ms, 0, 0, 1, u, m, _normal_amount(rng), u.home_ip, u.device, False), bits, seq
            )
        else:
            topic = TOPIC_LIKES
            target, owner = w.pick_target(rng)
            ev = (ev_ms, 0, 0, 0, u, target, owner, u.home_ip, u.device, "like", False)
            d = self._like_payload(ev, bits, seq)
        time_field = "success_time" if pay else "ts"
        time_ms: int | None = ev_ms
        if kind == "invalid_json":
            text = orjson.dumps(d).decode()
            variants = (
                text[: rng.randrange(1, len(text) - 1)],
                text.replace('":', '" ', 1),
                "",
                "not json",
                "[1, 2, 3]",
                "null",
                text + "}",
            )
            return SimRecord(topic, 0, now, None, rng.choice(variants), kind, None, None)
        if kind == "missing_field":
            if pay:
                name = rng.choice(("transaction_id", "mchid", "trade_state", "success_time",
                                   "payer", "amount", "payer.openid", "amount.total"))
            else:
                name = rng.choice(("like_id", "user_openid", "target_id", "owner_mchid", "ts"))
            outer, _, inner = name.partition(".")
            if inner:
                del d[outer][inner]
            else:
                del d[outer]
            if name == time_field:
                time_ms = None
        elif kind == "wrong_type":
            if pay:
                choice = rng.randrange(5)
                if choice == 0:
                    d["amount"]["total"] = str(d["amount"]["total"])
                elif choice == 1:
                    d["amount"]["total"] = d["amount"]["total"] + 0.5
                elif choice == 2:
                    d["payer"] = d["payer"]["openid"]
                elif choice == 3:
                    d["mchid"] = int(d["mchid"])
                else:
                    d["success_time"] = ev_ms / 1000
                    time_ms = None
            else:
                choice = rng.randrange(4)
                if choice == 0:
                    d["like_id"] = seq
                elif choice == 1:
                    d["user_openid"] = None
                elif choice == 2:
                    d["target_id"] = [d["target_id"]]
                else:
                    d["ts"] = ev_ms
                    time_ms = None
        elif kind == "amount_zero":
            d["amount"]["total"] = rng.choice((0, 0, -100))
        elif kind == "bad_time":
            good = d[time_field]
            d[time_field] = rng.choice((
                good[:19],  # no offset
                good[:10],
                good.replace("T", "X", 1),
                "2026-13-45T25:61:00Z",
                "yesterday",
                "",
            ))
            time_ms = None
        elif kind == "not_success":
            d["trade_state"] = rng.choice(("NOTPAY", "CLOSED", "REFUND", "PAYERROR", "USERPAYING"))
            d["trade_state_desc"] = "未支付"
        return SimRecord(topic, 0, now, None, orjson.dumps(d).decode(), kind, None, time_ms)

    # -- the stream
    def records(self) -> Iterator[SimRecord]:
        """Yield every record of the recording in file (delivery) order.

        Deterministic: each call regenerates the same stream. Valid records
        carry their payload dict in ``event``; see :class:`SimRecord`.
        """
        cfg = self.cfg
        seed = cfg.seed
        emit = random.Random(f"{seed}/emit")
        bad_rng = random.Random(f"{seed}/bad")
        part_rng = random.Random(f"{seed}/partition")
        streams: list[Iterable[_Ev]] = [self._organic(random.Random(f"{seed}/organic"))]
        streams.extend(self._scripts)
        merged = heapq.merge(*streams)
        nparts = cfg.partitions
        dup_rate = cfg.duplicate_rate
        bad_rate = cfg.bad_rate
        rand = emit.random
        getbits = emit.getrandbits
        dumps = orjson.dumps
        like_payload = self._like_payload
        pay_payload = self._pay_payload
        heap: list[tuple[int, int, SimRecord]] = []
        push, pop = heapq.heappush, heapq.heappop
        recent: deque[SimRecord] = deque(maxlen=8)
        seq = 0
        hseq = 0

        def partition(key: str | None) -> int:
            if nparts == 1:
                return 0
            if key is not None:
                return zlib.crc32(key.encode()) % nparts
            return part_rng.randrange(nparts)

        def deliver(item: tuple[int, int, SimRecord]) -> Iterator[SimRecord]:
            nonlocal seq
            rec = item[2]
            yield rec
            if rec.kind == "event":
                recent.append(rec)
            if bad_rate and bad_rng.random() < bad_rate:
                seq += 1
                bad = self._bad(bad_rng, rec.ts_ms, seq, recent)
                yield bad._replace(partition=partition(bad.key))

        for ev in merged:
            ms = ev[0]
            limit = ms - 1000  # sources are ordered within < 1 s (whole-second payments)
            while heap and heap[0][0] <= limit:
                yield from deliver(pop(heap))
            seq += 1
            bits = getbits(48)
            if ev[3]:
                d = pay_payload(ev, bits, seq)
                topic = TOPIC_PAYMENTS
                key = ev[5] if rand() < 0.25 else None
                lag = min(3000, int(emit.expovariate(1 / 500)))
            else:
                d = like_payload(ev, bits, seq)
                topic = TOPIC_LIKES
                key = ev[6] if rand() < 0.1 else None
                lag = int(rand() * rand() * 1000)
            rec = SimRecord(topic, partition(key), ms + lag, key, dumps(d).decode(), "event", d, ms)
            hseq += 1
            push(heap, (ms + lag, hseq, rec))
            if dup_rate and rand() < dup_rate:
                hseq += 1
                again = ms + lag + 100 + int(rand() * 1400)
                push(heap, (again, hseq, rec._replace(ts_ms=again, kind="duplicate")))
        while heap:
            yield from deliver(pop(heap))

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(topic, payload)`` of valid first deliveries, in file order."""
        for rec in self.records():
            if rec.kind == "event" and rec.event is not None:
                yield rec.topic, rec.event


def iter_events(cfg: SimConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(topic, payload dict)`` of the valid events of ``cfg``'s run.

    Same order as the recording (event time with at most
    :data:`MAX_DISORDER` seconds of disorder), without garbage or duplicate
    deliveries. Use :class:`Simulation` to get the labels too.
    """
    return Simulation(cfg).events()


# --------------------------------------------------------------------------- output


class _ReproducibleWriter(RecordingWriter):
    """:class:`RecordingWriter` whose gzip files are byte-reproducible.

    ``gzip.open`` stamps the current time and file name into the header; here
    both are left empty. Plain files are opened exactly as the base class does.
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.suffix != ".gz":
            super().__init__(p)
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        raw = open(p, "wb")  # closed in close()
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
        self.path = p
        self._raw = raw
        self._fh = io.TextIOWrapper(gz, encoding="utf-8")
        self._offsets: dict[tuple[str, int], int] = {}
        self.count = 0

    def close(self) -> None:
        super().close()
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close()


class _Progress:
    """A carriage-return progress bar on stderr, driven by event time."""

    def __init__(self, start_ms: int, end_ms: int, enabled: bool, width: int = 30) -> None:
        self.start = start_ms
        self.span = max(1, end_ms - start_ms)
        self.enabled = enabled
        self.width = width
        self.t0 = time.monotonic()
        self.last = -1

    def update(self, now_ms: int, records: int) -> None:
        if not self.enabled:
            return
        frac = min(1.0, max(0.0, (now_ms - self.start) / self.span))
        pct = int(frac * 100)
        if pct == self.last:
            return
        self.last = pct
        fill = int(frac * self.width)
        bar = "#" * fill + "." * (self.width - fill)
        rate = records / max(1e-9, time.monotonic() - self.t0)
        sys.stderr.write(f"\rsimulate [{bar}] {pct:3d}% {records:,} records {rate:,.0f}/s")
        sys.stderr.flush()

    def done(self, records: int) -> None:
        if self.enabled:
            self.last = -1
            self.update(self.start + self.span, records)
            sys.stderr.write("\n")
            sys.stderr.flush()


def write_labels(labels: dict[str, Any], path: str | Path) -> None:
    """Write a labels object as indented JSON (``.gz`` allowed)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open_text(p, "wt") as fh:
        fh.write(orjson.dumps(labels, option=orjson.OPT_INDENT_2).decode())
        fh.write("\n")


def simulate(
    cfg: SimConfig,
    out_path: str | Path,
    labels_path: str | Path,
    progress: bool = False,
) -> SimSummary:
    """Generate ``cfg``'s run: write the recording and the labels file.

    Parameters
    ----------
    cfg : SimConfig
        What to simulate.
    out_path : str or Path
        Recording to write (kcat -J JSON Lines; gzip when it ends in ``.gz``).
    labels_path : str or Path
        Labels JSON to write.
    progress : bool
        Draw a progress bar on stderr.

    Returns
    -------
    SimSummary
        Counts of what was written.

    Raises
    ------
    ValueError
        When ``cfg`` is out of range.
    OSError
        When a file cannot be written.
    """
    t0 = time.monotonic()
    sim = Simulation(cfg)
    labels = sim.labels()
    summary = SimSummary(campaigns=len(labels["campaigns"]), benign=len(labels["benign"]))
    for section, counts in (("campaigns", summary.campaign_kinds),
                            ("benign", summary.benign_kinds)):
        for entry in labels[section]:
            counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
    bar = _Progress(sim._start_ms, sim._end_ms, progress)
    events = summary.events
    bad_kinds = summary.bad_kinds
    n = 0
    with _ReproducibleWriter(out_path) as writer:
        write = writer.write
        for rec in sim.records():
            write(rec.topic, rec.payload, ts_ms=rec.ts_ms, key=rec.key, partition=rec.partition)
            n += 1
            kind = rec.kind
            if kind == "event":
                events[rec.topic] += 1
            elif kind == "duplicate":
                summary.duplicates += 1
            else:
                bad_kinds[kind] = bad_kinds.get(kind, 0) + 1
            if n & 0x1FFF == 0:
                bar.update(rec.ts_ms, n)
    write_labels(labels, labels_path)
    bar.done(n)
    summary.records = n
    summary.bad = sum(bad_kinds.values())
    summary.bad_kinds = dict(sorted(bad_kinds.items()))
    summary.elapsed = time.monotonic() - t0
    return summary


# --------------------------------------------------------------------------- CLI


def _default_labels_path(out: str) -> str:
    name = out[:-3] if out.endswith(".gz") else out
    for suffix in (".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name + ".labels.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``likeguard simulate`` options to ``parser``."""
    d = SimConfig()
    parser.add_argument("out", metavar="OUT",
                        help="recording to write, kcat -J JSON Lines (.gz to compress)")
    parser.add_argument("--labels", metavar="LABELS.json",
                        help="labels file to write (default: OUT without .jsonl[.gz] "
                             "plus .labels.json)")
    parser.add_argument("--seed", type=int, default=d.seed,
                        help=f"random seed; same seed and options give identical files "
                             f"(default {d.seed})")
    parser.add_argument("--start", default=format_time(d.start), metavar="RFC3339",
                        help="event time the run starts at (default %(default)s)")
    parser.add_argument("--duration", type=float, default=d.duration, metavar="SECONDS",
                        help="seconds of event time to simulate (default %(default)s)")
    parser.add_argument("--rate", type=float, default=d.rate, metavar="EVENTS_PER_S",
                        help="mean organic events per second, likes + payments "
                             "(default %(default)s)")
    parser.add_argument("--users", type=int, default=d.n_users, metavar="N",
                        help="organic users (default %(default)s)")
    parser.add_argument("--merchants", type=int, default=d.n_merchants, metavar="N",
                        help="organic merchants (default %(default)s)")
    parser.add_argument("--campaigns", type=int, default=d.campaigns, metavar="K",
                        help="fraud campaigns; all 5 kinds appear when K >= 5 "
                             "(default %(default)s)")
    parser.add_argument("--benign", type=int, default=d.benign, metavar="B",
                        help="benign look-alike events; all 5 kinds appear when B >= 5 "
                             "(default %(default)s)")
    parser.add_argument("--bad-rate", type=float, default=d.bad_rate, metavar="X",
                        help="garbage records per valid record, 0..1: invalid JSON, missing "
                             "fields, wrong types, zero amounts, bad times, non-SUCCESS "
                             "payments, re-deliveries (default %(default)s)")
    parser.add_argument("--duplicate-rate", type=float, default=d.duplicate_rate, metavar="X",
                        help="fraction of valid records delivered twice (default %(default)s)")
    parser.add_argument("--partitions", type=int, default=d.partitions, metavar="N",
                        help="spread records over partitions 0..N-1 (default %(default)s)")
    parser.add_argument("--tz-offset", type=float, default=d.tz_offset, metavar="HOURS",
                        help="local UTC offset for the daily rhythm and +HH:MM times "
                             "(default %(default)s)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar on stderr (default: when stderr is a "
                             "terminal)")


def run(args: argparse.Namespace) -> int:
    """Run ``likeguard simulate``; returns 0, or 2 with a message on bad input."""
    try:
        start = parse_time(args.start) if isinstance(args.start, str) else float(args.start)
        cfg = SimConfig(
            seed=args.seed,
            start=start,
            duration=args.duration,
            rate=args.rate,
            n_users=args.users,
            n_merchants=args.merchants,
            campaigns=args.campaigns,
            benign=args.benign,
            bad_rate=args.bad_rate,
            duplicate_rate=args.duplicate_rate,
            partitions=args.partitions,
            tz_offset=args.tz_offset,
        )
        cfg.validate()
    except ValueError as exc:
        print(f"likeguard simulate: error: {exc}", file=sys.stderr)
        return 2
    labels = args.labels or _default_labels_path(str(args.out))
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        s = simulate(cfg, args.out, labels, progress=progress)
    except OSError as exc:
        print(f"likeguard simulate: error: cannot write output: {exc}", file=sys.stderr)
        return 2
    ev = s.events
    print(
        f"wrote {s.records:,} records to {args.out} ({ev[TOPIC_LIKES]:,} likes, "
        f"{ev[TOPIC_PAYMENTS]:,} payments, {s.duplicates:,} duplicates, {s.bad:,} bad) "
        f"in {s.elapsed:.1f}s; labels: {s.campaigns} campaigns, {s.benign} benign -> {labels}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m detectors.simulate OUT ...``."""
    parser = argparse.ArgumentParser(
        prog="likeguard simulate",
        description="Generate a seeded, labelled recording of payments and likes "
        "(organic traffic, fraud campaigns, benign look-alikes).",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
