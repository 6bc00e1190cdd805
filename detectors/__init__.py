"""likeguard detectors: everything that decides, with no Kafka and no wall clock.

The package is driven by two calls on :class:`detectors.engine.Engine`:
``process(event)`` and ``advance(watermark)``, each returning the alerts it
raised. The offline ``replay`` command and the Faust worker in ``streams/``
are both thin drivers around it.
"""

__version__ = "0.1.0"
