"""Unit tests of the review console (no broker): the board, the requests it
takes, its settings, and its routes on a real Faust app's web server with a
stand-in for the producer."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from faust.web.exceptions import NotFound, ValidationError

from detectors.verdicts import parse_verdict
from streams.console import BOARD_SIZE, SECURITY_HEADERS, Board, Console, make_verdict, parse_filters
from streams.settings import Settings, SettingsError, add_worker_arguments

KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "console-test-token-0123456789"
ENV = {"LIKEGUARD_CHECKPOINT_KEY": KEY}
T = 1795514400.0  # 2026-11-24T10:00:00Z: a decision time


def alert(i: int, etype: str = "ip", eid: str = "10.0.0.1", severity: str = "warning",
          detector: str = "ip_farm@1") -> dict[str, Any]:
    return {"alert_id": f"a{i}", "entity": {"type": etype, "id": eid},
            "window": {"start": "2026-11-24T10:00:00Z", "end": "2026-11-24T10:05:00Z"},
            "score": 0.5, "severity": severity, "action": "clear_likes",
            "reasons": [{"code": "accounts_per_ip", "detail": "accounts", "value": 9.0,
                         "threshold": 8}],
            "evidence": {"likes": 9, "sample_ids": ["l1", "l2"]}, "detector": detector,
            "emitted_at": "2026-11-24T10:05:20Z"}


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["alert"]["alert_id"] for r in rows]


# ----------------------------------------------------------------------------- the board


def test_the_board_keeps_the_newest_alerts_first_up_to_its_capacity():
    board = Board(capacity=3)
    for i in range(5):
        board.add(alert(i))
    assert ids(board.rows()) == ["a4", "a3", "a2"]
    assert len(board) == 3
    assert board.get("a1") is None and board.get("a2") is not None
    assert ids(board.rows(limit=2)) == ["a4", "a3"]


def test_a_resent_alert_keeps_its_verdict_and_moves_to_the_top():
    board = Board(capacity=3)
    for i in range(3):
        board.add(alert(i))
    v = make_verdict(board, b'{"alert_id": "a0", "verdict": "dismissed"}', now=T + 100)
    assert board.decide(v)
    board.add(alert(0))  # sent again: its partition came back after a rebalance
    rows = board.rows()
    assert ids(rows) == ["a0", "a2", "a1"]
    assert rows[0]["verdict"]["verdict"] == "dismissed"
    assert rows[1]["verdict"] is None


def test_the_latest_verdict_wins_and_unknown_alerts_are_not_noted():
    board = Board()
    board.add(alert(1))
    late = make_verdict(board, b'{"alert_id": "a1", "verdict": "confirmed"}', now=T + 200)
    early = make_verdict(board, b'{"alert_id": "a1", "verdict": "dismissed"}', now=T + 100)
    assert board.decide(late) and board.decide(early)
    assert board.rows()[0]["verdict"]["verdict"] == "confirmed"
    gone = make_verdict(board, b'{"alert_id": "a1", "verdict": "dismissed"}', now=T + 300)
    assert not Board().decide(gone)


def test_the_board_filters_by_entity_type_and_severity():
    board = Board()
    board.add(alert(1, "ip", severity="warning"))
    board.add(alert(2, "device", "d1", severity="critical", detector="device_farm@1"))
    board.add(alert(3, "ip", severity="critical"))
    assert ids(board.rows(entity_type="ip")) == ["a3", "a1"]
    assert ids(board.rows(severity="critical")) == ["a3", "a2"]
    assert ids(board.rows(entity_type="device", severity="warning")) == []


def test_a_board_of_capacity_zero_keeps_nothing():
    board = Board(capacity=0)
    board.add(alert(1))
    assert len(board) == 0 and board.rows() == []


# ----------------------------------------------------------------------------- requests


def test_parse_filters():
    assert parse_filters({}) == {"entity_type": None, "severity": None}
    assert parse_filters({"entity_type": "device", "severity": "", "limit": "20"}) == \
        {"entity_type": "device", "severity": None, "limit": 20}
    for bad in ({"entity_type": "post"}, {"severity": "high"}, {"limit": "-1"},
                {"limit": str(BOARD_SIZE + 1)}, {"limit": "x"}):
        with pytest.raises(ValidationError):
            parse_filters(bad)


def test_a_verdict_takes_the_entity_and_detector_of_the_boards_alert():
    board = Board()
    board.add(alert(7, "device", "d-<b>1</b>", detector="device_farm@1"))
    body = orjson.dumps({"alert_id": "a7", "verdict": "confirmed", "reason": "  farm  ",
                         "reviewer": "mod-3", "entity": {"type": "ip", "id": "forged"}})
    v = make_verdict(board, body, now=1795514700.5)
    assert (v.alert_id, v.entity_type, v.entity_id, v.detector) == \
        ("a7", "device", "d-<b>1</b>", "device_farm@1")
    assert (v.verdict, v.reviewer, v.reason, v.decided_at) == \
        ("confirmed", "mod-3", "farm", 1795514700.5)
    assert v.key == "device:d-<b>1</b>"
    assert parse_verdict(v.to_json()) == v  # the contract's object, as the engines read it
    v = make_verdict(board, b'{"alert_id": "a7", "verdict": "dismissed", "reviewer": " "}', T)
    assert (v.reviewer, v.reason) == ("console", None)
    assert (v.accounts, v.devices, v.ips) == ((), (), ())

    v = make_verdict(board, orjson.dumps({"alert_id": "a7", "verdict": "dismissed",
                                          "reason": "x" * 256}), now=1795514700.0)
    assert parse_verdict(v.to_json()) == v  # the longest reason the contract takes


def test_a_verdict_carries_the_alerts_accounts_for_the_watchlist():
    board = Board()
    a = alert(8)
    a["evidence"].update(sample_accounts=["o1", "o2"], sample_ips=["10.0.0.1"],
                         suspect_accounts=["o2", "o9"])
    board.add(a)
    v = make_verdict(board, b'{"alert_id": "a8", "verdict": "confirmed"}', now=T)
    assert (v.accounts, v.devices, v.ips) == (("o1", "o2"), (), ("10.0.0.1",))
    assert v.suspects == ("o2", "o9")
    assert parse_verdict(v.to_json()) == v


def test_a_verdict_the_engines_would_refuse_is_refused():
    """decided_at outside the contract's years (a wall clock gone wrong)."""
    board = Board()
    board.add(alert(1))
    with pytest.raises(ValidationError) as info:
        make_verdict(board, b'{"alert_id": "a1", "verdict": "dismissed"}', now=0.0)
    assert "decided_at" in info.value.detail


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "JSON object"),
    (b"[1]", "JSON object"),
    (b'{"verdict": "dismissed"}', "alert_id"),
    (b'{"alert_id": "a1", "verdict": "maybe"}', "confirmed, dismissed"),
    (b'{"alert_id": "a1", "verdict": "dismissed", "reason": 5}', "reason"),
    (orjson.dumps({"alert_id": "a1", "verdict": "dismissed", "reason": "x" * 257}), "256"),
    (orjson.dumps({"alert_id": "a1", "verdict": "dismissed", "reviewer": "x" * 257}), "256"),
])
def test_a_bad_verdict_request_is_refused(body, words):
    board = Board()
    board.add(alert(1))
    with pytest.raises(ValidationError) as info:
        make_verdict(board, body, now=0.0)
    assert info.value.code == 400 and words in info.value.detail


