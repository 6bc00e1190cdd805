"""IP farms: many accounts behind one address pushing the same targets.

An office or campus NAT also puts hundreds of accounts on one address, but
they like diverse content from their own devices; a farm concentrates on a
few targets, or runs many accounts per device.

Examples
--------
>>> x = {"like_users": 40, "top_target_users": 35, "top_target_share": 0.9,
...      "users_per_other": 1.0}
>>> IpFarm().score_one(x) > 0.5
True
>>> nat = {"like_users": 300, "top_target_users": 30, "top_target_share": 0.1,
...        "users_per_other": 1.0}
>>> IpFarm().score_one(nat) < 0.5
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
            Cond("top_target_share", ">=", 0.6, "target_concentration",
                 "share of the IP's liking accounts on its top target"),
        ),
        (
            Cond("users", ">=", 8, "accounts_per_ip", "distinct accounts on the IP"),
            Cond("users_per_other", ">=", 3.0, "accounts_per_device",
                 "accounts per device behind the IP"),
        ),
    )
