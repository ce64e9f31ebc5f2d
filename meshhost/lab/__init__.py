"""The partition-tolerance laboratory: sweeps of scenarios, statistics, plots, checkers.

**A scenario** is a Python file (``meshhost sim run FILE``) with:

``run(seed, **params)`` (required)
    One run, a pure function of the seed and the parameters.  Returns one
    observation (a ``dict`` of name -> ``int | float | bool | str | None``)
    or a list of them (e.g. one per host).  ``None`` and non-finite numbers
    mean "not observed" (e.g. never converged within the horizon).  Raising
    marks the seed as failing; the sweep prints its replay command.
``PARAMS`` (optional, ``dict[str, list]``)
    The default grid: each parameter name -> the values swept.  ``--param
    name=v1,v2`` replaces a row on the command line.
``SEEDS`` (optional, ``int``, default 3)
    Seeds per grid cell, ``--seeds`` overrides.
``METRICS`` (optional, ``list[str]``)
    Which observation fields to summarise and plot (default: every numeric
    or boolean field; booleans are summarised as rates).
``X`` (optional, ``str``)
    The parameter on the x axis of the plots (default: the first parameter
    with several numeric values).

The module docstring's first line is the report's title.  A YAML scenario
names a built-in scenario (:mod:`meshhost.lab.builtin`) or a Python scenario
file beside it, and sets its grid, seeds, metrics and x axis::

    scenario: crash_detection        # or: file: my_scenario.py
    title: Crash detection, LAN
    params: {n: [10, 50], profile: [lan]}
    seeds: 20

**A sweep** (:func:`~meshhost.lab.sweep.run_sweep`) runs every (grid cell,
seed) in parallel (a process per core, or a Dask cluster), writes each
finished one atomically to ``OUT/cells/<key>.json`` (a rerun skips those:
sweeps resume after Ctrl-C), then the outputs (:mod:`meshhost.lab.report`):
``observations.csv`` / ``.jsonl`` (one row per observation with scenario,
parameters and seed), ``summary.csv`` / ``.json`` (bootstrap 95 %
confidence intervals, :mod:`meshhost.lab.stats`), ``plots/*.png|svg`` and
``report.md``.

**Checkers** (:mod:`meshhost.lab.checkers`) judge recorded histories as
Jepsen does: invocations, key-value writes, directory convergence.

This package imports nothing heavy at import time; numpy, matplotlib and
distributed are imported by the functions that need them (``meshhost[lab]``).
"""

from __future__ import annotations

from meshhost.lab.scenario import Scenario, load_scenario

__all__ = ["Scenario", "load_scenario"]
