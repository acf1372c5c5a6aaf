"""The long-tail paper table: every (method, dataset, imbalance, seed) through `run`, then mean ± std.

`long_tail_grid` runs the grid and keeps a tidy CSV (one row per run, rewritten atomically
after each run, so an interrupted grid resumes where it stopped); `summarise` gives the mean
and std over seeds; `render_markdown` lays them out as methods × imbalance per dataset, with
the published ResNet-32 numbers (`REFERENCE`) as extra rows where they exist.

Command line: ``python -m metakit table long-tail --profile smoke``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from metakit.data.longtail import check_imbalance
from metakit.data.sources import DATASETS
from metakit.experiments.executors import map_jobs
from metakit.experiments import PROFILES, Config, run
from metakit.io import atomic_write_text
from metakit.methods import METHODS, get_method

# Top-1 % of ResNet-32 on CIFAR-LT (DESIGN.md): cross-entropy and class-balanced loss from Cui et
# al. 2019, Meta-Weight-Net from Shu et al. 2019, LDAM-DRW from Cao et al. 2019 (IF 100 and 10 only).
_IFS = (200, 100, 50, 20, 10, 1)
REFERENCE: dict[str, dict[str, dict[float, float]]] = {
    "cifar10": {
        "cross-entropy": dict(zip(_IFS, (65.68, 70.36, 74.81, 82.23, 86.39, 92.89))),
        "class-balanced loss": dict(zip(_IFS, (68.89, 74.57, 79.27, 84.36, 87.49, 92.89))),
        "Meta-Weight-Net": dict(zip(_IFS, (68.91, 75.21, 80.06, 84.94, 87.84, 92.66))),
        "LDAM-DRW": {100: 77.03, 10: 88.16},
    },
    "cifar100": {
        "cross-entropy": dict(zip(_IFS, (34.84, 38.32, 43.85, 51.14, 55.71, 70.50))),
        "class-balanced loss": dict(zip(_IFS, (36.23, 39.60, 45.32, 52.59, 57.99, 70.50))),
        "Meta-Weight-Net": dict(zip(_IFS, (37.91, 42.09, 46.74, 54.37, 58.46, 70.37))),
        "LDAM-DRW": {100: 42.04, 10: 58.71},
    },
}
# Grid defaults per profile. Digits keeps ~119 images in its largest class (5/class meta set),
# so imbalance 20 leaves 5 images in the rarest class; CIFAR follows the papers' factors.
DEFAULT_DATASETS = {"paper": ("cifar10", "cifar100"), "laptop": ("digits",), "smoke": ("digits",)}
DEFAULT_IMBALANCES = {"paper": _IFS, "laptop": (20, 10, 5, 1), "smoke": (20, 10, 5, 1)}
KEY = ["method", "dataset", "imbalance", "seed", "profile", "epochs"]
METRICS = ["test_acc", "many_acc", "medium_acc", "few_acc"]
COLUMNS = KEY + METRICS + ["seconds"]


def _key(row: dict) -> tuple:
    return (str(row["method"]), str(row["dataset"]), float(row["imbalance"]), int(row["seed"]),
            str(row["profile"]), int(row["epochs"]))


def grid_configs(methods: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
                 imbalances: Sequence[float] | None = None, seeds: Sequence[int] = (0, 1, 2),
                 profile: str = "laptop", overrides: dict | None = None) -> list[Config]:
    """The validated, resolved configs of a grid (nothing runs, no data is read).

    Args:
        methods: registry names; None: every registered method (``sorted(METHODS)``).
        datasets: None: the profile's (`DEFAULT_DATASETS`).
        imbalances: None: the profile's (`DEFAULT_IMBALANCES`).
        seeds: one run per seed.
        profile: smoke | laptop | paper.
        overrides: other `Config` fields for every run, e.g. ``{"epochs": 1}``.

    Example:
        >>> len(grid_configs(["ce", "focal"], imbalances=[10, 1], seeds=[0, 1], profile="smoke"))
        8
    """
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is unknown; use one of {sorted(PROFILES)}.")
    methods = sorted(METHODS) if methods is None else list(methods)
    datasets = DEFAULT_DATASETS[profile] if datasets is None else list(datasets)
    imbalances = DEFAULT_IMBALANCES[profile] if imbalances is None else list(imbalances)
    overrides = dict(overrides or {})
    fields = {f.name for f in dataclasses.fields(Config)}
    for name in overrides:
        if name not in fields or name in ("method", "dataset", "imbalance", "seed", "profile"):
            raise ValueError(f"overrides key {name!r} is not a Config field the grid leaves free; "
                             f"use one of {sorted(fields - {'method', 'dataset', 'imbalance', 'seed', 'profile'})}.")
    for name in methods:
        get_method(name)
    for name in datasets:
        if name not in DATASETS:
            raise ValueError(f"dataset={name!r} is unknown; use one of {DATASETS}.")
    for value in imbalances:
        check_imbalance(value)
    if not methods or not datasets or not imbalances or not seeds:
        raise ValueError(f"the grid is empty (methods={methods}, datasets={datasets}, imbalances={imbalances}, "
                         f"seeds={list(seeds)}); give at least one of each.")
    overrides.setdefault("progress", False)
    return [Config(method=m, dataset=d, imbalance=float(i), seed=s, profile=profile, **overrides).resolve()
            for d in datasets for i in imbalances for m in methods for s in seeds]


def read_rows(csv_path: str | Path | None) -> pd.DataFrame:
    """The runs already in ``csv_path`` (an empty frame with `COLUMNS` if there is none)."""
    if csv_path is None or not Path(csv_path).is_file():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(csv_path)


def table_job(config: Config, run_fn: Callable = run) -> tuple[dict, float]:
    """One table run, as sent to an executor: ``(metrics, seconds)``."""
    start = time.perf_counter()
    return run_fn(config).metrics, time.perf_counter() - start


def long_tail_grid(methods: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
                   imbalances: Sequence[float] | None = None, seeds: Sequence[int] = (0, 1, 2),
                   profile: str = "laptop", csv_path: str | Path | None = None, overrides: dict | None = None,
                   log: Callable[[str], Any] | None = None, run_fn: Callable = run,
                   executor: Executor | None = None) -> pd.DataFrame:
    """Run every (method, dataset, imbalance, seed) once; one tidy row per run.

    Args:
        methods, datasets, imbalances, seeds, profile, overrides: the grid, see `grid_configs`.
        csv_path: keep the rows here: runs already in it (same method, dataset, imbalance, seed,
            profile, epochs) are skipped, and the file is rewritten atomically after each run.
        log: called with one line per run (e.g. ``print``); None: silent.
        run_fn: runs one `Config` and returns a `Result` (tests may pass a fake).
        executor: run the grid through it (`metakit.experiments.executors.make_executor`); a failed run is
            logged with its traceback and left out of the CSV, so the next call retries it.

    Returns:
        The rows of this grid (read back or run), columns `COLUMNS`, in grid order.

    Example:
        >>> df = long_tail_grid(["ce"], imbalances=[10], seeds=[0], profile="smoke", overrides={"epochs": 1})
        >>> df[["method", "dataset", "imbalance", "seed"]].values.tolist()
        [['ce', 'digits', 10.0, 0]]
    """
    configs = grid_configs(methods, datasets, imbalances, seeds, profile, overrides)
    table = read_rows(csv_path)
    done = {_key(row): row for row in table.to_dict("records")}
    keys = [_key(dataclasses.asdict(c)) for c in configs]
    pending = [c for c, k in zip(configs, keys) if k not in done]
    if log and len(pending) < len(configs):
        log(f"{len(configs) - len(pending)} of {len(configs)} runs already in {csv_path}; running {len(pending)}")

    def record(_: int, outcome) -> None:  # in this process, as each run finishes
        nonlocal table
        config = outcome.item
        label = f"{config.method} {config.dataset} IF {config.imbalance:g} seed {config.seed}"
        if not outcome.ok:
            if log:
                log(f"{label}: FAILED\n{outcome.error}")
            return
        metrics, seconds = outcome.value
        key = _key(dataclasses.asdict(config))
        row = dict(zip(KEY, key)) | {m: float(metrics[m]) for m in METRICS} | {"seconds": seconds}
        done[key] = row
        if csv_path is not None:
            table = pd.concat([table, pd.DataFrame([row])], ignore_index=True) if len(table) else pd.DataFrame([row])
            atomic_write_text(csv_path, table[COLUMNS].to_csv(index=False))
        if log:
            log(f"{label}: {row['test_acc']:.2f}% ({seconds:.1f} s)")

    map_jobs(functools.partial(table_job, run_fn=run_fn), pending, executor, progress=log is not None,
             desc="long-tail table", on_outcome=record)
    rows = [done[k] for k in keys if k in done]
    return pd.DataFrame(rows, columns=COLUMNS)


def summarise(df: pd.DataFrame, metrics: Sequence[str] = tuple(METRICS)) -> pd.DataFrame:
    """Mean and (sample) std over seeds per (dataset, method, imbalance).

    Returns:
        One row per group: dataset, method, imbalance, seeds (count), and ``<metric>_mean`` /
        ``<metric>_std`` for each metric (std is NaN for a single seed).

    Example:
        >>> df = pd.DataFrame({"dataset": "digits", "method": "ce", "imbalance": 10.0,
        ...                    "seed": [0, 1], "test_acc": [80.0, 90.0]})
        >>> summarise(df, ["test_acc"])[["test_acc_mean", "test_acc_std"]].round(3).values.tolist()
        [[85.0, 7.071]]
    """
    groups = df.groupby(["dataset", "method", "imbalance"], sort=False)
    out = groups.size().rename("seeds").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = groups[metric].mean()
        out[f"{metric}_std"] = groups[metric].std()
    return out.reset_index()


def _cell(mean: float, std: float, digits: int = 2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def render_markdown(summary: pd.DataFrame, metric: str = "test_acc",
                    reference: dict[str, dict[str, dict[float, float]]] | None = None) -> str:
    """Markdown tables, one per dataset: methods × imbalance, cells "mean ± std" (over seeds).

    Args:
        summary: from `summarise`.
        metric: which metric's mean ± std to show.
        reference: published numbers per dataset, method label, imbalance; shown as extra
            rows "reference: <label>" ("–" where not reported). None: `REFERENCE`.

    Example:
        >>> s = summarise(pd.DataFrame({"dataset": "cifar10", "method": "ce", "imbalance": [100.0, 100.0],
        ...                              "seed": [0, 1], "test_acc": [70.0, 72.0]}), ["test_acc"])
        >>> print(render_markdown(s).splitlines()[4:6])
        ['| ce | 71.00 ± 1.41 |', '| reference: cross-entropy | 70.36 |']
    """
    reference = REFERENCE if reference is None else reference
    blocks = []
    for dataset, part in summary.groupby("dataset", sort=False):
        imbalances = sorted(part["imbalance"].unique(), reverse=True)
        lines = [f"### {dataset}: {metric} (%), mean ± std over seeds", "",
                 "| method | " + " | ".join(f"IF {i:g}" for i in imbalances) + " |",
                 "|---|" + "---|" * len(imbalances)]
        for method, rows in part.groupby("method", sort=False):
            by_if = rows.set_index("imbalance")
            cells = [_cell(by_if[f"{metric}_mean"].get(i, float("nan")), by_if[f"{metric}_std"].get(i, float("nan")))
                     for i in imbalances]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        if metric == "test_acc":
            for label, numbers in reference.get(dataset, {}).items():
                lines.append(f"| reference: {label} | " + " | ".join(
                    _cell(numbers.get(float(i), float("nan")), float("nan")) for i in imbalances) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_table(df: pd.DataFrame, md_path: str | Path, title: str = "") -> str:
    """Summarise ``df`` and write the Markdown tables (test accuracy, then few-shot) atomically."""
    summary = summarise(df)
    text = (f"## {title}\n\n" if title else "") + render_markdown(summary)
    if summary["few_acc_mean"].notna().any():
        text += "\n" + render_markdown(summary, "few_acc")
    atomic_write_text(md_path, text)
    return text
