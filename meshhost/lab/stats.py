"""Summaries with bootstrap 95 % confidence intervals, reproducible to the byte.

For each grid cell and metric: how many observations and seeds, how many
were "not observed" (None: e.g. never converged within the horizon), and
over the observed values the mean and median with percentile-bootstrap 95 %
intervals, the p99 (nearest rank) and the maximum.  Booleans count as 0/1,
so their mean is a rate.

Observations of one run are correlated (99 hosts detecting the same crash),
so the bootstrap resamples *seeds* (each seed's observations together) when
two or more seeds observed something; with one seed it can only resample the
observations themselves, an interval that is too narrow, marked
``resampled: observations``.  The bootstrap's generator is seeded from the
cell's parameters and the metric, so the same results give the same report
however the sweep was split, ordered or resumed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["RESAMPLES", "bootstrap_ci", "metric_names", "summarise"]

RESAMPLES = 2000
"""Bootstrap resamples per interval."""
LEVEL = 0.95


def metric_names(observations: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every field that is numeric or boolean somewhere, in first-seen order, then
    every field that is never observed (always None: a NaN, an inf, a horizon
    never reached) and never a string: its summary row says so in ``missing``
    rather than the metric vanishing from the summary."""
    names: dict[str, None] = {}
    unobserved: dict[str, None] = {}
    text: set[str] = set()
    for obs in observations:
        for k, v in obs.items():
            if isinstance(v, int | float) and k not in names:
                names[k] = None
            elif v is None:
                unobserved.setdefault(k)
            elif isinstance(v, str):
                text.add(k)
    return [*names, *(k for k in unobserved if k not in names and k not in text)]


def _rng_seed(params: Mapping[str, Any], metric: str) -> int:
    blob = json.dumps([dict(sorted(params.items())), metric], sort_keys=True)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big")


def bootstrap_ci(
    groups: Sequence[Sequence[float]], seed: int, resamples: int = RESAMPLES
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap 95 % intervals of the mean and median of the pooled values.

    ``groups``: the values of each seed.  Two or more non-empty groups: the
    groups are resampled; one: its values are.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    groups = [g for g in groups if len(g)]
    if len(groups) == 1:
        groups = [[v] for v in groups[0]]
    sizes = {len(g) for g in groups}
    if len(sizes) == 1:  # equal groups: one fancy-indexing draw for every resample
        table = np.asarray(groups, dtype=float)
        picks = rng.integers(0, len(groups), size=(resamples, len(groups)))
        samples = table[picks].reshape(resamples, -1)
        means, medians = samples.mean(axis=1), np.median(samples, axis=1)
    else:
        arrays = [np.asarray(g, dtype=float) for g in groups]
        picks = rng.integers(0, len(arrays), size=(resamples, len(arrays)))
        means = np.empty(resamples)
        medians = np.empty(resamples)
        for i, row in enumerate(picks):
            sample = np.concatenate([arrays[j] for j in row])
            means[i], medians[i] = sample.mean(), np.median(sample)
    tail = (1 - LEVEL) / 2 * 100
    return {
        "mean": tuple(float(x) for x in np.percentile(means, [tail, 100 - tail])),  # type: ignore[dict-item]
        "median": tuple(float(x) for x in np.percentile(medians, [tail, 100 - tail])),  # type: ignore[dict-item]
    }


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


def summarise(
    cells: Iterable[tuple[Mapping[str, Any], int, Sequence[Mapping[str, Any]]]],
    metrics: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per (grid cell, metric) from (params, seed, observations) triples.

    Rows come in first-seen order of the parameters, then of ``metrics``
    (default: :func:`metric_names`).
    """
    import numpy as np

    by_params: dict[str, tuple[dict[str, Any], dict[int, list[Mapping[str, Any]]]]] = {}
    for params, seed, observations in cells:
        key = json.dumps(params, sort_keys=True)
        entry = by_params.setdefault(key, (dict(params), {}))
        entry[1].setdefault(seed, []).extend(observations)
    names = (
        list(metrics)
        if metrics is not None
        else metric_names(
            obs for _, seeds in by_params.values() for group in seeds.values() for obs in group
        )
    )
    rows = []
    for params, seeds in by_params.values():
        for metric in names:
            groups: list[list[float]] = []
            count = missing = 0
            for seed in sorted(seeds):
                values = []
                for obs in seeds[seed]:
                    if metric not in obs:
                        continue
                    count += 1
                    v = obs[metric]
                    if isinstance(v, int | float):
                        values.append(float(v))
                    else:
                        missing += 1
                groups.append(values)
            pooled = sorted(v for g in groups for v in g)
            row: dict[str, Any] = {
                **params,
                "metric": metric,
                "count": count,
                "n_seeds": len(seeds),
                "missing": missing,
            }
            if pooled:
                ci = bootstrap_ci(groups, _rng_seed(params, metric))
                row.update(
                    mean=float(np.mean(pooled)),
                    mean_lo=ci["mean"][0],
                    mean_hi=ci["mean"][1],
                    median=float(np.median(pooled)),
                    median_lo=ci["median"][0],
                    median_hi=ci["median"][1],
                    p99=_nearest_rank(pooled, 0.99),
                    max=pooled[-1],
                    resampled="seeds" if sum(1 for g in groups if g) > 1 else "observations",
                )
            rows.append(row)
    return rows
