"""Ablations in one call: ``ablate(grid)`` → a tidy DataFrame, one row per run.

Each run is a pure function of its `Config`, so the runs are independent: `jobs` builds the
list of configs, `run_job` runs one (through the results cache), and `ablate` hands them to the
grid pipeline (`metakit.studies.grid.run_grid`, no CSV: the cache is what resumes) through
any executor, then keeps the columns a notebook reads: the varied fields, seed and metrics.

Example:
    >>> table = ablate({"imbalance": [1, 10]}, Config(profile="smoke", epochs=1), cache=False, progress=False)
    >>> list(table.columns[:3]), len(table)
    (['imbalance', 'seed', 'val_acc'], 2)
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import itertools
import time
import warnings
from concurrent.futures import Executor
from pathlib import Path
from typing import Sequence

import pandas as pd

from metakit.experiments.cache import cached_run, default_cache_dir
from metakit.studies.grid import GridRun, run_grid
from metakit.experiments import Config, run
from metakit.methods import get_method
from metakit.methods.registry import worker_modules

METRICS = ("val_acc", "test_acc", "many_acc", "medium_acc", "few_acc")
FIELDS = tuple(f.name for f in dataclasses.fields(Config))


def option_names(method: str) -> tuple[str, ...]:
    """The option names of ``method`` (its ``Options`` dataclass): ablate axes besides the Config fields."""
    return tuple(f.name for f in dataclasses.fields(get_method(method).Options))


def _check_grid(grid: dict[str, list], base: Config) -> None:
    if not grid:
        raise ValueError("grid={} is empty; give at least one field, e.g. {'imbalance': [1, 10]}.")
    options = option_names(base.method)
    for name, values in grid.items():
        if name == "seed":
            raise ValueError("grid['seed'] is not allowed; pass seeds=[0, 1, ...] to ablate instead.")
        if name in ("options", "progress") or (name not in FIELDS and name not in options):
            raise ValueError(f"grid key {name!r} is neither a Config field nor an option of method={base.method!r}; "
                             f"use one of {tuple(f for f in FIELDS if f not in ('options', 'progress'))} or {options}.")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid[{name!r}]={values!r} must be a non-empty list, e.g. [1, 10].")


def value_of(config: Config, name: str):
    """A Config field's value, or a method option's (its default when the config leaves it out).

    Example:
        >>> value_of(Config(method="focal"), "focal_gamma"), value_of(Config(imbalance=5), "imbalance")
        (1.0, 5)
    """
    if name in FIELDS:
        return getattr(config, name)
    options = get_method(config.method).Options
    defaults = {f.name: getattr(options(), f.name) for f in dataclasses.fields(options)}
    return config.options.get(name, defaults.get(name))


def _varied(configs: list[Config]) -> list[str]:
    """Fields, then (when every config runs the same method) its options, whose value differs."""
    methods = {c.method for c in configs}
    options = list(option_names(configs[0].method)) if len(methods) == 1 else []
    return [f for f in [*FIELDS, *options] if f not in ("seed", "progress", "options")
            and len({repr(value_of(c, f)) for c in configs}) > 1]


def jobs(grid: dict[str, list] | list[Config], base: Config | None = None,
         seeds: Sequence[int] = (0,)) -> tuple[list[Config], list[str]]:
    """Every config to run (grid product × seeds) and the names of the varied fields.

    Args:
        grid: field → values (their Cartesian product is run), or an explicit list of configs. A key
            may also be an option of ``base.method`` (e.g. ``{"focal_gamma": [0, 1, 2]}``).
        base: the config the grid's values replace fields of (default ``Config()``); ignored
            for a list of configs.
        seeds: every config runs once per seed.

    Returns:
        ``(configs, varied)``; each config is validated (resolved) before any run starts.

    Example:
        >>> configs, varied = jobs({"imbalance": [1, 10], "lt_profile": ["exp", "step"]}, seeds=[0, 1])
        >>> len(configs), varied
        (8, ['imbalance', 'lt_profile'])
    """
    if isinstance(seeds, int) or len(seeds) == 0:
        raise ValueError(f"seeds={seeds!r} must be a non-empty list of integers, e.g. [0, 1, 2].")
    if isinstance(grid, dict):
        base = base or Config()
        if not isinstance(base, Config):
            raise TypeError(f"base={base!r} must be a Config, e.g. Config(profile='smoke').")
        _check_grid(grid, base)
        points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        configs = [dataclasses.replace(base, **{k: v for k, v in p.items() if k in FIELDS},
                                       options={**base.options, **{k: v for k, v in p.items() if k not in FIELDS}})
                   for p in points]
        varied = list(grid)
    else:
        configs = list(grid)
        bad = [c for c in configs if not isinstance(c, Config)]
        if not configs or bad:
            raise TypeError(f"grid must be a dict of field → values or a non-empty list of Config; got {bad or grid!r}.")
        varied = _varied(configs)
    runs = [dataclasses.replace(c, seed=int(s)) for c in configs for s in seeds]
    for c in runs:
        c.resolve()  # raises a clear error for a bad value before anything trains
    return runs, varied


def run_job(config: Config, cache: bool | str | Path = True) -> tuple[dict, float, bool]:
    """Run one config (through the cache unless ``cache`` is False): ``(metrics, seconds, cached)``.

    Example:
        >>> metrics, seconds, cached = run_job(Config(profile="smoke", epochs=1, progress=False), cache=False)
        >>> cached, 0 <= metrics["test_acc"] <= 100
        (False, True)
    """
    if cache is False:
        start = time.perf_counter()
        result = run(config)
        return result.metrics, time.perf_counter() - start, False
    result = cached_run(config, cache_dir=None if cache is True else cache)
    return result.metrics, result.seconds, result.cached


def grid_job(config: Config, cache: bool | str | Path = True, imports: Sequence[str] = ()) -> dict:
    """`run_job` as the grid pipeline's job: metrics, ``seconds`` and ``cached`` in one dict.

    ``imports`` are modules to import first (in a worker process: the ones that register the
    config's method, from `metakit.methods.registry.worker_modules`).

    Example:
        >>> out = grid_job(Config(profile="smoke", epochs=1, progress=False), cache=False)
        >>> out["cached"], 0 <= out["test_acc"] <= 100
        (False, True)
    """
    for module in imports:
        importlib.import_module(module)          # registers a method defined outside metakit
    metrics, seconds, cached = run_job(config, cache)
    return {m: float(metrics[m]) for m in METRICS} | {"seconds": seconds, "cached": cached}


def ablate(grid: dict[str, list] | list[Config], base: Config | None = None, *, seeds: Sequence[int] = (0,),
           cache: bool | str | Path = True, progress: bool = True, executor: Executor | None = None) -> pd.DataFrame:
    """Run every combination of ``grid`` for every seed; return a tidy table.

    Use a dict to vary fields around ``base`` (their product runs); use a list of configs
    for combinations that are not a product. Results go through the results cache, so
    re-running a cell only trains what is new, and a sweep killed halfway resumes by skipping
    the runs that finished.

    Args:
        grid: field (or option of ``base.method``) → list of values, or a list of `Config`.
        base: the fixed part of every config (e.g. ``Config(profile="smoke", method="ce")``).
        seeds: seeds to repeat every config with.
        cache: True (default folder), a folder, or False (always train, store nothing).
            With an executor, use a folder every worker can reach (a shared filesystem).
        progress: one bar over the sweep with finished/failed counts.
        executor: any ``concurrent.futures.Executor`` (see `metakit.experiments.executors.make_executor`:
            a process pool, a Dask cluster, Slurm); None runs here, one run after another. A method
            registered outside metakit reaches the workers by its module (they import it first); one
            defined in the notebook itself (``__main__``) is refused with a `ValueError` saying how to fix it.

    Returns:
        One row per run: the varied fields, ``seed``, ``test_acc``, ``many_acc``,
        ``medium_acc``, ``few_acc`` (in %), ``seconds`` (training wall time), ``cached`` and
        ``error`` (None, or the failed run's traceback; its metrics are NaN). A failed run is
        also reported with a warning naming its config; the other runs go on.

    Example:
        >>> t = ablate([Config(profile="smoke", epochs=1, lr=lr) for lr in (0.05, 0.1)], cache=False, progress=False)
        >>> list(t["lr"])
        [0.05, 0.1]
    """
    configs, varied = jobs(grid, base, seeds)
    imports = () if executor is None else worker_modules(c.method for c in configs)  # refuses a __main__ method
    if cache is True:
        cache = default_cache_dir().resolve()  # absolute, so workers elsewhere find the same folder
    runs = [GridRun(dataclasses.replace(c, progress=False), variant="_".join(f"{n}_{value_of(c, n)}" for n in varied))
            for c in configs]
    job = functools.partial(grid_job, cache=cache, imports=imports)
    table = run_grid(runs, job=job, executor=executor, progress=progress, desc="ablate")
    for config, error in zip(configs, table["error"]):
        if error is not None:
            warnings.warn(f"run failed: {config}\n{error}")
    fields = pd.DataFrame([{name: value_of(c, name) for name in varied} for c in configs], columns=varied)
    table = table.reindex(columns=["seed", *METRICS, "seconds", "cached", "error"])  # every run failed: NaN columns
    out = pd.concat([fields, table], axis=1)
    out["cached"] = out["cached"].eq(True)  # a failed run: False
    return out
