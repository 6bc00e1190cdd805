"""Unit tests of the worker settings (no broker)."""

from __future__ import annotations

import argparse
import ssl
import subprocess
from pathlib import Path

import pytest

from detectors.config import EngineConfig
from streams.settings import Settings, SettingsError, add_worker_arguments

KEY = "0123456789abcdef0123456789abcdef"  # 32 characters: the shortest key accepted
KEY_ENV = {"LIKEGUARD_CHECKPOINT_KEY": KEY}


def _parse(argv: list[str]) -> argparse.Namespace:
    return add_worker_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_defaults_are_valid_and_match_the_contract():
    s = Settings.from_env(KEY_ENV).validate()
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert (s.payments_topic, s.likes_topic, s.alerts_topic, s.deadletter_topic) == (
        "payments.success", "likes", "likeguard.alerts", "likeguard.deadletter")
    assert s.view_topic("lockstep") == "likeguard.view.lockstep"
    assert s.metrics_port == 9108
    assert s.engine == EngineConfig()
    assert s.partitions == EngineConfig().partitions == 6


def test_env_then_flags_override():
    env = {"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9093", "LIKEGUARD_GRACE": "30",
           "LIKEGUARD_METRICS_PORT": "9200", "LIKEGUARD_ALERTS_TOPIC": "a.env",
           "LIKEGUARD_PARTITIONS": "12", "LIKEGUARD_MODE": "rules",
           "LIKEGUARD_SECURITY_PROTOCOL": "plaintext", **KEY_ENV}
    s = Settings.from_args(_parse(["--grace", "45", "--alerts-topic", "a.flag",
                                   "--idle-flush", "0"]), env).validate()
    assert s.bootstrap_servers == "k1:9092,k2:9093"
    assert s.engine.grace == 45.0  # flag beats env
    assert s.alerts_topic == "a.flag"
    assert s.metrics_port == 9200  # env beats default
    assert s.engine.partitions == s.partitions == 12  # one number for shards and topics
    assert s.engine.mode == "rules"
    assert s.security_protocol == "PLAINTEXT"  # case-insensitive
    assert s.idle_flush == 0.0


def test_cli_namespace_with_unrelated_attributes():
    # ``likeguard worker`` passes its own namespace (command, func, two flags)
    ns = argparse.Namespace(command="worker", func=print, bootstrap_servers="b:1",
                            metrics_port=0)
    s = Settings.from_args(ns, KEY_ENV).validate()
    assert (s.bootstrap_servers, s.metrics_port) == ("b:1", 0)


@pytest.mark.parametrize(("env", "setting", "words"), [
    ({"KAFKA_BOOTSTRAP_SERVERS": "nohost"}, "bootstrap_servers", "host:port"),
    ({"KAFKA_BOOTSTRAP_SERVERS": ""}, "bootstrap_servers", "host:port"),
    ({"LIKEGUARD_SECURITY_PROTOCOL": "TLS"}, "security_protocol", "SASL_SSL"),
    ({"LIKEGUARD_SECURITY_PROTOCOL": "SASL_SSL"}, "sasl_mechanism", "SCRAM-SHA-256"),
    ({"LIKEGUARD_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LIKEGUARD_SASL_MECHANISM": "GSSAPI"},
     "sasl_mechanism", "PLAIN"),
    ({"LIKEGUARD_SECURITY_PROTOCOL": "SASL_SSL", "LIKEGUARD_SASL_MECHANISM": "SCRAM-SHA-512"},
     "sasl_username", "required"),
    ({"LIKEGUARD_SECURITY_PROTOCOL": "SASL_SSL", "LIKEGUARD_SASL_MECHANISM": "PLAIN",
      "LIKEGUARD_SASL_USERNAME": "u"}, "sasl_password", "required"),
    ({"LIKEGUARD_SECURITY_PROTOCOL": "SSL", "LIKEGUARD_SSL_CAFILE": "/nonexistent/ca.pem"},
     "ssl_cafile", "not found"),
    ({"LIKEGUARD_ALERTS_TOPIC": "bad topic!"}, "alerts_topic", "valid Kafka topic"),
    ({"LIKEGUARD_ALERTS_TOPIC": "likes"}, "payments_topic", "distinct"),
    ({"LIKEGUARD_METRICS_PORT": "-1"}, "metrics_port", "0..65535"),
    ({"LIKEGUARD_METRICS_PORT": "http"}, "metrics_port", "integer"),
    ({"LIKEGUARD_CHECKPOINT_INTERVAL": "0"}, "checkpoint_interval", "> 0"),
    ({"LIKEGUARD_IDLE_FLUSH": "-2"}, "idle_flush", ">= 0"),
    ({"LIKEGUARD_FETCH_MAX_WAIT": "0"}, "fetch_max_wait", "> 0"),
    ({"LIKEGUARD_PARTITIONS": "0"}, "partitions", "> 0"),
    ({"LIKEGUARD_GRACE": "soon"}, "grace", "number"),
    ({"LIKEGUARD_GRACE": "-1"}, "grace", ">= 0"),
    ({"LIKEGUARD_MODE": "magic"}, "mode", "mode must be one of"),
    ({"LIKEGUARD_APP_ID": "my app"}, "app_id", "letters"),
    ({"LIKEGUARD_LOG_LEVEL": "loud"}, "log_level", "one of"),
    ({"LIKEGUARD_HEARTBEAT_INTERVAL": "40"}, "heartbeat_interval", "session_timeout"),
])
def test_bad_settings_name_the_setting(env, setting, words):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**KEY_ENV, **env}).validate()
    assert info.value.setting == setting
    msg = str(info.value)
    assert msg.startswith(f"{setting} (")  # names the setting, its env var and flag
    assert words in msg