def test_a_verdict_on_an_alert_off_the_board_is_not_found():
    with pytest.raises(NotFound) as info:
        make_verdict(Board(), b'{"alert_id": "a1", "verdict": "dismissed"}', now=0.0)
    assert info.value.code == 404


# ----------------------------------------------------------------------------- settings


def test_the_console_is_off_by_default_and_needs_a_token_when_on(tmp_path):
    s = Settings.from_env(ENV).validate()
    assert s.console_port == 0 and s.console_addr == "127.0.0.1"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**ENV, "LIKEGUARD_CONSOLE_PORT": "9109"}).validate()
    assert info.value.setting == "console_token"
    assert str(info.value).startswith("console_token (LIKEGUARD_CONSOLE_TOKEN): is required "
                                      "with console_port")
    s = Settings.from_env({**ENV, "LIKEGUARD_CONSOLE_PORT": "9109",
                           "LIKEGUARD_CONSOLE_TOKEN": TOKEN}).validate()
    assert s.console_secret() == TOKEN.encode()
    path = tmp_path / "console.token"
    path.write_text(f"{TOKEN}\n")
    s = Settings.from_env({**ENV, "LIKEGUARD_CONSOLE_PORT": "9109",
                           "LIKEGUARD_CONSOLE_TOKEN_FILE": str(path)}).validate()
    assert s.console_secret() == TOKEN.encode()


