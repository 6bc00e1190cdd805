"""A contender of ``bench_worker``: a quixstreams app counting likes per merchant.

Reads both input topics; decodes every value with orjson (bad records are
dropped), repartitions the likes by ``owner_mchid`` (quixstreams' ``group_by``,
through its own topic) and counts them per merchant in one-minute tumbling
windows, in quixstreams' state store. Payments are decoded and counted only. Run
as its own process, in its own virtualenv (quixstreams brings confluent-kafka
and RocksDB), by ``bench_worker.py``::

    python tests/bench/quix_count.py BOOTSTRAP PAYMENTS LIKES N OUT.json

It writes ``{"seconds", "cpu_seconds", "records", "likes_counted"}`` to
``OUT.json``, timed from the first input record to the moment every one of the
``N`` input records has been read and every like has reached the window count,
and exits.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid

import orjson
from quixstreams import Application


def main(bootstrap: str, payments: str, likes: str, n: int, out: str) -> None:
    app = Application(broker_address=bootstrap, consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
                      auto_offset_reset="earliest", state_dir=tempfile.mkdtemp(prefix="quix-"),
                      loglevel="WARNING")
    state = {"read": 0, "likes": 0, "counted": 0, "t0": 0.0, "c0": 0.0}

    def done() -> None:
        if state["read"] >= n and state["counted"] >= state["likes"]:
            with open(out, "w") as fh:
                json.dump({"seconds": time.perf_counter() - state["t0"],
                           "cpu_seconds": time.process_time() - state["c0"],
                           "records": state["read"], "likes_counted": state["counted"]}, fh)
            os._exit(0)  # a contender: no graceful stop to measure

    def decode(raw: bytes) -> dict | None:
        if not state["read"]:
            state["t0"], state["c0"] = time.perf_counter(), time.process_time()
        state["read"] += 1
        try:
            v = orjson.loads(raw)
        except orjson.JSONDecodeError:
            v = None
        return v if isinstance(v, dict) else None

    def like_in(v: dict | None) -> bool:
        ok = v is not None and isinstance(v.get("owner_mchid"), str)
        state["likes"] += ok
        if not ok:
            done()
        return ok

    def counted(_v: dict) -> None:
        state["counted"] += 1
        done()

    pay = app.dataframe(app.topic(payments, value_deserializer="bytes"))
    pay = pay.apply(decode)
    pay.update(lambda _v: done())

    sdf = app.dataframe(app.topic(likes, value_deserializer="bytes"))
    sdf = sdf.apply(decode).filter(like_in)
    sdf = sdf.group_by("owner_mchid")
    sdf = sdf.update(counted)
    sdf = sdf.tumbling_window(60_000).count().final()
    app.run()


if __name__ == "__main__":
    b, p, lk, count, path = sys.argv[1:6]
    main(b, p, lk, int(count), path)
