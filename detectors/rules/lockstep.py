"""Lockstep rings: the same accounts liking the same targets within minutes.

For a target's recent likers, the lockstep view counts the earlier targets
they share (liked within ``lockstep_window`` before, and together: within
one ``lockstep_span`` of each other). Organic likers of a target may share
a viral post, but so do the likers of every other target: the viral post's
*specificity* (the share of its followers' likes that went to this target)
is tiny. A ring's previous job leads mostly to its next one.

Examples
--------
>>> x = {"likers": 25, "top_shared": 24, "top_share": 0.96, "specificity": 0.7}
>>> Lockstep().score_one(x) > 0.5
True
>>> viral = {"likers": 25, "top_shared": 15, "top_share": 0.6, "specificity": 0.02}
>>> Lockstep().score_one(viral) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class Lockstep(Rule):
    """A target's likers who liked the same, specific earlier target together."""

    name = "lockstep"
    version = "1"
    view = "lockstep"
    entity_type = "target"
    paths = ((
        Cond("top_shared", ">=", 8, "lockstep_likers",
             "likers of the target who liked the same earlier target"),
        Cond("top_share", ">=", 0.6, "shared_history", "share of likers with that earlier target"),
        Cond("specificity", ">=", 0.25, "shared_history_specificity",
             "share of that earlier target's followers' likes that went to this target"),
    ),)
