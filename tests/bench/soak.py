"""Soak and hot keys: the worker for half an hour at a steady rate, with a burst.

Starts a local broker (``deploy/kafka/kafka.sh``, as ``bench_worker.py`` does;
``KAFKA_BOOTSTRAP_SERVERS`` uses that one instead) and one worker
(``python -m streams.worker``, its own metrics port), then produces live
traffic for ``--minutes`` (default 30) from a thread of this process
(:class:`SoakTraffic`; event time is the wall clock, so the worker's
event-time windows expire in real time):

* a steady ``--rate`` events/s (default 1,000; 80% likes, 20% payments) from
  ever-new users, devices and addresses: users arrive at a tenth of the rate
  and stay two minutes (one device each, three users behind an address), so
  no id comes back once its user has left;
* 20% of all likes on one hot target (``video:hot`` of one merchant);
* a burst from a third to two thirds of the run (minutes 10 to 20 by
  default; ``--burst-start``, ``--burst-minutes``): ``--burst-devices``
  (default 1,000,000) extra likes spread evenly over the burst (about
  1,700/s), each from a new account on a new device.

Every ``--sample`` seconds (default 30) it records the worker's resident set
(VmRSS of the process and any children), ``likeguard_state_window_items``
and ``likeguard_state_keys`` per view, the consumer lag of the input and
view topics, the alerts and late events so far. Writes ``out/soak.json``
(samples and a summary: RSS and window items before the burst (the
baseline), at their peak and at the end; the largest lag) and
``out/soak.svg`` (RSS, window items per view and lag over time, the burst
shaded), and prints the end and peak against the baseline of the same run.

Exits 1, saying why, when the resident set at the end is more than 25%
(``--tolerance``) above the baseline, or the input lag at the end is more
than 30 s of input (the worker fell behind). Note that a view keeps the
burst's keys for its own window after the burst (devices 30 min, users
1 h): the summary names the views whose items have not come back and when
their window ends. Run on demand: ``make soak`` or ``python
tests/bench/soak.py [--minutes 30] [--rate 1000] [--burst-devices 1000000]``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for detectors.* and tests.*

from detectors.events import format_time  # noqa: E402

PAYMENTS, LIKES = "payments", "likes"
HOT_TARGET, HOT_MCHID = "video:hot", "1900099999"
VIEWS = ("merchant", "ip", "device", "user", "lockstep")
#: seconds a scrape of the worker's metrics may take, tried in turn
SCRAPE_TIMEOUTS = (5.0, 30.0, 120.0)
#: accounts are this old (not fresh: the soak is about memory, not fresh-account rules)
ACCOUNT_AGE = 400 * 86400.0


@dataclass
class SoakTraffic:
    """The soak's events, scheduled on a clock: steady traffic plus a burst.

    Event ``i`` of the steady stream is due at ``start + i / rate``, burst like
    ``j`` at ``burst_start + j / burst_rate`` (both times absolute, seconds).
    :meth:`due` returns every event due up to a time, in time order, as
    ``(kind, time, value)`` with ``kind`` ``"payments"`` or ``"likes"`` and
    ``value`` a contract-valid JSON record whose event time is its due time.
    The same seed and clock give the same events however the calls are spaced.
    """

    start: float
    rate: float = 1000.0
    burst_start: float = math.inf
    burst_end: float = math.inf
    burst_devices: int = 0
    hot_share: float = 0.2
    like_share: float = 0.8
    merchants: int = 500
    targets_per_merchant: int = 10
    user_stay: float = 120.0  # seconds a user stays active
    seed: int = 1
    prefix: str = "soak"
    _i: int = 0
    _j: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    counts: dict[str, int] = field(default_factory=lambda: {
        "payments": 0, "likes": 0, "hot_likes": 0, "burst_likes": 0})

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)
        self.user_rate = self.rate / 10.0  # new users per second
        self.burst_rate = (self.burst_devices / (self.burst_end - self.burst_start)
                           if self.burst_devices and self.burst_end > self.burst_start else 0.0)

    def _steady_at(self, i: int) -> float:
        return self.start + i / self.rate

    def _burst_at(self, j: int) -> float:
        if not self.burst_rate or j >= self.burst_devices:
            return math.inf
        return self.burst_start + j / self.burst_rate

    def due(self, until: float) -> list[tuple[str, float, bytes]]:
        """The events due at or before ``until`` not returned yet, in time order."""
        out: list[tuple[str, float, bytes]] = []
        while True:
            ts, tb = self._steady_at(self._i), self._burst_at(self._j)
            if min(ts, tb) > until:
                return out
            if tb < ts:
                out.append(self._burst_like(self._j, tb))
                self._j += 1
            else:
                out.append(self._steady(self._i, ts))
                self._i += 1

    def _target(self) -> tuple[str, str]:
        r = self._rng
        if r.random() < self.hot_share:
            self.counts["hot_likes"] += 1
            return HOT_TARGET, HOT_MCHID
        m = r.randrange(self.merchants)
        return f"post:{m}-{r.randrange(self.targets_per_merchant)}", f"19{m:08d}"

    def _steady(self, i: int, t: float) -> tuple[str, float, bytes]:
        r = self._rng
        # the users who arrived in the last `user_stay` seconds are the active ones
        arrived = int((t - self.start) * self.user_rate)
        u = max(0, arrived - r.randrange(max(1, int(self.user_stay * self.user_rate))))
        user, device, ip = f"{self.prefix}-u{u}", f"{self.prefix}-d{u}", _ipv4(10, u // 3)
        if r.random() < self.like_share:
            target, mchid = self._target()
            self.counts["likes"] += 1
            return LIKES, t, _like(f"{self.prefix}-l{i}", user, target, mchid, t, ip, device)
        m = r.randrange(self.merchants)
        amount = r.choice((1, 99, 500, 1200, 3500, 8800, 19900))
        self.counts["payments"] += 1
        return PAYMENTS, t, orjson.dumps({
            "transaction_id": f"{self.prefix}-tx{i}", "out_trade_no": f"o-{i}",
            "mchid": f"19{m:08d}", "appid": "wx-soak", "trade_state": "SUCCESS",
            "success_time": format_time(t), "payer": {"openid": user},
            "amount": {"total": amount, "currency": "CNY"},
            "payer_client_ip": ip, "scene_info": {"device_id": device}})

    def _burst_like(self, j: int, t: float) -> tuple[str, float, bytes]:
        target, mchid = self._target()
        self.counts["likes"] += 1
        self.counts["burst_likes"] += 1
        return LIKES, t, _like(f"{self.prefix}-bl{j}", f"{self.prefix}-bu{j}", target, mchid, t,
                               _ipv4(100, j // 4), f"{self.prefix}-bd{j}")


def _ipv4(first: int, n: int) -> str:
    """The ``n``-th address of ``first``.0.0.0/8 (16.7 million: the soak never wraps)."""
    n %= 1 << 24
    return f"{first}.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


def _like(like_id: str, user: str, target: str, mchid: str, t: float, ip: str,
          device: str) -> bytes:
    return orjson.dumps({"like_id": like_id, "user_openid": user, "target_id": target,
                         "owner_mchid": mchid, "action": "like", "ts": format_time(t),
                         "client_ip": ip, "device_id": device,
                         "user_created": format_time(t - ACCOUNT_AGE)})


# ----------------------------------------------------------------------------- the run


class Producer(threading.Thread):
    """Produces :class:`SoakTraffic` to the input topics as its events come due."""

    def __init__(self, bootstrap: str, topics: dict[str, str], traffic: SoakTraffic,
                 stop_at: float) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1,
                                      batch_size=256 * 1024)
        self.topics, self.traffic, self.stop_at = topics, traffic, stop_at
        self.stopping = threading.Event()
        self.sent = 0
        self.behind_max = 0.0  # seconds the producer was ever behind its schedule
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                now = time.time()
                until = min(now, self.stop_at)
                events = self.traffic.due(until)
                for kind, t, value in events:
                    self.producer.send(self.topics[kind], value=value,
                                       timestamp_ms=int(t * 1000))
                self.sent += len(events)
                if events:
                    self.behind_max = max(self.behind_max, time.time() - events[-1][1])
                if until >= self.stop_at:
                    break
                time.sleep(0.05)
            self.producer.flush(60)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
        finally:
            self.producer.close(10)


def process_rss_mib(pid: int) -> float:
    """VmRSS of ``pid`` and all of its descendants, in MiB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def sample(worker: Any, topics: Any, t0: float, producer: Producer) -> dict[str, Any]:
    """One sample of the worker: RSS, state per view, lag, alerts."""
    s: dict[str, Any] = {"t_s": round(time.time() - t0, 1),
                         "rss_mib": round(process_rss_mib(worker.proc.pid), 1),
                         "produced": producer.sent, "window_items": {}, "keys": {},
                         "lag_input": 0, "lag_views": 0, "alerts": 0, "late": 0, "consumed": 0}
    # a scrape waits while the worker holds the interpreter (a long sweep or
    # compaction of the state): the time it took is a figure, not a failure
    started = time.monotonic()
    for timeout in SCRAPE_TIMEOUTS:
        try:
            metrics = worker.metrics(timeout=timeout)
            break
        except (TimeoutError, urllib.error.URLError):
            if timeout == SCRAPE_TIMEOUTS[-1]:
                raise
    s["scrape_s"] = round(time.monotonic() - started, 1)
    for (name, labels), v in metrics.items():
        lb = dict(labels)
        if name == "likeguard_state_window_items":
            s["window_items"][lb["view"]] = int(v)
        elif name == "likeguard_state_keys":
            s["keys"][lb["view"]] = int(v)
        elif name == "likeguard_consumer_lag":
            if lb["topic"] in (topics.payments, topics.likes):
                s["lag_input"] += int(v)
            elif lb["topic"].startswith(topics.view_prefix + "."):
                s["lag_views"] += int(v)
        elif name == "likeguard_alerts_total":
            s["alerts"] += int(v)
        elif name == "likeguard_late_events_total":
            s["late"] += int(v)
        elif name == "likeguard_events_consumed_total":
            s["consumed"] += int(v)
        elif name == "likeguard_interned_ids":
            s["interned_ids"] = int(v)
    s["items_total"] = sum(s["window_items"].values())
    return s


