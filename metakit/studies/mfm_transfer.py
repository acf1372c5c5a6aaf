"""The modulator-transfer table: a modulator learned on MNIST-1D-LT IF 100, reused elsewhere.

Per seed, a width-free modulator network (``mfm_net`` with ``shared=True``) is meta-learned on
the source setting (MNIST-1D-LT IF 100) and saved under ``<out>/modulators/``. Each target then
trains a fresh classifier five ways, all on the target's own seed and split (paired):

- ``ce``: cross-entropy;
- ``mfm``: MFM (per-channel γ/β) at its defaults, trained from scratch there;
- ``mfm_net``: the same width-free modulator network, meta-learned from scratch there;
- ``mfm_frozen``: the source modulator, frozen (no meta set used);
- ``mfm_init``: the source modulator as the start of meta-learning there.

A loaded modulator acts from ``meta_start`` on, where a fresh one starts learning (see
`metakit.methods.mfm.MFMNet`). Targets (`TARGETS`): ``if100`` (the source setting itself: a
fresh θ), ``if50``, ``if10``, ``variant`` (MNIST-1D drawn with other generator arguments,
`VARIANT`) and ``width`` (a backbone of twice the width). Rows carry setting ``transfer_<target>``.

Command line: ``python -m metakit table mfm-transfer --targets if50 variant --seeds 0 1 2 3 4``.

Example:
    >>> [(r.setting, r.method) for r in transfer_runs(["if50"], [0], "smoke", ["ce", "mfm_frozen"], "m")]
    [('transfer_if50', 'mfm_frozen'), ('transfer_if50', 'ce')]
"""
from __future__ import annotations

import functools
import itertools
import time
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from metakit.experiments import Config, run
from metakit.experiments.grid import METRICS, GridRun, run_grid, timed_run
from metakit.options import require

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
TAGS = ["profile", "epochs"]


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


def source_job(config: Config, folder: str) -> dict[str, float]:
    """A grid job: learn the source modulator, save it (`modulator_path`), return its metrics."""
    start = time.perf_counter()
    result = run(config)
    result.method.save(modulator_path(folder, config.resolve().profile, config.seed))
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
        tags = {"profile": profile, "epochs": config.resolve().epochs}
        runs.append(GridRun(config, method, "", tags, setting=f"transfer_{target}"))
    return runs


def mfm_transfer(targets: Sequence[str] = tuple(TARGETS), seeds: Sequence[int] = (0, 1, 2, 3, 4),
                 profile: str = "laptop", methods: Sequence[str] = METHODS, folder: str | Path = "runs/tables",
                 csv_path: str | Path | None = None, overrides: dict | None = None,
                 log: Callable[[str], Any] | None = None, executor: Executor | None = None) -> pd.DataFrame:
    """Learn the missing source modulators, then run the target rows not yet in ``csv_path``.

    Example:
        >>> import tempfile
        >>> out = tempfile.mkdtemp()
        >>> df = mfm_transfer(["if10"], [0], "smoke", ["ce", "mfm_frozen"], out, overrides={"epochs": 1})
        >>> df[["setting", "method"]].values.tolist()
        [['transfer_source', 'mfm_net'], ['transfer_if10', 'mfm_frozen'], ['transfer_if10', 'ce']]
    """
    job = functools.partial(source_job, folder=str(folder))
    sources = [GridRun(config, "mfm_net", "shared", {"profile": profile, "epochs": config.resolve().epochs},
                       setting="transfer_source")
               for config in (source_config(seed, profile, **(overrides or {})) for seed in seeds)]
    parts = [run_grid(sources, csv_path, job=job, executor=executor, log=log)]
    for source in sources:  # a row kept but its file gone: relearn it (same seed, same split: the same modulator)
        if not modulator_path(folder, profile, source.config.seed).is_file():
            job(source.config)
    parts.append(run_grid(transfer_runs(targets, seeds, profile, methods, folder, overrides), csv_path,
                          job=timed_run, executor=executor, log=log, progress=log is not None, desc="mfm transfer"))
    df = pd.concat(parts, ignore_index=True)
    return df[df["error"].isna()].drop(columns="error").reset_index(drop=True)
