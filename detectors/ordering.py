"""Ordering: de-duplication, the reorder buffer and the watermarks.

Between parsing (:mod:`detectors.parsing`) and the views
(:mod:`detectors.views`), every event goes through event-time ordering in
the compiled core (``detectors/_core/src/order.rs``, driven by
``engine.rs``): a duplicate (same kind and id within ``dedupe_horizon``) is
dropped; an event behind the watermark is admitted out of order within
``allowed_lateness``, else dropped as late; the rest wait in a reorder buffer
until the watermark -- the slowest *source*'s latest event time minus
``grace``, a source more than ``max_skew`` behind being left behind -- passes
them, and leave it in event-time order. ``docs/event-time.md`` says why.

The Python side of this step is small: :meth:`detectors.engine.Engine.process`
names each event's source (a Kafka topic-partition) with :func:`source_name`,
and :meth:`~detectors.engine.Engine.progress` / :meth:`~detectors.engine.Engine.advance`
move a source's or the engine's event time on without an event.

Examples
--------
>>> source_name("likes-3"), source_name(("likes", 3))
('likes-3', "('likes', 3)")
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["source_name"]


def source_name(source: Hashable) -> str:
    """The core's name of a source (whose watermark it keeps): strings as
    they are, anything else by ``repr``."""
    return source if isinstance(source, str) else repr(source)
