"""A minimal grid runner for MFM's ablations: Configs from a grid, one tidy row per run.

A general ``ablate(grid)`` may replace it later; this one only builds the product of the grid
(fields of `Config`, or ``"options.<name>"`` for a method option) and runs it.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any, Sequence

import pandas as pd

from metakit.experiments import Config, run

METRICS = ("test_acc", "many_acc", "medium_acc", "few_acc")


def config_grid(base: Config, grid: dict[str, Sequence[Any]], seeds: Sequence[int] = (0,)) -> list[Config]:
    """Every combination of ``grid`` (× seeds) applied to ``base``.

    Args:
        base: the Config the grid varies.
        grid: field name → values; ``"options.where"`` sets ``Config.options["where"]``.
        seeds: one run per seed for each combination.

    Returns:
        The Configs, seeds innermost.

    Example:
        >>> cs = config_grid(Config(method="mfm"), {"meta_lr": [1e-3, 1e-2], "options.where": ["fc"]}, seeds=[0, 1])
        >>> len(cs), cs[-1].meta_lr, cs[-1].options, cs[-1].seed
        (4, 0.01, {'where': 'fc'}, 1)
    """
    fields = {f.name for f in dataclasses.fields(Config)}
    for key in grid:
        name = key.split(".", 1)[1] if key.startswith("options.") else key
        if not key.startswith("options.") and name not in fields:
            raise ValueError(f"grid key {key!r} is not a Config field; use one of {sorted(fields)} "
                             f"or 'options.<name>' for a method option.")
        if isinstance(grid[key], (str, bytes)) or not len(grid[key]):
            raise ValueError(f"grid[{key!r}]={grid[key]!r} must be a non-empty list of values.")
    configs = []
    for values in itertools.product(*grid.values(), seeds):
        changes, options = {"seed": values[-1]}, dict(base.options)
        for key, value in zip(grid, values[:-1]):
            if key.startswith("options."):
                options[key.split(".", 1)[1]] = value
            else:
                changes[key] = value
        configs.append(dataclasses.replace(base, options=options, **changes))
    return configs


def run_grid(configs: Sequence[Config], columns: Sequence[str] = ()) -> pd.DataFrame:
    """Run each Config; one row per run with ``columns`` (Config fields or "options.x"), seed, metrics.

    Example:
        >>> df = run_grid(config_grid(Config(profile="smoke", epochs=1, progress=False), {"lr": [0.1]}), ["lr"])
        >>> list(df.columns)[:3]
        ['lr', 'seed', 'test_acc']
    """
    rows = []
    for config in configs:
        start = time.perf_counter()
        result = run(config)
        row = {c: _value(result.config, c) for c in columns}
        row["seed"] = config.seed
        row.update({m: result.metrics[m] for m in METRICS})
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return pd.DataFrame(rows)


def _value(config: Config, column: str) -> Any:
    if column.startswith("options."):
        value = config.options.get(column.split(".", 1)[1], "default")
        return "+".join(value) if isinstance(value, (list, tuple)) else value
    return getattr(config, column)


def summarize(df: pd.DataFrame, by: Sequence[str] | str, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean and std over seeds of each metric, one row per group (columns ``<metric>_mean/_std``).

    Example:
        >>> df = pd.DataFrame({"m": ["a", "a"], "seed": [0, 1], "test_acc": [90.0, 92.0]})
        >>> summarize(df, "m", ["test_acc"]).round(2).to_dict("records")
        [{'m': 'a', 'test_acc_mean': 91.0, 'test_acc_std': 1.41, 'seeds': 2}]
    """
    by = [by] if isinstance(by, str) else list(by)
    grouped = df.groupby(by, sort=False)
    out = pd.DataFrame({f"{m}_{s}": getattr(grouped[m], s)() for m in metrics for s in ("mean", "std")})
    out["seeds"] = grouped["seed"].nunique()
    return out.reset_index()