def _pki(d: Path) -> dict[str, Path]:
    """A throwaway CA and a client certificate whose key is encrypted with the
    password in ``key.pass`` (what mutual TLS with a protected key needs)."""
    (d / "key.pass").write_text("client-key-password\n")
    cmds = [
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
        "-keyout ca.key -out ca.pem",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=likeguard -keyout plain.key -out c.csr",
        "openssl x509 -req -in c.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "-out client.pem",
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -in plain.key -passout file:key.pass "
        "-out client.key",
    ]
    for cmd in cmds:
        subprocess.run(cmd.split(), cwd=d, check=True, capture_output=True)
    return {n: d / f for n, f in (("ca", "ca.pem"), ("cert", "client.pem"),
                                  ("key", "client.key"), ("pass", "key.pass"))}


def test_tls_and_sasl_settings(tmp_path):
    pki = _pki(tmp_path)
    s = Settings.from_env({"LIKEGUARD_SECURITY_PROTOCOL": "SASL_SSL",
                           "LIKEGUARD_SASL_MECHANISM": "scram-sha-256",
                           "LIKEGUARD_SASL_USERNAME": "likeguard",
                           "LIKEGUARD_SASL_PASSWORD": "s3cret",
                           "LIKEGUARD_SSL_CAFILE": str(pki["ca"]), **KEY_ENV}).validate()
    assert s.sasl_mechanism == "SCRAM-SHA-256"
    kw = s.kafka_python_kwargs()
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_plain_username"] == "likeguard"
    assert kw["sasl_plain_password"] == "s3cret"
    assert isinstance(kw["ssl_context"], ssl.SSLContext) and kw["ssl_context"].check_hostname
    aio = s.aiokafka_kwargs()
    assert (aio["sasl_plain_password"], aio["security_protocol"]) == ("s3cret", "SASL_SSL")
    assert isinstance(aio["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(s) and s.describe()["sasl_password"] == "***"
    with pytest.raises(SettingsError) as info:  # a client cert needs its key
        s.with_values({"ssl_certfile": str(pki["cert"])}).validate()
    assert info.value.setting == "ssl_keyfile"
    with pytest.raises(SettingsError) as info:  # TLS files without a TLS protocol
        Settings.from_env({"LIKEGUARD_SSL_CAFILE": str(pki["ca"]), **KEY_ENV}).validate()
    assert info.value.setting == "security_protocol"
    with pytest.raises(SettingsError) as info:  # a CA file that is no certificate
        s.with_values({"ssl_cafile": str(pki["pass"])}).validate()
    assert info.value.setting == "ssl_cafile" and "cannot load" in str(info.value)


def test_mutual_tls_settings(tmp_path):
    """A client certificate with an encrypted key: the key's password comes
    from a file (or the env), never a prompt; a wrong or missing one is named."""
    pki = _pki(tmp_path)
    env = {"LIKEGUARD_SECURITY_PROTOCOL": "SSL", "LIKEGUARD_SSL_CAFILE": str(pki["ca"]),
           "LIKEGUARD_SSL_CERTFILE": str(pki["cert"]), "LIKEGUARD_SSL_KEYFILE": str(pki["key"]),
           **KEY_ENV}
    s = Settings.from_env({**env, "LIKEGUARD_SSL_PASSWORD_FILE": str(pki["pass"])}).validate()
    assert s.ssl_key_secret() == "client-key-password"
    assert "ssl_context" in s.kafka_python_kwargs() and "ssl_context" in s.aiokafka_kwargs()
    assert Settings.from_env({**env, "LIKEGUARD_SSL_PASSWORD": "client-key-password"}).validate()
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env).validate()
    assert info.value.setting == "ssl_password" and "encrypted" in str(info.value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**env, "LIKEGUARD_SSL_PASSWORD": "wrong"}).validate()
    assert info.value.setting == "ssl_keyfile" and "wrong ssl_password" in str(info.value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**env, "LIKEGUARD_SSL_PASSWORD": "x",
                           "LIKEGUARD_SSL_PASSWORD_FILE": str(pki["pass"])}).validate()
    assert info.value.setting == "ssl_password" and "not both" in str(info.value)


