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

The Kafka passwords (``LIKEGUARD_SASL_PASSWORD`` and the client key's
``LIKEGUARD_SSL_PASSWORD``) are read the same way: env only, or from a file
(``..._FILE``); ``--sasl-password`` and ``--ssl-password`` are refused.
Every Kafka client of likeguard (the worker's Faust app and aiokafka
consumer, its pre-flight kafka-python admin, and the ``record`` / ``replay
--to-kafka`` / ``simulate --to-kafka`` commands) is configured from one
:class:`Settings` object: :meth:`Settings.kafka_python_kwargs`,
:meth:`Settings.aiokafka_kwargs` and :meth:`Settings.ssl_context`.

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
import ssl
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
    "CONNECTION_SETTINGS",
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
_ENV_ONLY = frozenset({"checkpoint_key", "console_token", "sasl_password", "ssl_password"})
#: the settings of a Kafka connection (all a ``record`` or ``replay --to-kafka`` reads)
CONNECTION_SETTINGS = ("bootstrap_servers", "security_protocol", "sasl_mechanism",
                       "sasl_username", "sasl_password", "sasl_password_file", "ssl_cafile",
                       "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_password_file",
                       "kafka_connect_timeout", "kafka_debug")

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
    #: the SASL password (env only), or a file holding it
    sasl_password: str | None = field(default=None, repr=False)
    sasl_password_file: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    #: the password of an encrypted ``ssl_keyfile`` (env only), or a file holding it
    ssl_password: str | None = field(default=None, repr=False)
    ssl_password_file: str | None = None
    #: seconds to wait for the first broker (None: 8 for the worker, 10 for commands)
    kafka_connect_timeout: float | None = None
    #: keep kafka-python's own log lines (connection retries) in commands and pre-flight
    kafka_debug: bool = False
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

    def sasl_secret(self) -> str | None:
        """The SASL password: ``sasl_password`` or the contents of
        ``sasl_password_file`` without surrounding whitespace; ``None`` when
        neither is set.

        Raises
        ------
        SettingsError
            Both are set, or the file cannot be read.
        """
        secret = self._read_secret("sasl_password")
        return None if secret is None else secret[1].decode("utf-8", "surrogateescape")

    def ssl_key_secret(self) -> str | None:
        """The password of ``ssl_keyfile``, read as :meth:`sasl_secret` reads its own."""
        secret = self._read_secret("ssl_password")
        return None if secret is None else secret[1].decode("utf-8", "surrogateescape")

    def secret_values(self) -> list[str]:
        """Every secret of these settings that is set (the Kafka passwords, the
        checkpoint key, the console token), for :func:`streams.worker.redact_secrets`."""
        out = []
        for name in sorted(_ENV_ONLY):
            try:
                found = self._read_secret(name)
            except SettingsError:
                continue
            if found is not None and found[1]:
                out.append(found[1].decode("utf-8", "surrogateescape"))
        return out

    def _read_secret(self, name: str) -> tuple[str, bytes] | None:
        """``(label, secret)`` of the secret ``name`` (env only) or of the file
        named by ``<name>_file`` (stripped), or ``None`` when neither is set."""
        file_name = f"{name}_file"
        value, path = getattr(self, name), getattr(self, file_name)
        if value is not None and path is not None:
            raise SettingsError(name, f"set either it or {file_name} ({_env_name(file_name)}), "
                                      "not both")
        if path is not None:
            try:
                return file_name, Path(path).read_bytes().strip()
            except OSError as exc:
                raise SettingsError(file_name, f"cannot read {path}: {exc.strerror or exc}") \
                    from None
        if value is not None:
            return name, value.encode()
        return None

    def _secret(self, name: str, min_bytes: int, required: str, what: str) -> bytes:
        """The secret ``name`` (env only) or the contents of the file named by
        ``<name>_file``, stripped; one of the two, at least ``min_bytes`` long."""
        found = self._read_secret(name)
        if found is None:
            file_name = f"{name}_file"
            raise SettingsError(name, f"{required}: set it, or {file_name} "
                                      f"({_env_name(file_name)}), to {what}")
        label, secret = found
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
    def connection_from_env(cls, env: Mapping[str, str] | None = None,
                            bootstrap_servers: str | None = None) -> Settings:
        """Defaults overridden by the connection settings of the environment
        (:data:`CONNECTION_SETTINGS` only: a command that only talks to Kafka
        does not care about a worker setting), then by ``bootstrap_servers``
        when given and not blank; validated with :meth:`validate_connection`."""
        env = os.environ if env is None else env
        values = _values_from(env, lambda name: env.get(_env_name(name)),
                              names=CONNECTION_SETTINGS)
        if bootstrap_servers is not None and bootstrap_servers.strip():
            values["bootstrap_servers"] = bootstrap_servers.strip()
        return cls().with_values(values).validate_connection()

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
        self.validate_connection()
        self.validate_topics()
        return self._validate_worker()

    def validate_connection(self) -> Settings:
        """Check the Kafka connection settings (:data:`CONNECTION_SETTINGS`),
        including that the TLS files load and the passwords can be read."""
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
        password = self.sasl_secret()
        if self.uses_sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise SettingsError("sasl_mechanism",
                                    f"must be one of {', '.join(SASL_MECHANISMS)} with "
                                    f"{self.security_protocol}, got {self.sasl_mechanism!r}")
            if not self.sasl_username:
                raise SettingsError("sasl_username", f"is required with {self.security_protocol}")
            if not password:
                raise SettingsError("sasl_password",
                                    f"is required with {self.security_protocol}: set it, or "
                                    "sasl_password_file (LIKEGUARD_SASL_PASSWORD_FILE)")
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
        key_password = self.ssl_key_secret()
        if key_password is not None and self.ssl_keyfile is None:
            raise SettingsError("ssl_password", "is the password of ssl_keyfile, which is not set")
        if (self.ssl_cafile or self.ssl_certfile) and not self.uses_ssl:
            raise SettingsError("security_protocol",
                                f"TLS files are set but the protocol is {self.security_protocol}; "
                                "use SSL or SASL_SSL")
        if self.uses_ssl:
            self.ssl_context()  # the CA, certificate and key load (and the password fits)
        if self.kafka_connect_timeout is not None and not self.kafka_connect_timeout > 0:
            raise SettingsError("kafka_connect_timeout",
                                f"must be > 0, got {self.kafka_connect_timeout}")
        return self

    def validate_topics(self) -> Settings:
        """Check the topic names and the app id (all :mod:`streams.acls` needs)."""
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
        return self

    def _validate_worker(self) -> Settings:
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

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context of every Kafka client: verifies the broker
        (certificate and host name) with ``ssl_cafile`` or the system CAs, and
        presents ``ssl_certfile`` / ``ssl_keyfile`` when set (mutual TLS),
        decrypting the key with ``ssl_password``.

        Raises
        ------
        SettingsError
            A file does not load, or the key needs a password that is not set
            or does not fit.
        """
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ssl_cafile)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError("ssl_cafile", f"cannot load {self.ssl_cafile}: {exc}") from None
        if self.ssl_certfile:
            password = self.ssl_key_secret()

            def no_password() -> str:  # instead of OpenSSL prompting on the terminal
                raise SettingsError("ssl_password", f"{self.ssl_keyfile} is encrypted: set "
                                                    "ssl_password or ssl_password_file")
            try:
                ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile,
                                    password=password if password is not None else no_password)
            except (OSError, ssl.SSLError) as exc:
                why = "wrong ssl_password? " if password is not None else ""
                raise SettingsError("ssl_keyfile", f"cannot load {self.ssl_certfile} with "
                                                   f"{self.ssl_keyfile}: {why}{exc}") from None
        return ctx

    def kafka_python_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments for kafka-python clients: servers,
        security protocol, SASL credentials, TLS context."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                              "security_protocol": self.security_protocol}
        if self.uses_sasl:
            kw.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_secret())
        if self.uses_ssl:
            kw["ssl_context"] = self.ssl_context()
        return kw

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """The same connection as :meth:`kafka_python_kwargs`, as aiokafka
        client arguments (Faust's credentials are built from it as well:
        :func:`streams.app.credentials`)."""
        kw: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                              "security_protocol": self.security_protocol}
        if self.uses_ssl:
            kw["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kw.update(sasl_mechanism=self.sasl_mechanism,
                      sasl_plain_username=self.sasl_username,
                      sasl_plain_password=self.sasl_secret())
        return kw

    def describe(self) -> dict[str, Any]:
        """The settings as a dict for logging, password masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "engine":
                out.update({f"engine.{k}": x for k, x in v.to_dict().items()})
            elif f.name in _ENV_ONLY:
                out[f.name] = "***" if v else None
            else:
                out[f.name] = v
        return out


