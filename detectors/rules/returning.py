"""Returning accounts: a confirmed campaign's accounts at their next job.

When a moderator confirms an alert, the accounts, devices and addresses in
its evidence go on the watchlist (``detectors/verdicts.py``) for
``watch_for``. A like by a watched account, or from a watched device or
address, counts towards its target's ``watched_likers``; a ring or farm
caught once is then found at its next target within a tick, with far fewer
likes than its first job needed, whatever merchant it works for. The
watched accounts must also be half the target's likers: a target alert's
evidence names its newest likers, honest ones among them, and a popular
post draws a few of them again among its hundreds of likers. The accounts
a confirmed lockstep alert named moved together before, stronger evidence
than a name in a list: two of them on one target are the ring at work
again, when they are three quarters of its likers.

Examples
--------
>>> ReturningAccounts().score_one({"watched_likers": 3, "watched_share": 0.8}) >= 0.5
True
>>> ReturningAccounts().score_one({"watched_likers": 1, "watched_share": 1.0}) < 0.5
True
>>> ReturningAccounts().score_one({"watched_likers": 6, "watched_share": 0.05}) < 0.5
True
>>> ring = {"watched_likers": 2, "watched_share": 1.0, "ring_likers": 2}
>>> ReturningAccounts().score_one(ring) >= 0.5
True
>>> ReturningAccounts().score_one({**ring, "watched_share": 0.67}) < 0.5  # a small post's
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class ReturningAccounts(Rule):
    """Several watched accounts liking one target, or two of a confirmed ring."""

    name = "returning_accounts"
    version = "1"
    view = "merchant"
    entity_type = "target"
    paths = ((
        Cond("watched_likers", ">=", 3, "watched_likers",
             "accounts liking the target that are on the watchlist (named by an alert a "
             "moderator confirmed, or using a device or address it named)"),
        Cond("watched_share", ">=", 0.5, "watched_share",
             "share of the target's likers in the window on the watchlist", gate=True),
    ), (
        Cond("ring_likers", ">=", 2, "ring_likers",
             "accounts liking the target that a confirmed lockstep alert named as a ring's"),
        Cond("watched_share", ">=", 0.75, "watched_share_ring",
             "share of the target's likers in the window on the watchlist", gate=True),
    ))
