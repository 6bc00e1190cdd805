"""Worker settings: one typed, validated object built from env vars and flags.

Precedence, lowest first: defaults, environment (``KAFKA_BOOTSTRAP_SERVERS``
and ``LIKEGUARD_*``), command-line flags. :meth:`Settings.validate` raises
:class:`SettingsError` naming the offending setting (its env var and flag),
so a misconfigured deployment fails at start with a message an operator can
act on.

The checkpoint key (``LIKEGUARD_CHECKPOINT_KEY`` or a file named by
``LIKEGUARD_CHECKPOINT_KEY_FILE``) signs the engine checkpoints; it is
required, has no command-line flag (argv is visible to every user of the
host) and is never logged.

The review console (:mod:`streams.console`) is off unless ``console_port``
is set; then it needs a bearer token, ``LIKEGUARD_CONSOLE_TOKEN`` (env only,
as the checkpoint key) or a file named by ``LIKEGUARD_CONSOLE_TOKEN_FILE``,
and the worker refuses to start without one.

Every :class:`~detectors.config.EngineConfig` field is a setting too:
``LIKEGUARD_<FIELD>`` / ``--<field>`` (e.g. ``LIKEGUARD_GRACE`` /
``--grace``). ``partitions`` is both the engine's model-shard count and the
partition count of the internal view topics and the checkpoint changelog;
the engine shards its models by the Kafka partition of their key, so the two
must be one number.

Examples
--------
>>> s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
...                        "LIKEGUARD_GRACE": "30", "LIKEGUARD_MODE": "rules"})
>>> s.bootstrap_servers, s.engine.grace, s.engine.mode
('k1:9092,k2:9092', 30.0, 'rules')
>>> s.view_topic("merchant")
'likeguard.view.merchant'
>>> try:
...     Settings.from_env({"LIKEGUARD_METRICS_PORT": "70000"}).validate()
... except SettingsError as exc:
...     print(exc.setting, "|", exc)
metrics_port | metrics_port (LIKEGUARD_METRICS_PORT, --metrics-port): must be in 0..65535, got 70000
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from detectors.config import MODES, EngineConfig

__all__ = [
    "Settings",
    "SettingsError",
    "SECURITY_PROTOCOLS",
    "SASL_MECHANISMS",
    "add_worker_arguments",
    "ENV_PREFIX",
]

ENV_PREFIX = "LIKEGUARD_"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: shortest checkpoint key accepted, in bytes (an HMAC-SHA256 key of 32 random bytes)
MIN_KEY_BYTES = 32
#: shortest console token accepted, in bytes (``openssl rand -hex 16`` gives 32)
MIN_TOKEN_BYTES = 16
#: settings read from the environment only: secrets stay out of argv
_ENV_ONLY = frozenset({"checkpoint_key", "console_token"})

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_HOSTPORT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")
_ENGINE_FIELDS = {f.name: f for f in fields(EngineConfig)}


class SettingsError(ValueError):
    """A setting is missing, malformed or out of range; ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        super().__init__(f"{_label(setting)}: {message}")


def _env_name(setting: str) -> str:
    if setting == "bootstrap_servers":
        return "KAFKA_BOOTSTRAP_SERVERS"
    return ENV_PREFIX + setting.upper()


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def _label(setting: str) -> str:
    if setting in _ENV_ONLY:
        return f"{setting} ({_env_name(setting)})"
    return f"{setting} ({_env_name(setting)}, {_flag(setting)})"


