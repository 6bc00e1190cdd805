"""The review console in a real browser: headless Chromium (Debian's, driven
by Selenium through Debian's chromedriver) on the page of a real worker,
itself on the session's real broker.

The worker gets the traffic of the worker tests (a device farm and paid
likes, :func:`tests.worker_harness.campaign_records`) plus a second device
farm whose device id is markup. The test logs in, sees the alerts of the
alerts topic as rows, filters them, dismisses the markup device's alert and
reads the verdict back from the verdicts topic, which the worker created
(and the worker reads it too). Every wait polls against a deadline.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from detectors.config import EngineConfig
from detectors.verdicts import parse_verdict
from tests.kafka_broker import _admin, create_topics
from tests.worker_harness import (
    T0,
    TopicReader,
    WorkerTopics,
    campaign_records,
    free_port,
    like_value,
    offline_alerts,
    produce,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("LIKEGUARD_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("LIKEGUARD_CHROMEDRIVER", "/usr/bin/chromedriver"))
TOKEN = "browser-test-console-token-0123456789"
GRACE = 3600.0  # as the worker tests: nothing is late, the offline replay is the reference
FAST = {"LIKEGUARD_GRACE": str(GRACE), "LIKEGUARD_IDLE_FLUSH": "2",
        "LIKEGUARD_CHECKPOINT_INTERVAL": "2"}
#: a device id that is markup (and script) if a page ever parses it
EVIL = 'd-<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><b>farm</b>'
_CONSOLE_LINE = re.compile(r"review console on (http://\S+/console/)")
T = TypeVar("T")


def _evil_farm(topics: WorkerTopics) -> list[tuple[str, bytes | None, bytes]]:
    """40 accounts liking on the device ``EVIL`` within a minute: a device farm."""
    return [(topics.likes, None, like_value(
        f"l-evil-{i}", f"o-evil-{i}", f"post:{200 + i % 3}", "1900000008", T0 + 30 + i * 1.5,
        ip=f"10.7.{i}.1", device=EVIL, user_created=T0 - 500 * 86400)) for i in range(40)]


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            pytest.fail(f"{path} is missing: install the Debian package {pkg} (make system-deps)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1200"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _get(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


def _rows(driver: Any) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    return _fresh(lambda: {tr.get_attribute("data-alert-id"): tr
                           for tr in driver.find_elements(By.CSS_SELECTOR, "#alerts tbody tr")})


def _row_ids(driver: Any) -> set[str]:
    """The alert ids of the rows shown, read in one step (the page may render anew
    between two WebDriver calls: after a filter change, or a refresh bringing news)."""
    return set(driver.execute_script(
        "return Array.from(document.querySelectorAll('#alerts tbody tr'), r => r.dataset.alertId)"))


def _fresh(read: Callable[[], T], tries: int = 5) -> T:
    """``read()`` again when the rows it used were replaced under it by a render."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(tries):
        try:
            return read()
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def test_a_moderator_dismisses_an_alert_in_the_browser(kafka_bootstrap, worker_factory, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    topics = WorkerTopics.unique("lg-console")
    # only the inputs: the worker creates its outputs, the verdicts topic among them
    create_topics(kafka_bootstrap, [topics.payments, topics.likes])
    port = free_port()
    worker = worker_factory(topics, {**FAST, "LIKEGUARD_CONSOLE_PORT": str(port),
                                     "LIKEGUARD_CONSOLE_TOKEN": TOKEN}).start()
    worker.wait_ready()
    url = _CONSOLE_LINE.search(worker.log_text()).group(1)
    assert url == f"http://127.0.0.1:{port}/console/"
    assert TOKEN not in worker.log_text()

    records = campaign_records(topics) + _evil_farm(topics)  # grace puts them in order
    produce(kafka_bootstrap, records)
    expected = offline_alerts(records, topics, EngineConfig(grace=GRACE))
    evil = [a for a in expected if a["entity"] == {"type": "device", "id": EVIL}]
    assert evil and {a["detector"] for a in expected} >= {"device_farm@1", "paid_likes@1"}
    reader = TopicReader(kafka_bootstrap, topics.alerts)
    got = reader.wait_for_alerts(expected, worker, timeout=90, settle=2.0)
    reader.close()
    assert set(got) == {a["alert_id"] for a in expected}

    # no token, a wrong one: 401 and nothing of the board
    for token in (None, "wrong-token-0123456789"):
        status, body = _get(url + "alerts", token)
        assert status == 401 and "alert" not in orjson.dumps(body).decode().replace("error", "")
        status, _ = _get(url + "verdicts", token, orjson.dumps(
            {"alert_id": evil[0]["alert_id"], "verdict": "confirmed"}))
        assert status == 401
    status, body = _get(url + "alerts", TOKEN)
    assert status == 200 and {r["alert"]["alert_id"] for r in body["alerts"]} == set(got)

    # the page asks for the token; a wrong one is refused, the right one shows the rows
    browser.get(url)
    login = browser.find_element(By.ID, "login")
    wait_for(login.is_displayed, 20, lambda: browser.page_source[:2000])
    assert _row_ids(browser) == set()
    field = browser.find_element(By.ID, "token-input")
    field.send_keys("wrong-token-0123456789")
    login.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: login.is_displayed() and "refused" in browser.find_element(By.ID, "status").text,
             20, lambda: browser.find_element(By.ID, "status").text)
    field.send_keys(TOKEN)
    login.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: _row_ids(browser) == set(got), 30,
             lambda: f"rows {sorted(_row_ids(browser))} != alerts {sorted(got)}")
    assert not login.is_displayed()

    # every row shows the alert: severity, action, detector, entity, window, reasons, evidence
    for aid, a in got.items():
        cells = _fresh(lambda aid=aid: [td.text for td in
                                        _rows(browser)[aid].find_elements(By.TAG_NAME, "td")])
        assert cells[1:5] == [a["severity"], a["action"], a["detector"],
                              f"{a['entity']['type']}:{a['entity']['id']}"], cells
        assert a["window"]["start"] in cells[5] and a["window"]["end"] in cells[5]
        for r in a["reasons"]:
            assert r["code"] in cells[6] and r["detail"] in cells[6]
        counts = {k: v for k, v in a["evidence"].items() if isinstance(v, int)}
        assert counts and all(f"{k} {v}" in cells[7] for k, v in counts.items()), cells[7]
        assert f"{len(a['evidence']['sample_ids'])} sample ids" in cells[7]

    # the markup in the device id is text: no element made of it, no script run
    assert _fresh(lambda: _rows(browser)[evil[0]["alert_id"]].find_element(
        By.CSS_SELECTOR, "td.entity").text) == f"device:{EVIL}"
    assert browser.find_elements(By.CSS_SELECTOR, "#alerts script, #alerts img, #alerts b") == []
    assert browser.execute_script("return window.pwned") is None

    # a refresh that brings nothing new leaves the rows alone (a row the
    # moderator is on is not replaced under the pointer)
    kept = _rows(browser)[evil[0]["alert_id"]]
    shown = browser.find_element(By.ID, "status").text
    assert "refreshed" in shown
    wait_for(lambda: browser.find_element(By.ID, "status").text != shown, 20,
             lambda: f"no refresh after {shown!r}")
    assert kept.is_displayed()  # raises if the row was rendered anew

    # filters: severity, then entity type
    Select(browser.find_element(By.ID, "severity")).select_by_value("critical")
    critical = {a["alert_id"] for a in got.values() if a["severity"] == "critical"}
    assert critical and critical != set(got)
    wait_for(lambda: _row_ids(browser) == critical, 20, lambda: sorted(_row_ids(browser)))
    Select(browser.find_element(By.ID, "severity")).select_by_value("")
    Select(browser.find_element(By.ID, "entity-type")).select_by_value("device")
    devices = {a["alert_id"] for a in got.values() if a["entity"]["type"] == "device"}
    wait_for(lambda: _row_ids(browser) == devices, 20, lambda: sorted(_row_ids(browser)))

    # dismiss the markup device's first alert, with a reviewer and a reason
    target = evil[0]
    browser.find_element(By.ID, "reviewer").send_keys("mod-1")

    def type_reason() -> None:  # cleared first: a row rendered anew keeps what was typed
        field = _rows(browser)[target["alert_id"]].find_element(By.CSS_SELECTOR, "input.reason")
        field.clear()
        field.send_keys("a <i>phone shop</i>")

    _fresh(type_reason)
    _fresh(lambda: _rows(browser)[target["alert_id"]].find_element(
        By.CSS_SELECTOR, "button.dismiss").click())

    verdicts = TopicReader(kafka_bootstrap, topics.verdicts)
    wait_for(lambda: verdicts.poll(), 30, lambda: "no verdict on the verdicts topic",
             alive=worker.alive)
    verdicts.poll(300)  # one more: a double click would show here
    verdicts.close()
    [rec] = verdicts.records
    admin = _admin(kafka_bootstrap)
    try:  # made by the worker, as its alerts and dead-letter topics
        [meta] = admin.describe_topics([topics.verdicts])
    finally:
        admin.close()
    assert len(meta["partitions"]) == 6
    v = parse_verdict(rec.value)
    assert rec.key.decode() == f"device:{EVIL}"
    assert (v.alert_id, v.entity_type, v.entity_id, v.detector, v.verdict, v.reviewer, v.reason) \
        == (target["alert_id"], "device", EVIL, target["detector"], "dismissed", "mod-1",
            "a <i>phone shop</i>")

    # the page shows the decision; the worker read the verdict back like any other
    def decided() -> bool:
        r = _rows(browser).get(target["alert_id"])
        return r is not None and "dismissed" in (r.get_attribute("class") or "") \
            and "dismissed by mod-1" in r.text
    wait_for(lambda: _fresh(decided), 20, lambda: _fresh(lambda: _rows(browser)[
        target["alert_id"]].text))
    assert browser.find_elements(By.CSS_SELECTOR, "#alerts i") == []
    wait_for(lambda: worker.metric("likeguard_verdicts_total", verdict="dismissed") == 1, 30,
             worker.tail, alive=worker.alive)

    # the token from the URL fragment, which the page then drops from the address bar
    browser.execute_script("sessionStorage.clear()")
    browser.get("about:blank")
    browser.get(f"{url}#token={TOKEN}")
    wait_for(lambda: _row_ids(browser) == set(got), 30, lambda: sorted(_row_ids(browser)))
    assert "token" not in browser.current_url
    assert not browser.find_element(By.ID, "login").is_displayed()