def summarize(samples: list[dict[str, Any]], burst: tuple[float, float], rate: float,
              tolerance: float, windows: dict[str, float]) -> tuple[dict[str, Any], list[str]]:
    """The summary of a run and the reasons it failed (none: it passed)."""
    b0, b1 = burst
    before = [s for s in samples if s["t_s"] <= b0] or samples[:1]
    base, end = before[-1], samples[-1]
    peak = max(samples, key=lambda s: s["rss_mib"])
    peak_items = max(samples, key=lambda s: s["items_total"])

    def point(s: dict[str, Any]) -> dict[str, Any]:
        return {"t_s": s["t_s"], "rss_mib": s["rss_mib"], "items_total": s["items_total"],
                "window_items": s["window_items"], "keys": s["keys"]}

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    max_lag = max(samples, key=lambda s: s["lag_input"] + s["lag_views"])
    summary: dict[str, Any] = {
        "baseline": point(base), "peak_rss": point(peak), "peak_items": point(peak_items),
        "end": point(end),
        "end_over_baseline_rss": ratio(end["rss_mib"], base["rss_mib"]),
        "peak_over_baseline_rss": ratio(peak["rss_mib"], base["rss_mib"]),
        "peak_over_baseline_items": ratio(peak_items["items_total"], base["items_total"]),
        "end_over_baseline_items": ratio(end["items_total"], base["items_total"]),
        "end_over_baseline_items_by_view": {
            v: ratio(end["window_items"].get(v, 0), base["window_items"].get(v, 0))
            for v in VIEWS},
        "max_lag": {"t_s": max_lag["t_s"], "input": max_lag["lag_input"],
                    "views": max_lag["lag_views"]},
        "max_scrape_s": max(s.get("scrape_s", 0.0) for s in samples),
        "max_lag_input": max(s["lag_input"] for s in samples),
        "max_lag_views": max(s["lag_views"] for s in samples),
        "end_lag_input": end["lag_input"], "end_lag_views": end["lag_views"],
        "alerts": end["alerts"], "late_events": end["late"],
        # when the burst's items leave each view: the burst's end plus the view's window
        "burst_expires_s": {v: round(b1 + w) for v, w in windows.items()},
        "views_holding_burst_at_end": sorted(v for v, w in windows.items()
                                             if b1 + w > end["t_s"]),
    }
    why = []
    if end["rss_mib"] > (1 + tolerance) * base["rss_mib"]:
        why.append(f"resident set at the end {end['rss_mib']:.0f} MiB is "
                   f"{end['rss_mib'] / base['rss_mib']:.2f} times the pre-burst "
                   f"{base['rss_mib']:.0f} MiB (allowed {1 + tolerance:.2f})")
    if end["lag_input"] > 30 * rate:
        why.append(f"input lag at the end is {end['lag_input']:,} records, more than 30 s of "
                   f"input ({30 * rate:,.0f}): the worker fell behind")
    return summary, why


