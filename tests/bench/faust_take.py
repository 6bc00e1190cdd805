"""A contender of ``bench_worker``: a Faust agent that only decodes the input.

One agent over both input topics takes records in batches with
``stream.take(1000)`` and decodes each value with orjson, nothing else: the
floor of a Faust worker whose every input record passes through Faust's
per-record path. Run as its own process by ``bench_worker.py``::

    python tests/bench/faust_take.py BOOTSTRAP PAYMENTS LIKES N OUT.json

It writes ``{"seconds", "cpu_seconds", "records"}`` to ``OUT.json``, timed
from the first record taken to the ``N``-th, and exits.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import uuid
from typing import Any

import faust
import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from streams.app import LikeguardApp  # noqa: E402


def main(bootstrap: str, payments: str, likes: str, n: int, out: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    app = LikeguardApp(f"bench-faust-take-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}",
                       store="memory://", web_enabled=False, autodiscover=False,
                       datadir=tempfile.mkdtemp(prefix="faust-take-"),
                       consumer_auto_offset_reset="earliest")
    app.fetch_max_wait_ms = 100  # as the worker sets it (streams/app.py)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}
    inputs = app.topic(payments, likes, **raw)
    state = {"got": 0, "t0": 0.0, "c0": 0.0}

    @app.agent(inputs)
    async def decode(stream: faust.StreamT) -> None:
        async for values in stream.take(1000, within=0.2):
            if not state["got"]:
                state["t0"], state["c0"] = time.perf_counter(), time.process_time()
            for v in values:
                orjson.loads(v)
            state["got"] += len(values)
            if state["got"] >= n:
                with open(out, "w") as fh:
                    json.dump({"seconds": time.perf_counter() - state["t0"],
                               "cpu_seconds": time.process_time() - state["c0"],
                               "records": state["got"]}, fh)
                os._exit(0)  # a contender: no graceful stop to measure

    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    b, p, lk, count, path = sys.argv[1:6]
    main(b, p, lk, int(count), path)
