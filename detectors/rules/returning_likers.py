"""Returning likers: a confirmed farm's accounts spread over a merchant's posts.

A farm's next job does not always pile onto one post: bought accounts take
turns on a merchant's five posts, one like every half minute, and three
watched accounts meet on one post only minutes in (``returning_accounts``).
Over the merchant they meet at once: when three or more watched accounts,
or likers on watched devices or addresses, like one merchant's posts in the
window, its next job is found from its first likes. The watched likes must
also be a third of the merchant's likes in the window: a busy merchant
draws a few watched accounts among its many honest likers.

Examples
--------
>>> ReturningLikers().score_one({"watched_likers": 3, "watched_like_share": 0.6}) >= 0.5
True
>>> ReturningLikers().score_one({"watched_likers": 2, "watched_like_share": 1.0}) < 0.5
True
>>> busy_merchant = {"watched_likers": 5, "watched_like_share": 0.04}
>>> ReturningLikers().score_one(busy_merchant) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class ReturningLikers(Rule):
    """Several watched accounts liking one merchant's posts."""

    name = "returning_likers"
    version = "1"
    view = "merchant"
    entity_type = "merchant"
    paths = ((
        Cond("watched_likers", ">=", 3, "watched_likers",
             "accounts liking the merchant's posts that are on the watchlist (named by an "
             "alert a moderator confirmed, or liking from a device or address it named)"),
        Cond("watched_like_share", ">=", 1 / 3, "watched_like_share",
             "share of the merchant's likes in the window by watched likers", gate=True),
    ),)