def view_windows() -> dict[str, float]:
    """How long each view keeps an item after its last event (``docs/engine.md``)."""
    from detectors.config import EngineConfig

    c = EngineConfig()
    return {"merchant": max(c.window, c.join_window), "ip": c.window,
            "device": c.device_window, "user": c.lockstep_window, "lockstep": c.window}


def svg_plot(samples: list[dict[str, Any]], burst: tuple[float, float], title: str) -> str:
    """Three stacked panels (RSS, window items per view, lag) against minutes, hand-drawn."""
    w, h, left, right, top, gap = 860, 220, 80, 150, 60, 50
    xmax = max(s["t_s"] for s in samples) / 60 or 1.0
    colors = {"rss": "#1f77b4", "total": "#000000", "merchant": "#d62728", "ip": "#2ca02c",
              "device": "#9467bd", "user": "#ff7f0e", "lockstep": "#17becf",
              "input": "#d62728", "views": "#7f7f7f"}
    panels: list[tuple[str, dict[str, list[float]]]] = [
        ("resident set, MiB", {"rss": [s["rss_mib"] for s in samples]}),
        ("window items", {"total": [s["items_total"] for s in samples],
                          **{v: [s["window_items"].get(v, 0) for s in samples] for v in VIEWS}}),
        ("consumer lag, records", {"input": [s["lag_input"] for s in samples],
                                   "views": [s["lag_views"] for s in samples]}),
    ]
    xs = [s["t_s"] / 60 for s in samples]
    height = top + len(panels) * (h + gap) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15">{title}</text>']
    pw = w - left - right
    for k, (label, series) in enumerate(panels):
        y0 = top + k * (h + gap)
        ymax = max(max(v) for v in series.values()) or 1.0
        ymax = _nice(ymax)

        def px(x: float) -> float:
            return left + pw * x / xmax

        def py(y: float, y0: float = y0, ymax: float = ymax) -> float:
            return y0 + h - h * y / ymax

        bx0, bx1 = px(min(burst[0], xmax * 60) / 60), px(min(burst[1], xmax * 60) / 60)
        out.append(f'<rect x="{bx0:.1f}" y="{y0}" width="{max(0.0, bx1 - bx0):.1f}" height="{h}" '
                   f'fill="#ffdd99" opacity="0.5"/>')
        out.append(f'<rect x="{left}" y="{y0}" width="{pw}" height="{h}" fill="none" '
                   f'stroke="#444"/>')
        out.append(f'<text x="{left}" y="{y0 - 6}">{label}</text>')
        for q in range(5):
            yv = ymax * q / 4
            out.append(f'<line x1="{left - 4}" x2="{left}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" '
                       f'stroke="#444"/><text x="{left - 6}" y="{py(yv) + 4:.1f}" '
                       f'text-anchor="end">{_short(yv)}</text>')
        step = max(1, round(xmax / 10))
        for m in range(0, int(xmax) + 1, step):
            out.append(f'<line x1="{px(m):.1f}" x2="{px(m):.1f}" y1="{y0 + h}" y2="{y0 + h + 4}" '
                       f'stroke="#444"/><text x="{px(m):.1f}" y="{y0 + h + 16}" '
                       f'text-anchor="middle">{m}</text>')
        out.append(f'<text x="{left + pw / 2}" y="{y0 + h + 30}" text-anchor="middle">'
                   f'minutes (burst shaded)</text>')
        for n, (name, ys) in enumerate(series.items()):
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
            width = 2.5 if name in ("rss", "total", "input") else 1.5
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colors[name]}" '
                       f'stroke-width="{width}"/>')
            out.append(f'<text x="{left + pw + 10}" y="{y0 + 14 + 16 * n}" '
                       f'fill="{colors[name]}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at least ``v``."""
    p = 10 ** math.floor(math.log10(v))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= v)


