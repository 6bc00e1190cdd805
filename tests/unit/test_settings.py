"""Unit tests of the worker settings (no broker)."""

from __future__ import annotations

import argparse

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


def test_tls_and_sasl_settings(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    s = Settings.from_env({"LIKEGUARD_SECURITY_PROTOCOL": "SASL_SSL",
                           "LIKEGUARD_SASL_MECHANISM": "scram-sha-256",
                           "LIKEGUARD_SASL_USERNAME": "likeguard",
                           "LIKEGUARD_SASL_PASSWORD": "s3cret",
                           "LIKEGUARD_SSL_CAFILE": str(ca), **KEY_ENV}).validate()
    assert s.sasl_mechanism == "SCRAM-SHA-256"
    kw = s.kafka_python_kwargs()
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_plain_username"] == "likeguard"
    assert kw["ssl_cafile"] == str(ca)
    assert "s3cret" not in repr(s) and s.describe()["sasl_password"] == "***"
    with pytest.raises(SettingsError) as info:  # a client cert needs its key
        s.with_values({"ssl_certfile": str(ca)}).validate()
    assert info.value.setting == "ssl_keyfile"
    with pytest.raises(SettingsError) as info:  # TLS files without a TLS protocol
        Settings.from_env({"LIKEGUARD_SSL_CAFILE": str(ca), **KEY_ENV}).validate()
    assert info.value.setting == "security_protocol"


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
