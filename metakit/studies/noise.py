"""The noisy-label table: cross-entropy, Meta-Weight-Net and LR schedules under label noise.

Rows (the results format, labelled by momentum): ``ce`` and ``mwnet`` at the profile's optimiser
(SGD momentum 0.9), and the schedule arms of `metakit.experiments.schedule_tables` with SGD
momentum 0, as in MLR-SNet: ``sched_fixed``, ``sched_multistep``, ``sched_cosine``,
``sched_sgdr`` and ``sched_mlrsnet`` (the LR net meta-trained on the clean meta set in the same
run). Paired deltas are against ``ce``.

Protocol per dataset (`NOISE_PROTOCOL`, after the profile): MNIST-1D keeps 1,200 training samples
a class (12,000) and a 1,000-sample clean meta set (100 a class), so a table fits on 2 cores;
digits keeps what a 10-a-class meta set leaves. Settings: ``noise_<kind>_<rate%>``.

Command line: ``python -m metakit table noise --datasets mnist1d --seeds 0 1 2 3 4 --workers 2``.

Example:
    >>> df = noise_grid(["ce"], ["digits"], [("uniform", 0.4)], [0], "smoke", overrides={"epochs": 1})
    >>> df[["setting", "method", "momentum"]].values.tolist()
    [['noise_uniform_40', 'ce', 0.9]]
"""
from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from metakit.data.noise import check_noise
from metakit.data.sources import DATASETS
from metakit.experiments import Config, grid_summary
from metakit.experiments.grid import GridRun, columns, rerun_profile, run_grid
from metakit.experiments.schedule_tables import ENTRIES, schedule_job
from metakit.options import require

METHODS = ("ce", "mwnet", "sched_fixed", "sched_multistep", "sched_cosine", "sched_sgdr", "sched_mlrsnet")
SETTINGS = (("uniform", 0.4), ("flip", 0.4))
REFERENCE_METHOD = "ce"
NOISE_PROTOCOL: dict[tuple[str, str], dict[str, Any]] = {
    ("laptop", "mnist1d"): dict(train_per_class=1200, meta_per_class=100),
    ("paper", "mnist1d"): dict(train_per_class=1200, meta_per_class=100),
    ("laptop", "digits"): dict(meta_per_class=10),
}
TAGS = ["profile", "epochs"]


def noise_config(method: str, dataset: str, kind: str, rate: float, seed: int, profile: str,
                 **overrides: Any) -> Config:
    """The `Config` of one row; ``sched_<entry>`` rows take the schedule entry with momentum 0.

    Example:
        >>> c = noise_config("sched_cosine", "mnist1d", "flip", 0.4, 0, "laptop").resolve()
        >>> c.momentum, c.schedule, c.train_per_class, c.meta_per_class, c.noise_kind
        (0.0, 'cosine', 1200, 100, 'flip')
    """
    require("method", method, object, choices=METHODS)
    check_noise(kind, rate)
    fields: dict[str, Any] = dict(NOISE_PROTOCOL.get((profile, dataset), {}))
    if method.startswith("sched_"):
        fields.update(momentum=0.0, nesterov=False, warmup_epochs=0, **ENTRIES[method[len("sched_"):]])
    else:
        fields["method"] = method
    fields.update(overrides)
    return Config(dataset=dataset, noise_kind=kind, noise_rate=rate, seed=seed, profile=profile, progress=False,
                  **fields)


def noise_grid(methods: Sequence[str] | None = None, datasets: Sequence[str] = ("mnist1d",),
               settings: Sequence[tuple[str, float]] = SETTINGS, seeds: Sequence[int] = (0, 1, 2, 3, 4),
               profile: str = "laptop", csv_path: str | Path | None = None, overrides: dict | None = None,
               log: Callable[[str], Any] | None = None, executor: Executor | None = None,
               job: Callable = schedule_job) -> pd.DataFrame:
    """Run every (dataset, setting, method, seed) into a resumable CSV; one row per finished run.

    Args:
        methods: rows of `METHODS` (default: all).
        datasets: e.g. ``["mnist1d"]``.
        settings: (noise kind, rate) pairs.
        seeds: one run per seed (paired across methods: the same split and noisy labels).
        profile: smoke | laptop | paper.
        csv_path: keep the rows here (see `metakit.experiments.grid.run_grid`).
        overrides: Config fields for every run, e.g. ``{"epochs": 1}``.
        log: one line per run; None: silent.
        executor: run through it (`metakit.experiments.executors.make_executor`).
        job: runs one config (default: `schedule_job`, which also records the mid and final LR).

    Returns:
        The finished rows: the results columns with momentum, the tags, mid_lr, final_lr, train_acc.
    """
    methods = list(METHODS if methods is None else methods)
    for name in datasets:
        require("dataset", name, object, choices=DATASETS)
    runs = []
    for dataset in datasets:
        for kind, rate in settings:
            for method in methods:
                for seed in seeds:
                    config = noise_config(method, dataset, kind, rate, seed, profile, **(overrides or {}))
                    runs.append(GridRun(config, method, tags={"profile": profile, "epochs": config.resolve().epochs}))
    df = run_grid(runs, csv_path, job=job, executor=executor, momentum=True, log=log, progress=log is not None,
                  desc="noise table")
    return df[df["error"].isna()].drop(columns="error").reset_index(drop=True)


