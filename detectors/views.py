"""Views: the keyed windows an ordered event updates.

Each view keeps, per key, the events of its windows in the compiled core
(``detectors/_core/src/views/``, one file per view): ``merchant.rs`` (keyed
by merchant, with the payment->like join), ``address.rs`` (the ``ip`` and
``device`` views), ``user.rs`` (an account's recent targets, forwarded to
the lockstep view as :class:`~detectors.events.CoLike`) and ``lockstep.rs``
(keyed by target). A due key becomes a subject with its features
(:mod:`detectors.features`). ``docs/engine.md`` ("Views") lists their keys,
windows and detectors.

:data:`ALL_VIEWS` names them; :func:`route_keys` gives an event's key in each
view that takes it, which the worker repartitions by.
"""

from __future__ import annotations

from detectors.events import Like, Payment

__all__ = ["ALL_VIEWS", "route_keys"]

ALL_VIEWS = ("merchant", "ip", "device", "user", "lockstep")


def route_keys(event: Payment | Like) -> dict[str, str]:
    """The key of ``event`` in each view that takes it (for repartitioning).

    >>> route_keys(Like("l1", "u1", "post:1", "m1", 0.0, ip="10.0.0.1"))
    {'merchant': 'm1', 'ip': '10.0.0.1', 'user': 'u1'}
    """
    out = {"merchant": event.mchid}
    if event.ip is not None:
        out["ip"] = event.ip
    if event.device is not None:
        out["device"] = event.device
    if type(event) is Like:
        out["user"] = event.user
    return out
