"""What the benchmarks share: cached recordings, resident memory, the figures file.

Imported by the benchmark scripts of this folder (run as scripts, so the
folder is on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from detectors.simulate import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[2]


def cached_recording(name: str, cfg: SimConfig) -> Path:
    """``.cache/bench/<name>.jsonl`` (and its labels), simulated with ``cfg`` once."""
    path = ROOT / ".cache" / "bench" / f"{name}.jsonl"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        path.parent.mkdir(parents=True, exist_ok=True)
        simulate(cfg, path, path.with_suffix(".labels.json"))
    return path


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of a process in MiB (Linux /proc; this process: peak without it)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        if pid != "self":
            raise
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class InterpreterWaits:
    """How long another thread waited for the interpreter while this block ran.

    A thread asks for it every millisecond and records how late it got it:
    what a metrics scrape or the Kafka consumer's thread would wait behind a
    long call that holds the GIL. ``longest`` in seconds, and the waits past
    ``over`` seconds counted in ``long_waits``.
    """

    def __init__(self, over: float = 0.1) -> None:
        self.over = over
        self.longest = 0.0
        self.long_waits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while True:
            asked = time.perf_counter()
            if self._stop.wait(0.001):
                return
            late = time.perf_counter() - asked - 0.001
            self.longest = max(self.longest, late)
            self.long_waits += late > self.over

    def __enter__(self) -> InterpreterWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_figures(fig: dict[str, Any], out: Path) -> None:
    """Write ``fig`` with the Python version and machine to ``out`` (JSON) and say so."""
    fig = {**fig, "python": platform.python_version(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cpus"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fig, indent=2) + "\n")
    print(f"figures written to {out}")
