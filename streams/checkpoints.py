"""Slots and their checkpoints: one engine per view partition, and its
durable copy on a compacted changelog topic.

A :class:`Slot` hosts the :class:`~detectors.engine.Engine` of one view
partition. :class:`Checkpoints` writes its signed, LZ4-compressed snapshot
as chunks plus a header (``<view>/<p>/<gen>/<i>`` and ``<view>/<p>``) into
the Faust table ``checkpoints``, whose changelog partition is the view
partition's, and restores it from there; what makes this safe against kills
and forged records is in ``docs/worker.md`` ("Checkpoints and restarts",
"Checkpoint trust").
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from faust.types import EventT

from detectors import _core
from detectors.config import EngineConfig
from detectors.engine import Engine
from streams import testhooks
from streams.delivery import Outbox

__all__ = ["CHECKPOINT_VERSION", "CHUNK_BYTES", "Checkpoints", "Slot", "checkpoint_context",
           "checkpoint_header", "user_source", "utc_now"]

log = logging.getLogger("likeguard.worker")

#: Checkpoint chunk size: well below Kafka's default 1 MB message limit.
CHUNK_BYTES = 512 * 1024
#: Largest share of the worker's time that periodic checkpoints may take.
CHECKPOINT_SHARE = 0.1
#: Header format version of checkpoints: 2 compresses with LZ4 (the core's
#: ``compress``); version 1 (zlib) is still read.
CHECKPOINT_VERSION = 2
#: Most chunks a checkpoint header may name (512 MB compressed).
MAX_CHUNKS = 1024


def utc_now(now: float | None = None) -> str:
    """Wall-clock time as RFC 3339 UTC with milliseconds (``emitted_at``, ``written_at``)."""
    dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def user_source(partition: int) -> str:
    """The source name of a user-view partition's forwards and marks (lockstep's input)."""
    return f"user/{partition}"


def checkpoint_context(view: str, partition: int, offset: int, flushed: bool) -> bytes:
    """What a checkpoint's signature binds its snapshot to besides the key: the
    slot, the next offset it resumes from and whether it was flushed (the
    header fields the restore trusts).

    >>> checkpoint_context("device", 3, 120, False)
    b'likeguard-checkpoint:device/3@120:0'
    """
    return f"likeguard-checkpoint:{view}/{partition}@{offset}:{int(flushed)}".encode()


def checkpoint_header(raw: bytes) -> dict[str, Any]:
    """A checkpoint header, its fields checked; ``ValueError`` when malformed.

    >>> checkpoint_header(b'{"gen": 3, "chunks": 1, "offset": 120, "crc": 7}')["gen"]
    3
    """
    h = orjson.loads(raw)
    if not isinstance(h, dict):
        raise ValueError("checkpoint header is not a JSON object")
    for name, bound in (("gen", 2 ** 53), ("chunks", MAX_CHUNKS + 1), ("offset", 2 ** 63)):
        v = h.get(name)
        if type(v) is not int or not 0 <= v < bound:
            raise ValueError(f"checkpoint header field {name!r} is {v!r}")
    if type(h.get("crc")) is not int or type(h.get("flushed", False)) is not bool:
        raise ValueError("checkpoint header lacks its crc or flushed fields")
    return h


def _decompress(blob: bytes, version: int) -> bytes:
    """A checkpoint's snapshot from its stored bytes (LZ4, or zlib for version 1)."""
    if version not in (1, CHECKPOINT_VERSION):
        raise ValueError(f"checkpoint format version {version!r} is not one this worker reads")
    if version == 1:
        try:
            return zlib.decompress(blob)
        except zlib.error as exc:
            raise ValueError(f"not zlib data: {exc}") from None
    return _core.decompress(blob)


