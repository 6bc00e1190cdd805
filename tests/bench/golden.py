"""Golden alerts: record the engine's answers on the quality recordings, and compare.

A "same answers" check for a rewrite: ``write`` replays every recording the
quality tests use and stores the alerts; ``compare`` tells whether another
commit's alerts are the same, alert by alert.

The recordings are exactly those of the tests:

* ``sim-7``, ``sim-8``, ``sim-9``: our simulator, ``SimConfig(seed=seed,
  bad_rate=0.002, duplicate_rate=0.01)`` (``tests/quality/test_quality.py``);
* ``browsing-5``, ``browsing-6``, ``late_delivery-4``, ``late_delivery-5``,
  ``livestream-5``, ``livestream-6``: the independent generators
  ``tests/quality/<gen>/gen.py --seed S`` run as subprocesses with their default
  options (``tests/quality/test_quality_independent.py``).

Each is generated once and cached under ``.cache/golden/<name>/`` (``--cache
DIR`` or ``$LIKEGUARD_GOLDEN_CACHE`` elsewhere, e.g. to share the cache of
``/work/main`` with a worktree of another commit); a cached recording is
reused as is.

``write OUTDIR [--only NAME ...]`` replays each recording with
:func:`detectors.replay.replay` in mode ``both`` (all recordings) and in modes
``rules`` and ``models`` (the simulator's, as ``test_quality`` does) and
writes ``OUTDIR/<name>.<mode>.alerts.jsonl``: one alert per line in emission
order, ``emitted_at`` removed, keys sorted. ``OUTDIR/summary.json`` holds,
per file, the alert count, the replay's events/s and the recording's SHA-256
(merged into an existing summary, so ``--only`` refreshes some files).
``NAME`` is a recording (``sim-7``) or one file's stem (``sim-7.rules``).

``compare BASE_DIR NEW_DIR [--only NAME ...]`` prints, for every alerts file
of ``BASE_DIR``, ``identical`` or the alert ids only in base, only in new and
those whose content differs (the first few differences field by field), with
both runs' events/s. Exit status 0 when every file is identical, else 1.

Run on demand::

    python tests/bench/golden.py write out/golden/base
    python tests/bench/golden.py compare out/golden/base out/golden/new
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detectors.config import EngineConfig
from detectors.replay import replay
from detectors.simulate import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[2]
GENERATORS = ROOT / "tests" / "quality"
CACHE_ENV = "LIKEGUARD_GOLDEN_CACHE"
SIM_SEEDS = (7, 8, 9)  #: tests/quality/test_quality.py's TEST_SEEDS
HELD_OUT = (("browsing", 5), ("browsing", 6), ("late_delivery", 4), ("late_delivery", 5),
            ("livestream", 5), ("livestream", 6))  #: tests/quality/test_quality_independent.py's HELD_OUT
SUFFIX = ".alerts.jsonl"


@dataclass(frozen=True)
class Recording:
    """One recording of the quality tests and the modes it is replayed in."""

    name: str
    gen: str  #: ``sim`` or a generator directory under ``tests/``
    seed: int
    modes: tuple[str, ...]

    @property
    def filename(self) -> str:
        # the tests' own file names: the suffix picks gzip or not
        return "r.jsonl.gz" if self.gen == "sim" else "rec.jsonl"


RECORDINGS: tuple[Recording, ...] = (
    *(Recording(f"sim-{s}", "sim", s, ("both", "rules", "models")) for s in SIM_SEEDS),
    *(Recording(f"{g}-{s}", g, s, ("both",)) for g, s in HELD_OUT),
)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def ensure_recording(rec: Recording, cache: Path) -> Path:
    """The cached recording ``cache/<name>/<file>``, generated first if absent."""
    final = cache / rec.name
    path = final / rec.filename
    if path.exists():
        return path
    print(f"generating {rec.name} ...", file=sys.stderr, flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    d = Path(tempfile.mkdtemp(prefix=f".{rec.name}-", dir=cache))
    try:
        out, lab = d / rec.filename, d / "labels.json"
        if rec.gen == "sim":
            simulate(SimConfig(seed=rec.seed, bad_rate=0.002, duplicate_rate=0.01), out, lab)
        else:
            subprocess.run([sys.executable, str(GENERATORS / rec.gen / "gen.py"), "--seed", str(rec.seed),
                            "--out", str(out), "--labels", str(lab)], check=True, capture_output=True)
        # moved into place only when complete, so an interrupted run is not reused
        if final.exists():
            shutil.rmtree(final)
        d.rename(final)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"  {rec.name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return path


def canonical_alerts(text: str) -> list[bytes]:
    """The replay's alert lines without ``emitted_at``, keys sorted, order kept."""
    out = []
    for line in text.splitlines():
        a = orjson.loads(line)
        a.pop("emitted_at", None)
        out.append(orjson.dumps(a, option=orjson.OPT_SORT_KEYS))
    return out


