"""IP farms: many accounts behind one address pushing the same targets.

An office or campus NAT also puts hundreds of accounts on one address, but
they like diverse content from their own devices; a farm concentrates on a
few targets of one merchant, or runs many accounts per device. When a
quarter of an office likes the employer's new post, the rest of its staff
go on liking other merchants' content from the same address, and its likers
like a target or more for every three of them; every account a farm's
address carries works the job (the share on its top merchant is all but
one), or, split between two jobs, likes the handful it is paid for, one
target for every four accounts or fewer.

Examples
--------
>>> x = {"like_users": 40, "top_target_users": 35, "top_merchant_share": 1.0,
...      "targets_per_liker": 0.05, "users_per_other": 1.0}
>>> IpFarm().score_one(x) > 0.5
True
>>> two_jobs = {**x, "top_merchant_share": 0.8, "targets_per_liker": 0.1}
>>> IpFarm().score_one(two_jobs) > 0.5
True
>>> nat = {"like_users": 300, "top_target_users": 30, "top_merchant_share": 0.1,
...        "targets_per_liker": 1.6, "users_per_other": 1.0}
>>> IpFarm().score_one(nat) < 0.5
True
>>> office_post = {**nat, "like_users": 20, "top_target_users": 15,
...                "top_merchant_share": 0.85, "targets_per_liker": 0.35}
>>> IpFarm().score_one(office_post)
0.25
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
            Cond("top_merchant_share", ">=", 0.95, "merchant_concentration",
                 "share of the IP's liking accounts on its top merchant's content",
                 gate=True),
            Cond("targets_per_liker", "<=", 1.0, "targets_per_liker",
                 "distinct targets liked from the IP per liking account"),
        ),
        (
            Cond("top_target_users", ">=", 10, "target_likers_per_ip",
                 "accounts on the IP liking its top target"),
            Cond("top_merchant_share", ">=", 0.75, "merchant_concentration",
                 "share of the IP's liking accounts on its top merchant's content"),
            Cond("targets_per_liker", "<=", 0.25, "targets_per_liker",
                 "distinct targets liked from the IP per liking account", gate=True),
        ),
        (
            Cond("like_users", ">=", 8, "accounts_per_ip", "distinct accounts liking from the IP"),
            Cond("users_per_other", ">=", 3.0, "accounts_per_device",
                 "accounts per device behind the IP"),
        ),
    )
