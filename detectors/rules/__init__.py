"""Explicit rules for the named pay-for-likes patterns, one per module."""

from detectors.rules.device_farm import DeviceFarm
from detectors.rules.farm_target import FarmTarget
from detectors.rules.fresh_burst import FreshBurst
from detectors.rules.ip_farm import IpFarm
from detectors.rules.lockstep import Lockstep
from detectors.rules.paid_likes import PaidLikes, PaidTargetLikes
from detectors.rules.returning import ReturningAccounts
from detectors.rules.returning_likers import ReturningLikers
from detectors.rules.returning_payers import ReturningPayers
from detectors.rules.ring_block import RingBlock

__all__ = [
    "PaidLikes", "PaidTargetLikes", "FreshBurst", "FarmTarget", "DeviceFarm", "IpFarm", "Lockstep",
    "RingBlock", "ReturningAccounts", "ReturningLikers", "ReturningPayers", "RULES",
]

#: every rule, in the order the engine runs them
RULES = (PaidLikes, PaidTargetLikes, FreshBurst, FarmTarget, DeviceFarm, IpFarm, Lockstep,
         RingBlock, ReturningAccounts, ReturningPayers, ReturningLikers)