def selected(names: list[str] | None) -> Iterator[tuple[Recording, str]]:
    """(recording, mode) pairs, restricted to ``names`` (a recording or ``rec.mode``)."""
    known = {r.name for r in RECORDINGS} | {f"{r.name}.{m}" for r in RECORDINGS for m in r.modes}
    unknown = set(names or ()) - known
    if unknown:
        raise SystemExit(f"unknown name(s) {sorted(unknown)}; known: {sorted(known)}")
    for r in RECORDINGS:
        for m in r.modes:
            if names is None or r.name in names or f"{r.name}.{m}" in names:
                yield r, m


def git_head() -> str | None:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def write(outdir: Path, cache: Path, only: list[str] | None) -> int:
    t_start = time.perf_counter()
    outdir.mkdir(parents=True, exist_ok=True)
    summary_path = outdir / "summary.json"
    summary: dict[str, Any] = (orjson.loads(summary_path.read_bytes()) if summary_path.exists()
                               else {"files": {}})
    pairs = list(selected(only))
    paths = {r.name: ensure_recording(r, cache) for r in dict.fromkeys(r for r, _ in pairs)}
    digests = {name: sha256(p) for name, p in paths.items()}
    for rec, mode in pairs:
        buf = io.StringIO()
        s = replay(paths[rec.name], buf, EngineConfig(mode=mode))
        lines = canonical_alerts(buf.getvalue())
        fname = f"{rec.name}.{mode}{SUFFIX}"
        (outdir / fname).write_bytes(b"".join(x + b"\n" for x in lines))
        summary["files"][fname] = {
            "alerts": len(lines), "events_per_second": round(s.events_per_second, 1),
            "records": s.records, "events": s.events, "seconds": round(s.seconds, 3),
            "recording": rec.name, "recording_sha256": digests[rec.name]}
        print(f"{fname:38s} {len(lines):6d} alerts  {s.events_per_second:10,.0f} events/s", flush=True)
    summary["files"] = dict(sorted(summary["files"].items()))
    summary.update(commit=git_head(), root=str(ROOT), python=sys.version.split()[0],
                   write_seconds=round(time.perf_counter() - t_start, 1))
    summary_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                             + b"\n")
    print(f"wrote {len(pairs)} files to {outdir} in {summary['write_seconds']:.1f} s")
    return 0