def _short(v: float) -> str:
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run (30)")
    p.add_argument("--rate", type=float, default=1000.0, help="steady events/s (1000)")
    p.add_argument("--burst-devices", type=int, default=1_000_000,
                   help="likes of the burst, each from a new device (1,000,000)")
    p.add_argument("--burst-start", type=float, default=None,
                   help="minute the burst starts (a third of the run)")
    p.add_argument("--burst-minutes", type=float, default=None,
                   help="length of the burst in minutes (a third of the run)")
    p.add_argument("--sample", type=float, default=30.0, help="seconds between samples (30)")
    p.add_argument("--tolerance", type=float, default=0.25,
                   help="end RSS may exceed the pre-burst RSS by this share (0.25)")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "soak.json")
    a = p.parse_args(argv)
    burst_start = 60 * (a.burst_start if a.burst_start is not None else a.minutes / 3)
    burst_len = 60 * (a.burst_minutes if a.burst_minutes is not None else a.minutes / 3)
    burst = (burst_start, burst_start + burst_len)
    duration = 60 * a.minutes

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_worker import PARTITIONS, Broker
    from benchkit import write_figures

    from tests.worker_harness import WorkerProcess, WorkerTopics, wait_for

    windows = view_windows()
    samples: list[dict[str, Any]] = []
    with Broker() as broker, tempfile.TemporaryDirectory(prefix="lg-soak-") as tmp:
        topics = WorkerTopics.unique("soak")
        topics.create(broker.bootstrap, partitions=PARTITIONS)
        # the deployment's defaults, not the tests' quick takeover and short batches
        worker = WorkerProcess(broker.bootstrap, topics, Path(tmp) / "worker", settings={
            "LIKEGUARD_SESSION_TIMEOUT": "30", "LIKEGUARD_HEARTBEAT_INTERVAL": "3",
            "LIKEGUARD_BATCH_WITHIN": "0.5"})
        worker.start()
        producer = None
        try:
            worker.wait_ready(180)
            wait_for(lambda: "metrics on http" in worker.log_text(), 60, worker.tail,
                     alive=worker.alive)
            t0 = time.time()
            traffic = SoakTraffic(start=t0, rate=a.rate, burst_start=t0 + burst[0],
                                  burst_end=t0 + burst[1], burst_devices=a.burst_devices,
                                  seed=a.seed, prefix=f"s{int(t0)}")
            producer = Producer(broker.bootstrap, {PAYMENTS: topics.payments,
                                                   LIKES: topics.likes}, traffic, t0 + duration)
            producer.start()
            print(f"soak: {a.minutes:g} min at {a.rate:g} events/s, burst of "
                  f"{a.burst_devices:,} devices from minute {burst[0] / 60:g} to "
                  f"{burst[1] / 60:g}; a sample every {a.sample:g} s", flush=True)
            k = 0
            while True:
                s = sample(worker, topics, t0, producer)
                samples.append(s)
                print(f"  {s['t_s'] / 60:5.1f} min  RSS {s['rss_mib']:7.0f} MiB  items "
                      f"{s['items_total']:>9,} " + " ".join(
                          f"{v}={s['window_items'].get(v, 0):,}" for v in VIEWS)
                      + f"  lag {s['lag_input']:,}/{s['lag_views']:,}  alerts {s['alerts']}"
                      + (f"  scrape {s['scrape_s']:g} s" if s["scrape_s"] >= 1 else ""),
                      flush=True)
                if s["t_s"] >= duration - 1:
                    break
                k += 1
                nxt = min(t0 + k * a.sample, t0 + duration)
                while time.time() < nxt:
                    if not worker.alive():
                        raise SystemExit(f"the worker died:\n{worker.tail()}")
                    if producer.error is not None:
                        raise SystemExit(f"the producer failed: {producer.error!r}")
                    time.sleep(min(1.0, max(0.0, nxt - time.time())))
        finally:
            if producer is not None:
                producer.stopping.set()
                producer.join(30)
            worker.stop()
        counts = dict(traffic.counts)
    summary, why = summarize(samples, burst, a.rate, a.tolerance, windows)
    summary["producer_behind_max_s"] = round(producer.behind_max, 2)
    fig = {"minutes": a.minutes, "rate": a.rate, "burst_devices": a.burst_devices,
           "burst_s": list(burst), "sample_s": a.sample, "events": counts,
           "hot_share_of_likes": round(counts["hot_likes"] / max(1, counts["likes"]), 4),
           "view_windows_s": windows, "summary": summary, "passed": not why, "why": why,
           "samples": samples}
    svg = a.out.with_suffix(".svg")
    svg.parent.mkdir(parents=True, exist_ok=True)
    svg.write_text(svg_plot(samples, burst, f"likeguard soak: {a.minutes:g} min at "
                            f"{a.rate:g} events/s, {a.burst_devices:,}-device burst"))
    write_figures(fig, a.out)
    print(f"plot written to {svg}")
    base, peak, end = summary["baseline"], summary["peak_rss"], summary["end"]
    print(f"RSS    baseline {base['rss_mib']:.0f} MiB (minute {base['t_s'] / 60:.1f}), peak "
          f"{peak['rss_mib']:.0f} MiB (ratio {summary['peak_over_baseline_rss']}), end "
          f"{end['rss_mib']:.0f} MiB (ratio end/baseline {summary['end_over_baseline_rss']})")
    print(f"items  baseline {base['items_total']:,}, peak {summary['peak_items']['items_total']:,} "
          f"(ratio {summary['peak_over_baseline_items']}), end {end['items_total']:,} "
          f"(ratio {summary['end_over_baseline_items']})")
    print("items end/baseline by view: " + ", ".join(
        f"{v} {r}" for v, r in summary["end_over_baseline_items_by_view"].items()))
    print(f"lag    max input {summary['max_lag_input']:,}, max views {summary['max_lag_views']:,}; "
          f"at the end {summary['end_lag_input']:,} / {summary['end_lag_views']:,}; "
          f"longest metrics scrape {summary['max_scrape_s']:g} s")
    print(f"alerts {summary['alerts']:,}; late events {summary['late_events']:,}; "
          f"hot target {fig['hot_share_of_likes']:.1%} of {counts['likes']:,} likes")
    held = summary["views_holding_burst_at_end"]
    if held:
        print("views whose window still covers the burst at the end: " + ", ".join(
            f"{v} (until minute {summary['burst_expires_s'][v] / 60:g})" for v in held))
    for reason in why:
        print(f"FAILED: {reason}")
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