def test_kafka_passwords_stay_out_of_argv(tmp_path, capsys):
    """``--sasl-password`` and ``--ssl-password`` are refused without echoing
    the value (and are no abbreviation of their ``-file`` flags); the SASL
    password may come from a file."""
    parser = add_worker_arguments(argparse.ArgumentParser())
    help_text = parser.format_help()
    assert "--sasl-password-file" in help_text and "--sasl-password " not in help_text
    for argv in (["--sasl-password", "argv-secret-1"], ["--sasl-password=argv-secret-1"],
                 ["--ssl-password", "argv-secret-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        err = capsys.readouterr().err
        assert "argv-secret-1" not in err and "in the environment instead" in err
        assert "_PASSWORD_FILE" in err
    pw = tmp_path / "sasl.pass"
    pw.write_text("file-secret\n")
    base = {"LIKEGUARD_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LIKEGUARD_SASL_MECHANISM": "PLAIN",
            "LIKEGUARD_SASL_USERNAME": "u", **KEY_ENV}
    s = Settings.from_args(parser.parse_args(["--sasl-password-file", str(pw)]), base).validate()
    assert s.sasl_secret() == "file-secret"
    assert s.kafka_python_kwargs()["sasl_plain_password"] == "file-secret"
    assert "file-secret" not in repr(s) and "file-secret" not in str(s.describe())
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**base, "LIKEGUARD_SASL_PASSWORD_FILE": str(tmp_path / "none")}
                          ).validate()
    assert info.value.setting == "sasl_password_file" and "cannot read" in str(info.value)


def test_connection_settings_ignore_worker_settings():
    """A Kafka command reads only the connection settings: a bad worker
    setting does not stop it, a bad connection setting does."""
    env = {"LIKEGUARD_GRACE": "soon", "KAFKA_BOOTSTRAP_SERVERS": "k1:9092",
           "LIKEGUARD_KAFKA_CONNECT_TIMEOUT": "2.5", "LIKEGUARD_KAFKA_DEBUG": "yes"}
    s = Settings.connection_from_env(env)
    assert (s.bootstrap_servers, s.kafka_connect_timeout, s.kafka_debug) == ("k1:9092", 2.5, True)
    assert Settings.connection_from_env(env, " k2:9092 ").bootstrap_servers == "k2:9092"
    with pytest.raises(SettingsError) as info:
        Settings.connection_from_env({**env, "LIKEGUARD_KAFKA_DEBUG": "maybe"})
    assert info.value.setting == "kafka_debug"
    with pytest.raises(SettingsError) as info:
        Settings.connection_from_env({**env, "LIKEGUARD_KAFKA_CONNECT_TIMEOUT": "0"})
    assert info.value.setting == "kafka_connect_timeout"


def test_unknown_setting_is_rejected():
    with pytest.raises(SettingsError) as info:
        Settings().with_values({"gracee": 3})
    assert info.value.setting == "gracee"


