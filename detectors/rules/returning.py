"""Returning accounts: a confirmed campaign's accounts at their next job.

When a moderator confirms an alert, the accounts, devices and addresses in
its evidence go on the watchlist (``detectors/verdicts.py``) for
``watch_for``. A like by a watched account, or from a watched device or
address, counts towards its target's ``watched_likers``; a ring or farm
caught once is then found at its next target within a tick, with far fewer
likes than its first job needed, whatever merchant it works for.

Examples
--------
>>> ReturningAccounts().score_one({"watched_likers": 3}) >= 0.5
True
>>> ReturningAccounts().score_one({"watched_likers": 1}) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class ReturningAccounts(Rule):
    """Several watched accounts liking one target."""

    name = "returning_accounts"
    version = "1"
    view = "merchant"
    entity_type = "target"
    paths = ((
        Cond("watched_likers", ">=", 3, "watched_likers",
             "accounts liking the target that are on the watchlist (named by an alert a "
             "moderator confirmed, or using a device or address it named)"),
    ),)
