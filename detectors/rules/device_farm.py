"""Device farms: one handset carrying many accounts.

Honest devices carry one account, rarely two to five (a family tablet), and
even a family that likes the same post now and then does not put five
accounts on it within two minutes.

Examples
--------
>>> DeviceFarm().score_one({"users": 30}) > 0.75
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
        (Cond("users", ">=", 6, "accounts_per_device", "distinct accounts on the device"),),
        (
            Cond("recent_users", ">=", 5, "accounts_per_device_burst",
                 "distinct accounts on the device within the burst span"),
            Cond("top_target_share", ">=", 0.5, "target_concentration",
                 "share of the device's liking accounts on its top target"),
        ),
    )
