"""The review console: a page of the cluster's alerts, where a moderator
confirms or dismisses them.

Served by the worker's own Faust web server (:mod:`faust.web` views, on
``console_addr:console_port``) when ``console_port`` is set. The worker keeps
a bounded :class:`Board` of the latest alerts, newest first, with the
verdict on each once one is known, filled by :class:`BoardFeed` from the
alerts and verdicts topics; a verdict given on the page becomes a
:class:`~detectors.verdicts.Verdict` produced to ``verdicts_topic``, which
the engines read as any other moderator's (docs/console.md).

Routes, under ``/console/``:

=========================  =====  ===========================================
``/console/``              GET    the page (HTML; no data in it)
``/console/console.js``    GET    its script; ``console.css`` its style
``/console/alerts``        GET    the board as JSON; ``entity_type``,
                                  ``severity`` and ``limit`` filter it
``/console/verdicts``      POST   ``{alert_id, verdict, reason?, reviewer?}``
=========================  =====  ===========================================

The JSON routes need ``Authorization: Bearer <console token>`` (401
otherwise). The page and its two assets are code only, so a browser can load
them before it has the token; the page takes the token from ``#token=`` in
its URL or asks for it. Every response forbids content sniffing, framing
and any script, style or connection that is not the console's own; the
page's script builds the table with DOM nodes and ``textContent``, because
ids in alerts come from user traffic.

Examples
--------
>>> board = Board(capacity=2)
>>> for i in range(3):
...     board.add({"alert_id": f"a{i}", "entity": {"type": "ip", "id": "10.0.0.1"},
...                "severity": "warning", "detector": "ip_farm@1"})
>>> [r["alert"]["alert_id"] for r in board.rows()]
['a2', 'a1']
>>> v = make_verdict(board, b'{"alert_id": "a1", "verdict": "dismissed"}', now=1795514400.0)
>>> v.key, v.detector, v.reviewer, board.decide(v)
('ip:10.0.0.1', 'ip_farm@1', 'console', True)
>>> board.rows(severity="critical")
[]
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, ClassVar

import faust
import orjson
from faust.web import View
from faust.web.exceptions import NotFound, ValidationError, WebError

from detectors.alerts import SEVERITIES
from detectors.parsing import MAX_TEXT, BadRecord
from detectors.verdicts import (
    ENTITY_TYPES,
    VERDICTS,
    Verdict,
    parse_verdict,
    verdict_from_object,
)
from streams.settings import Settings

__all__ = ["Board", "BoardFeed", "Console", "make_verdict", "parse_filters", "BOARD_SIZE", "PREFIX",
           "SECURITY_HEADERS"]

log = logging.getLogger("likeguard.console")

#: alerts the board keeps (the oldest go first)
BOARD_SIZE = 1000
PREFIX = "/console"
#: longest ``reason`` and ``reviewer`` of a verdict: the contract's bound on strings
MAX_REASON = MAX_REVIEWER = MAX_TEXT
#: reviewer of a verdict whose request names none
DEFAULT_REVIEWER = "console"

#: headers of every console response: nothing but the console's own script,
#: style and API, no framing, no sniffing, no caching, no referrer
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: ``send(topic, key, value)``: deliver one record (the app's producer)
Send = Callable[[str, bytes, bytes], Awaitable[Any]]


# --------------------------------------------------------------------------- the board


@dataclass(slots=True)
class _Entry:
    alert: Mapping[str, Any]
    verdict: Verdict | None = None


class Board:
    """The last ``capacity`` alerts sent, by id, newest first, each with the
    latest verdict on it. An alert sent again (its partition processed again
    after a rebalance) keeps its verdict and moves to the top; ``capacity``
    0 keeps nothing (console off).
    """

    def __init__(self, capacity: int = BOARD_SIZE) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def add(self, alert: Mapping[str, Any]) -> None:
        """Put an alert (the contract's object) on top."""
        if not self.capacity:
            return
        aid = alert["alert_id"]
        entry = self._entries.pop(aid, None)
        self._entries[aid] = _Entry(alert, entry.verdict if entry is not None else None)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def get(self, alert_id: str) -> Mapping[str, Any] | None:
        """The alert ``alert_id`` if it is on the board."""
        entry = self._entries.get(alert_id)
        return entry.alert if entry is not None else None

    def decide(self, v: Verdict) -> bool:
        """Note a verdict on an alert of the board (the latest decision wins);
        ``False`` when its alert is not on the board."""
        entry = self._entries.get(v.alert_id)
        if entry is None:
            return False
        if entry.verdict is None or entry.verdict.decided_at <= v.decided_at:
            entry.verdict = v
        return True

    def rows(self, entity_type: str | None = None, severity: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """``{"alert": ..., "verdict": ... or None}`` newest first, filtered."""
        out: list[dict[str, Any]] = []
        for entry in reversed(self._entries.values()):
            a = entry.alert
            if entity_type is not None and a["entity"]["type"] != entity_type:
                continue
            if severity is not None and a["severity"] != severity:
                continue
            out.append({"alert": a,
                        "verdict": entry.verdict.to_dict() if entry.verdict else None})
            if limit is not None and len(out) >= limit:
                break
        return out

    def __len__(self) -> int:
        return len(self._entries)


# --------------------------------------------------------------------------- the feed


def _is_alert(obj: Any) -> bool:
    """Whether ``obj`` has what the board reads of an alert (id, entity, severity)."""
    return (isinstance(obj, dict) and isinstance(obj.get("alert_id"), str)
            and isinstance(obj.get("entity"), dict) and isinstance(obj.get("severity"), str)
            and isinstance(obj["entity"].get("type"), str))


class BoardFeed:
    """Fills a :class:`Board` from the alerts and verdicts topics, so every
    worker's console shows the cluster's alerts, not only its own partitions'.

    A consumer without a group (nothing committed, nothing rebalanced: each
    worker reads every partition) starts at the last ``board.capacity``
    records of each partition and follows the topics. A verdict read before
    its alert waits for it (at most ``board.capacity`` of them); a record that
    is not an alert or a valid verdict is passed over (the ingest
    dead-letters bad verdicts). Runs until cancelled; a broker away is waited
    for by the consumer.

    Parameters
    ----------
    settings
        Validated settings (brokers, security, the two topics).
    board
        The console's board.

    Examples
    --------
    >>> board = Board(capacity=10)
    >>> feed = BoardFeed(Settings(), board)  # takes records without a broker
    >>> feed.take("likeguard.verdicts", b'{"alert_id": "a1", "entity": {"type": "ip", "id": "10.0.0.1"},'
    ...           b' "verdict": "dismissed", "reviewer": "r", "decided_at": "2026-12-01T00:00:00Z"}')
    >>> feed.take("likeguard.alerts", b'{"alert_id": "a1", "entity": {"type": "ip", "id": "10.0.0.1"},'
    ...           b' "severity": "warning", "detector": "ip_farm@1"}')
    >>> feed.take("likeguard.alerts", b"not an alert")
    >>> [(r["alert"]["alert_id"], r["verdict"]["verdict"]) for r in board.rows()]
    [('a1', 'dismissed')]
    """

    def __init__(self, settings: Settings, board: Board) -> None:
        self.settings = settings
        self.board = board
        self.alerts_topic = settings.alerts_topic
        self.verdicts_topic = settings.verdicts_topic
        #: verdicts whose alert is not on the board yet, by alert id
        self.pending: OrderedDict[str, Verdict] = OrderedDict()

    def take(self, topic: str, value: bytes | None) -> None:
        """One record of either topic onto the board."""
        if topic == self.alerts_topic:
            try:
                alert = orjson.loads(value or b"")
            except orjson.JSONDecodeError:
                alert = None
            if not _is_alert(alert):
                log.debug("console: passed over a record of %s that is not an alert", topic)
                return
            self.board.add(alert)
            v = self.pending.pop(alert["alert_id"], None)
            if v is not None:
                self.board.decide(v)
            return
        try:
            v = parse_verdict(value)
        except BadRecord:
            return  # the ingest dead-letters it
        if not self.board.decide(v):
            self.pending.pop(v.alert_id, None)
            self.pending[v.alert_id] = v
            while len(self.pending) > self.board.capacity:
                self.pending.popitem(last=False)

    async def run(self) -> None:
        """Read both topics from their last ``capacity`` records on, until
        cancelled; a failure (a broker away at start) is logged and the feed
        starts again 5 s later: the console must never stop the worker."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - see above
                log.warning("console: reading the alerts failed (%r); again in 5 s", exc)
                await asyncio.sleep(5.0)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from streams.app import aiokafka_security

        s = self.settings
        consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers,
                                    client_id=f"{s.app_id}-console", group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    **aiokafka_security(s))
        # without a group the consumer takes every partition of both topics itself,
        # once start() has their metadata (and any partition added later)
        consumer.subscribe([self.alerts_topic, self.verdicts_topic])
        await consumer.start()
        try:
            tps = list(consumer.assignment())
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(starts[tp], ends[tp] - self.board.capacity))
            log.info("console: reading the last %d records of %d partitions of %s and %s",
                     self.board.capacity, len(tps), self.alerts_topic, self.verdicts_topic)
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                # alerts first: a verdict fetched beside its alert finds it
                for tp in sorted(batch, key=lambda tp: tp.topic != self.alerts_topic):
                    for record in batch[tp]:
                        self.take(tp.topic, record.value)
        finally:
            await consumer.stop()


# --------------------------------------------------------------------------- requests


def parse_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of :meth:`Board.rows` from a query string's
    ``entity_type``, ``severity`` and ``limit`` (empty: no filter);
    :class:`~faust.web.exceptions.ValidationError` for a bad one."""
    out: dict[str, Any] = {}
    for name, allowed in (("entity_type", ENTITY_TYPES), ("severity", SEVERITIES)):
        value = query.get(name) or None
        if value is not None and value not in allowed:
            raise ValidationError(f"{name} must be one of {', '.join(allowed)}")
        out[name] = value
    limit = query.get("limit") or None
    if limit is not None:
        if not limit.isdigit() or not 0 < int(limit) <= BOARD_SIZE:
            raise ValidationError(f"limit must be an integer in 1..{BOARD_SIZE}")
        out["limit"] = int(limit)
    return out


def _text(obj: Mapping[str, Any], name: str, longest: int) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > longest:
        raise ValidationError(f"{name} must be a string of at most {longest} characters")
    return value.strip() or None


def make_verdict(board: Board, body: bytes, now: float) -> Verdict:
    """The :class:`~detectors.verdicts.Verdict` a verdict request asks for,
    decided ``now`` (epoch seconds): its entity and detector are those of
    the board's alert. :class:`~faust.web.exceptions.ValidationError` for a
    malformed request, :class:`~faust.web.exceptions.NotFound` for an alert
    that is not on the board."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValidationError("the body must be a JSON object") from None
    if not isinstance(obj, dict):
        raise ValidationError("the body must be a JSON object")
    alert_id, verdict = obj.get("alert_id"), obj.get("verdict")
    if not isinstance(alert_id, str) or not alert_id:
        raise ValidationError("alert_id must be a non-empty string")
    if verdict not in VERDICTS:
        raise ValidationError(f"verdict must be one of {', '.join(VERDICTS)}")
    reason = _text(obj, "reason", MAX_REASON)
    reviewer = _text(obj, "reviewer", MAX_REVIEWER) or DEFAULT_REVIEWER
    alert = board.get(alert_id)
    if alert is None:
        raise NotFound("no such alert on this worker's board (it may have been dropped: the "
                       f"board keeps the last {board.capacity})")
    # with the accounts a confirmation puts on the watchlist in every partition,
    # and the merchant whose targets a dismissal quiets
    v = Verdict.of_alert(alert, verdict, reviewer, now, reason)
    try:  # as the engines will read it: one they would dead-letter is refused here
        return verdict_from_object(v.to_dict())
    except BadRecord as exc:
        raise ValidationError(f"not a valid verdict: {exc.detail}") from None


# --------------------------------------------------------------------------- the web


@functools.cache
def _asset(name: str) -> str:
    return files("streams").joinpath("console_assets", name).read_text(encoding="utf-8")


class Console:
    """The console's views on ``app`` (call before the app starts).

    Parameters
    ----------
    app
        The worker's app, its web server configured (:func:`streams.app.web_settings`).
    settings
        Validated settings with ``console_port`` set.
    board
        The board the worker's pipeline fills.
    send
        Delivers a verdict record (default: the app's producer, waiting for
        the broker's acknowledgement).
    clock
        Wall-clock time of a decision (epoch seconds).
    """

    def __init__(self, app: faust.App, settings: Settings, board: Board,
                 send: Send | None = None, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.board = board
        self.topic = settings.verdicts_topic
        self.clock = clock
        self._send = send
        self._token = settings.console_secret()
        for path, view in (("/", _PageView), ("/console.js", _ScriptView),
                           ("/console.css", _StyleView), ("/alerts", _AlertsView),
                           ("/verdicts", _VerdictsView)):
            bound = type(view.__name__, (view,), {"console": self})
            app.page(PREFIX + path, name=f"console{path.replace('/', '-').rstrip('-')}")(bound)

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the console token."""
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                                  self._token)

    async def decide(self, body: bytes) -> Verdict:
        """Build the verdict of a request, produce it keyed ``entity.type:entity.id``
        and note it on the board once the broker has it."""
        v = make_verdict(self.board, body, self.clock())
        try:
            if self._send is not None:
                await self._send(self.topic, v.key.encode(), v.to_json())
            else:
                await self.app.producer.send_and_wait(self.topic, v.key.encode(), v.to_json(),
                                                      None, None, None)
        except Exception as exc:  # noqa: BLE001 - the moderator is told; nothing noted
            log.warning("console: verdict on %s not sent: %r", v.alert_id, exc)
            raise WebError(f"the verdict could not be sent to {self.topic}; try again",
                           code=503) from exc
        self.board.decide(v)
        log.info("console: %s %s (%s, %s) by %s", v.verdict, v.alert_id, v.key, v.detector,
                 v.reviewer)
        return v


class _ConsoleView(View):
    """A console route: token check (unless ``public``) and security headers."""

    console: ClassVar[Console]
    public: ClassVar[bool] = False

    async def dispatch(self, request: Any) -> Any:
        if self.public or self.console.authorized(request.headers.get("Authorization")):
            response = await super().dispatch(request)
        else:
            response = self.error(401, "missing or wrong bearer token",
                                  headers={"WWW-Authenticate": 'Bearer realm="likeguard console"'})
        response.headers.update(SECURITY_HEADERS)
        return response


class _AssetView(_ConsoleView):
    public = True
    asset: ClassVar[str]
    content_type: ClassVar[str]

    async def get(self, request: Any) -> Any:
        return self.text(_asset(self.asset), content_type=self.content_type)


class _PageView(_AssetView):
    asset, content_type = "index.html", "text/html"


class _ScriptView(_AssetView):
    asset, content_type = "console.js", "text/javascript"


class _StyleView(_AssetView):
    asset, content_type = "console.css", "text/css"


class _AlertsView(_ConsoleView):
    async def get(self, request: Any) -> Any:
        board = self.console.board
        rows = board.rows(**parse_filters(request.query))
        return self.json({"alerts": rows, "on_board": len(board), "capacity": board.capacity})


class _VerdictsView(_ConsoleView):
    async def post(self, request: Any) -> Any:
        v = await self.console.decide(await request.read())
        return self.json({"verdict": v.to_dict()})