def _foreign_alert(i: int) -> dict[str, Any]:
    """An alert as another worker would have sent it (the contract's object)."""
    return {"alert_id": f"other-worker-{i}", "entity": {"type": "ip", "id": f"10.9.0.{i}"},
            "window": {"start": "2026-11-24T00:00:00Z", "end": "2026-11-24T00:05:00Z"},
            "score": 0.8, "severity": "warning", "action": "review",
            "reasons": [{"code": "ip_farm", "detail": "accounts on the IP", "value": 12.0,
                         "threshold": 10}],
            "evidence": {"accounts": 12, "sample_ids": []}, "detector": "ip_farm@1",
            "emitted_at": "2026-11-24T00:05:01.000Z"}


def test_the_console_shows_every_workers_alerts(kafka_bootstrap, worker_factory):
    """The board is read back from the alerts and verdicts topics, so a
    worker's console lists alerts it did not send (another worker's, one sent
    before it started) with the verdicts given elsewhere; a verdict read
    before its alert waits for it."""
    from detectors.verdicts import Verdict

    topics = WorkerTopics.unique("lg-console-feed")
    topics.create(kafka_bootstrap)
    before, after = _foreign_alert(1), _foreign_alert(2)
    verdict = Verdict(after["alert_id"], "ip", after["entity"]["id"], "dismissed", "elsewhere",
                      T0, detector="ip_farm@1")
    produce(kafka_bootstrap, [(topics.alerts, b"ip:10.9.0.1", orjson.dumps(before)),
                              (topics.alerts, None, b"not an alert")])
    port = free_port()
    worker = worker_factory(topics, {**FAST, "LIKEGUARD_CONSOLE_PORT": str(port),
                                     "LIKEGUARD_CONSOLE_TOKEN": TOKEN}).start()
    worker.wait_ready()
    url = f"http://127.0.0.1:{port}/console/alerts"
    # the verdict first, on the verdicts topic, then its alert
    produce(kafka_bootstrap, [(topics.verdicts, verdict.key.encode(), verdict.to_json())])
    produce(kafka_bootstrap, [(topics.alerts, b"ip:10.9.0.2", orjson.dumps(after))])

    def board() -> dict[str, Any]:
        status, body = _get(url, TOKEN)
        assert status == 200, body
        return {r["alert"]["alert_id"]: r for r in body["alerts"]}

    wait_for(lambda: len(board()) == 2 and board()[after["alert_id"]]["verdict"] is not None,
             30, lambda: f"board {board()}\n{worker.tail()}", alive=worker.alive)
    rows = board()
    assert rows[before["alert_id"]] == {"alert": before, "verdict": None}
    assert rows[after["alert_id"]]["alert"] == after
    assert rows[after["alert_id"]]["verdict"]["reviewer"] == "elsewhere"