# ---------------------------------------------------------------- parsing

_INT = {"replication_factor", "metrics_port", "batch_size", "console_port"}
_FLOAT = {"checkpoint_interval", "idle_flush", "progress_interval", "batch_within",
          "fetch_max_wait", "session_timeout", "heartbeat_interval", "kafka_connect_timeout"}
_BOOL = {"kafka_debug"}
_OPTIONAL = {"sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file",
             "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_password_file",
             "checkpoint_key", "checkpoint_key_file", "console_token", "console_token_file",
             "kafka_connect_timeout"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
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
    if name in _BOOL:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise SettingsError(name, f"not a yes/no value (1, true, yes, on / 0, false, no, off): "
                                  f"{raw!r}")
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


def _values_from(source: Mapping[str, Any], get: Any,
                 names: Any = None) -> dict[str, Any]:
    if names is None:
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
        file_name = f"{self.dest}_file"
        parser.error(f"{option_string} is not accepted (argv is visible to every user of the "
                     f"host): set {_env_name(self.dest)} in the environment instead, or "
                     f"{_env_name(file_name)} ({_flag(file_name)}) to a file holding it")


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
        "sasl_password_file": "file holding the SASL password (or the env var "
                              "LIKEGUARD_SASL_PASSWORD; required with SASL_*)",
        "ssl_password_file": "file holding the password of an encrypted --ssl-keyfile (or the "
                             "env var LIKEGUARD_SSL_PASSWORD)",
        "ssl_certfile": "client certificate (PEM) for mutual TLS; goes with --ssl-keyfile",
        "ssl_keyfile": "client certificate's private key (PEM)",
        "kafka_connect_timeout": "seconds to wait for the first broker at start (default: 8 for "
                                 "the worker, 10 for the Kafka commands)",
        "kafka_debug": "1: keep kafka-python's own log lines (connection retries)",
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
