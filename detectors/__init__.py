"""likeguard detectors: everything that decides, with no Kafka and no wall clock.

The package is driven by two calls on :class:`detectors.engine.Engine`:
``process(event)`` and ``advance(watermark)``, each returning the alerts it
raised. The offline ``replay`` command and the Faust worker in ``streams/``
are both thin drivers around it.

An event's way through, step by step (Python module; the compiled core's
source under ``detectors/_core/src/`` where the work runs there):

==========  ==========================================  ===========================
step        module                                      core
==========  ==========================================  ===========================
parse       :mod:`detectors.parsing` (into              ``parse.rs``
            :mod:`detectors.events`)
order       :mod:`detectors.ordering` (dedupe,          ``order.rs``, ``engine.rs``
            reorder buffer, watermarks)
view        :mod:`detectors.views` (keyed windows;      ``views/*.rs``
            :mod:`detectors.partitioning` routes keys)
features    :mod:`detectors.features` (a due key's      ``views/*.rs``,
            :class:`~detectors.features.Subject`)       ``subject.rs``
score       :mod:`detectors.rules`,                     ``rules.rs``
            :mod:`detectors.models`, driven by
            :mod:`detectors.engine`
alert       :mod:`detectors.alerts` (contract objects,
            suppression), :mod:`detectors.verdicts`
==========  ==========================================  ===========================

Around the flow: :mod:`detectors.config` (every setting),
:mod:`detectors.recording` and :mod:`detectors.replay` (the offline driver),
:mod:`detectors.simulate` (labelled traffic), :mod:`detectors.evaluate`,
:mod:`detectors.ablation` and :mod:`detectors.moderation` (scoring alerts
against labels), :mod:`detectors.base` (the detector protocol) and
:mod:`detectors.checks` (what every detector must pass).
"""

__version__ = "0.1.0"

import os as _os

# The compiled core's allocator (mimalloc) reads its options from the
# environment when the core loads. Transparent huge pages stay off: mimalloc
# advises its segments MADV_HUGEPAGE and khugepaged then refills the 2 MiB
# ranges whose pages the engine gave back after a burst, so a long-running
# worker kept growing (docs/performance.md, "Soak"). An operator's own
# setting wins.
_os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")
