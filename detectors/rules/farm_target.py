"""Farmed targets: a target liked by many accounts from few devices or one IP.

Viral posts are liked from about one device per account and from all over
the network; a farm cycles many accounts through a handful of handsets
behind one or two addresses. A farm on a post that also has honest likers
still shows as clusters: most of the post's likers come from addresses
that each carry three or more of them, while honest likers of even the
busiest post rarely share an address with two others. The address paths
are gated on the likers not being the merchant's customers: buyers like
a shop's page from the shop's Wi-Fi minutes after paying a real amount.
A farm behind residential proxies gives each account its own address but
reuses a few emulated devices: most of the target's likers then share a
device with another liker, while honest likers do so only as a family on
one tablet (a few accounts).

Examples
--------
>>> FarmTarget().score_one({"users": 40, "users_per_device": 8.0}) > 0.5
True
>>> FarmTarget().score_one({"users": 4000, "users_per_device": 1.05}) < 0.5
True
>>> farm_on_busy_post = {"users": 16, "users_per_ip": 2.3, "ip_clustered": 11,
...                      "ip_clustered_share": 0.69, "buyer_share": 0.0}
>>> [r.code for r in FarmTarget().explain(farm_on_busy_post)]
['clustered_likers', 'clustered_share', 'buyer_share']
>>> FarmTarget().score_one(farm_on_busy_post) >= 0.5
True
>>> shop_wifi = {"users": 10, "top_ip_share": 0.8, "buyer_share": 0.9}
>>> FarmTarget().score_one(shop_wifi)
0.0
>>> FarmTarget().score_one({"users": 700, "ip_clustered": 22,  # viral, some shared IPs
...                         "ip_clustered_share": 0.03}) < 0.5
True
>>> FarmTarget().score_one({"users": 340, "ip_clustered": 116,  # carrier NATs, dense hour
...                         "ip_clustered_share": 0.34, "buyer_share": 0.08})
0.0
>>> proxies = {"users": 8, "users_per_device": 2.0, "device_clustered": 7,
...            "device_clustered_share": 0.88, "buyer_share": 0.0}  # an address each
>>> [r.code for r in FarmTarget().explain(proxies)], FarmTarget().score_one(proxies) >= 0.5
(['device_clustered_likers', 'device_clustered_share', 'buyer_share'], True)
>>> FarmTarget().score_one({"users": 9, "device_clustered": 4,  # a family's tablet
...                         "device_clustered_share": 0.44}) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule

#: a shop's customers like its page from the shop's Wi-Fi after paying
_NOT_CUSTOMERS = Cond("buyer_share", "<=", 0.5, "buyer_share",
                      "share of the target's likers who paid the merchant a real amount "
                      "just before", gate=True)


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
            _NOT_CUSTOMERS,
        ),
        (
            Cond("users", ">=", 12, "target_likers", "distinct accounts liking the target"),
            Cond("users_per_ip", ">=", 3.0, "accounts_per_ip",
                 "accounts per IP among the target's likers"),
            _NOT_CUSTOMERS,
        ),
        (  # behind residential proxies: an address per account, few devices
            Cond("device_clustered", ">=", 6, "device_clustered_likers",
                 "accounts liking the target from devices that carry two or more of its likers"),
            Cond("device_clustered_share", ">=", 0.5, "device_clustered_share",
                 "share of the target's likers from such devices", gate=True),
            _NOT_CUSTOMERS,
        ),
        # counted, not averaged, so the target's honest likers do not dilute a farm;
        # the share is a gate: in dense traffic a third of a popular post's likers
        # meet on carrier addresses, which must not corroborate a model alert
        (
            Cond("ip_clustered", ">=", 10, "clustered_likers",
                 "accounts liking the target from IPs that carry three or more of its likers"),
            Cond("ip_clustered_share", ">=", 0.5, "clustered_share",
                 "share of the target's likers from such IPs", gate=True),
            _NOT_CUSTOMERS,
        ),
    )
