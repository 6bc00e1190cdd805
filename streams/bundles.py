"""Bundles: the events of one ingest batch (or one slot's forwards) grouped
into one record per destination view partition and source.

The worker's cost is per Kafka record, not per byte, so the repartitioned
events travel in bundles (``docs/worker.md``, "Topology";
``docs/performance.md`` measures the gain).
"""

from __future__ import annotations

from typing import Any

from streams.topics import BUNDLE_BYTES, SOURCE_HEADER, encode_bundle

__all__ = ["Bundles"]


class Bundles:
    """Encoded view events grouped by destination until sent as bundles.

    A destination is a view topic, a partition and a source (the ``lg-src``
    header). Each destination's events leave as one record per batch
    (:func:`~streams.topics.encode_bundle`), in the order they were added,
    and a bundle that reaches :data:`~streams.topics.BUNDLE_BYTES` leaves at
    once (``add`` returns ``True``: the caller awaits :meth:`send_full`), so
    every source's events reach each view partition in their input order.

    Parameters
    ----------
    send
        ``send(topic, key, value, partition, headers)``: :meth:`streams.delivery.Outbox.send`.
    """

    __slots__ = ("_send", "_groups", "_sizes", "_full", "records")

    def __init__(self, send: Any) -> None:
        self._send = send
        self._groups: dict[tuple[str, int, bytes], list[bytes]] = {}
        self._sizes: dict[tuple[str, int, bytes], int] = {}
        self._full: list[tuple[str, int, bytes]] = []
        self.records = 0  #: bundles sent

    def add(self, topic: str, partition: int, source: bytes, data: bytes) -> bool:
        """Queue ``data`` for a destination; ``True`` when its bundle is full."""
        dest = (topic, partition, source)
        group = self._groups.get(dest)
        if group is None:
            group = self._groups[dest] = []
            self._sizes[dest] = 0
        group.append(data)
        size = self._sizes[dest] = self._sizes[dest] + len(data) + 1
        if size >= BUNDLE_BYTES - 1024:
            self._full.append(dest)
            return True
        return False

    async def send_full(self) -> None:
        """Send the bundles that reached their size limit."""
        full, self._full = self._full, []
        for dest in full:
            await self._flush(dest)

    async def send_all(self) -> None:
        """Send every pending bundle."""
        for dest in list(self._groups):
            await self._flush(dest)

    async def _flush(self, dest: tuple[str, int, bytes]) -> None:
        group = self._groups.pop(dest, None)
        if not group:
            return
        del self._sizes[dest]
        topic, partition, source = dest
        await self._send(topic, None, encode_bundle(group), partition, [(SOURCE_HEADER, source)])
        self.records += 1
