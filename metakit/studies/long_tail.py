"""The long-tail paper table: every (method, dataset, imbalance, seed) through `run`, then mean ± std.

A thin user of the grid pipeline (`metakit.experiments.grid`, `metakit.experiments.grid_summary`):
`grid_configs` builds and validates the configs, `long_tail_grid` runs them into a resumable
tidy CSV in the results format (setting ``lt_if<factor>``), `summarise` gives mean ± std over
seeds and paired deltas against cross-entropy, and `render_markdown` lays them out as methods ×
imbalance per dataset, with the published ResNet-32 numbers (`REFERENCE`) as extra rows.

Command line: ``python -m metakit table long-tail --profile smoke``.
"""
from __future__ import annotations

import dataclasses
import functools
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from metakit.data.longtail import check_imbalance
from metakit.data.sources import DATASETS
from metakit.experiments import PROFILES, Config, run
from metakit.experiments import grid_summary
from metakit.experiments.grid import GridRun, columns, read_csv, rerun_profile, run_grid, timed_run
from metakit.methods import METHODS, get_method
from metakit.methods.base import Method
from metakit.options import require

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
METRICS = ["test_acc", "many_acc", "medium_acc", "few_acc"]
TAGS = ["profile", "epochs"]  # one CSV per (profile, epochs): a row of another is refused, never mixed
COLUMNS = columns() + TAGS
REFERENCE_METHOD = "ce"  # the summary's paired deltas are against cross-entropy


def default_methods() -> list[str]:
    """The table's methods by default: every registered one except those that only set the LR (hd, mlrsnet).

    Example:
        >>> "hd" in default_methods(), "mfm" in default_methods()
        (False, True)
    """
    return sorted(name for name, method in METHODS.items() if method.lr_schedule is Method.lr_schedule)


def imbalance_of(setting: str) -> float:
    """The imbalance factor a long-tail setting names: ``lt_if100`` → 100, ``balanced`` → 1.

    Example:
        >>> imbalance_of("lt_if20"), imbalance_of("balanced")
        (20.0, 1.0)
    """
    if setting == "balanced":
        return 1.0
    if not setting.startswith("lt_if"):
        raise ValueError(f"setting={setting!r} is not a long-tail setting; expected lt_if<factor> or balanced.")
    return float(setting[len("lt_if"):])


def grid_configs(methods: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
                 imbalances: Sequence[float] | None = None, seeds: Sequence[int] = (0, 1, 2),
                 profile: str = "laptop", overrides: dict | None = None) -> list[Config]:
    """The validated, resolved configs of a grid (nothing runs, no data is read).

    Args:
        methods: registry names; None: `default_methods` (no LR-schedule method).
        datasets: None: the profile's (`DEFAULT_DATASETS`).
        imbalances: None: the profile's (`DEFAULT_IMBALANCES`).
        seeds: one run per seed.
        profile: smoke | laptop | paper.
        overrides: other `Config` fields for every run, e.g. ``{"epochs": 1}``.

    Example:
        >>> len(grid_configs(["ce", "focal"], imbalances=[10, 1], seeds=[0, 1], profile="smoke"))
        8
    """
    require("profile", profile, object, choices=sorted(PROFILES))
    methods = default_methods() if methods is None else list(methods)
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
        require("dataset", name, object, choices=DATASETS)
    for value in imbalances:
        check_imbalance(value)
    if not methods or not datasets or not imbalances or not seeds:
        raise ValueError(f"the grid is empty (methods={methods}, datasets={datasets}, imbalances={imbalances}, "
                         f"seeds={list(seeds)}); give at least one of each.")
    overrides.setdefault("progress", False)
    return [Config(method=m, dataset=d, imbalance=float(i), seed=s, profile=profile, **overrides).resolve()
            for d in datasets for i in imbalances for m in methods for s in seeds]


