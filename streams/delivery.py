"""Delivery: what the worker sent is on the broker before the input behind it
is committed.

Every record the worker produces (repartitioned events, progress marks,
forwarded likes, alerts, dead letters) goes through one :class:`Outbox`,
which keeps the producer's futures until :meth:`Outbox.confirm` has seen
each delivered. The two commit points await it first: the ingest before it
commits input offsets, a checkpoint before it writes the header that makes
a slot's state (and the acks of the view records behind it) final.

What the broker refuses (``docs/reliability.md#producer-failures``):

* an alert too large for the alerts topic (``max.message.bytes``) is sent
  again alone (a record batch of several may be what was too large), then,
  if it is still refused, replaced by a stub on the dead-letter topic with
  the reason ``alert_too_large``: the alert's id, entity, window, detector,
  score, severity and action, without its reasons' details and evidence;
* anything else (write not authorised, the topic gone, the broker out of
  reach past the producer's own retries) is :class:`DeliveryFailed`: nothing
  after it is committed, the worker stops with one error line, and after a
  restart the input behind the refused record is processed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError

from streams.topics import DeadLetter

log = logging.getLogger("likeguard.delivery")

__all__ = ["DeliveryFailed", "Outbox", "alert_stub"]

#: ``send(topic, key, value, partition, timestamp, headers)`` -> awaitable future
Send = Callable[..., Awaitable[Any]]
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)
#: pending sends past which the delivered ones are dropped without a commit point
PRUNE_AT = 4096
#: the alert fields a dead-lettered stub keeps
_STUB_FIELDS = ("alert_id", "entity", "window", "score", "severity", "action", "detector",
                "emitted_at")


class DeliveryFailed(Exception):
    """The broker refused a record for good: ``topic`` and the producer's ``error``."""

    def __init__(self, topic: str, error: BaseException) -> None:
        super().__init__(f"a record for {topic} was not delivered: {_describe(error)}")
        self.topic = topic
        self.error = error


def _describe(exc: BaseException) -> str:
    """The producer's error on one line, through Faust's ``ProducerSendError`` wrapper."""
    cause = exc.__cause__ if isinstance(exc.__cause__, KafkaError) else exc
    text = " ".join(str(cause).split())
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _too_large(exc: BaseException) -> bool:
    return isinstance(exc, _TOO_LARGE) or isinstance(exc.__cause__, _TOO_LARGE)


def alert_stub(alert: dict[str, Any]) -> dict[str, Any]:
    """The part of an alert a dead letter keeps when the alert is too large.

    >>> alert_stub({"alert_id": "a1", "entity": {"type": "ip", "id": "10.0.0.1"},
    ...             "reasons": [{"code": "ip_farm", "detail": "..."}], "evidence": {}})
    {'alert_id': 'a1', 'entity': {'type': 'ip', 'id': '10.0.0.1'}, 'reasons': ['ip_farm']}
    """
    stub = {k: alert[k] for k in _STUB_FIELDS if k in alert}
    stub["reasons"] = [r["code"] for r in alert.get("reasons", ())]
    return stub


class Outbox:
    """The worker's producer, with every send's future kept until confirmed.

    Parameters
    ----------
    send
        ``producer.send(topic, key, value, partition, timestamp, headers)``,
        returning the delivery future.
    deadletter_topic
        Where a too-large alert's stub goes.
    on_dead_letter
        ``on_dead_letter(topic, reason)``: counts a dead-lettered alert.
    """

    def __init__(self, send: Send, deadletter_topic: str,
                 on_dead_letter: Callable[[str, str], None]) -> None:
        self._send = send
        self._deadletter = deadletter_topic
        self._on_dead_letter = on_dead_letter
        #: (future, topic, the alert's key and value, or None for other records)
        self._pending: list[tuple[Any, str, tuple[bytes, bytes] | None]] = []
        #: the first refusal: sticky, so no later commit point passes it
        self.failed: DeliveryFailed | None = None
        self._prune_at = PRUNE_AT
        #: one confirm at a time: a second one must not return while the first
        #: still holds a record sent before it (or has yet to see its refusal)
        self._confirming = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    async def send(self, topic: str, key: bytes | None, value: bytes | None,
                   partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> None:
        """Send one record; its delivery is checked by the next :meth:`confirm`."""
        try:
            fut = await self._send(topic, key, value, partition, None, headers)
        except KafkaError as exc:
            raise self._fail(topic, exc) from exc
        except Exception as exc:  # Faust's ProducerSendError wraps the client's error
            if isinstance(exc.__cause__, KafkaError):
                raise self._fail(topic, exc) from exc
            raise
        self._pending.append((fut, topic, None))
        if len(self._pending) >= self._prune_at:
            self._prune()

    def _prune(self) -> None:
        """Drop the futures already delivered, so a worker whose commit points
        are far apart (a quiet input, slots with nothing to checkpoint) holds
        only what is still in flight or refused."""
        self._pending = [p for p in self._pending
                         if not p[0].done() or p[0].cancelled() or p[0].exception() is not None]
        self._prune_at = max(PRUNE_AT, 2 * len(self._pending))

    async def send_alert(self, topic: str, key: bytes, value: bytes) -> None:
        """Send an alert; one too large for its topic is dead-lettered by :meth:`confirm`."""
        try:
            fut = await self._send(topic, key, value, None, None, None)
        except Exception as exc:  # noqa: BLE001 - sorted below
            if not _too_large(exc):
                if isinstance(exc, KafkaError) or isinstance(exc.__cause__, KafkaError):
                    raise self._fail(topic, exc) from exc
                raise
            await self._dead_letter_alert(topic, key, value, exc)
            return
        self._pending.append((fut, topic, (key, value)))

    async def confirm(self) -> None:
        """Wait until every record sent so far is delivered.

        Raises
        ------
        DeliveryFailed
            A record was refused (or an earlier one was): nothing behind it
            may be committed.
        """
        async with self._confirming:
            if self.failed is not None:
                raise self.failed
            while self._pending:
                pending, self._pending = self._pending, []
                for fut, topic, alert in pending:
                    try:
                        await fut
                    except Exception as exc:  # noqa: BLE001 - sorted below
                        if alert is None or not _too_large(exc):
                            raise self._fail(topic, exc) from exc
                        await self._alone(topic, *alert, exc)

    def _fail(self, topic: str, exc: BaseException) -> DeliveryFailed:
        if self.failed is None:
            self.failed = DeliveryFailed(topic, exc)
        return self.failed

    async def _alone(self, topic: str, key: bytes, value: bytes, exc: BaseException) -> None:
        """An alert whose record batch was too large: again on its own, then dead-lettered."""
        try:
            await (await self._send(topic, key, value, None, None, None))
        except Exception as again:  # noqa: BLE001 - sorted below
            if not _too_large(again):
                raise self._fail(topic, again) from again
            await self._dead_letter_alert(topic, key, value, again)

    async def _dead_letter_alert(self, topic: str, key: bytes, value: bytes,
                                 exc: BaseException) -> None:
        stub = orjson.dumps(alert_stub(orjson.loads(value)))
        letter = DeadLetter(original=stub.decode(), encoding="utf-8", topic=topic, partition=-1,
                            offset=-1, reason="alert_too_large",
                            detail=f"{len(value)} bytes refused by the broker: {_describe(exc)}",
                            size=len(value), truncated=True)
        log.error("alert %s (%d bytes) is too large for %s; its stub is on %s",
                  orjson.loads(stub)["alert_id"], len(value), topic, self._deadletter)
        await self.send(self._deadletter, key, letter.dumps())
        self._on_dead_letter(topic, "alert_too_large")
