"""Ring blocks: a group liking a round of posts across merchants, each in its own order.

A coordinated ring (or a like-exchange group) gets a round of new posts from
several merchants and its accounts move through them within minutes, each
in its own order, so no single earlier target is shared by most of a post's
likers (what :class:`~detectors.rules.lockstep.Lockstep` looks for). Their
histories still fall on the same few posts: the *block* of a target is the
earlier targets that at least a tenth of its likers (and four) liked in the
ten minutes before, and that lead specifically here rather than everywhere
(a popular post is in the history of the likers of everything). Honest groups share a block
of one merchant's posts: a shop's browsers, a fan club, an office liking
its employer's posts. A ring's block spans the posts of several merchants.
Ten such likers suffice when they are half of the post's; eight when they
are nearly all of them, as a round's first likers of a new post are.

Examples
--------
>>> round_one = {"block_likers": 14, "block_share": 0.7, "block_merchants": 4}
>>> [r.code for r in RingBlock().explain(round_one)]
['block_likers', 'block_share', 'block_merchants']
>>> RingBlock().score_one(round_one) >= 0.5
True
>>> office = {"block_likers": 40, "block_share": 0.8, "block_merchants": 0}
>>> RingBlock().score_one(office) < 0.5
True
>>> first_likers = {"block_likers": 8, "block_share": 0.9, "block_merchants": 5}
>>> RingBlock().score_one(first_likers) >= 0.5  # eight, nearly all the post's likers
True
>>> RingBlock().score_one({**first_likers, "block_share": 0.5}) < 0.5  # half: wait for ten
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule

_BLOCK_LIKERS = "likers of the target who liked one of its block's posts before"
_BLOCK_SHARE = "share of the target's likers in the block"
_BLOCK_MERCHANTS = Cond("block_merchants", ">=", 3, "block_merchants",
                        "merchants of the block's posts, other than the target's")


class RingBlock(Rule):
    """Most of a target's likers liked the same few posts of other merchants before it."""

    name = "ring_block"
    version = "1"
    view = "lockstep"
    entity_type = "target"
    paths = ((
        Cond("block_likers", ">=", 10, "block_likers", _BLOCK_LIKERS),
        Cond("block_share", ">=", 0.5, "block_share", _BLOCK_SHARE),
        _BLOCK_MERCHANTS,
    ), (  # a round's first likers: fewer, but nearly all of a new post's likers
        Cond("block_likers", ">=", 8, "block_likers", _BLOCK_LIKERS),
        Cond("block_share", ">=", 0.75, "block_share", _BLOCK_SHARE),
        _BLOCK_MERCHANTS,
    ))