def config_of_row(row: Mapping[str, Any], profile: str | None = None) -> Config:
    """The `Config` that made one row of a long-tail CSV (`long_tail_grid`), to rerun it.

    Use it to check a committed table: at the row's own profile the config is the one the grid
    ran (its epochs too, when the table was made with ``--epochs``), so on the same machine the
    rerun gives the row's numbers; at another ``profile`` it is the same cell (method, dataset,
    imbalance, seed) at that profile's defaults, whose numbers are not the row's.

    Args:
        row: one row of the CSV (a dict or a pandas row): dataset, setting, method, variant, seed,
            and the tags profile and epochs.
        profile: the profile to rerun at; None: the row's.

    Returns:
        An unresolved `Config` (``progress=False``, as the grid runs it).

    Example:
        >>> row = {"dataset": "mnist1d", "setting": "lt_if100", "method": "ce", "variant": "", "seed": 0,
        ...        "profile": "laptop", "epochs": 20}
        >>> c = config_of_row(row).resolve()
        >>> c.dataset, c.imbalance, c.epochs, c.train_per_class
        ('mnist1d', 100.0, 20, 5000)
        >>> config_of_row(row, "smoke").resolve().epochs
        3
    """
    variant = row.get("variant")
    if isinstance(variant, str) and variant:
        raise ValueError(f"row variant={variant!r}: the long-tail grid only runs headline rows (variant ''); "
                         f"this row came from elsewhere and its config cannot be rebuilt from its labels.")
    own, profile = rerun_profile(row, profile)
    require("profile", profile, object, choices=sorted(PROFILES))
    fields = dict(method=str(row["method"]), dataset=str(row["dataset"]), imbalance=imbalance_of(str(row["setting"])),
                  seed=int(row["seed"]), profile=profile, progress=False)
    if profile == own and int(row["epochs"]) != Config(**fields).resolve().epochs:
        fields["epochs"] = int(row["epochs"])                    # the table was made with --epochs
    return Config(**fields)


def read_rows(csv_path: str | Path | None) -> pd.DataFrame:
    """The runs already in ``csv_path`` (an empty frame with `COLUMNS` if there is none).

    Example:
        >>> list(read_rows(None).columns) == COLUMNS
        True
    """
    table = read_csv(csv_path)
    return table.reindex(columns=COLUMNS) if len(table) == 0 else table


def long_tail_grid(methods: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
                   imbalances: Sequence[float] | None = None, seeds: Sequence[int] = (0, 1, 2),
                   profile: str = "laptop", csv_path: str | Path | None = None, overrides: dict | None = None,
                   log: Callable[[str], Any] | None = None, run_fn: Callable = run,
                   executor: Executor | None = None) -> pd.DataFrame:
    """Run every (method, dataset, imbalance, seed) once; one tidy row per run.

    Args:
        methods, datasets, imbalances, seeds, profile, overrides: the grid, see `grid_configs`.
        csv_path: keep the rows here: runs already in it (same dataset, setting, method, seed)
            are skipped, and the file is rewritten atomically after each run. A file from
            another profile or epochs is refused (the CLI names files by both).
        log: called with one line per run (e.g. ``print``); None: silent.
        run_fn: runs one `Config` and returns a `Result` (tests may pass a fake).
        executor: run the grid through it (`metakit.experiments.executors.make_executor`); a failed run is
            logged with its traceback and left out of the CSV, so the next call retries it.

    Returns:
        The finished rows of this grid (read back or run), columns `COLUMNS`, in grid order.

    Example:
        >>> df = long_tail_grid(["ce"], imbalances=[10], seeds=[0], profile="smoke", overrides={"epochs": 1})
        >>> df[["dataset", "setting", "method", "seed"]].values.tolist()
        [['digits', 'lt_if10', 'ce', 0]]
    """
    configs = grid_configs(methods, datasets, imbalances, seeds, profile, overrides)
    runs = [GridRun(c, tags={"profile": c.profile, "epochs": c.epochs}) for c in configs]
    df = run_grid(runs, csv_path, job=functools.partial(timed_run, run_fn=run_fn), executor=executor, log=log,
                  progress=log is not None, desc="long-tail table")
    return df.loc[df["error"].isna(), COLUMNS].reset_index(drop=True)


