"""Farmed targets: a target liked by many accounts from few devices or one IP.

Viral posts are liked from about one device per account and from all over
the network; a farm cycles many accounts through a handful of handsets
behind one or two addresses.

Examples
--------
>>> FarmTarget().score_one({"users": 40, "users_per_device": 8.0}) > 0.5
True
>>> FarmTarget().score_one({"users": 4000, "users_per_device": 1.05}) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class FarmTarget(Rule):
    """Many likers of one target sharing few devices."""

    name = "farm_target"
    version = "1"
    view = "merchant"
    entity_type = "target"
    paths = (
        (
            Cond("users", ">=", 10, "target_likers", "distinct accounts liking the target"),
            Cond("users_per_device", ">=", 3.0, "accounts_per_device",
                 "accounts per device among the target's likers"),
        ),
        (
            Cond("users", ">=", 10, "target_likers", "distinct accounts liking the target"),
            Cond("top_ip_share", ">=", 0.7, "ip_concentration",
                 "share of the target's likes from its top IP"),
        ),
        (
            Cond("users", ">=", 12, "target_likers", "distinct accounts liking the target"),
            Cond("users_per_ip", ">=", 3.0, "accounts_per_ip",
                 "accounts per IP among the target's likers"),
        ),
    )
