"""Device farms: one handset carrying many accounts.

Honest devices carry one account, rarely two or three.

Examples
--------
>>> DeviceFarm().score_one({"users": 30}) > 0.75
True
>>> DeviceFarm().score_one({"users": 2}) < 0.5
True
"""

from __future__ import annotations

from detectors.base import Cond, Rule


class DeviceFarm(Rule):
    """Distinct accounts active on one device within ``device_window``."""

    name = "device_farm"
    version = "1"
    view = "device"
    entity_type = "device"
    paths = ((Cond("users", ">=", 6, "accounts_per_device", "distinct accounts on the device"),),)
