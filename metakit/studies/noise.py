"""The noisy-label table: cross-entropy, Meta-Weight-Net and LR schedules under label noise.

Rows (the results format, labelled by momentum): ``ce`` and ``mwnet`` at the profile's optimiser
(SGD momentum 0.9), and the schedule arms of `metakit.studies.schedules` with SGD
momentum 0, as in MLR-SNet: ``sched_fixed``, ``sched_multistep``, ``sched_cosine``,
``sched_sgdr`` and ``sched_mlrsnet`` (the LR net meta-trained on the clean meta set in the same
run). Paired deltas are against ``ce``.

Protocol per dataset (`NOISE_PROTOCOL`, after the profile): MNIST-1D keeps 1,200 training samples
a class (12,000) and a 1,000-sample clean meta set (100 a class), so a table fits on 2 cores;
digits keeps what a 10-a-class meta set leaves. Settings: ``noise_<kind>_<rate%>``.

Command line: ``python -m metakit study noise --datasets mnist1d --seeds 0 1 2 3 4 --workers 2``.

Example:
    >>> [(r.labels(True)["setting"], r.method) for r in STUDY.rows(Plan("smoke", (0,), {"methods": ["ce"]}))]
    [('noise_uniform_40', 'ce'), ('noise_flip_40', 'ce')]
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from metakit.data.noise import check_noise
from metakit.data.sources import DATASETS
from metakit.experiments import Config
from metakit.studies import report, stats
from metakit.options import require
from metakit.studies.findings import Claim
from metakit.studies.grid import GridRun, profile_tags
from metakit.studies.registry import register
from metakit.studies.schedules import ENTRIES, schedule_job
from metakit.studies.study import Plan, Study

METHODS = ("ce", "mwnet", "sched_fixed", "sched_multistep", "sched_cosine", "sched_sgdr", "sched_mlrsnet")
SETTINGS = (("uniform", 0.4), ("flip", 0.4))
REFERENCE_METHOD = "ce"
NOISE_PROTOCOL: dict[tuple[str, str], dict[str, Any]] = {
    ("laptop", "mnist1d"): dict(train_per_class=1200, meta_per_class=100),
    ("paper", "mnist1d"): dict(train_per_class=1200, meta_per_class=100),
    ("laptop", "digits"): dict(meta_per_class=10),
}


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


def rows(plan: Plan) -> list[GridRun]:
    """Every (dataset, setting, method, seed) of a plan (choices ``methods``, ``datasets``)."""
    methods = list(plan.get("methods", METHODS))
    datasets = plan.get("datasets", ["mnist1d"])
    for name in datasets:
        require("dataset", name, object, choices=DATASETS)
    runs = []
    for dataset, (kind, rate), method, seed in itertools.product(datasets, SETTINGS, methods, plan.seeds):
        config = noise_config(method, dataset, kind, rate, seed, plan.profile, **plan.overrides)
        runs.append(GridRun(config, method, tags=profile_tags(config)))
    return runs


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


def cell(row: Mapping[str, Any], profile: str, folder: Path | None = None) -> Config:
    """The `Config` of a row's cell (method, dataset, noise, seed) at ``profile`` (for `rerun_config`).

    Example:
        >>> row = {"dataset": "mnist1d", "setting": "noise_uniform_40", "method": "ce", "seed": 0}
        >>> c = cell(row, "laptop").resolve()
        >>> c.noise_kind, c.noise_rate, c.train_per_class, c.meta_per_class, c.momentum
        ('uniform', 0.4, 1200, 100, 0.9)
    """
    kind, rate = noise_of(str(row["setting"]))
    return noise_config(str(row["method"]), str(row["dataset"]), kind, rate, int(row["seed"]), profile)


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
    return stats.summarise(df.drop(columns=["momentum"], errors="ignore"), metrics, reference)


def render_markdown(summary: pd.DataFrame) -> str:
    """The noise table as markdown: methods × settings per dataset, "mean ± std", then the paired deltas.

    Example:
        >>> df = pd.DataFrame({"dataset": "digits", "setting": "noise_uniform_40", "method": ["ce", "mwnet"],
        ...                    "variant": "", "seed": 0, "momentum": 0.9, "test_acc": [60.0, 70.0]})
        >>> "| mwnet | +10.00 (n=1) |" in render_markdown(summarise(df))
        True
    """
    reference = REFERENCE_METHOD if "test_acc_delta" in summary.columns else None
    text = report.render_markdown(summary, "test_acc", reference=reference)
    if "test_acc_at_val_mean" in summary.columns:  # memorisation: the final epoch vs the val-selected one
        text += ("\nTest accuracy at the epoch of the best validation accuracy (selected on the clean validation "
                 "split, never on test):\n\n" + report.render_markdown(summary, "test_acc_at_val",
                                                                              reference=reference))
    return text + ("\nce and mwnet use SGD momentum 0.9 and the profile's cosine schedule; the sched_* rows use SGD "
                   "momentum 0 (MLR-SNet's setting) with the schedule their name gives.\n")


def write(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The markdown and the summary of the rows."""
    summary = summarise(df)
    return render_markdown(summary), summary


def claims(df: pd.DataFrame) -> list[Claim]:
    """Every method beats ce (MW-Net the headline); the meta-trained schedule beats each hand schedule."""
    out = []
    for (dataset, setting), part in df.groupby(["dataset", "setting"], sort=False):
        methods = list(dict.fromkeys(part["method"]))
        if REFERENCE_METHOD in methods:
            out += [Claim(m, REFERENCE_METHOD, dataset, setting, headline=m == "mwnet")
                    for m in methods if m != REFERENCE_METHOD]
        if "sched_mlrsnet" in methods:
            out += [Claim("sched_mlrsnet", m, dataset, setting) for m in methods
                    if m.startswith("sched_") and m != "sched_mlrsnet"]
    return out


STUDY = register(Study(
    name="noise", title="Noisy labels", rows=rows, job=schedule_job, momentum=True, write=write, claims=claims,
    cell=cell, choices={"methods": f"rows of {list(METHODS)} (default: all)", "datasets": "default: mnist1d"}))
