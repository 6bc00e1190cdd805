"""Features: what a view hands to the scorers for each due key.

At each tick the views (:mod:`detectors.views`) turn their due keys into
:class:`Subject` s, computed in the compiled core
(``detectors/_core/src/views/*.rs`` and ``subject.rs``): the entity, a flat
``features`` dict (counts, shares, delays; ``docs/engine.md``), the
evidence ``counts`` and sample ids. The rules (:mod:`detectors.rules`) and
models (:mod:`detectors.models`) score ``features``; the engine
(:meth:`detectors.engine.Engine.drain`) does the scoring and builds alerts
(:mod:`detectors.alerts`).

Examples
--------
>>> from detectors._core import Core
>>> from detectors.config import EngineConfig
>>> from detectors.events import Like
>>> core = Core(EngineConfig(), ["device"])
>>> for i in range(12):
...     core.add(Like(f"l{i}", f"u{i}", "post:1", "m1", 1000.0 + i, device="d1"))
>>> [subject] = core.evaluate(1015.0)
>>> subject.view, subject.entity_id, subject.features["users"]
('device', 'd1', 12.0)
"""

from detectors._core import Subject

__all__ = ["Subject"]