@pytest.mark.parametrize(("env", "setting", "words"), [
    ({"LIKEGUARD_CONSOLE_PORT": "70000"}, "console_port", "0..65535"),
    ({"LIKEGUARD_CONSOLE_PORT": "9108", "LIKEGUARD_CONSOLE_TOKEN": TOKEN}, "console_port",
     "metrics_port"),
    ({"LIKEGUARD_CONSOLE_PORT": "x"}, "console_port", "not an integer"),
    ({"LIKEGUARD_CONSOLE_ADDR": "", "LIKEGUARD_CONSOLE_PORT": "9109",
      "LIKEGUARD_CONSOLE_TOKEN": TOKEN}, "console_addr", "must not be empty"),
    ({"LIKEGUARD_CONSOLE_PORT": "9109", "LIKEGUARD_CONSOLE_TOKEN": "short"}, "console_token",
     "at least 16 bytes, it has 5"),
    ({"LIKEGUARD_CONSOLE_PORT": "9109", "LIKEGUARD_CONSOLE_TOKEN": TOKEN,
      "LIKEGUARD_CONSOLE_TOKEN_FILE": "/t"}, "console_token", "not both"),
    ({"LIKEGUARD_CONSOLE_PORT": "9109", "LIKEGUARD_CONSOLE_TOKEN_FILE": "/nonexistent/t"},
     "console_token_file", "cannot read /nonexistent/t"),
])
def test_bad_console_settings_are_named(env, setting, words):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**ENV, **env}).validate()
    assert info.value.setting == setting
    assert words in str(info.value)


def test_the_console_token_stays_out_of_argv_and_logs(capsys):
    parser = add_worker_arguments(argparse.ArgumentParser())
    assert "--console-token-file" in parser.format_help()
    assert "--console-port" in parser.format_help()
    assert "--console-token " not in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--console-token", TOKEN])
    err = capsys.readouterr().err
    assert "set LIKEGUARD_CONSOLE_TOKEN in the environment" in err and TOKEN not in err
    s = Settings.from_args(parser.parse_args(["--console-port", "9109"]),
                           {**ENV, "LIKEGUARD_CONSOLE_TOKEN": TOKEN}).validate()
    assert s.console_port == 9109
    assert TOKEN not in repr(s) and TOKEN not in str(s.describe())
    assert s.describe()["console_token"] == "***"


# ----------------------------------------------------------------------------- routes