def _str_default(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the worker needs, typed. Build with :meth:`from_env` / :meth:`from_args`."""

    # --- Kafka connection
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # --- topics
    payments_topic: str = "payments.success"
    likes_topic: str = "likes"
    alerts_topic: str = "likeguard.alerts"
    deadletter_topic: str = "likeguard.deadletter"
    verdicts_topic: str = "likeguard.verdicts"
    view_topic_prefix: str = "likeguard.view"
    replication_factor: int = 1
    # --- worker
    app_id: str = "likeguard"
    data_dir: str = "likeguard-data"
    metrics_port: int = 9108
    metrics_addr: str = "127.0.0.1"
    checkpoint_interval: float = 5.0
    idle_flush: float = 10.0
    progress_interval: float = 1.0
    batch_size: int = 1000
    batch_within: float = 0.5
    fetch_max_wait: float = 0.1
    session_timeout: float = 30.0
    heartbeat_interval: float = 3.0
    log_level: str = "info"
    #: the secret that signs checkpoints (env only), or a file holding it
    checkpoint_key: str | None = field(default=None, repr=False)
    checkpoint_key_file: str | None = None
    # --- review console (streams/console.py): off by default, since it takes
    # verdicts that change detection and needs a token only its operator can set
    console_port: int = 0
    console_addr: str = "127.0.0.1"
    #: the bearer token of the console (env only), or a file holding it
    console_token: str | None = field(default=None, repr=False)
    console_token_file: str | None = None
    # --- detectors
    engine: EngineConfig = field(default_factory=EngineConfig)

    # ------------------------------------------------------------ derived

    @property
    def partitions(self) -> int:
        """Partition count of every internal topic (= model shards)."""
        return self.engine.partitions

    def view_topic(self, view: str) -> str:
        """Name of the repartition topic of ``view``."""
        return f"{self.view_topic_prefix}.{view}"

    @property
    def checkpoint_table(self) -> str:
        """Name of the Faust table of engine checkpoints (its changelog is
        ``<app_id>-<table>-changelog``)."""
        return "checkpoints"

    @property
    def checkpoint_changelog(self) -> str:
        """Name of the checkpoint table's changelog topic (Faust's naming)."""
        return f"{self.app_id}-{self.checkpoint_table}-changelog"

    def checkpoint_secret(self) -> bytes:
        """The checkpoint key as bytes: ``checkpoint_key`` encoded as UTF-8, or
        the contents of ``checkpoint_key_file`` without surrounding whitespace.

        Raises
        ------
        SettingsError
            Neither or both are set, the file cannot be read, or the key is
            shorter than :data:`MIN_KEY_BYTES`.
        """
        return self._secret("checkpoint_key", MIN_KEY_BYTES, "is required",
                            f"a secret of at least {MIN_KEY_BYTES} characters that every worker "
                            "of the app shares (e.g. the output of `openssl rand -hex 32`)")

    def console_secret(self) -> bytes:
        """The console's bearer token as bytes, read as :meth:`checkpoint_secret`
        reads the key (``console_token`` or ``console_token_file``).

        Raises
        ------
        SettingsError
            Neither or both are set, the file cannot be read, or the token is
            shorter than :data:`MIN_TOKEN_BYTES`.
        """
        return self._secret("console_token", MIN_TOKEN_BYTES, "is required with console_port",
                            f"a secret of at least {MIN_TOKEN_BYTES} characters that the "
                            "console's users are given (e.g. the output of `openssl rand -hex 16`)")

    def _secret(self, name: str, min_bytes: int, required: str, what: str) -> bytes:
        """The secret ``name`` (env only) or the contents of the file named by
        ``<name>_file``, stripped; one of the two, at least ``min_bytes`` long."""
        file_name = f"{name}_file"
        value, path = getattr(self, name), getattr(self, file_name)
        if value is not None and path is not None:
            raise SettingsError(name, f"set either it or {file_name} ({_env_name(file_name)}), "
                                      "not both")
        if path is not None:
            label = file_name
            try:
                secret = Path(path).read_bytes().strip()
            except OSError as exc:
                raise SettingsError(label, f"cannot read {path}: {exc.strerror or exc}") from None
        elif value is not None:
            label, secret = name, value.encode()
        else:
            raise SettingsError(name, f"{required}: set it, or {file_name} "
                                      f"({_env_name(file_name)}), to {what}")
        if len(secret) < min_bytes:
            noun = "key" if name == "checkpoint_key" else "token"
            raise SettingsError(label, f"the {noun} must have at least {min_bytes} bytes, "
                                       f"it has {len(secret)}")
        return secret

    # ------------------------------------------------------------ building

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by ``KAFKA_BOOTSTRAP_SERVERS`` and ``LIKEGUARD_*``."""
        env = os.environ if env is None else env
        return cls().with_values(_values_from(env, lambda name: env.get(_env_name(name))))

    @classmethod
    def from_args(cls, args: argparse.Namespace | None,
                  env: Mapping[str, str] | None = None) -> Settings:
        """:meth:`from_env`, then every flag of ``args`` that was given (not ``None``)."""
        base = cls.from_env(env)
        if args is None:
            return base
        ns = vars(args)
        return base.with_values(_values_from(
            ns, lambda name: None if name in _ENV_ONLY else ns.get(name)))

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """A copy with worker and engine settings replaced (unknown names raise)."""
        own = {f.name for f in fields(self)} - {"engine"}
        mine: dict[str, Any] = {}
        eng: dict[str, Any] = {}
        for name, value in values.items():
            if name in own:
                mine[name] = value
            elif name in _ENGINE_FIELDS:
                eng[name] = value
            else:
                raise SettingsError(name, "unknown setting")
        engine = replace(self.engine, **eng) if eng else self.engine
        return replace(self, engine=engine, **mine)

    # ------------------------------------------------------------ checking

    def validate(self) -> Settings:
        """Check every setting; raise :class:`SettingsError` naming the first bad one."""
        servers = [s.strip() for s in self.bootstrap_servers.split(",")]
        if not self.bootstrap_servers.strip() or not all(servers):
            raise SettingsError("bootstrap_servers", "must list host:port[,host:port...]")
        for s in servers:
            m = _HOSTPORT_RE.match(s)
            if m is None or not 0 < int(m.group(2)) < 65536:
                raise SettingsError("bootstrap_servers", f"{s!r} is not host:port")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise SettingsError("security_protocol",
                                f"must be one of {', '.join(SECURITY_PROTOCOLS)}, "
                                f"got {self.security_protocol!r}")
        if self.uses_sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise SettingsError("sasl_mechanism",
                                    f"must be one of {', '.join(SASL_MECHANISMS)} with "
                                    f"{self.security_protocol}, got {self.sasl_mechanism!r}")
            if not self.sasl_username:
                raise SettingsError("sasl_username", f"is required with {self.security_protocol}")
            if not self.sasl_password:
                raise SettingsError("sasl_password", f"is required with {self.security_protocol}")
        elif self.sasl_mechanism is not None and self.sasl_mechanism not in SASL_MECHANISMS:
            raise SettingsError("sasl_mechanism",
                                f"must be one of {', '.join(SASL_MECHANISMS)}, "
                                f"got {self.sasl_mechanism!r}")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise SettingsError(name, f"file not found: {path}")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            missing = "ssl_keyfile" if self.ssl_keyfile is None else "ssl_certfile"
            raise SettingsError(missing, "ssl_certfile and ssl_keyfile go together")
        if (self.ssl_cafile or self.ssl_certfile) and not self.uses_ssl:
            raise SettingsError("security_protocol",
                                f"TLS files are set but the protocol is {self.security_protocol}; "
                                "use SSL or SASL_SSL")
        topic_settings = ("payments_topic", "likes_topic", "alerts_topic", "deadletter_topic",
                          "verdicts_topic", "view_topic_prefix")
        for name in topic_settings:
            value = getattr(self, name)
            if not isinstance(value, str) or not _TOPIC_RE.match(value) or value in (".", ".."):
                raise SettingsError(name, f"{value!r} is not a valid Kafka topic name "
                                          "(letters, digits, '.', '_', '-')")
        names = [getattr(self, n) for n in topic_settings[:5]]
        names += [self.view_topic(v) for v in ("merchant", "ip", "device", "user", "lockstep")]
        if len(set(names)) != len(names):
            raise SettingsError("payments_topic", f"topic names must be distinct, got {names}")
        if not _TOPIC_RE.match(self.app_id):
            raise SettingsError("app_id", f"{self.app_id!r} must be letters, digits, '.', '_', '-'")
        if self.replication_factor < 1:
            raise SettingsError("replication_factor", f"must be >= 1, got {self.replication_factor}")
        if not self.data_dir:
            raise SettingsError("data_dir", "must not be empty")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError("metrics_port", f"must be in 0..65535, got {self.metrics_port}")
        if not self.metrics_addr:
            raise SettingsError("metrics_addr", "must not be empty")
        for name in ("checkpoint_interval", "batch_within", "fetch_max_wait", "session_timeout",
                     "heartbeat_interval"):
            if not getattr(self, name) > 0:
                raise SettingsError(name, f"must be > 0, got {getattr(self, name)}")
        for name in ("idle_flush", "progress_interval"):
            if not getattr(self, name) >= 0:
                raise SettingsError(name, f"must be >= 0 (0 disables), got {getattr(self, name)}")
        if self.batch_size < 1:
            raise SettingsError("batch_size", f"must be >= 1, got {self.batch_size}")
        if self.heartbeat_interval >= self.session_timeout:
            raise SettingsError("heartbeat_interval",
                                f"must be below session_timeout ({self.session_timeout})")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
        self.checkpoint_secret()
        if not 0 <= self.console_port <= 65535:
            raise SettingsError("console_port", f"must be in 0..65535, got {self.console_port}")
        if not self.console_addr:
            raise SettingsError("console_addr", "must not be empty")
        if self.console_port:
            if self.console_port == self.metrics_port:
                raise SettingsError("console_port", f"must differ from metrics_port "
                                                    f"({self.metrics_port})")
            self.console_secret()
        try:
            self.engine.validate()
        except ValueError as exc:
            msg = str(exc)
            name = msg.split(" ", 1)[0]
            raise SettingsError(name if name in _ENGINE_FIELDS else "engine", msg) from None
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def kafka_python_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for kafka-python clients (admin checks)."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                              "security_protocol": self.security_protocol}
        if self.uses_sasl:
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_password)
        if self.uses_ssl:
            kw.update(ssl_cafile=self.ssl_cafile, ssl_certfile=self.ssl_certfile,
                      ssl_keyfile=self.ssl_keyfile, ssl_check_hostname=True)
        return kw

    def describe(self) -> dict[str, Any]:
        """The settings as a dict for logging, password masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "engine":
                out.update({f"engine.{k}": x for k, x in v.to_dict().items()})
            elif f.name in ("sasl_password", "checkpoint_key", "console_token"):
                out[f.name] = "***" if v else None
            else:
                out[f.name] = v
        return out


# ---------------------------------------------------------------- parsing

_INT = {"replication_factor", "metrics_port", "batch_size", "console_port"}
_FLOAT = {"checkpoint_interval", "idle_flush", "progress_interval", "batch_within",
          "fetch_max_wait", "session_timeout", "heartbeat_interval"}
_OPTIONAL = {"sasl_mechanism", "sasl_username", "sasl_password", "ssl_cafile", "ssl_certfile",
             "ssl_keyfile", "checkpoint_key", "checkpoint_key_file", "console_token",
             "console_token_file"}
_UPPER = {"security_protocol", "sasl_mechanism"}


def _convert(name: str, raw: Any) -> Any:
    """Convert a raw env/flag value of setting ``name`` to its type."""
    if name in _ENGINE_FIELDS:
        kind = {"int": int, "float": float, "str": str}.get(str(_ENGINE_FIELDS[name].type), str)
    elif name in _INT:
        kind = int
    elif name in _FLOAT:
        kind = float
    else:
        kind = str
    if not isinstance(raw, str):
        if kind is float and isinstance(raw, int | float):
            return float(raw)
        return raw
    text = raw.strip()
    if name in _OPTIONAL and text == "":
        return None
    if name in _UPPER:
        text = text.upper()
    if name == "log_level":
        text = text.lower()
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise SettingsError(name, f"not {'an integer' if kind is int else 'a number'}: {raw!r}") \
            from None
    return text


def _values_from(source: Mapping[str, Any], get: Any) -> dict[str, Any]:
    names = [f.name for f in fields(Settings) if f.name != "engine"] + list(_ENGINE_FIELDS)
    out: dict[str, Any] = {}
    for name in names:
        raw = get(name)
        if raw is None:
            continue
        out[name] = _convert(name, raw)
    return out


class _EnvOnly(argparse.Action):
    """A hidden flag for an env-only setting: refuses the value without echoing
    it (and keeps ``--checkpoint-key`` from passing for an abbreviation of
    ``--checkpoint-key-file``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(f"{option_string} is not accepted (argv is visible to every user of the "
                     f"host): set {_env_name(self.dest)} in the environment instead")


def add_worker_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one flag per setting (default ``None`` = keep env/default) to ``parser``.

    Flags that ``parser`` already defines (e.g. ``--bootstrap-servers`` of the
    ``likeguard worker`` sub-command) are left alone.
    """
    existing = {opt for a in parser._actions for opt in a.option_strings}
    defaults = Settings()
    g = parser.add_argument_group("worker settings (flags override environment)")
    helps = {
        "bootstrap_servers": "Kafka bootstrap servers host:port[,...]",
        "security_protocol": f"one of {', '.join(SECURITY_PROTOCOLS)}",
        "sasl_mechanism": f"one of {', '.join(SASL_MECHANISMS)}",
        "sasl_password": "SASL password (prefer the env var)",
        "metrics_port": "Prometheus port, 0 disables",
        "checkpoint_interval": "seconds between engine checkpoints of a busy partition (stretched "
                               "so checkpoints take at most a tenth of the worker's time)",
        "idle_flush": "seconds without input after which a partition's engine is flushed (0: never)",
        "progress_interval": "seconds between progress marks of an input partition to the view "
                             "partitions (keeps their watermarks current; 0: none)",
        "view_topic_prefix": "prefix of the internal repartition topics (<prefix>.<view>)",
        "batch_size": "max records per agent batch",
        "batch_within": "max seconds to wait to fill a batch",
        "fetch_max_wait": "max seconds the broker holds a fetch for data (lower keeps a backlog "
                          "flowing; Faust's own default is 1.5)",
        "checkpoint_key_file": "file holding the secret that signs checkpoints (or the env var "
                               "LIKEGUARD_CHECKPOINT_KEY; required)",
        "console_port": "port of the review console (/console/), 0: off",
        "console_addr": "address the review console listens on",
        "console_token_file": "file holding the review console's bearer token (or the env var "
                              "LIKEGUARD_CONSOLE_TOKEN; required with --console-port)",
    }
    for f in fields(Settings):
        if f.name == "engine":
            continue
        flag = _flag(f.name)
        if flag in existing:
            continue
        if f.name in _ENV_ONLY:
            g.add_argument(flag, dest=f.name, action=_EnvOnly, help=argparse.SUPPRESS)
            continue
        choices: tuple[str, ...] | None = None
        if f.name == "security_protocol":
            choices = SECURITY_PROTOCOLS
        elif f.name == "sasl_mechanism":
            choices = SASL_MECHANISMS
        elif f.name == "log_level":
            choices = LOG_LEVELS
        g.add_argument(flag, dest=f.name, default=None, choices=choices,
                       help=f"{helps.get(f.name, f.name.replace('_', ' '))} "
                            f"[{_env_name(f.name)}; default {_str_default(getattr(defaults, f.name))!r}]")
    e = parser.add_argument_group("detector settings (flags override environment)")
    for name, f in _ENGINE_FIELDS.items():
        flag = _flag(name)
        if flag in existing:
            continue
        e.add_argument(flag, dest=name, default=None,
                       choices=MODES if name == "mode" else None,
                       help=f"[{_env_name(name)}; default {f.default!r}]")
    return parser