def test_every_setting_has_a_flag():
    ns = _parse(["--window", "600", "--tick", "10", "--view-topic-prefix", "x.v",
                 "--security-protocol", "SSL", "--checkpoint-interval", "2.5"])
    s = Settings.from_args(ns, {})
    assert (s.engine.window, s.engine.tick, s.view_topic("ip"), s.security_protocol,
            s.checkpoint_interval) == (600.0, 10.0, "x.v.ip", "SSL", 2.5)


def test_the_checkpoint_key_is_required():
    """Without a key the worker cannot sign or verify checkpoints: it refuses
    to start, and the message says how to make one."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env({}).validate()
    assert info.value.setting == "checkpoint_key"
    msg = str(info.value)
    assert msg.startswith("checkpoint_key (LIKEGUARD_CHECKPOINT_KEY): is required")
    assert "LIKEGUARD_CHECKPOINT_KEY_FILE" in msg and "openssl rand" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(("env", "setting", "words"), [
    ({"LIKEGUARD_CHECKPOINT_KEY": "changeme"}, "checkpoint_key", "at least 32 bytes, it has 8"),
    ({"LIKEGUARD_CHECKPOINT_KEY": "   "}, "checkpoint_key", "is required"),
    ({"LIKEGUARD_CHECKPOINT_KEY_FILE": "/nonexistent/likeguard.key"}, "checkpoint_key_file",
     "cannot read /nonexistent/likeguard.key"),
    ({"LIKEGUARD_CHECKPOINT_KEY": KEY, "LIKEGUARD_CHECKPOINT_KEY_FILE": "/k"}, "checkpoint_key",
     "not both"),
])
def test_a_bad_checkpoint_key_is_named(env, setting, words):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env).validate()
    assert info.value.setting == setting
    assert words in str(info.value)
    assert KEY not in str(info.value)


def test_the_checkpoint_key_from_a_file(tmp_path):
    path = tmp_path / "checkpoint.key"
    path.write_text(f"  {KEY}\n")  # as `openssl rand -hex 16 > file` leaves it, plus blanks
    s = Settings.from_env({"LIKEGUARD_CHECKPOINT_KEY_FILE": str(path)}).validate()
    assert s.checkpoint_secret() == KEY.encode()
    # the same secret in the env var is the same key: peers may use either
    assert Settings.from_env(KEY_ENV).checkpoint_secret() == s.checkpoint_secret()
    path.write_text("short\n")
    with pytest.raises(SettingsError, match="at least 32 bytes, it has 5"):
        s.validate()


def test_the_checkpoint_key_stays_out_of_argv_and_logs(capsys):
    """The key has no flag (argv is visible to every user of the host), a
    namespace carrying one is ignored, and neither repr nor describe shows it;
    the key file's path has a flag."""
    parser = add_worker_arguments(argparse.ArgumentParser())
    assert "--checkpoint-key-file" in parser.format_help()
    assert "--checkpoint-key " not in parser.format_help()
    for argv in (["--checkpoint-key", KEY], [f"--checkpoint-key={KEY}"]):
        with pytest.raises(SystemExit):  # refused, not taken for --checkpoint-key-file
            parser.parse_args(argv)
    err = capsys.readouterr().err
    assert "set LIKEGUARD_CHECKPOINT_KEY in the environment" in err and KEY not in err
    ns = argparse.Namespace(checkpoint_key="from-argv-" + "x" * 32)
    assert Settings.from_args(ns, KEY_ENV).checkpoint_key == KEY
    s = Settings.from_env(KEY_ENV).validate()
    assert KEY not in repr(s) and KEY not in str(s.describe())
    assert s.describe()["checkpoint_key"] == "***"


def test_the_checkpoint_changelog_is_named_as_faust_names_it(tmp_path):
    from streams.app import create_app
    from streams.topics import make_topics

    s = Settings.from_env({**KEY_ENV, "LIKEGUARD_APP_ID": "lg-x",
                           "LIKEGUARD_DATA_DIR": str(tmp_path)}).validate()
    table = make_topics(create_app(s), s).checkpoints
    assert s.checkpoint_changelog == table.changelog_topic.get_topic_name() == \
        "lg-x-checkpoints-changelog"
