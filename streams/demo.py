"""The live demo (``make demo`` / ``python -m streams.demo``).

What it does, in order:

1. **Broker.** With ``KAFKA_BOOTSTRAP_SERVERS`` set, uses that cluster.
   Otherwise uses the project's local broker (``deploy/kafka/kafka.sh``):
   an already running one is reused and left running; else it is started
   (the first start fetches the Kafka jars with Maven) and stopped at the
   end unless ``--no-broker-stop``.
2. **Topics.** Creates the input and output topics when missing, with the
   worker's partition count (names from the worker's settings, so
   ``LIKEGUARD_*_TOPIC`` overrides apply here too).
3. **Worker.** Starts ``likeguard worker`` (log: ``OUT/worker.log``) with its
   Prometheus exporter on port 9108, or a free port when 9108 is taken. Its
   checkpoint key, unless ``LIKEGUARD_CHECKPOINT_KEY`` or
   ``LIKEGUARD_CHECKPOINT_KEY_FILE`` is set, is a random one the demo keeps
   in ``OUT/checkpoint.key`` (made on the first run, reused after). Its
   review console (docs/console.md) is on, at port 9109 or a free one,
   with a token made for the run (unless ``LIKEGUARD_CONSOLE_TOKEN`` is
   set); the demo prints the console's URL, token in its ``#token=``
   fragment, at start and keeps it in the status lines.
4. **Traffic.** Starts ``likeguard simulate --to-kafka``: live, now-anchored
   simulated traffic with fraud campaigns; the warm-up is backfilled so the
   first campaign begins ``--first-campaign-in`` seconds after the start
   (default seed 5: a fresh-account burst, first alerts within about a minute).
   The produced records and their labels are written to ``OUT/`` too.
5. **Alerts.** Tails ``likeguard.alerts`` and shows a live table (time,
   severity, action, entity, detector, score, top reason), newest first;
   on a terminal it is redrawn in place, otherwise each alert is printed as a
   line. Every alert is also appended to ``OUT/alerts.jsonl``.

Ctrl-C (SIGINT) or SIGTERM, or the end of ``--duration``, stops the
simulator, then the worker, then the broker if the demo started it, and
exits 0; a second Ctrl-C kills instead of waiting. Afterwards
``likeguard evaluate --labels OUT/live.labels.json --alerts OUT/alerts.jsonl``
scores the run. Exit status 1 when the worker dies or a step fails.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from streams.kafka_io import client_kwargs, resolve_bootstrap

__all__ = ["main", "build_parser", "format_alert_row", "render_table", "COLUMNS"]

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
#: the checkout the demo runs from, if any: it brings the local broker's
#: launcher; an installed package needs ``KAFKA_BOOTSTRAP_SERVERS`` instead
CHECKOUT: Path | None = REPO if KAFKA_SH.is_file() else None

#: (title, width) of the table columns; the last one takes the remaining width.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("time", 8), ("severity", 8), ("action", 14), ("entity", 34), ("detector", 24),
    ("score", 5), ("top reason", 0),
)
_SEVERITY_COLOR = {"critical": "\x1b[1;31m", "warning": "\x1b[33m", "info": "\x1b[36m"}
_RESET = "\x1b[0m"


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


# --------------------------------------------------------------------------- rendering


def _fmt_num(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def _local_hms(ts: str | None) -> str:
    if not ts:
        return "-"
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return ts[11:19]


def format_alert_row(alert: dict[str, Any]) -> list[str]:
    """The table cells of one alert object (CONTRACT.md ``likeguard.alerts``).

    >>> format_alert_row({"emitted_at": "2026-11-24T12:00:05+00:00", "severity": "warning",
    ...     "action": "clear_likes", "entity": {"type": "target", "id": "post:9"},
    ...     "detector": "fresh_burst@1", "score": 0.8312,
    ...     "reasons": [{"code": "fresh_accounts", "value": 41, "threshold": 20}]})[1:]
    ['warning', 'clear_likes', 'target:post:9', 'fresh_burst@1', '0.83', 'fresh_accounts 41 (>= 20)']
    """
    ent = alert.get("entity") or {}
    reasons = alert.get("reasons") or []
    top = "-"
    if reasons and isinstance(reasons[0], dict):
        r = reasons[0]
        top = str(r.get("code", "?"))
        if "value" in r:
            top += f" {_fmt_num(r['value'])}"
            if r.get("threshold") is not None:
                top += f" (>= {_fmt_num(r['threshold'])})"
    score = alert.get("score")
    return [
        _local_hms(alert.get("emitted_at") or (alert.get("window") or {}).get("end")),
        str(alert.get("severity", "?")),
        str(alert.get("action", "?")),
        f"{ent.get('type', '?')}:{ent.get('id', '?')}",
        str(alert.get("detector", "?")),
        f"{score:.2f}" if isinstance(score, int | float) else "-",
        top,
    ]


def _cell(text: str, width: int) -> str:
    if width <= 0:
        return text
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _row_line(cells: list[str], total_width: int, color: bool = False) -> str:
    out = []
    for (_, w), c in zip(COLUMNS, cells, strict=True):
        s = _cell(c, w).ljust(w) if w else c
        out.append(s)
    line = "  ".join(out)
    if len(line) > total_width:
        line = line[: max(1, total_width - 1)] + "…"
    if color:
        sev = cells[1]
        code = _SEVERITY_COLOR.get(sev)
        if code:
            start = sum(w + 2 for _, w in COLUMNS[:1])
            end = start + COLUMNS[1][1]
            line = line[:start] + code + line[start:end] + _RESET + line[end:]
    return line


def render_table(alerts: Sequence[dict[str, Any]], width: int = 120, height: int | None = None,
                 color: bool = False) -> list[str]:
    """Lines of the alerts table, newest first, at most ``height`` lines.

    >>> lines = render_table([{"severity": "critical", "action": "ban",
    ...     "entity": {"type": "device", "id": "d-1"}, "detector": "device_farm@1",
    ...     "score": 1, "reasons": []}], width=100)
    >>> lines[0].split()[:4], "device:d-1" in lines[2]
    (['time', 'severity', 'action', 'entity'], True)
    """
    head = _row_line([t for t, _ in COLUMNS], width)
    lines = [head, "-" * min(width, max(len(head), 40))]
    rows = list(reversed(alerts))
    if height is not None:
        rows = rows[: max(0, height - len(lines))]
    lines.extend(_row_line(format_alert_row(a), width, color) for a in rows)
    return lines


# --------------------------------------------------------------------------- processes


def _die_with_parent_fn():  # pragma: no cover - runs in the forked child
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the demo dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    sigterm = int(signal.SIGTERM)

    def fn() -> None:
        prctl(1, sigterm)  # PR_SET_PDEATHSIG

    return fn


@dataclass
class Child:
    """A subprocess of the demo, in its own process group, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    _log_pos: int = 0
    _log_text: str = ""

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            # Own process group: the terminal's Ctrl-C reaches only the demo, which
            # then stops the children in order (simulator, worker, broker).
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, process_group=0,
                                         preexec_fn=_die_with_parent_fn())
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else -1

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def new_log(self) -> str:
        """Log text written since the last call (kept whole in :attr:`log_text`)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_pos)
                data = fh.read()
        except OSError:
            return ""
        self._log_pos += len(data)
        text = data.decode("utf-8", "replace")
        self._log_text += text
        return text

    @property
    def log_text(self) -> str:
        self.new_log()
        return self._log_text

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text.splitlines()[-lines:])

    def stop(self, sig: int, timeout: float, hurry: Any = None) -> int | None:
        """Send ``sig``, wait up to ``timeout`` s (less if ``hurry()``), then SIGKILL."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                if hurry is not None and hurry():
                    break
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def demo_key(path: Path) -> Path:
    """The demo's checkpoint key file: made once with a random key (owner-only),
    kept for later runs so they can restore the earlier runs' checkpoints."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return path


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the demo


@dataclass
class Demo:
    """One run of the demo; :meth:`run` returns the exit status."""

    args: argparse.Namespace
    out: Any = field(default_factory=lambda: sys.stdout)
    bootstrap: str = ""
    broker_started: bool = False
    worker: Child | None = None
    sim: Child | None = None
    alerts: deque = field(default_factory=lambda: deque(maxlen=500))
    counts: Counter = field(default_factory=Counter)
    interrupts: int = 0
    metrics_url: str = ""
    console_url: str = ""
    worker_ready: bool = False
    namespace: dict[str, str] = field(default_factory=dict)
    _alerts_fh: IO[bytes] | None = None

    # ---------------------------------------------------------------- helpers

    @property
    def tty(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def say(self, msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr if self.tty else self.out, flush=True)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.interrupts += 1

    @property
    def stopping(self) -> bool:
        return self.interrupts > 0

    # ---------------------------------------------------------------- steps

    def _kafka_sh(self, cmd: str, env: dict[str, str], capture: bool = True,
                  timeout: float = 900.0) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(KAFKA_SH), cmd], env=env, cwd=REPO, text=True,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=None, timeout=timeout)

    def start_broker(self) -> None:
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        if external:
            self.bootstrap = resolve_bootstrap(external)
            self.say(f"using the Kafka cluster at {self.bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
            return
        if CHECKOUT is None:
            raise DemoError("no local Kafka broker outside a likeguard checkout (its launcher is "
                            "deploy/kafka/kafka.sh): set KAFKA_BOOTSTRAP_SERVERS to a cluster")
        env = dict(os.environ, PYTHON=sys.executable)
        status = self._kafka_sh("status", env)
        if status.returncode == 0:
            addr = self._kafka_sh("address", env)
            self.bootstrap = addr.stdout.strip().splitlines()[-1]
            self.say(f"reusing the running local broker at {self.bootstrap} (left running)")
            return
        if not self.args.no_broker_stop:
            env["KAFKA_WATCH_PID"] = str(os.getpid())  # broker dies with the demo if it is killed
        self.say("starting the local Kafka broker (deploy/kafka/kafka.sh start; the first run "
                 "fetches the jars with Maven) ...")
        proc = self._kafka_sh("start", env)
        if proc.returncode != 0:
            raise DemoError(f"could not start the local Kafka broker (kafka.sh start exit "
                            f"{proc.returncode}); see the messages above")
        self.broker_started = True
        self.bootstrap = proc.stdout.strip().splitlines()[-1]
        self.say(f"broker ready at {self.bootstrap}")

    def choose_namespace(self) -> None:
        """On a broker the demo did not start, run the worker as a new app.

        A reused cluster may hold an earlier run's worker state (checkpoints with
        a watermark past this run's backfill, which would then be dropped as
        late) and input records. So unless ``LIKEGUARD_APP_ID`` is set, the
        worker gets a fresh app id and view-topic prefix, and its consumer group
        starts at the current end of the input topics (see :meth:`create_topics`).
        """
        if self.broker_started or os.environ.get("LIKEGUARD_APP_ID"):
            return
        app = f"likeguard-demo-{time.strftime('%Y%m%d-%H%M%S')}"
        self.namespace = {"LIKEGUARD_APP_ID": app, "LIKEGUARD_VIEW_TOPIC_PREFIX": f"{app}.view"}
        self.say(f"existing broker: the worker runs as app {app} (own view topics and state), "
                 f"starting at the end of the input topics")

    def settings(self):
        from streams.settings import Settings

        return Settings.from_env(dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
                                      **self.namespace))

    def _end_offsets(self, topic: str, group_id: str | None = None) -> dict[Any, int]:
        """End offsets of ``topic``; with ``group_id``, also commit them for that group."""
        from kafka import KafkaConsumer, TopicPartition
        from kafka.structs import OffsetAndMetadata

        consumer = KafkaConsumer(group_id=group_id, enable_auto_commit=False,
                                 **client_kwargs(self.bootstrap, "likeguard-demo"))
        try:
            deadline = time.monotonic() + 30
            parts = consumer.partitions_for_topic(topic)
            while not parts and time.monotonic() < deadline:
                time.sleep(0.2)
                parts = consumer.partitions_for_topic(topic)
            if not parts:
                raise DemoError(f"topic {topic} has no partitions on {self.bootstrap}")
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(parts)])
            if group_id is not None:
                consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in ends.items()})
            return ends
        finally:
            consumer.close()

    def create_topics(self) -> dict[Any, int]:
        """Create missing topics; return the alerts topic's end offsets (where to start)."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        s = self.settings()
        names = [s.payments_topic, s.likes_topic, s.alerts_topic, s.deadletter_topic]
        try:
            admin = KafkaAdminClient(**client_kwargs(self.bootstrap, "likeguard-demo"))
        except KafkaError as exc:
            raise DemoError(f"cannot reach Kafka at {self.bootstrap}: {exc!r}") from exc
        try:
            existing = set(admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                spec = {"num_partitions": s.partitions, "replication_factor": s.replication_factor}
                try:
                    admin.create_topics({n: dict(spec) for n in missing}, timeout_ms=30_000,
                                        raise_errors=False, wait_for_metadata=True)
                except TopicAlreadyExistsError:
                    pass
                self.say(f"created topics {', '.join(missing)} ({s.partitions} partitions)")
        except KafkaError as exc:
            raise DemoError(f"cannot create topics on {self.bootstrap}: {exc!r}") from exc
        finally:
            admin.close()
        if self.namespace:
            for topic in (s.payments_topic, s.likes_topic):
                self._end_offsets(topic, group_id=s.app_id)
        return self._end_offsets(s.alerts_topic)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        env["PYTHONUNBUFFERED"] = "1"
        if CHECKOUT is not None:  # the children import this checkout's code, installed or not
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
        env.update(self.namespace)
        return env

    def start_worker(self, outdir: Path) -> None:
        port = self.args.metrics_port
        if not port or not _port_free(port):
            wanted = port
            port = _free_port()
            if wanted:
                self.say(f"port {wanted} is taken; the worker's metrics go to port {port}")
        data = outdir / "worker-data"
        shutil.rmtree(data, ignore_errors=True)
        env = self._child_env()
        env["LIKEGUARD_DATA_DIR"] = str(data)
        if not (env.get("LIKEGUARD_CHECKPOINT_KEY") or env.get("LIKEGUARD_CHECKPOINT_KEY_FILE")):
            env["LIKEGUARD_CHECKPOINT_KEY_FILE"] = str(demo_key(outdir / "checkpoint.key"))
        env["LIKEGUARD_METRICS_PORT"] = str(port)
        env.setdefault("LIKEGUARD_METRICS_ADDR", "127.0.0.1")
        argv = [sys.executable, "-m", "streams.cli", "worker", "--bootstrap-servers", self.bootstrap,
                "--metrics-port", str(port)]
        self.console_url = self._console(env, taken={port})
        self.worker = Child("worker", argv, env, outdir / "worker.log").start()
        self.metrics_url = f"http://{env['LIKEGUARD_METRICS_ADDR']}:{port}/metrics"
        self.say(f"worker started (pid {self.worker.pid}, log {outdir / 'worker.log'})")
        self.say(f"metrics: {self.metrics_url}")
        if self.console_url:
            self.say(f"review console: {self.console_url}")

    def _console(self, env: dict[str, str], taken: set[int]) -> str:
        """Turn the worker's review console on in ``env`` (port, address, a
        token made for this run unless one is set); return its URL with the
        token in the fragment, which the page reads and the browser never
        sends ("" with ``--console-port 0``)."""
        port = self.args.console_port
        if not port:
            env["LIKEGUARD_CONSOLE_PORT"] = "0"
            return ""
        if port in taken or not _port_free(port):
            wanted, port = port, _free_port()
            self.say(f"port {wanted} is taken; the review console goes to port {port}")
        env["LIKEGUARD_CONSOLE_PORT"] = str(port)
        addr = env.setdefault("LIKEGUARD_CONSOLE_ADDR", "127.0.0.1")
        if env.get("LIKEGUARD_CONSOLE_TOKEN_FILE"):
            try:
                token = Path(env["LIKEGUARD_CONSOLE_TOKEN_FILE"]).read_text().strip()
            except OSError as exc:
                raise DemoError(f"cannot read LIKEGUARD_CONSOLE_TOKEN_FILE: {exc}") from exc
        else:  # in the worker's environment only, never its argv
            token = env.setdefault("LIKEGUARD_CONSOLE_TOKEN", secrets.token_urlsafe(24))
        host = f"[{addr}]" if ":" in addr else addr
        return f"http://{host}:{port}/console/#token={token}"

    def start_simulator(self, outdir: Path) -> None:
        s = self.settings()
        a = self.args
        argv = [sys.executable, "-m", "streams.cli", "simulate", str(outdir / "live.jsonl"),
                "--to-kafka", "--bootstrap-servers", self.bootstrap,
                "--labels", str(outdir / "live.labels.json"),
                "--seed", str(a.seed), "--rate", str(a.rate), "--duration", str(a.sim_duration),
                "--campaigns", str(a.campaigns), "--benign", str(a.benign),
                "--first-campaign-in", str(a.first_campaign_in), "--no-progress"]
        if s.payments_topic != "payments.success":
            argv += ["--topic-map", f"payments.success={s.payments_topic}"]
        if s.likes_topic != "likes":
            argv += ["--topic-map", f"likes={s.likes_topic}"]
        self.sim = Child("simulator", argv, self._child_env(), outdir / "simulator.log").start()
        self.say(f"simulator started (pid {self.sim.pid}, seed {a.seed}, ~{a.rate:g} events/s, "
                 f"first campaign in ~{a.first_campaign_in:g}s; log {outdir / 'simulator.log'})")

    # ---------------------------------------------------------------- live view

    def _sim_status(self) -> str:
        if self.sim is None:
            return "-"
        lines = [ln for ln in self.sim.log_text.splitlines() if ln.startswith("simulate:")]
        last = lines[-1][len("simulate:"):].strip() if lines else "starting"
        state = "running" if self.sim.alive() else f"finished (exit {self.sim.returncode})"
        return f"pid {self.sim.pid} {state}; {last}"

    def _check_worker(self) -> None:
        assert self.worker is not None
        text = self.worker.new_log()
        if text and not self.worker_ready and "Worker ready" in self.worker.log_text:
            self.worker_ready = True
            if not self.tty:
                self.say("worker ready")
        if not self.worker.alive():
            raise DemoError(f"the worker exited (code {self.worker.returncode}); last log lines:\n"
                            f"{self.worker.tail()}")

    def _status_lines(self, started: float) -> list[str]:
        up = int(time.monotonic() - started)
        sev = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none yet"
        worker = "-"
        if self.worker is not None:
            worker = f"pid {self.worker.pid} {'ready' if self.worker_ready else 'starting'}"
        return [
            f"likeguard live demo  {datetime.now().strftime('%H:%M:%S')}  up {up // 60}m{up % 60:02d}s"
            f"  (Ctrl-C to stop)",
            f"broker {self.bootstrap}{' (started by the demo)' if self.broker_started else ''}   "
            f"worker {worker}   metrics {self.metrics_url}",
            f"simulator {self._sim_status()}",
            f"review console {self.console_url or 'off'}",
            f"alerts {sum(self.counts.values())} ({sev})",
            "",
        ]

    def _redraw(self, started: float) -> None:
        size = shutil.get_terminal_size((120, 30))
        head = self._status_lines(started)
        table = render_table(list(self.alerts), width=size.columns,
                             height=max(3, size.lines - len(head) - 1), color=True)
        lines = [ln[: size.columns] if i < len(head) else ln for i, ln in enumerate(head)] + table
        self.out.write("\x1b[H" + "".join(ln + "\x1b[K\n" for ln in lines) + "\x1b[J")
        self.out.flush()

    def _on_alert(self, raw: bytes | None) -> None:
        if not raw:
            return
        try:
            alert = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(alert, dict):
            return
        if self._alerts_fh is not None:
            self._alerts_fh.write(raw.rstrip(b"\n") + b"\n")
            self._alerts_fh.flush()
        self.alerts.append(alert)
        self.counts[str(alert.get("severity", "?"))] += 1
        if not self.tty:
            if sum(self.counts.values()) == 1:
                self.out.write("\n".join(render_table([], width=160)) + "\n")
            self.out.write(_row_line(format_alert_row(alert), 160) + "\n")
            self.out.flush()

    def watch(self, start_offsets: dict[Any, int]) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(group_id=None, enable_auto_commit=False,
                                 **client_kwargs(self.bootstrap, "likeguard-demo"))
        consumer.assign(list(start_offsets))
        for tp, off in start_offsets.items():
            consumer.seek(tp, off)
        started = time.monotonic()
        end = started + self.args.duration if self.args.duration else None
        next_draw = 0.0
        next_status = started + 15
        sim_done_said = False
        if self.tty:
            self.out.write("\x1b[2J\x1b[H")
        try:
            while not self.stopping:
                now = time.monotonic()
                if end is not None and now >= end:
                    self.say(f"--duration {self.args.duration:g}s reached")
                    break
                self._check_worker()
                batch = consumer.poll(timeout_ms=250)
                for recs in batch.values():
                    for r in recs:
                        self._on_alert(r.value)
                        next_draw = 0.0
                if self.sim is not None and not self.sim.alive() and not sim_done_said:
                    sim_done_said = True
                    if not self.tty:
                        self.say(f"simulator finished: {self._sim_status()}")
                now = time.monotonic()
                if self.tty and now >= next_draw:
                    self._redraw(started)
                    next_draw = now + 1.0
                elif not self.tty and now >= next_status:
                    self.say(" | ".join(x for x in self._status_lines(started)[1:4]))
                    next_status = now + 15
        finally:
            consumer.close()
            if self.tty:
                self._redraw(started)

    # ---------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        hurry = lambda: self.interrupts >= 2  # noqa: E731 - a second Ctrl-C kills
        if self.sim is not None and self.sim.alive():
            self.say("stopping the simulator ...")
        if self.sim is not None:
            self.sim.stop(signal.SIGTERM, 20, hurry)
        if self.worker is not None:
            if self.worker.alive():
                self.say("stopping the worker ...")
            code = self.worker.stop(signal.SIGTERM, 60, hurry)
            self.say(f"worker stopped (exit {code})")
        if self._alerts_fh is not None:
            self._alerts_fh.close()
        if self.broker_started and not self.args.no_broker_stop:
            self.say("stopping the local Kafka broker ...")
            env = dict(os.environ, PYTHON=sys.executable)
            self._kafka_sh("stop", env, capture=True, timeout=120)
            self.say("broker stopped")
        elif self.broker_started:
            self.say(f"broker left running at {self.bootstrap} (stop it: bash deploy/kafka/kafka.sh stop)")

    def run(self) -> int:
        outdir = Path(self.args.out)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            self.start_broker()
            if self.stopping:
                return 0
            self.choose_namespace()
            offsets = self.create_topics()
            self._alerts_fh = open(outdir / "alerts.jsonl", "wb")  # noqa: SIM115 - closed in shutdown
            self.start_worker(outdir)
            self.start_simulator(outdir)
            self.watch(offsets)
        except DemoError as exc:
            print(f"demo: error: {exc}", file=sys.stderr, flush=True)
            code = 1
        finally:
            try:
                self.shutdown()
            finally:
                for s, h in old.items():
                    signal.signal(s, h)
        n = sum(self.counts.values())
        self.say(f"{n} alerts; files in {outdir}/ (alerts.jsonl, live.jsonl, live.labels.json, "
                 f"worker.log, simulator.log)")
        if n:
            self.say(f"score them: likeguard evaluate --labels {outdir}/live.labels.json "
                     f"--alerts {outdir}/alerts.jsonl")
        return code


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """Options of ``python -m streams.demo``."""
    p = argparse.ArgumentParser(prog="python -m streams.demo",
                                description="Live demo: broker, worker, simulated traffic with fraud "
                                            "campaigns, and a live table of the alerts.")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop by itself after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--no-broker-stop", action="store_true",
                   help="leave a broker the demo started running at the end")
    p.add_argument("--metrics-port", type=int, default=9108,
                   help="worker's Prometheus port; a free one when taken or 0 (default 9108)")
    p.add_argument("--console-port", type=int, default=9109,
                   help="worker's review console port; a free one when taken, 0: off "
                        "(default 9109)")
    p.add_argument("--out", type=Path, default=Path("out") / "demo-live",
                   help="directory for logs, the live recording, labels and alerts "
                        "(default out/demo-live)")
    g = p.add_argument_group("simulated traffic")
    g.add_argument("--seed", type=int, default=5, help="simulator seed (default 5)")
    g.add_argument("--rate", type=float, default=20.0, help="organic events per second (default 20)")
    g.add_argument("--first-campaign-in", type=float, default=20.0, metavar="SECONDS",
                   help="seconds until the first fraud campaign begins (default 20)")
    g.add_argument("--sim-duration", type=float, default=3600.0, metavar="SECONDS",
                   help="seconds of traffic to simulate (default 3600)")
    g.add_argument("--campaigns", type=int, default=5, help="fraud campaigns (default 5)")
    g.add_argument("--benign", type=int, default=5, help="benign look-alike events (default 5)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m streams.demo`` (``make demo``)."""
    args = build_parser().parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        print("demo: error: --duration must be > 0", file=sys.stderr)
        return 2
    return Demo(args).run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
