"""The outbox (streams/delivery.py) with a stand-in producer: what is confirmed,
what is dead-lettered, what stops the worker. The real broker's refusals are
in tests/integration/test_producer_failures.py and test_acls.py."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError, TopicAuthorizationFailedError
from faust.exceptions import ProducerSendError

from streams.delivery import DeliveryFailed, Outbox

ALERT = {"alert_id": "a1", "entity": {"type": "ip", "id": "10.0.0.1"},
         "window": {"start": "2026-12-05T00:00:00Z", "end": "2026-12-05T00:05:00Z"},
         "score": 0.9, "severity": "critical", "action": "limit_payments",
         "reasons": [{"code": "ip_farm", "detail": "many accounts", "value": 40.0}],
         "evidence": {"sample_accounts": ["o" * 28] * 100}, "detector": "ip_farm@1",
         "emitted_at": "2026-12-05T00:05:01.000Z"}


class Producer:
    """Records every send; ``refuse(topic, value) -> exception | None`` decides
    whether its delivery future fails; ``at_send`` raises at send time instead."""

    def __init__(self, refuse: Any = None, at_send: Any = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.refuse = refuse or (lambda topic, value: None)
        self.at_send = at_send or (lambda topic, value: None)

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: Any,
                   timestamp: Any, headers: Any) -> asyncio.Future:
        exc = self.at_send(topic, value)
        if exc is not None:
            raise exc
        self.sent.append((topic, key, value))
        fut = asyncio.get_running_loop().create_future()
        err = self.refuse(topic, value)
        if err is None:
            fut.set_result(len(self.sent))
        else:
            fut.set_exception(err)
        return fut


def _outbox(producer: Producer) -> tuple[Outbox, list[tuple[str, str]]]:
    counted: list[tuple[str, str]] = []
    return Outbox(producer.send, "dlq", lambda t, r: counted.append((t, r))), counted


def test_confirm_waits_for_every_send_and_a_refusal_sticks() -> None:
    async def go() -> None:
        producer = Producer(refuse=lambda t, v: TopicAuthorizationFailedError()
                            if t == "alerts" else None)
        out, _ = _outbox(producer)
        await out.send("views", None, b"x", 0)
        await out.confirm()  # delivered: nothing pending
        assert len(out) == 0 and out.failed is None
        await out.send_alert("alerts", b"ip:10.0.0.1", orjson.dumps(ALERT))
        await out.send("views", None, b"y", 1)
        with pytest.raises(DeliveryFailed, match="a record for alerts was not delivered: "
                                                 "TopicAuthorizationFailedError"):
            await out.confirm()
        # no later commit point passes the refused alert, even with nothing pending
        with pytest.raises(DeliveryFailed):
            await out.confirm()

    asyncio.run(go())


def test_an_alert_too_large_in_its_batch_goes_again_alone() -> None:
    async def go() -> None:
        tries: list[bytes] = []

        def refuse(topic: str, value: bytes) -> Exception | None:
            if topic == "alerts":
                tries.append(value)
                return MessageSizeTooLargeError() if len(tries) == 1 else None
            return None

        producer = Producer(refuse=refuse)
        out, counted = _outbox(producer)
        await out.send_alert("alerts", b"k", orjson.dumps(ALERT))
        await out.confirm()
        assert len(tries) == 2 and counted == [] and out.failed is None
        assert [t for t, _k, _v in producer.sent] == ["alerts", "alerts"]

    asyncio.run(go())


@pytest.mark.parametrize("when", ["delivery", "send"])
def test_an_alert_too_large_alone_is_dead_lettered_as_a_stub(when: str) -> None:
    """Refused by the broker (the future fails, also when sent alone) or by the
    client's own size check (``send`` raises, wrapped by Faust)."""
    async def go() -> None:
        value = orjson.dumps(ALERT)
        too_large = MessageSizeTooLargeError()
        wrapped = ProducerSendError(f"Error while sending: {too_large!r}")
        wrapped.__cause__ = too_large
        producer = Producer(
            refuse=(lambda t, v: MessageSizeTooLargeError() if t == "alerts" else None)
            if when == "delivery" else None,
            at_send=(lambda t, v: wrapped if t == "alerts" else None) if when == "send" else None)
        out, counted = _outbox(producer)
        await out.send_alert("alerts", b"ip:10.0.0.1", value)
        await out.confirm()
        assert out.failed is None and counted == [("alerts", "alert_too_large")]
        topic, key, letter = producer.sent[-1]
        assert (topic, key) == ("dlq", b"ip:10.0.0.1")
        d = orjson.loads(letter or b"")
        assert d["reason"] == "alert_too_large" and d["topic"] == "alerts"
        assert d["size"] == len(value) and "MessageSizeTooLargeError" in d["detail"]
        stub = orjson.loads(d["original"])
        assert "evidence" not in stub and stub["reasons"] == ["ip_farm"]
        assert {k: stub[k] for k in ("alert_id", "entity", "score", "severity", "action")} == \
            {k: ALERT[k] for k in ("alert_id", "entity", "score", "severity", "action")}

    asyncio.run(go())


