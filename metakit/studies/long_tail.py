"""The long-tail study: every (method, dataset, imbalance, seed) through `run`, paired against cross-entropy.

Rows are ``lt_if<factor>`` settings (``balanced`` at 1); the markdown shows methods × imbalance
per dataset with the published ResNet-32 numbers (`REFERENCE`) beside them, then the medium- and
few-shot accuracy and the seconds per run. Its findings: every method against cross-entropy,
and MFM against the re-weighting (MW-Net) and re-balancing (LDAM-DRW) baselines.

Command line: ``python -m metakit study long_tail --profile smoke``.

Example:
    >>> [r.labels()["setting"] for r in STUDY.rows(Plan("smoke", (0,), {"methods": ["ce"], "imbalances": [10, 1]}))]
    ['lt_if10', 'balanced']
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from metakit.data.longtail import check_imbalance
from metakit.data.sources import DATASETS
from metakit.experiments import PROFILES, Config
from metakit.methods import METHODS, get_method
from metakit.methods.base import Method
from metakit.options import require
from metakit.studies import report, stats
from metakit.studies.findings import Claim
from metakit.studies.grid import GridRun, columns, profile_tags
from metakit.studies.registry import register
from metakit.studies.study import Plan, Study

# Top-1 % of ResNet-32 on CIFAR-LT, as published: cross-entropy and class-balanced loss from Cui et
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
# Grid defaults per profile. Digits keeps ~119 images in its largest class (5/class meta set),
# so imbalance 20 leaves 5 images in the rarest class; CIFAR follows the papers' factors.
DEFAULT_DATASETS = {"paper": ("cifar10", "cifar100"), "laptop": ("digits",), "smoke": ("digits",)}
DEFAULT_IMBALANCES = {"paper": _IFS, "laptop": (20, 10, 5, 1), "smoke": (20, 10, 5, 1)}
METRICS = ["test_acc", "many_acc", "medium_acc", "few_acc"]
COLUMNS = columns() + ["profile", "epochs"]
REFERENCE_METHOD = "ce"  # the summary's paired deltas are against cross-entropy
BASELINES = ("mwnet", "ldam_drw")  # what MFM must beat: re-weighting and re-balancing


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


def cell(row: Mapping[str, Any], profile: str, folder: Path | None = None) -> Config:
    """The `Config` of a row's cell (method, dataset, imbalance, seed) at ``profile`` (for `rerun_config`)."""
    variant = row.get("variant")
    if isinstance(variant, str) and variant:
        raise ValueError(f"row variant={variant!r}: the long-tail grid only runs headline rows (variant ''); "
                         f"this row came from elsewhere and its config cannot be rebuilt from its labels.")
    return Config(method=str(row["method"]), dataset=str(row["dataset"]), imbalance=imbalance_of(str(row["setting"])),
                  seed=int(row["seed"]), profile=profile, progress=False)


def rows(plan: Plan) -> list[GridRun]:
    """The grid of a plan (choices ``methods``, ``datasets``, ``imbalances``), dataset-major."""
    configs = grid_configs(plan.get("methods", None), plan.get("datasets", None), plan.get("imbalances", None),
                           plan.seeds, plan.profile, dict(plan.overrides))
    return [GridRun(c, tags=profile_tags(c)) for c in configs]


def summarise(df: pd.DataFrame, metrics: Sequence[str] = tuple(METRICS)) -> pd.DataFrame:
    """Mean and (sample) std over seeds per (dataset, setting, method, variant); paired deltas against ce.

    Returns:
        `metakit.studies.stats.summarise` with reference ``ce`` (where it ran; else no
        delta columns).

    Example:
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "method": "ce",
        ...                    "seed": [0, 1], "test_acc": [80.0, 90.0]})
        >>> summarise(df, ["test_acc"])[["test_acc_mean", "test_acc_std"]].round(3).values.tolist()
        [[85.0, 7.071]]
    """
    reference = REFERENCE_METHOD if REFERENCE_METHOD in set(df["method"]) else None
    return stats.summarise(df, metrics, reference)


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
    return report.render_markdown(summary, metric, rows if metric == "test_acc" else None,
                                        lambda s: f"IF {imbalance_of(s):g}", delta_against if unit == "%" else None, unit)


def write(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The markdown (test accuracy, then medium- and few-shot, then seconds) and the summary."""
    summary = summarise(df, METRICS + (["seconds"] if "seconds" in df.columns else []))
    text = render_markdown(summary)
    for group in ("medium_acc", "few_acc"):  # CIFAR-10-LT-sized sets have no few-shot class (smallest: 50)
        if summary[f"{group}_mean"].notna().any():
            text += "\n" + render_markdown(summary, group)
    if "seconds_mean" in summary.columns:
        text += "\nSeconds per run (wall clock, one process per run):\n\n" + render_markdown(summary, "seconds",
                                                                                            unit="s")
    return text, summary


def claims(df: pd.DataFrame) -> list[Claim]:
    """Every method beats ce in each setting it ran; MFM beats each of `BASELINES` (the headline)."""
    out = []
    for (dataset, setting), part in df.groupby(["dataset", "setting"], sort=False):
        methods = list(dict.fromkeys(part["method"]))
        out += [Claim(m, REFERENCE_METHOD, dataset, setting, headline=m in ("mfm", "mwnet"))
                for m in methods if m != REFERENCE_METHOD and REFERENCE_METHOD in methods]
        out += [Claim("mfm", b, dataset, setting, headline=True) for b in BASELINES if {"mfm", b} <= set(methods)]
    return out


STUDY = register(Study(
    name="long_tail", title="Long-tailed recognition", rows=rows, write=write, claims=claims, cell=cell,
    choices={"methods": "method names (default: every method that is not an LR schedule)",
             "datasets": "default: digits (smoke, laptop), cifar10 cifar100 (paper)",
             "imbalances": "imbalance factors; default: 20 10 5 1 (digits), 200 100 50 20 10 1 (paper)"}))
