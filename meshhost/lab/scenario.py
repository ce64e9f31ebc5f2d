"""Loading scenarios (Python or YAML files) and expanding their grids into cells.

A scenario travels to workers as its *source text* (:class:`Job`), not as a
path or a pickled function, so a process pool or a Dask worker on another
machine runs exactly the code the sweep was started with; the digest of that
text is part of every cell's key, so editing a scenario never mixes old and
new results.  The module-level API is described in :mod:`meshhost.lab`.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import traceback
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshhost.errors import ScenarioError

__all__ = [
    "Job",
    "Scenario",
    "cell_key",
    "expand_grid",
    "format_param",
    "load_job",
    "load_scenario",
    "normalise_observations",
    "parse_param",
]

Value = int | float | bool | str | None
SUMMARY_FIELDS = (
    "metric",
    "count",
    "n_seeds",
    "missing",
    "mean",
    "mean_lo",
    "mean_hi",
    "median",
    "median_lo",
    "median_hi",
    "p99",
    "max",
    "resampled",
)
"""Columns of summary.csv beside the parameters (meshhost.lab.report)."""
RESERVED = frozenset({"scenario", "seed", "obs", *SUMMARY_FIELDS})
"""Column names of the outputs; no parameter may take one."""
Observation = dict[str, Value]
DEFAULT_SEEDS = 3


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker needs to run a scenario: ``kind`` is ``"py"`` (``source`` is
    the file's text) or ``"builtin"`` (``source`` names a :mod:`meshhost.lab.builtin`
    scenario)."""

    kind: str
    source: str
    filename: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.kind}\0{self.source}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    path: str
    """The file the user named (shown in replay commands)."""
    job: Job
    run: Callable[..., Any]
    params: dict[str, list[Any]] = field(default_factory=dict)
    seeds: int = DEFAULT_SEEDS
    metrics: list[str] | None = None
    x: str | None = None
    accepted: frozenset[str] | None = None
    """Parameter names ``run`` accepts (None: any, it takes ``**kwargs``)."""

    def with_grid(self, overrides: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        """The default grid with ``overrides`` applied; unknown names are a ScenarioError."""
        grid = {k: list(v) for k, v in self.params.items()}
        for name, values in overrides.items():
            if name in RESERVED:
                raise ScenarioError(f"--param {name}: that name is taken by an output column")
            if self.accepted is not None and name not in self.accepted:
                known = ", ".join(sorted(self.accepted)) or "none"
                raise ScenarioError(
                    f"{self.path}: run() takes no parameter {name!r} (it takes: {known})"
                )
            if not values:
                raise ScenarioError(f"--param {name}: give at least one value")
            _no_repeats(name, values, f"--param {name}")
            grid[name] = list(values)
        return grid


_CACHE: dict[str, tuple[Callable[..., Any], types.ModuleType | None]] = {}


def load_job(job: Job) -> tuple[Callable[..., Any], types.ModuleType | None]:
    """The ``run`` function of ``job`` (and its module), compiled once per process."""
    cache_key = f"{job.digest}:{job.filename}"  # the same code elsewhere has its own __file__
    hit = _CACHE.get(cache_key)
    if hit is not None:
        return hit
    if job.kind == "builtin":
        from meshhost.lab import builtin

        fn = builtin.SCENARIOS.get(job.source)
        if fn is None:
            known = ", ".join(sorted(builtin.SCENARIOS))
            raise ScenarioError(f"{job.filename}: no built-in scenario {job.source!r} ({known})")
        _CACHE[cache_key] = (fn, None)
        return fn, None
    module = types.ModuleType(f"meshhost_scenario_{job.digest[:12]}")
    module.__file__ = job.filename
    try:
        code = compile(job.source, job.filename, "exec")
        exec(code, module.__dict__)
    except SyntaxError as exc:
        raise ScenarioError(
            f"{job.filename} line {exc.lineno}: the scenario does not load: SyntaxError: {exc.msg}"
        ) from exc
    except Exception as exc:
        # Name the scenario's own line that raised (an import, a typo), not the loader's.
        tb = traceback.extract_tb(exc.__traceback__)
        lines = [f.lineno for f in tb if f.filename == job.filename]
        where = f"{job.filename} line {lines[-1]}" if lines else job.filename
        raise ScenarioError(
            f"{where}: the scenario does not load: {type(exc).__name__}: {exc}"
        ) from exc
    fn = getattr(module, "run", None)
    if not callable(fn):
        raise ScenarioError(f"{job.filename}: a scenario needs a function run(seed, **params)")
    _CACHE[cache_key] = (fn, module)
    return fn, module


def _accepted(fn: Callable[..., Any]) -> frozenset[str] | None:
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return frozenset(list(sig.parameters)[1:])  # the first is the seed


def _grid(raw: object, where: str) -> dict[str, list[Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: PARAMS must map parameter names to lists of values")
    grid = {}
    for name, values in raw.items():
        if name in RESERVED:
            raise ScenarioError(f"{where}: parameter name {name!r} is taken by an output column")
        if not isinstance(values, list | tuple) or not values:
            raise ScenarioError(f"{where}: PARAMS[{name!r}] must be a non-empty list of values")
        _no_repeats(str(name), values, f"{where}: PARAMS[{name!r}]")
        grid[str(name)] = list(values)
    return grid


def _no_repeats(name: str, values: Sequence[Any], where: str) -> None:
    # A repeated value would be one cell run twice and counted twice.
    seen: list[str] = []
    for v in values:
        text = json.dumps(v, sort_keys=True)
        if text in seen:
            raise ScenarioError(f"{where}: the value {v!r} is given twice")
        seen.append(text)


def _seeds(raw: object, where: str) -> int:
    if raw is None:
        return DEFAULT_SEEDS
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise ScenarioError(f"{where}: SEEDS must be a whole number >= 1, got {raw!r}")
    return raw


def _metrics(raw: object, where: str, key: str) -> list[str] | None:
    # A bare string would be read as its letters: 'detect_s' -> d, e, t, ...
    if not raw:
        return None
    if not isinstance(raw, list | tuple) or not all(isinstance(m, str) and m for m in raw):
        raise ScenarioError(f"{where}: {key} must be a list of field names, got {raw!r}")
    return list(raw)


def _name(raw: object, where: str, key: str) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    raise ScenarioError(f"{where}: {key} must be a string, got {raw!r}")


def load_scenario(path: str | Path) -> Scenario:
    """Load a ``.py`` or ``.yaml``/``.yml`` scenario file; ScenarioError says what is wrong."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror or exc}") from exc
    if p.suffix in (".yaml", ".yml"):
        return _load_yaml(p, text)
    if p.suffix != ".py":
        raise ScenarioError(f"{path}: a scenario is a .py or .yaml file")
    job = Job("py", text, str(p))
    fn, module = load_job(job)
    doc = (module.__doc__ or "").strip() if module else ""
    ns = module.__dict__ if module else {}
    return Scenario(
        name=p.stem,
        title=doc.splitlines()[0] if doc else p.stem,
        path=str(path),
        job=job,
        run=fn,
        params=_grid(ns.get("PARAMS"), str(path)),
        seeds=_seeds(ns.get("SEEDS"), str(path)),
        metrics=_metrics(ns.get("METRICS"), str(path), "METRICS"),
        x=_name(ns.get("X"), str(path), "X"),
        accepted=_accepted(fn),
    )


def yaml_problem(path: str | Path, exc: Exception) -> str:
    """One line for a YAML syntax error: PyYAML's str() spans several (the
    snippet and a caret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path} line {mark.line + 1} column {mark.column + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}: not valid YAML: {problem}"


YAML_KEYS = {"scenario", "file", "title", "params", "seeds", "metrics", "x"}


def _load_yaml(p: Path, text: str) -> Scenario:
    import yaml

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(yaml_problem(p, exc)) from exc
    if not isinstance(spec, dict):
        raise ScenarioError(f"{p}: a YAML scenario is a mapping (scenario:, params:, seeds:)")
    unknown = set(spec) - YAML_KEYS
    if unknown:
        raise ScenarioError(
            f"{p}: unknown keys {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(sorted(YAML_KEYS))})"
        )
    if ("scenario" in spec) == ("file" in spec):
        raise ScenarioError(f"{p}: give exactly one of 'scenario: <built-in name>' or 'file:'")
    if "file" in spec:
        base = load_scenario(p.parent / str(spec["file"]))
    else:
        job = Job("builtin", str(spec["scenario"]), str(p))
        fn, _ = load_job(job)
        base = Scenario(
            name=str(spec["scenario"]),
            title=(fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else p.stem,
            path=str(p),
            job=job,
            run=fn,
            params=dict(getattr(fn, "PARAMS", {})),
            accepted=_accepted(fn),
        )
    grid = base.with_grid(_grid(spec.get("params"), str(p)))
    return Scenario(
        name=p.stem,
        title=_name(spec.get("title"), str(p), "title") or base.title,
        path=str(p),
        job=base.job,
        run=base.run,
        params=grid,
        seeds=_seeds(spec.get("seeds", base.seeds), str(p)),
        metrics=_metrics(spec.get("metrics"), str(p), "metrics") or base.metrics,
        x=_name(spec.get("x"), str(p), "x") or base.x,
        accepted=base.accepted,
    )


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the grid's order (a grid of none: one cell)."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def cell_key(job: Job, params: Mapping[str, Any], seed: int) -> str:
    """The file name stem of one (scenario code, parameters, seed) result."""
    blob = json.dumps([job.digest, dict(sorted(params.items())), seed], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``name=v1,v2`` -> (name, values).  Values are JSON where they parse
    (``10``, ``0.5``, ``true``, ``[10,20]``), else strings (``lan``)."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ScenarioError(f"--param {text!r}: expected name=value[,value...]")
    try:
        values = json.loads(f"[{rest}]")
    except ValueError:
        parts = [part.strip() for part in rest.split(",")]
        for part in parts:
            # Not JSON as a whole: plain words (lan,local).  An empty part is a
            # stray comma, a bracket or quote a JSON value that did not parse;
            # either would be swept as a string cell nobody meant.
            if not part:
                raise ScenarioError(f"--param {text!r}: an empty value (a stray comma?)") from None
            if part[0] in '[{"':
                raise ScenarioError(
                    f"--param {text!r}: {part!r} is not valid JSON (a list is written [1,2])"
                ) from None
        values = [_scalar(part) for part in parts]
    if not isinstance(values, list) or not values:
        raise ScenarioError(f"--param {text!r}: give at least one value")
    return name, values


def format_param(name: str, value: Any) -> str:
    """The ``name=value`` that :func:`parse_param` reads back as exactly ``[value]``."""
    if isinstance(value, str) and _scalar(value) == value and "," not in value:
        return f"{name}={value}"
    return f"{name}={json.dumps(value, separators=(',', ':'))}"


def normalise_observations(result: object, where: str) -> list[Observation]:
    """A run's return value as plain observation dicts (non-finite numbers become None)."""
    if result is None:  # most likely a run() that forgot its return
        raise ScenarioError(
            f"{where}: run() returned None; return a dict of observations "
            "(or a list of them, [] for none)"
        )
    items = [result] if isinstance(result, Mapping) else result
    if not isinstance(items, list | tuple):
        raise ScenarioError(f"{where}: run() must return a dict or a list of dicts, not {result!r}")
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ScenarioError(f"{where}: an observation must be a dict, not {item!r}")
        obs: Observation = {}
        for k, v in item.items():
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            elif v is not None and not isinstance(v, int | float | str | bool):
                raise ScenarioError(
                    f"{where}: observation {k!r} must be a number, bool, str or None, not {v!r}"
                )
            obs[str(k)] = v
        out.append(obs)
    return out


def iter_cells(
    grid: Mapping[str, Sequence[Any]], seeds: Sequence[int]
) -> Iterator[tuple[dict[str, Any], int]]:
    for params in expand_grid(grid):
        for seed in seeds:
            yield params, seed
