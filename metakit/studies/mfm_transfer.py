"""The modulator-transfer study: a modulator learned on MNIST-1D-LT IF 100, reused elsewhere.

Per seed, a width-free modulator network (``mfm_net``, ``shared=True``) is meta-learned on the
source setting and saved beside the CSV (row setting ``transfer_source``). Each target (`TARGETS`:
the source setting with a fresh θ, IF 50, IF 10, a second MNIST-1D generator, twice the width)
then trains a fresh classifier five ways on its own seed and split (`METHODS`): ``ce``, ``mfm``
and ``mfm_net`` from scratch, the source modulator frozen (``mfm_frozen``) or as the start of
meta-learning (``mfm_init``).

Command line: ``python -m metakit study mfm_transfer --targets if50 variant --seeds 0 1 2 3 4``.

Example:
    >>> [(r.setting, r.method) for r in STUDY.rows(Plan("smoke", (0,), {"targets": ["if50"], "methods": ["ce", "mfm_frozen"]}))]
    [('transfer_if50', 'mfm_frozen'), ('transfer_if50', 'ce')]
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from metakit.experiments import Config, run
from metakit.options import require
from metakit.studies import mfm_ablation
from metakit.studies.findings import Claim
from metakit.studies.grid import METRICS, GridRun, profile_tags
from metakit.studies.registry import register
from metakit.studies.study import Plan, Source, Study

DATASET, SOURCE_IMBALANCE = "mnist1d", 100
SHARED = {"shared": True}  # the modulator network's options: width-free, so one file serves every target
# a second MNIST-1D: less correlated noise, more shear, less translation, other samples (not tuned on any result)
VARIANT = {"corr_noise_scale": 0.4, "shear_scale": 0.9, "max_translation": 36, "seed": 7}
TARGETS: dict[str, dict[str, Any]] = {
    "if100": {"imbalance": 100},
    "if50": {"imbalance": 50},
    "if10": {"imbalance": 10},
    "variant": {"imbalance": 100, "data_options": VARIANT},
    "width": {"imbalance": 100, "width": 64},
}
METHODS = ("ce", "mfm", "mfm_net", "mfm_frozen", "mfm_init")


def modulator_path(folder: str | Path, profile: str, seed: int) -> Path:
    """Where the source modulator of ``seed`` is kept.

    Example:
        >>> modulator_path("results/mfm", "laptop", 3).as_posix()
        'results/mfm/modulators/mfm_transfer_laptop_source_seed3.pt'
    """
    return Path(folder) / "modulators" / f"mfm_transfer_{profile}_source_seed{seed}.pt"


def source_config(seed: int, profile: str, **overrides: Any) -> Config:
    """The run that learns the source modulator (``mfm_net``, width-free, MNIST-1D-LT IF 100)."""
    return Config(method="mfm_net", dataset=DATASET, imbalance=SOURCE_IMBALANCE, seed=seed, profile=profile,
                  progress=False, options=dict(SHARED), **overrides)


def source_job(config: Config, path: str) -> dict[str, float]:
    """A grid job: learn the source modulator, save it at ``path``, return its metrics."""
    start = time.perf_counter()
    result = run(config)
    result.method.save(path)
    return {m: float(result.metrics[m]) for m in METRICS if m in result.metrics} | {
        "seconds": time.perf_counter() - start}


def target_config(target: str, method: str, seed: int, profile: str, modulator: str | Path,
                  **overrides: Any) -> Config:
    """The `Config` of one target row (``method`` one of `METHODS`).

    Example:
        >>> c = target_config("width", "mfm_frozen", 0, "laptop", "m.pt").resolve()
        >>> c.width, c.method, c.options["freeze"]
        (64, 'mfm_net', True)
    """
    fields = dict(TARGETS[target])
    options: dict[str, Any] = {}
    if method == "mfm_net":
        options = dict(SHARED)
    elif method in ("mfm_frozen", "mfm_init"):
        options = {"modulator": str(modulator), "freeze": method == "mfm_frozen"}
    name = "mfm_net" if method.startswith("mfm_") else method
    return Config(method=name, dataset=DATASET, seed=seed, profile=profile, progress=False, options=options,
                  **fields, **overrides)


def transfer_runs(targets: Sequence[str], seeds: Sequence[int], profile: str,
                  methods: Sequence[str] = METHODS, folder: str | Path = "runs/tables",
                  overrides: dict | None = None) -> list[GridRun]:
    """The target rows, seed-major (``mfm_frozen`` first in each seed: the row the table is about)."""
    for target in targets:
        require("targets", target, object, choices=tuple(TARGETS))
    for method in methods:
        require("methods", method, object, choices=METHODS)
    ordered = [m for m in ("mfm_frozen", "mfm_init", "mfm", "ce", "mfm_net") if m in methods]
    runs = []
    for seed, target, method in itertools.product(seeds, targets, ordered):
        config = target_config(target, method, seed, profile, modulator_path(folder, profile, seed),
                               **(overrides or {}))
        runs.append(GridRun(config, method, "", profile_tags(config), setting=f"transfer_{target}"))
    return runs


def sources(plan: Plan) -> list[Source]:
    """One source modulator a seed (``mfm_net``, width-free, MNIST-1D-LT IF 100)."""
    out = []
    for seed in plan.seeds:
        config = source_config(seed, plan.profile, **plan.overrides)
        row = GridRun(config, "mfm_net", "shared", profile_tags(config), setting="transfer_source")
        out.append(Source(row, modulator_path(plan.folder, plan.profile, seed), source_job))
    return out


def rows(plan: Plan) -> list[GridRun]:
    """The target rows (choices ``targets``, ``methods``)."""
    return transfer_runs(plan.get("targets", tuple(TARGETS)), plan.seeds, plan.profile, plan.get("methods", METHODS),
                         plan.folder, dict(plan.overrides))


def claims(df: pd.DataFrame) -> list[Claim]:
    """Per target: the frozen source modulator beats ce (the headline) and matches MFM trained there
    (within 1.0); starting meta-learning from it beats starting from scratch."""
    out = []
    for (dataset, setting), part in df[df["setting"] != "transfer_source"].groupby(["dataset", "setting"], sort=False):
        methods = set(part["method"])
        pairs = [("mfm_frozen", "ce", 0.0, True), ("mfm_frozen", "mfm", -1.0, False), ("mfm_init", "mfm_net", 0.0, False)]
        out += [Claim(a, b, dataset, setting, margin, headline=top) for a, b, margin, top in pairs if {a, b} <= methods]
    return out


STUDY = register(Study(
    name="mfm_transfer", title="Modulator transfer", rows=rows, sources=sources, write=mfm_ablation.write,
    claims=claims, choices={"targets": f"where the IF 100 modulator goes, of {list(TARGETS)} (default: all)",
                            "methods": f"rows of {list(METHODS)} (default: all)"}))
