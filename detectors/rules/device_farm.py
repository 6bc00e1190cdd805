"""Device farms: one handset carrying many accounts.

Honest devices carry one account, rarely two to five (a family tablet), and
even a family that likes the same post now and then does not put five
accounts on it within two minutes. Only accounts that *liked* from the
device count towards a farm: a shop's payment kiosk takes the money of
hundreds of customers on one device and likes nothing. A slow drip rotates
its accounts through a few phones, one every few minutes: five accounts on
one device within ``device_window`` all liking one merchant's content are
a farm, while a family's accounts like each their own things. A farm
behind residential proxies gives each account its own address: three
accounts liking one merchant from one device, each from addresses none of
the others used, with most of the device's likes on that merchant, are a
farm, while a family's accounts share their home line (one IPv6 prefix,
whatever the privacy addresses) now and then and, on mobile data, like
many merchants' content.

Examples
--------
>>> DeviceFarm().score_one({"users": 30, "like_users": 30}) > 0.75
True
>>> DeviceFarm().score_one({"users": 57, "like_users": 0}) < 0.5  # a kiosk
True
>>> drip = {"like_users": 5, "top_merchant_share": 1.0}
>>> [r.code for r in DeviceFarm().explain(drip)], DeviceFarm().score_one(drip)
(['accounts_per_device_merchant', 'merchant_concentration'], 0.5)
>>> DeviceFarm().score_one({**drip, "top_merchant_share": 0.4}) < 0.5  # a family tablet
True
>>> proxies = {"solo_line_users": 3, "top_merchant_share": 1.0, "top_merchant_like_share": 0.9}
>>> DeviceFarm().score_one(proxies) >= 0.5
True
>>> DeviceFarm().score_one({**proxies, "solo_line_users": 1}) < 0.5  # two on the home line
True
>>> DeviceFarm().score_one({**proxies, "top_merchant_like_share": 0.2}) < 0.5  # on mobile data
True
>>> DeviceFarm().score_one({"users": 2, "recent_users": 2, "top_target_share": 1.0}) < 0.5
True
>>> DeviceFarm().score_one({"users": 3, "recent_users": 3, "top_target_share": 1.0}) < 0.5
True
>>> DeviceFarm().score_one({"users": 5, "recent_users": 5, "top_target_share": 1.0}) >= 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class DeviceFarm(Rule):
    """Distinct accounts on one device: many in ``device_window``, or several at once."""

    name = "device_farm"
    version = "1"
    view = "device"
    entity_type = "device"
    paths = (
        (Cond("like_users", ">=", 6, "accounts_per_device",
              "distinct accounts liking from the device"),),
        (
            Cond("recent_users", ">=", 5, "accounts_per_device_burst",
                 "distinct accounts on the device within the burst span"),
            Cond("top_target_share", ">=", 0.5, "target_concentration",
                 "share of the device's liking accounts on its top target"),
        ),
        (  # a proxy farm: each account behind its own address, the devices shared
            Cond("solo_line_users", ">=", 3, "accounts_on_own_ips",
                 "accounts liking from the device, each from addresses no other of its "
                 "accounts used"),
            Cond("top_merchant_share", ">=", 0.8, "merchant_concentration",
                 "share of the device's liking accounts on its top merchant's content"),
            Cond("top_merchant_like_share", ">=", 0.5, "merchant_like_concentration",
                 "share of the device's likes on its top merchant's content", gate=True),
        ),
        (  # a slow drip: one account at a time, every few minutes, for one merchant
            Cond("like_users", ">=", 5, "accounts_per_device_merchant",
                 "distinct accounts liking from the device"),
            Cond("top_merchant_share", ">=", 0.8, "merchant_concentration",
                 "share of the device's liking accounts on its top merchant's content"),
        ),
    )