def noise_of(setting: str) -> tuple[str, float]:
    """The (noise kind, rate) a noise setting names: ``noise_uniform_40`` → ``("uniform", 0.4)``.

    Example:
        >>> noise_of("noise_flip_40"), noise_of("noise_flip2_20")
        (('flip', 0.4), ('flip2', 0.2))
    """
    kind, _, percent = setting[len("noise_"):].rpartition("_")
    if not setting.startswith("noise_") or not kind:
        raise ValueError(f"setting={setting!r} is not a noise setting; expected noise_<kind>_<rate%>, "
                         f"e.g. noise_uniform_40.")
    return kind, float(percent) / 100


def config_of_row(row: Mapping[str, Any], profile: str | None = None) -> Config:
    """The `Config` that made one row of a noise CSV (`noise_grid`), to rerun it.

    At the row's own profile it is exactly the config the grid ran (its epochs too, when the
    table was made with ``--epochs``); at another ``profile`` it is the same cell (method,
    dataset, noise, seed) at that profile's protocol, whose numbers are not the row's.

    Args:
        row: one row of the CSV (a dict or a pandas row): dataset, setting, method, seed and
            the tags profile and epochs.
        profile: the profile to rerun at; None: the row's.

    Example:
        >>> row = {"dataset": "mnist1d", "setting": "noise_uniform_40", "method": "ce", "seed": 0,
        ...        "profile": "laptop", "epochs": 20}
        >>> c = config_of_row(row).resolve()
        >>> c.noise_kind, c.noise_rate, c.train_per_class, c.meta_per_class, c.momentum
        ('uniform', 0.4, 1200, 100, 0.9)
        >>> config_of_row(row, "smoke").resolve().epochs
        3
    """
    own, profile = rerun_profile(row, profile)
    kind, rate = noise_of(str(row["setting"]))
    labels = (str(row["method"]), str(row["dataset"]), kind, rate, int(row["seed"]), profile)
    config = noise_config(*labels)
    if profile == own and int(row["epochs"]) != config.resolve().epochs:
        config = noise_config(*labels, epochs=int(row["epochs"]))   # the table was made with --epochs
    return config


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per (dataset, setting, method) and paired deltas against ce (where it ran).

    Each method runs at one momentum (ce and mwnet 0.9, the sched_* rows 0), so momentum is left
    out of the groups and the deltas pair across it.

    Example:
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "noise_uniform_40", "method": ["ce", "mwnet"],
        ...                    "variant": "", "seed": 0, "momentum": [0.9, 0.9], "test_acc": [60.0, 70.0]})
        >>> summarise(df)[["method", "test_acc_mean", "test_acc_delta"]].values.tolist()
        [['ce', 60.0, nan], ['mwnet', 70.0, 10.0]]
    """
    reference = REFERENCE_METHOD if REFERENCE_METHOD in set(df["method"]) else None
    metrics = [m for m in ("test_acc", "test_acc_at_val", "val_acc", "final_lr", "seconds") if m in df.columns]
    return grid_summary.summarise(df.drop(columns=["momentum"], errors="ignore"), metrics, reference)


def render_markdown(summary: pd.DataFrame) -> str:
    """The noise table as markdown: methods × settings per dataset, "mean ± std", then the paired deltas.

    Example:
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "noise_uniform_40", "method": ["ce", "mwnet"],
        ...                    "variant": "", "seed": 0, "momentum": 0.9, "test_acc": [60.0, 70.0]})
        >>> "| mwnet | +10.00 (n=1) |" in render_markdown(summarise(df))
        True
    """
    reference = REFERENCE_METHOD if "test_acc_delta" in summary.columns else None
    text = grid_summary.render_markdown(summary, "test_acc", reference=reference)
    if "test_acc_at_val_mean" in summary.columns:  # memorisation: the final epoch vs the val-selected one
        text += ("\nTest accuracy at the epoch of the best validation accuracy (selected on the clean validation "
                 "split, never on test):\n\n" + grid_summary.render_markdown(summary, "test_acc_at_val",
                                                                              reference=reference))
    return text + ("\nce and mwnet use SGD momentum 0.9 and the profile's cosine schedule; the sched_* rows use SGD "
                   "momentum 0 (MLR-SNet's setting) with the schedule their name gives.\n")


def write_table(df: pd.DataFrame, md_path: str | Path, title: str = "", command: str = "") -> str:
    """Summarise (mean ± std, paired delta against ce), write the markdown and ``*_summary.csv``.

    Example:
        >>> import tempfile, pathlib
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "noise_uniform_40", "method": ["ce", "mwnet"],
        ...                    "variant": "", "seed": 0, "momentum": 0.9, "test_acc": [60.0, 70.0]})
        >>> "| mwnet | 70.00 |" in write_table(df, pathlib.Path(tempfile.mkdtemp()) / "n.md")
        True
    """
    summary = summarise(df)
    stem = Path(md_path).with_suffix("")
    return grid_summary.write_outputs(df, stem, render_markdown(summary), command, title, summary)


COLUMNS = columns(momentum=True) + TAGS