def summarise(df: pd.DataFrame, metrics: Sequence[str] = tuple(METRICS)) -> pd.DataFrame:
    """Mean and (sample) std over seeds per (dataset, setting, method, variant); paired deltas against ce.

    Returns:
        `metakit.experiments.grid_summary.summarise` with reference ``ce`` (where it ran; else no
        delta columns).

    Example:
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": "ce",
        ...                    "seed": [0, 1], "test_acc": [80.0, 90.0]})
        >>> summarise(df, ["test_acc"])[["test_acc_mean", "test_acc_std"]].round(3).values.tolist()
        [[85.0, 7.071]]
    """
    reference = REFERENCE_METHOD if REFERENCE_METHOD in set(df["method"]) else None
    return grid_summary.summarise(df, metrics, reference)


def render_markdown(summary: pd.DataFrame, metric: str = "test_acc",
                    reference: dict[str, dict[str, dict[float, float]]] | None = None, unit: str = "%") -> str:
    """Markdown tables, one per dataset: methods × imbalance, cells "mean ± std" (over seeds).

    Args:
        summary: from `summarise`.
        metric: which metric's mean ± std to show (then the paired deltas against ce).
        reference: published numbers per dataset, method label, imbalance; shown as extra
            rows "reference: <label>" ("–" where not reported) under test_acc. None: `REFERENCE`.

    Example:
        >>> s = summarise(pd.DataFrame({"dataset": "cifar10", "setting": "lt_if100", "method": "ce",
        ...                             "seed": [0, 1], "test_acc": [70.0, 72.0]}), ["test_acc"])
        >>> print(render_markdown(s).splitlines()[4:6])
        ['| ce | 71.00 ± 1.41 |', '| reference: cross-entropy | 70.36 |']
    """
    reference = REFERENCE if reference is None else reference
    rows = {dataset: {label: {f"lt_if{i:g}" if i != 1 else "balanced": v for i, v in numbers.items()}
                      for label, numbers in labels.items()} for dataset, labels in reference.items()}
    delta_against = REFERENCE_METHOD if f"{metric}_delta" in summary.columns else None
    return grid_summary.render_markdown(summary, metric, rows if metric == "test_acc" else None,
                                        lambda s: f"IF {imbalance_of(s):g}", delta_against if unit == "%" else None, unit)


def write_table(df: pd.DataFrame, md_path: str | Path, title: str = "", command: str = "") -> str:
    """Summarise ``df``; write the Markdown (test accuracy, then medium- and few-shot) and ``*_summary.csv`` atomically.

    Args:
        df: from `long_tail_grid`.
        md_path: the markdown file; the summary CSV goes beside it.
        title: the markdown's heading.
        command: the command line that made the table (named in the markdown with the commit).

    Returns:
        The markdown text.

    Example:
        >>> import tempfile, pathlib
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": "ce", "variant": "", "seed": [0],
        ...                    "test_acc": [80.0], "many_acc": 90.0, "medium_acc": 80.0, "few_acc": 70.0})
        >>> "| ce | 80.00 |" in write_table(df, pathlib.Path(tempfile.mkdtemp()) / "t.md")
        True
    """
    summary = summarise(df, METRICS + (["seconds"] if "seconds" in df.columns else []))
    text = render_markdown(summary)
    for group in ("medium_acc", "few_acc"):  # CIFAR-10-LT-sized sets have no few-shot class (smallest: 50)
        if summary[f"{group}_mean"].notna().any():
            text += "\n" + render_markdown(summary, group)
    if "seconds_mean" in summary.columns:
        text += "\nSeconds per run (wall clock, one process per run):\n\n" + render_markdown(summary, "seconds",
                                                                                           unit="s")
    stem = Path(md_path).with_suffix("")
    return grid_summary.write_outputs(df, stem, text, command, title, summary)