def _reason(exc: BaseException) -> str:
    """Why a checkpoint is unusable, on one line."""
    text = " ".join(str(exc).split())
    if type(exc) is ValueError and text:
        return text  # the engine's and the header check's own words
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Slot:
    """One engine hosting one view for one partition of that view's topic."""

    view: str
    partition: int
    engine: Engine
    #: next offset of the view partition to process: a record past it means
    #: the ones in between have not come yet (once ``positioned``)
    next_offset: int = 0
    ckpt_offset: int = 0  #: next offset recorded by the last durable checkpoint
    #: whether ``next_offset`` is known; if not, the first record taken sets it
    positioned: bool = True
    seeking: int | None = None  #: the offset the consumer was last sent back to
    sought_at: float = float("-inf")  #: monotonic time of the last seek back
    late_logged_at: float = float("-inf")  #: monotonic time of its last line on late events
    gen: int = 0  #: checkpoint generation
    chunks: int = 0  #: chunks of the current generation
    flushed: bool = False  #: flushed for idle input since its last event
    dirty: bool = False  #: state changed since the last checkpoint
    last_input: float = field(default_factory=time.monotonic)
    last_checkpoint: float = field(default_factory=time.monotonic)
    held: list[EventT] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  #: counters already exported

    @property
    def key(self) -> bytes:
        return f"{self.view}/{self.partition}".encode()

    def has_input(self) -> bool:
        return self.engine.max_ts != float("-inf")