def flatten(x: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts and lists by dotted path (``reasons.0.value``)."""
    if isinstance(x, dict) and x:
        return {k: v for key, val in x.items() for k, v in flatten(val, f"{prefix}{key}.").items()}
    if isinstance(x, list) and x:
        return {k: v for i, val in enumerate(x) for k, v in flatten(val, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): x}


def short(v: Any, width: int = 60) -> str:
    s = orjson.dumps(v).decode() if not isinstance(v, str) else repr(v)
    return s if len(s) <= width else s[:width - 3] + "..."


def by_id(lines: list[bytes]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        a = orjson.loads(line)
        out.setdefault(a["alert_id"], []).append(a)
    return out


def label(a: dict[str, Any]) -> str:
    e = a.get("entity", {})
    return (f"{a.get('alert_id')} {a.get('detector')} {e.get('type')}:{e.get('id')} "
            f"end={a.get('window', {}).get('end')} score={a.get('score')}")


def show_differences(base: Path, new: Path, show: int) -> None:
    """Print how the alerts of ``new`` differ from those of ``base``, by alert id."""
    bl, nl = base.read_bytes().splitlines(), new.read_bytes().splitlines()
    ba, na = by_id(bl), by_id(nl)
    only_b = [i for i in ba if i not in na]
    only_n = [i for i in na if i not in ba]
    changed = [i for i in ba if i in na and ba[i] != na[i]]
    parts = [f"{len(bl)} -> {len(nl)} alerts", f"{len(only_b)} only in base", f"{len(only_n)} only in new",
             f"{len(changed)} differ"]
    if not (only_b or only_n or changed):
        parts.append("same alerts, different order")
    print("  " + ", ".join(parts))
    for tag, ids, src in (("base only", only_b, ba), ("new only", only_n, na)):
        for i in ids[:show]:
            print(f"    {tag}: {label(src[i][0])}")
    for i in changed[:show]:
        print(f"    differs: {label(ba[i][0])}")
        if len(ba[i]) != len(na[i]):
            print(f"      occurrences {len(ba[i])} -> {len(na[i])}")
        pair = next(((x, y) for x, y in zip(ba[i], na[i], strict=False) if x != y), (ba[i][0], na[i][0]))
        fb, fn = flatten(pair[0]), flatten(pair[1])
        diffs = [k for k in dict.fromkeys([*fb, *fn]) if fb.get(k, "<absent>") != fn.get(k, "<absent>")]
        for k in diffs[:6]:
            print(f"      {k}: {short(fb.get(k, '<absent>'))} -> {short(fn.get(k, '<absent>'))}")
        if len(diffs) > 6:
            print(f"      ... {len(diffs) - 6} more fields")


def load_summary(d: Path) -> dict[str, Any]:
    p = d / "summary.json"
    return orjson.loads(p.read_bytes()).get("files", {}) if p.exists() else {}


def compare(base_dir: Path, new_dir: Path, only: list[str] | None, show: int) -> int:
    files = sorted(p.name for p in base_dir.glob(f"*{SUFFIX}"))
    if only is not None:
        files = [f for f in files if f[:-len(SUFFIX)] in only or f.split(".")[0] in only]
    if not files:
        print(f"no {SUFFIX} files in {base_dir}")
        return 1
    sb, sn = load_summary(base_dir), load_summary(new_dir)
    same = True
    for f in files:
        b, n = sb.get(f, {}), sn.get(f, {})
        speed = ""
        if b.get("events_per_second") and n.get("events_per_second"):
            speed = (f"  ({b['events_per_second']:,.0f} -> {n['events_per_second']:,.0f} events/s, "
                     f"x{n['events_per_second'] / b['events_per_second']:.2f})")
        if b.get("recording_sha256") and n.get("recording_sha256") and \
                b["recording_sha256"] != n["recording_sha256"]:
            print(f"{f}: WARNING recordings differ ({b['recording']})")
        if not (new_dir / f).exists():
            print(f"{f}: missing in {new_dir}")
            same = False
            continue
        if (base_dir / f).read_bytes() == (new_dir / f).read_bytes():
            print(f"{f}: identical{speed}")
        else:
            print(f"{f}: DIFFERENT{speed}")
            show_differences(base_dir / f, new_dir / f, show)
            same = False
    extra = sorted({p.name for p in new_dir.glob(f"*{SUFFIX}")}
                   - {p.name for p in base_dir.glob(f"*{SUFFIX}")})
    if extra and only is None:
        print(f"only in {new_dir} (not compared): {', '.join(extra)}")
    print("all identical" if same else "DIFFERENCES")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="replay the recordings, write OUTDIR/<name>.<mode>.alerts.jsonl")
    w.add_argument("outdir", type=Path)
    w.add_argument("--only", nargs="+", metavar="NAME", help="recordings (sim-7) or files (sim-7.rules)")
    w.add_argument("--cache", type=Path,
                   default=Path(os.environ.get(CACHE_ENV, ROOT / ".cache" / "golden")),
                   help=f"recording cache (default ${CACHE_ENV} or .cache/golden/)")
    c = sub.add_parser("compare", help="compare NEW_DIR's alerts files with BASE_DIR's")
    c.add_argument("base_dir", type=Path)
    c.add_argument("new_dir", type=Path)
    c.add_argument("--only", nargs="+", metavar="NAME", help="recordings (sim-7) or files (sim-7.rules)")
    c.add_argument("--show", type=int, default=3, help="differences shown per kind and file")
    a = p.parse_args(argv)
    if a.cmd == "write":
        return write(a.outdir, a.cache, a.only)
    return compare(a.base_dir, a.new_dir, a.only, a.show)


if __name__ == "__main__":
    sys.exit(main())
