"""Lockstep rings: the same accounts liking the same targets within minutes.

For a target's recent likers, the lockstep view counts the earlier targets
they share (liked within ``lockstep_window`` before). Organic likers share
little beyond, at most, one viral post; a ring shares its previous jobs.

Examples
--------
>>> x = {"likers": 25, "top_shared": 24, "top_share": 0.96, "second_share": 0.9}
>>> Lockstep().score_one(x) > 0.5
True
>>> viral = {"likers": 25, "top_shared": 8, "top_share": 0.32, "second_share": 0.05}
>>> Lockstep().score_one(viral) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class Lockstep(Rule):
    """A target's likers who share two earlier targets."""

    name = "lockstep"
    version = "1"
    view = "lockstep"
    entity_type = "target"
    paths = ((
        Cond("top_shared", ">=", 10, "lockstep_likers",
             "likers of the target who liked the same earlier target"),
        Cond("top_share", ">=", 0.6, "shared_history", "share of likers with that earlier target"),
        Cond("second_share", ">=", 0.5, "shared_history_second",
             "share of likers who also share a second earlier target"),
    ),)