class FakeProducer:
    """Stands in for the app's producer: records what is sent, or fails."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = False

    async def __call__(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append((topic, key, value))


def _serve(tmp_path: Path, test: Callable[..., Any]) -> None:
    """Run ``await test(client, board, producer)`` against the console's routes
    on the aiohttp application of a real Faust app (not started)."""
    from aiohttp.test_utils import TestClient, TestServer

    from streams.app import create_app

    s = Settings.from_env({**ENV, "LIKEGUARD_CONSOLE_PORT": "9109",
                           "LIKEGUARD_CONSOLE_TOKEN": TOKEN, "LIKEGUARD_VERDICTS_TOPIC": "t.verdicts",
                           "LIKEGUARD_DATA_DIR": str(tmp_path)}).validate()
    app = create_app(s)
    assert app.conf.web_enabled and app.conf.web_port == 9109 and app.conf.web_bind == "127.0.0.1"
    board, producer = Board(), FakeProducer()
    Console(app, s, board, send=producer, clock=lambda: 1795514700.0)

    async def main() -> None:
        app.web.init_server()
        web = cast(AiohttpWeb, app.web)  # the app's web driver is aiohttp's
        async with TestClient(TestServer(web.web_app)) as client:
            await test(client, board, producer)

    asyncio.run(main())


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _secure(resp: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, name


def test_the_json_routes_need_the_token(tmp_path):
    async def test(client, board, producer):
        board.add(alert(1))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}):
            resp = await client.get("/console/alerts", headers=headers)
            assert resp.status == 401, headers
            assert "a1" not in await resp.text()
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            _secure(resp)
            resp = await client.post("/console/verdicts", headers=headers,
                                     data=b'{"alert_id": "a1", "verdict": "dismissed"}')
            assert resp.status == 401
        assert producer.sent == [] and board.rows()[0]["verdict"] is None
        resp = await client.get("/console/alerts", headers=AUTH)
        assert resp.status == 200
        _secure(resp)

    _serve(tmp_path, test)


def test_the_alerts_route_lists_and_filters_the_board(tmp_path):
    async def test(client, board, producer):
        board.add(alert(1, "ip"))
        board.add(alert(2, "device", "<script>x</script>", "critical", "device_farm@1"))
        resp = await client.get("/console/alerts", headers=AUTH)
        body = await resp.json()
        assert resp.content_type == "application/json"
        assert ids(body["alerts"]) == ["a2", "a1"]
        assert body["alerts"][0]["alert"] == alert(2, "device", "<script>x</script>", "critical",
                                                   "device_farm@1")
        assert (body["on_board"], body["capacity"]) == (2, BOARD_SIZE)
        resp = await client.get("/console/alerts?entity_type=ip", headers=AUTH)
        assert ids((await resp.json())["alerts"]) == ["a1"]
        resp = await client.get("/console/alerts?severity=critical&entity_type=device",
                                headers=AUTH)
        assert ids((await resp.json())["alerts"]) == ["a2"]
        resp = await client.get("/console/alerts?severity=high", headers=AUTH)
        assert resp.status == 400 and "severity" in (await resp.json())["error"]

    _serve(tmp_path, test)


def test_a_verdict_is_produced_keyed_by_entity_and_noted_on_the_board(tmp_path):
    async def test(client, board, producer):
        board.add(alert(1, "device", "d-1", "critical", "device_farm@1"))
        resp = await client.post("/console/verdicts", headers=AUTH, data=orjson.dumps(
            {"alert_id": "a1", "verdict": "dismissed", "reason": "a phone shop"}))
        assert resp.status == 200, await resp.text()
        _secure(resp)
        [(topic, key, value)] = producer.sent
        v = parse_verdict(value)
        assert (topic, key) == ("t.verdicts", b"device:d-1")
        assert (v.alert_id, v.entity_type, v.entity_id, v.detector, v.verdict, v.reviewer,
                v.reason, v.decided_at) == ("a1", "device", "d-1", "device_farm@1", "dismissed",
                                            "console", "a phone shop", 1795514700.0)
        assert (await resp.json())["verdict"] == v.to_dict()
        rows = (await (await client.get("/console/alerts", headers=AUTH)).json())["alerts"]
        assert rows[0]["verdict"] == v.to_dict()

        resp = await client.post("/console/verdicts", headers=AUTH,
                                 data=b'{"alert_id": "nope", "verdict": "dismissed"}')
        assert resp.status == 404
        resp = await client.post("/console/verdicts", headers=AUTH, data=b"{")
        assert resp.status == 400
        producer.fail = True  # the broker is away: the moderator is told, nothing is noted
        resp = await client.post("/console/verdicts", headers=AUTH,
                                 data=b'{"alert_id": "a1", "verdict": "confirmed"}')
        assert resp.status == 503
        assert len(producer.sent) == 1 and board.rows()[0]["verdict"]["verdict"] == "dismissed"

    _serve(tmp_path, test)


def test_the_page_is_code_only_and_faust_pages_are_off(tmp_path):
    async def test(client, board, producer):
        board.add(alert(1, "ip", "<script>alert(1)</script>"))
        for path, ctype in (("/console/", "text/html"), ("/console/console.js", "text/javascript"),
                            ("/console/console.css", "text/css")):
            resp = await client.get(path)  # no token: the browser loads these before it has one
            assert resp.status == 200 and resp.content_type == ctype, path
            _secure(resp)
            text = await resp.text()
            assert "a1" not in text and "alert(1)" not in text
        # Faust's own pages show internal state to anyone: none is mounted
        routes = {r.resource.canonical for r in client.server.app.router.routes()}
        assert routes == {"/", "/console/", "/console/console.js", "/console/console.css",
                          "/console/alerts", "/console/verdicts"}
        for path in ("/router/", "/table/", "/graph/", "/assignment/", "/performance/"):
            assert (await client.get(path)).status == 404, path

    _serve(tmp_path, test)


def test_the_script_builds_nodes_and_never_parses_data_as_markup():
    from streams.console import _asset

    js = _asset("console.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in js, sink
    assert "textContent" in js
    html = _asset("index.html")
    assert "<script>" not in html and "style=" not in html  # nothing inline: the CSP allows none
