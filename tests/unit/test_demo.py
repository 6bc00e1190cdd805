"""The demo outside a checkout: it needs a cluster, and says so in one line.

The demo with a broker runs in ``tests/integration/test_kafka_io.py``.
"""

from __future__ import annotations

import io

import pytest

from streams import demo


def test_outside_a_checkout_the_demo_asks_for_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "CHECKOUT", None)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    run = demo.Demo(demo.build_parser().parse_args([]), out=io.StringIO())
    with pytest.raises(demo.DemoError, match="KAFKA_BOOTSTRAP_SERVERS"):
        run.start_broker()
    assert not run.broker_started


def test_outside_a_checkout_a_given_cluster_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "CHECKOUT", None)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    run = demo.Demo(demo.build_parser().parse_args([]), out=io.StringIO())
    run.start_broker()
    assert run.bootstrap == "127.0.0.1:1" and not run.broker_started
    # the children import the installed package, not a checkout's tree
    assert run._child_env()["PYTHONPATH"] == "/elsewhere"


def test_the_default_output_is_under_the_working_directory() -> None:
    assert not demo.build_parser().parse_args([]).out.is_absolute()
