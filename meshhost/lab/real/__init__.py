"""The same partition scenario on the simulator and on real hosts, side by side.

``meshhost lab run SCENARIO`` reads a :class:`~meshhost.lab.real.spec.LabScenario`
(YAML), runs it on real ``meshhost up`` processes, one per Linux network
namespace, joined by a bridge (:mod:`~meshhost.lab.real.netns`,
:mod:`~meshhost.lab.real.runner`), runs the same fault schedule on the
simulator over several seeds (:mod:`~meshhost.lab.real.simrun`), turns both
event streams into the same per-host observations
(:mod:`~meshhost.lab.real.observe`), checks the real run's histories
(:mod:`~meshhost.lab.real.checks`) and plots the two side by side
(:mod:`~meshhost.lab.real.compare`).

Nothing here imports trio, wasmtime, numpy or matplotlib at import time.
"""
