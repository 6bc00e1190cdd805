"""Fresh-account bursts: a target flooded by accounts created days ago or less.

Organic likers are mostly old accounts, viral posts included; a burst in
which most likers are fresh is bought.

Examples
--------
>>> FreshBurst().score_one({"fresh": 40, "fresh_share": 0.9}) > 0.5
True
>>> FreshBurst().score_one({"fresh": 40, "fresh_share": 0.05}) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class FreshBurst(Rule):
    """Many fresh accounts, most of the target's likers."""

    name = "fresh_burst"
    version = "1"
    view = "merchant"
    entity_type = "target"
    paths = ((
        Cond("fresh", ">=", 12, "fresh_likers", "likes from fresh accounts in the window"),
        Cond("fresh_share", ">=", 0.5, "fresh_share", "share of the target's likes from fresh accounts"),
    ),)
