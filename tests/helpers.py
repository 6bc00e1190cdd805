"""Small event builders shared by the unit tests (no broker, no simulator)."""

from __future__ import annotations

import orjson

from detectors.events import Like, Payment, format_time

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z, a round event-time origin


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
