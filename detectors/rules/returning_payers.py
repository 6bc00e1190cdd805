"""Returning payers: a confirmed campaign's accounts paying a merchant again.

A paid ring's accounts pay the merchant first and like its post a minute or
two later. Once a moderator has confirmed an alert on them, their payments
are watched (``detectors/verdicts.py``): when three or more watched
accounts, or payers on watched devices or addresses, pay one merchant in
the window, its next job is found from the payments, before the likes they
pay for. Watched accounts also shop honestly; the watched payments must be
a fifth of the merchant's payments in the window, which a shop with many
buyers does not reach by a few of them.

Examples
--------
>>> ReturningPayers().score_one({"watched_payers": 3, "watched_pay_share": 0.4}) >= 0.5
True
>>> ReturningPayers().score_one({"watched_payers": 2, "watched_pay_share": 1.0}) < 0.5
True
>>> busy_shop = {"watched_payers": 4, "watched_pay_share": 0.03}
>>> ReturningPayers().score_one(busy_shop) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class ReturningPayers(Rule):
    """Several watched accounts paying one merchant."""

    name = "returning_payers"
    version = "1"
    view = "merchant"
    entity_type = "merchant"
    paths = ((
        Cond("watched_payers", ">=", 3, "watched_payers",
             "accounts paying the merchant that are on the watchlist (named by an alert a "
             "moderator confirmed, or paying from a device or address it named)"),
        Cond("watched_pay_share", ">=", 0.2, "watched_pay_share",
             "share of the merchant's payments in the window by watched payers", gate=True),
    ),)
