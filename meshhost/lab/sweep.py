"""Running a scenario over a grid x seeds: in parallel, resumable, failures replayable.

Each (grid cell, seed) is one *cell*.  Workers (a process per core via
``ProcessPoolExecutor``, or a Dask cluster) run :func:`run_cell` and return
plain data; only this process writes results, each finished cell to
``OUT/cells/<key>.json`` by write-to-temporary + ``os.replace`` (atomic: a
Ctrl-C leaves whole files or none).  A rerun with the same scenario code,
parameters and seeds skips every cell whose file exists, so an interrupted
sweep resumes where it stopped and ends with the same results an
uninterrupted one gives.  A failing cell goes to ``OUT/failed/<key>.json``
instead (retried by every rerun) and its replay command is printed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshhost.errors import ScenarioError
from meshhost.lab.scenario import (
    Job,
    Scenario,
    cell_key,
    format_param,
    iter_cells,
    load_job,
    normalise_observations,
)

__all__ = ["CellResult", "SweepResult", "replay_command", "run_cell", "run_sweep"]


def run_cell(job: Job, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Run one cell; never raises: a failure is returned as ``error`` + ``traceback``."""
    record: dict[str, Any] = {"params": params, "seed": seed, "observations": [], "error": None}
    try:
        fn, _ = load_job(job)
        observations = normalise_observations(fn(seed, **params), f"{job.filename} seed {seed}")
        taken = {"scenario", "seed", "obs", *params}
        for obs in observations:
            clash = sorted(taken & set(obs))
            if clash:
                raise ScenarioError(
                    f"{job.filename}: observation field {clash[0]!r} has the name of a "
                    "parameter or output column; rename the field"
                )
        record["observations"] = observations
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    return record


def replay_command(scenario: Scenario, params: Mapping[str, Any], seed: int) -> str:
    """The command that reruns one cell alone, in the foreground, with its traceback."""
    import shlex

    parts = ["meshhost", "sim", "replay", scenario.path, "--seed", str(seed)]
    for name, value in params.items():
        parts += ["--param", format_param(name, value)]
    return " ".join(shlex.quote(p) for p in parts)


@dataclass(slots=True)
class CellResult:
    key: str
    params: dict[str, Any]
    seed: int
    observations: list[dict[str, Any]]


@dataclass(slots=True)
class SweepResult:
    cells: list[CellResult] = field(default_factory=list)
    """Every finished cell of the grid, in grid order (params, then seed)."""
    failures: list[dict[str, Any]] = field(default_factory=list)
    ran: int = 0
    """Cells run by this call (the others were already on disk)."""
    skipped: int = 0


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))  # key order kept: it is the scenario's, and deterministic
    os.replace(tmp, path)


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; only the parent handles it and
    # stops the pool, so workers do not die mid-cell with tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


Progress = Callable[[int, int], None]
"""Called with (cells done, cells total) after each cell."""


def run_sweep(
    scenario: Scenario,
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    out: Path,
    *,
    jobs: int | None = None,
    dask: str | None = None,
    progress: Progress | None = None,
    on_failure: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every missing cell of ``grid`` x ``seeds`` and return all finished ones.

    ``jobs``: worker processes (default: every core; 1 runs in this process).
    ``dask``: the address of a Dask scheduler to run on instead.
    ``on_failure`` gets a line naming each failing cell and its replay command.
    """
    cells_dir, failed_dir = out / "cells", out / "failed"
    cells_dir.mkdir(parents=True, exist_ok=True)
    failed_dir.mkdir(exist_ok=True)
    todo: list[tuple[str, dict[str, Any], int]] = []
    order: list[str] = []
    for params, seed in iter_cells(grid, seeds):
        key = cell_key(scenario.job, params, seed)
        order.append(key)
        if not (cells_dir / f"{key}.json").exists():
            todo.append((key, params, seed))
    result = SweepResult(skipped=len(order) - len(todo))
    total, done = len(order), result.skipped
    if progress:
        progress(done, total)

    def finished(key: str, record: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        result.ran += 1
        if record["error"] is None:
            record.pop("traceback", None)
            _write_atomic(cells_dir / f"{key}.json", record)
            (failed_dir / f"{key}.json").unlink(missing_ok=True)
        else:
            record["replay"] = replay_command(scenario, record["params"], record["seed"])
            _write_atomic(failed_dir / f"{key}.json", record)
            result.failures.append(record)
            if on_failure:
                on_failure(f"SEED={record['seed']} {record['error']}\n  replay: {record['replay']}")
        if progress:
            progress(done, total)

    if todo:
        if dask:
            _run_dask(dask, scenario.job, todo, finished)
        elif (jobs or os.cpu_count() or 1) <= 1:
            for key, params, seed in todo:
                finished(key, run_cell(scenario.job, params, seed))
        else:
            _run_pool(jobs or os.cpu_count() or 1, scenario.job, todo, finished)
    for key in order:
        path = cells_dir / f"{key}.json"
        if path.exists():
            data = json.loads(path.read_text())
            result.cells.append(CellResult(key, data["params"], data["seed"], data["observations"]))
    return result


def _run_pool(
    workers: int,
    job: Job,
    todo: Iterable[tuple[str, dict[str, Any], int]],
    finished: Callable[[str, dict[str, Any]], None],
) -> None:
    # spawn: a fresh interpreter per worker, not a fork of one holding the
    # progress bar's thread; workers compile the scenario from its source.
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_ignore_sigint)
    try:
        pending: dict[Future[dict[str, Any]], str] = {
            pool.submit(run_cell, job, params, seed): key for key, params, seed in todo
        }
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in ready:
                key = pending.pop(fut)
                try:
                    record = fut.result()
                except BrokenProcessPool as exc:
                    raise ScenarioError(
                        "a worker process died (killed, or out of memory?) while running the "
                        "sweep; finished cells are kept: run the same command again to resume, "
                        "with fewer --jobs if memory is short"
                    ) from exc
                finished(key, record)
    except BaseException:
        # Ctrl-C or a crash here: drop queued cells and stop the workers now;
        # what finished is on disk already.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


CONNECT_TIMEOUT_S = 10.0
"""How long ``--dask`` waits for the scheduler to answer."""


def _run_dask(
    address: str,
    job: Job,
    todo: Sequence[tuple[str, dict[str, Any], int]],
    finished: Callable[[str, dict[str, Any]], None],
) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - the extra is in the test set
        raise ScenarioError("--dask needs the lab extra: pip install 'meshhost[lab]'") from exc
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ScenarioError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    except ValueError as exc:  # distributed's parse of the address: no port, unknown protocol
        raise ScenarioError(
            f"--dask {address}: not a scheduler address ({exc}); give tcp://HOST:PORT"
        ) from exc
    with client:
        futures = {
            client.submit(run_cell, job, params, seed, pure=False, key=f"meshhost-{key}"): key
            for key, params, seed in todo
        }
        try:
            for fut in as_completed(list(futures)):
                finished(futures[fut], fut.result())
        except BaseException:
            client.cancel(list(futures))
            raise
