"""IP farms: many accounts behind one address pushing the same targets.

An office or campus NAT also puts hundreds of accounts on one address, but
they like diverse content from their own devices; a farm concentrates on a
few targets of one merchant, or runs many accounts per device. Even when
half the office likes the employer's new post, its staff go on liking all
sorts of other things (many distinct targets per liking account), while a
farm's accounts like the handful they are paid for.

Examples
--------
>>> x = {"like_users": 40, "top_target_users": 35, "top_merchant_share": 0.9,
...      "targets_per_liker": 0.05, "users_per_other": 1.0}
>>> IpFarm().score_one(x) > 0.5
True
>>> nat = {"like_users": 300, "top_target_users": 30, "top_merchant_share": 0.1,
...        "targets_per_liker": 1.6, "users_per_other": 1.0}
>>> IpFarm().score_one(nat) < 0.5
True
>>> office_post = {**nat, "like_users": 104, "top_target_users": 65,
...                "top_merchant_share": 0.8, "targets_per_liker": 1.4}
>>> IpFarm().score_one(office_post) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class IpFarm(Rule):
    """Accounts on one IP concentrated on one target, or sharing devices."""

    name = "ip_farm"
    version = "1"
    view = "ip"
    entity_type = "ip"
    paths = (
        (
            Cond("top_target_users", ">=", 10, "target_likers_per_ip",
                 "accounts on the IP liking its top target"),
            Cond("top_merchant_share", ">=", 0.75, "merchant_concentration",
                 "share of the IP's liking accounts on its top merchant's content"),
            Cond("targets_per_liker", "<=", 1.0, "targets_per_liker",
                 "distinct targets liked from the IP per liking account"),
        ),
        (
            Cond("like_users", ">=", 8, "accounts_per_ip", "distinct accounts liking from the IP"),
            Cond("users_per_other", ">=", 3.0, "accounts_per_device",
                 "accounts per device behind the IP"),
        ),
    )