class Checkpoints:
    """Writes and restores the slots' checkpoints.

    Parameters
    ----------
    table
        The Faust table ``checkpoints`` (its ``data`` holds every chunk and
        header of the partitions assigned here, recovered by Faust).
    changelog
        The table's changelog topic, where the writes go.
    key
        The checkpoint key that signs and verifies snapshots.
    cfg
        The engine settings of new slots.
    partitions
        Partitions per view topic (a new lockstep slot waits for every user partition).
    out
        The worker's outbox: what a slot sent is delivered before its header.
    flush
        ``await flush()`` of the producer (the test-only pause points).
    """

    def __init__(self, table: Any, changelog: str, key: bytes, cfg: EngineConfig,
                 partitions: int, out: Outbox, flush: Callable[[], Awaitable[None]]) -> None:
        self.table = table
        self.changelog = changelog
        self._key = key
        self.cfg = cfg
        self.n = partitions
        self.out = out
        self._flush = flush
        #: (view, partition) -> seconds its last snapshot took (see :meth:`every`)
        self.cost: dict[tuple[str, int], float] = {}

    def new_slot(self, view: str, p: int, gen: int = 0, chunks: int = 0,
                 positioned: bool = True) -> Slot:
        """An empty slot; ``gen`` and ``chunks`` name the chunks its first
        checkpoint replaces (an unusable checkpoint's, so they are deleted).

        A partition that never had a checkpoint has had none of its records
        processed, whatever offset the group committed: its slot is
        positioned at offset 0, and a record past that sends the consumer
        back to the partition's first record (``Pipeline._gap``). A slot
        that replaces an unusable checkpoint is not ``positioned``: it starts
        at the first record it gets (the committed offset; what the
        checkpoint covered is not processed again).
        """
        slot = Slot(view, p, Engine(self.cfg, views=[view]), gen=gen, chunks=chunks,
                    positioned=positioned)
        if view == "lockstep":
            # wait for every user partition until it reports: one that
            # starts releasing later must not find its likes late
            for q in range(self.n):
                slot.engine.progress(user_source(q).encode(), None, behind=True)
        return slot

    def has(self, view: str, p: int) -> bool:
        """Whether a checkpoint header of the slot is in the table."""
        return f"{view}/{p}".encode() in self.table.data

    def restore(self, view: str, p: int) -> Slot | None:
        """The slot restored from its checkpoint; ``None`` when there is none.

        A checkpoint that cannot be used (corrupt, truncated, of another state
        version, forged, unsigned, of another slot) is logged in one line and
        an empty slot is returned: the partition starts afresh, and its first
        checkpoint replaces the unusable one.
        """
        data = self.table.data
        key = f"{view}/{p}".encode()
        raw = data.get(key)
        if raw is None:
            return None
        h: dict[str, Any] | None = None
        try:
            h = checkpoint_header(raw)
            parts = []
            for i in range(h["chunks"]):
                part = data.get(f"{view}/{p}/{h['gen']}/{i}".encode())
                if part is None:
                    raise ValueError(f"chunk {i} of {h['chunks']} is missing")
                parts.append(part)
            blob = b"".join(parts)
            if zlib.crc32(blob) != h["crc"]:
                raise ValueError("checksum mismatch")
            snapshot = _decompress(blob, h.get("v", 1))
            engine = Engine.restore(snapshot, key=self._key, context=checkpoint_context(
                view, p, h["offset"], h.get("flushed", False)))
            if engine.core.views != [view]:
                raise ValueError(f"it holds the views {engine.core.views}")
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint must not stop the worker
            log.error("checkpoint %s/%d is unusable (%s); partition %s/%d starts empty",
                      view, p, _reason(exc), view, p)
            gen, chunks = (h["gen"], h["chunks"]) if h else (0, 0)
            return self.new_slot(view, p, gen, chunks, positioned=False)
        if engine.cfg != self.cfg:
            log.warning("checkpoint %s/%d was made with other engine settings; keeping the "
                        "checkpoint's (%s)", view, p, engine.cfg.to_dict())
        slot = Slot(view, p, engine, next_offset=h["offset"], ckpt_offset=h["offset"],
                    gen=h["gen"], chunks=h["chunks"],
                    flushed=h.get("flushed", False))
        log.info("restored %s/%d from checkpoint gen %d (%d bytes) at offset %d",
                 view, p, h["gen"], len(blob), h["offset"])
        return slot

    async def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Write (or, with ``None``, delete) one key of the table."""
        if value is None:
            self.table.data.pop(key, None)
        else:
            self.table.data[key] = value
        await self.out.send(self.changelog, key, value, partition)

    def every(self, interval: float) -> float:
        """Seconds between checkpoints of a busy slot: ``interval``, stretched
        so that a round of checkpoints of every slot here takes at most
        :data:`CHECKPOINT_SHARE` of the worker's time.

        A checkpoint snapshots the slot's whole state, so its cost grows with
        the state (windows, and the reorder buffer while a backlog is caught
        up); at a fixed interval, large state would leave little time for the
        events themselves (measured: three quarters of a backlog replay). The
        price of a longer interval is more events to process again after a
        crash, never a lost or doubled one.
        """
        return max(interval, sum(self.cost.values()) / CHECKPOINT_SHARE)

    async def write(self, slot: Slot) -> list[EventT]:
        """Write the slot's checkpoint; return the held events it covers (to ack).

        What the slot sent (alerts, forwarded likes) is delivered before the
        header that makes the checkpoint count, and the header before the
        caller acks the events.
        """
        await self.out.confirm()
        t0 = time.perf_counter()
        offset, flushed = slot.next_offset, slot.flushed
        snap = slot.engine.snapshot(key=self._key, context=checkpoint_context(
            slot.view, slot.partition, offset, flushed))
        blob = _core.compress(snap)
        self.cost[(slot.view, slot.partition)] = time.perf_counter() - t0
        gen = slot.gen + 1
        base = f"{slot.view}/{slot.partition}"
        p = slot.partition
        chunks = [blob[i:i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
        for i, chunk in enumerate(chunks):
            await self.put(p, f"{base}/{gen}/{i}".encode(), chunk)
            if testhooks.ARMED:  # tests only: a kill between a checkpoint's parts
                await testhooks.pause_at("checkpoint-part", self._flush,
                                         f"{base} gen {gen} chunk {i + 1} of {len(chunks)}")
        header = {"v": CHECKPOINT_VERSION, "gen": gen, "chunks": len(chunks),
                  "offset": offset, "flushed": flushed, "bytes": len(blob),
                  "crc": zlib.crc32(blob), "written_at": utc_now()}
        await self.put(p, slot.key, orjson.dumps(header))
        if testhooks.ARMED:
            await testhooks.pause_at("checkpoint-part", self._flush,
                                     f"{base} gen {gen} header, old chunks and acks not yet")
        # the previous generation's chunks, and any a kill left behind (chunks
        # written without their header, or a header written and the old chunks not
        # yet deleted): every chunk of this slot but the new generation's
        mine = f"{base}/".encode()
        keep = {f"{base}/{gen}/{i}".encode() for i in range(len(chunks))}
        for key in [k for k in self.table.data if k.startswith(mine) and k not in keep]:
            await self.put(p, key, None)
        await self.out.confirm()
        slot.gen, slot.chunks = gen, len(chunks)
        slot.ckpt_offset = offset
        slot.dirty = False
        slot.last_checkpoint = time.monotonic()
        held, slot.held = slot.held, []
        return held
