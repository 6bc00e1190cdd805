"""A test-only pause point: freeze the worker at a chosen bad moment.

Inert unless the environment variable ``LIKEGUARD_TEST_PAUSE_AT`` is set (no
setting, flag or documented deployment option reads it). With
``LIKEGUARD_TEST_PAUSE_AT=checkpoint-part:N`` the worker, at the ``N``-th
boundary between two writes of a checkpoint since it started (after a chunk
of the new generation, or after the header and before the previous
generation's chunks are deleted and the held records acked), flushes its
producer so the broker holds exactly the parts written so far, logs
``test hook: paused at checkpoint-part N (<view>/<partition> ...)`` and
blocks its event loop: nothing else is sent, processed, acked or committed.
The metrics exporter (its own thread) still answers, so a test can read the
counters and then SIGKILL the process there
(``tests/integration/test_kills.py``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable

__all__ = ["ARMED", "pause_at"]

log = logging.getLogger("likeguard.worker")

_SPEC = os.environ.get("LIKEGUARD_TEST_PAUSE_AT", "")
_POINT, _, _N = _SPEC.partition(":")
#: the hook is set for this process (callers skip it entirely when not)
ARMED = bool(_SPEC)
_seen: dict[str, int] = {}


async def pause_at(point: str, flush: Callable[[], Awaitable[None]], what: str) -> None:
    """Count one passage through ``point``; at the armed one, flush and freeze."""
    n = _seen[point] = _seen.get(point, 0) + 1
    if point != _POINT or n != int(_N or 1):
        return
    await flush()
    log.warning("test hook: paused at %s %d (%s)", point, n, what)
    while True:  # blocks the event loop until the test kills the process
        time.sleep(3600)