def test_a_refusal_at_send_time_stops_too() -> None:
    async def go() -> None:
        denied = TopicAuthorizationFailedError()
        wrapped = ProducerSendError(f"Error while sending: {denied!r}")
        wrapped.__cause__ = denied
        out, _ = _outbox(Producer(at_send=lambda t, v: wrapped))
        with pytest.raises(DeliveryFailed, match="views"):
            await out.send("views", None, b"x", 0)
        with pytest.raises(DeliveryFailed):
            await out.confirm()

    asyncio.run(go())


def test_delivered_sends_do_not_pile_up_between_commit_points() -> None:
    """Marks sent for hours with nothing to commit keep only what is in flight."""
    from streams.delivery import PRUNE_AT

    async def go() -> None:
        out, _ = _outbox(Producer())
        for i in range(5 * PRUNE_AT):
            await out.send("views", None, b"m%d" % i, i % 6)
        assert len(out) < PRUNE_AT
        await out.confirm()
        assert len(out) == 0 and out.failed is None

    asyncio.run(go())


def test_a_refused_send_is_kept_until_confirmed() -> None:
    async def go() -> None:
        from streams.delivery import PRUNE_AT

        def refuse(topic: str, value: bytes) -> Exception | None:
            return TopicAuthorizationFailedError() if value == b"m0" else None

        out, _ = _outbox(Producer(refuse=refuse))
        for i in range(2 * PRUNE_AT):
            await out.send("views", None, b"m%d" % i, 0)
        assert 1 <= len(out) < PRUNE_AT
        with pytest.raises(DeliveryFailed):
            await out.confirm()

    asyncio.run(go())


def test_a_confirm_beside_another_waits_for_what_that_one_holds() -> None:
    """Two commit points at once (a checkpoint beside the ingest's commit): the
    second may not return while a record sent before it is still in flight
    in the first's hands, nor pass a refusal the first has yet to see."""
    async def go() -> None:
        loop = asyncio.get_running_loop()
        held: list[asyncio.Future] = []

        async def send(*_: Any) -> asyncio.Future:
            held.append(loop.create_future())
            return held[-1]

        out = Outbox(send, "dlq", lambda t, r: None)
        await out.send_alert("alerts", b"k", orjson.dumps(ALERT))
        first = asyncio.ensure_future(out.confirm())
        await asyncio.sleep(0)  # the first now awaits the alert's delivery
        second = asyncio.ensure_future(out.confirm())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not second.done()
        held[0].set_exception(TopicAuthorizationFailedError())
        for task in (first, second):
            with pytest.raises(DeliveryFailed):
                await task

    asyncio.run(go())
