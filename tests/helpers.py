"""Small event builders and the worker's topology model, shared by the tests (no broker)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import orjson

from detectors.alerts import Alert
from detectors.config import EngineConfig
from detectors.engine import ALL_VIEWS, Engine, route_keys
from detectors.events import Like, Payment, format_time
from detectors.partitioning import kafka_partition

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z, a round event-time origin
#: :func:`with_path`'s value that removes the field
DROP = object()


def with_path(doc: dict[str, Any], path: str, value: object = DROP) -> dict[str, Any]:
    """A copy of ``doc`` with ``path`` (``"a"`` or ``"a.b"``) set to ``value``, or
    removed when ``value`` is :data:`DROP`; the parent of ``"a.b"`` is copied (an
    empty object when it is missing or not an object), ``doc`` left as it was."""
    out = dict(doc)
    head, _, leaf = path.rpartition(".")
    target = out
    if head:
        parent = out.get(head)
        target = out[head] = dict(parent) if isinstance(parent, dict) else {}
    if value is DROP:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return out


def payment(i: int | str, user: str, mchid: str, ts: float, amount: int = 1,
            ip: str | None = None, device: str | None = None) -> Payment:
    return Payment(f"tx-{i}", mchid, user, amount, ts, ip=ip, device=device)


def like(i: int | str, user: str, target: str, mchid: str, ts: float, ip: str | None = None,
         device: str | None = None, created: float | None = None) -> Like:
    return Like(f"l-{i}", user, target, mchid, ts, ip=ip, device=device, user_created=created)


def payment_json(**over: object) -> bytes:
    base: dict[str, object] = {
        "transaction_id": "4200000001202611240000000001",
        "out_trade_no": "o-1",
        "mchid": "1900000042",
        "appid": "wx1",
        "trade_state": "SUCCESS",
        "success_time": "2026-11-24T12:00:05+08:00",
        "payer": {"openid": "o-user-1"},
        "amount": {"total": 1, "currency": "CNY"},
        "payer_client_ip": "10.1.2.3",
        "scene_info": {"device_id": "d-1"},
    }
    base.update(over)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


def like_json(**over: object) -> bytes:
    base: dict[str, object] = {
        "like_id": "l-1",
        "user_openid": "o-user-1",
        "target_id": "video:9",
        "owner_mchid": "1900000042",
        "action": "like",
        "ts": "2026-11-24T12:00:09.500+08:00",
        "client_ip": "2001:db8::1",
        "device_id": "d-1",
        "user_created": format_time(T0),
    }
    base.update(over)
    return orjson.dumps({k: v for k, v in base.items() if v is not None})


class Topology:
    """The worker's topology without Kafka (see :mod:`streams.agents`).

    One engine per (view, partition); events routed by
    :func:`~detectors.engine.route_keys` to the partition Kafka would pick,
    naming their source as the worker does (input topic and partition; the
    user partition for forwarded likes); the user view's enriched likes fed
    to the lockstep engines; at the end every engine flushed, user before
    lockstep, as the worker's idle flush orders them. With ``marks``, each
    source also sends a progress mark to every engine after each of its
    events, and each user engine marks every lockstep engine with its
    watermark + grace, as the worker's ingest and user slots do (throttled
    there: as long as no event is late, when a mark comes does not matter).
    """

    def __init__(self, config: EngineConfig, marks: bool = True) -> None:
        self.cfg, self.marks = config, marks
        n = config.partitions
        self.engines = {(v, p): Engine(config, views=[v]) for v in ALL_VIEWS for p in range(n)}
        self.alerts: list[Alert] = []

    def _run(self, view: str, key: str, ev: Any, src: Hashable) -> None:
        p = kafka_partition(key, self.cfg.partitions)
        eng = self.engines[(view, p)]
        self.alerts += eng.process(ev, src)
        self._forward(view, p, eng)

    def _forward(self, view: str, p: int, eng: Engine) -> None:
        for v, k, co in eng.take_forwards():
            self._run(v, k, co, ("user", p))
        if self.marks and view == "user" and eng.watermark > float("-inf"):
            for q in range(self.cfg.partitions):
                self.alerts += self.engines[("lockstep", q)].progress(
                    ("user", p), eng.watermark + self.cfg.grace, eng.max_ts)

    def feed(self, src: Hashable, ev: Payment | Like) -> None:
        for view, key in route_keys(ev).items():
            self._run(view, key, ev, src)
        if self.marks:
            for (view, p), eng in self.engines.items():
                if view != "lockstep":
                    self.alerts += eng.progress(src, ev.ts)
                    if view == "user":
                        self._forward(view, p, eng)

    def flush(self) -> None:
        for order in ("merchant", "ip", "device", "user", "lockstep"):
            for (view, p), eng in self.engines.items():
                if view == order:
                    self.alerts += eng.flush()
                    self._forward(view, p, eng)

    def lag(self, now: float) -> float:
        """Median lag of the engines' watermarks behind ``now`` (the newest event)."""
        wms = sorted(now - e.watermark for e in self.engines.values())
        return wms[len(wms) // 2]
