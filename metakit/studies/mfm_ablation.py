"""The MFM ablation table: what each reading choice of MFM is worth at one long-tail setting.

Rows (the results format; setting ``lt_if<factor>``), all over the same seeds and splits, so every
delta is paired:

- headline rows (variant ``""``) to compare against: ``ce`` (the reference of the deltas),
  ``logit_adj``, ``ldam_drw``, ``mwnet``, ``mfm`` at its defaults and ``mfm_net`` (per-sample
  γ/β from a modulator network: per-channel vs per-sample);
- ``mfm`` with one choice changed (`ABLATIONS`): where γ/β act (after every block, alone or with
  the pooled feature; "stages" is left out: with one block a stage, as in both laptop models, it
  modulates the same features as "blocks"), γ-only / β-only, when meta-learning starts, meta-set size, meta-LR, the meta forward's BatchNorm mode, and the
  meta-gradient (``first_order``: only φ's direct use in the meta forward, no look-ahead term;
  ``meta_off``: φ follows the training loss by the same optimiser and steps, no meta set);
- combinations, named as such and never the MFM row: ``plus_logit_adj``, ``plus_drw``;
- ``mfm_bound`` (`metakit.experiments.mfm_bound`): the frozen-θ bound, γ/β fitted on the meta
  set (``fit_meta``) or on the validation split (``fit_val``) after cross-entropy training.

The markdown gives mean ± std, the paired delta against ``ce`` and against ``mfm`` at its
defaults (95% CI, Student t), and the seconds per run of each row.

Command line: ``python -m metakit table mfm-ablation --datasets mnist1d --imbalances 100 --seeds 0 1 2``.

Example:
    >>> [r.variant for r in ablation_runs(["digits"], [10], [0], "smoke", variants=["gamma_only"])]
    ['gamma_only']
"""
from __future__ import annotations

import functools
import itertools
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from metakit.data.longtail import check_imbalance
from metakit.data.sources import DATASETS
from metakit.experiments import Config, grid_summary
from metakit.experiments.grid import GridRun, columns, run_grid, timed_run
from metakit.experiments.mfm_bound import bound_job
from metakit.options import require

HEADLINE = ("ce", "logit_adj", "ldam_drw", "mwnet", "mfm", "mfm_net")
# variant → (method, Config fields; "options" are the method's options)
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "where_blocks": ("mfm", {"options": {"where": "blocks"}}),
    "where_blocks+fc": ("mfm", {"options": {"where": "blocks+fc"}}),
    "gamma_only": ("mfm", {"options": {"params": "gamma"}}),
    "beta_only": ("mfm", {"options": {"params": "beta"}}),
    "meta_start_0": ("mfm", {"options": {"meta_start": 0.0}}),
    "meta_start_0.5": ("mfm", {"options": {"meta_start": 0.5}}),
    "meta_per_class_5": ("mfm", {"meta_per_class": 5}),
    "meta_per_class_20": ("mfm", {"meta_per_class": 20}),
    "meta_lr_3e-3": ("mfm", {"meta_lr": 3e-3}),
    "meta_lr_1e-2": ("mfm", {"meta_lr": 1e-2}),
    "meta_lr_1e-1": ("mfm", {"meta_lr": 1e-1}),
    "meta_mode_train": ("mfm", {"options": {"meta_mode": "train"}}),
    "first_order": ("mfm", {"options": {"meta_gradient": "first_order"}}),
    "meta_off": ("mfm", {"options": {"meta_gradient": "off"}}),
    "plus_logit_adj": ("mfm", {"options": {"logit_adj": True}}),
    "plus_drw": ("mfm", {"options": {"drw": True}}),
}
BOUNDS = {"fit_meta": "meta", "fit_val": "val"}  # variant of method "mfm_bound" → what γ/β are fitted on
VARIANTS = [f"{m}" for m in HEADLINE] + list(ABLATIONS) + list(BOUNDS)
SELECT_SETTINGS = ("lt_if10", "lt_if100")  # where defaults are chosen (on val_acc); other settings are held out
TAGS = ["profile", "epochs"]
COLUMNS = columns() + TAGS + ["ce_test_acc"]


def ablation_config(method: str, fields: dict[str, Any], dataset: str, imbalance: float, seed: int, profile: str,
                    **overrides: Any) -> Config:
    """The `Config` of one row: ``method`` with ``fields`` (options merged) at the table's setting.

    Example:
        >>> c = ablation_config("mfm", {"meta_lr": 0.1}, "mnist1d", 100, 0, "laptop").resolve()
        >>> c.meta_lr, c.imbalance, c.epochs
        (0.1, 100, 20)
    """
    fields = dict(fields)
    options = fields.pop("options", {})
    return Config(method=method, dataset=dataset, imbalance=imbalance, seed=seed, profile=profile, progress=False,
                  options=options, **fields, **overrides)


def ablation_runs(datasets: Sequence[str], imbalances: Sequence[float], seeds: Sequence[int], profile: str,
                  variants: Sequence[str] | None = None, overrides: dict | None = None) -> list[GridRun]:
    """The table's runs, seed-major (every row of seed 0 first, so a chunk gives a whole first look).

    Args:
        datasets, imbalances: the settings (their product).
        variants: names from `VARIANTS` (a headline method's name, an ablation, a bound); None: all.

    Example:
        >>> [(r.labels()["method"], r.variant) for r in ablation_runs(["digits"], [10], [0], "smoke", ["ce", "fit_val"])]
        [('ce', ''), ('mfm_bound', 'fit_val')]
    """
    names = list(VARIANTS if variants is None else variants)
    for name in names:
        require("variants", name, object, choices=VARIANTS)
    for dataset in datasets:
        require("dataset", dataset, object, choices=DATASETS)
    for imbalance in imbalances:
        check_imbalance(imbalance)
    runs = []
    for seed, dataset, imbalance, name in itertools.product(seeds, datasets, imbalances, names):
        if name in HEADLINE:
            method, variant, fields = name, "", {}
        elif name in ABLATIONS:
            (method, fields), variant = ABLATIONS[name], name
        else:
            method, variant, fields = "ce", name, {}
        config = ablation_config(method, fields, dataset, imbalance, seed, profile, **(overrides or {}))
        tags = {"profile": profile, "epochs": config.resolve().epochs}
        runs.append(GridRun(config, "mfm_bound" if name in BOUNDS else None, variant, tags))
    return runs


def mfm_ablation(datasets: Sequence[str] = ("mnist1d",), imbalances: Sequence[float] = (100,),
                 seeds: Sequence[int] = (0, 1, 2),
                 profile: str = "laptop", variants: Sequence[str] | None = None, csv_path: str | Path | None = None,
                 overrides: dict | None = None, log: Callable[[str], Any] | None = None,
                 executor: Executor | None = None) -> pd.DataFrame:
    """Run the table's rows not yet in ``csv_path`` (resumable); return every finished row.

    Example:
        >>> df = mfm_ablation(["digits"], [10], [0], "smoke", ["ce", "fit_meta"], overrides={"epochs": 1})
        >>> df[["method", "variant"]].values.tolist()
        [['ce', ''], ['mfm_bound', 'fit_meta']]
    """
    runs = ablation_runs(datasets, imbalances, seeds, profile, variants, overrides)
    parts = []
    for name, job in [(None, timed_run)] + [(v, functools.partial(bound_job, fit=f)) for v, f in BOUNDS.items()]:
        mine = [r for r in runs if (r.method == "mfm_bound") == (name is not None) and (name is None or r.variant == name)]
        if mine:
            parts.append(run_grid(mine, csv_path, job=job, executor=executor, log=log, progress=log is not None,
                                  desc="mfm ablation"))
    df = pd.concat(parts, ignore_index=True)  # the trained rows, then each bound's
    return df[df["error"].isna()].drop(columns="error").reset_index(drop=True)


COMBINATIONS = ("plus_logit_adj", "plus_drw")  # MFM with another method's trick: reported, never a default


def choose_defaults(df: pd.DataFrame, method: str = "mfm") -> pd.DataFrame:
    """Rank ``method``'s variants by validation accuracy over every setting together; the first is chosen.

    A variant's score is the mean over (dataset, setting) of its paired val_acc difference from
    ce, so each setting counts once whatever its scale. The settings are those of
    `SELECT_SETTINGS` (IF 10 and 100) in ``df``; the candidates are the variants that ran in all
    of them (a variant missing from one is left out, not scored on fewer settings), never a
    combination (`COMBINATIONS`). Other settings (IF 20, 50) stay held out. The test accuracy
    difference is shown beside it and never ranks.

    Example:
        >>> df = pd.DataFrame({"dataset": "d", "setting": ["lt_if10"] * 4 + ["lt_if100"] * 3,
        ...                    "method": ["ce", "mfm", "mfm", "mfm"] + ["ce", "mfm", "mfm"],
        ...                    "variant": ["", "", "x", "y", "", "", "x"], "seed": 0,
        ...                    "val_acc": [50.0, 52, 51, 60, 60, 61, 64], "test_acc": 0.0})
        >>> choose_defaults(df)[["variant", "val_delta", "settings"]].values.tolist()
        [['x', 2.5, 2], ['', 1.5, 2]]
    """
    summary = grid_summary.summarise(df, ["val_acc", "test_acc"], "ce")
    mine = summary[(summary["method"] == method) & summary["setting"].isin(SELECT_SETTINGS)
                   & ~summary["variant"].isin(COMBINATIONS)]
    settings = mine[["dataset", "setting"]].drop_duplicates().shape[0]
    covered = mine.groupby("variant", sort=False)["setting"].size()
    mine = mine[mine["variant"].isin(covered[covered == settings].index)]
    ranked = mine.groupby("variant", sort=False).agg(val_delta=("val_acc_delta", "mean"),
                                                     test_delta=("test_acc_delta", "mean"),
                                                     settings=("setting", "size"))
    return ranked.sort_values("val_delta", ascending=False, kind="stable").reset_index()


def render_markdown(df: pd.DataFrame) -> str:
    """Mean ± std per row, paired deltas against ce and against mfm at its defaults, seconds per run.

    Example:
        >>> df = pd.DataFrame({"dataset": "d", "setting": "lt_if10", "method": ["ce", "mfm", "mfm"],
        ...                    "variant": ["", "", "gamma_only"], "seed": 0, "test_acc": [60.0, 64.0, 63.0],
        ...                    "seconds": 1.0})
        >>> "| mfm (gamma_only) | -1.00 (n=1) |" in render_markdown(df)
        True
    """
    metrics = [m for m in ("test_acc", "val_acc", "medium_acc", "few_acc", "seconds") if m in df.columns]
    text = grid_summary.render_markdown(grid_summary.summarise(df, metrics, "ce"), "test_acc", reference="ce")
    if "mfm" in set(df["method"]):
        against_mfm = grid_summary.render_markdown(grid_summary.summarise(df, ["test_acc"], "mfm"), "test_acc",
                                                   reference="mfm")
        text += "\nPaired difference" + against_mfm.split("Paired difference", 1)[1]  # its delta table only
    for metric, unit in (("val_acc", "%"), ("medium_acc", "%"), ("seconds", "s")):
        if metric in metrics:
            text += "\n" + grid_summary.render_markdown(grid_summary.summarise(df, [metric]), metric, unit=unit)
    selecting = df[df["setting"].isin(SELECT_SETTINGS)][["dataset", "setting"]].drop_duplicates()
    if len(selecting) > 1 and "val_acc" in df.columns and "mfm" in set(df["method"]):
        ranked = choose_defaults(df)
        text += ("\n### Defaults chosen on validation over the settings together\n\nmfm's variants that ran at IF 10 "
                 "and 100 of every dataset, by their mean paired val_acc difference from ce over those settings "
                 "(test_acc beside it, never ranking; combinations are not candidates; other imbalances are held "
                 "out):\n\n"
                 "| mfm variant | val Δ vs ce | test Δ vs ce | settings |\n|---|---|---|---|\n")
        text += "".join(f"| {r.variant or '(defaults)'} | {r.val_delta:+.2f} | {r.test_delta:+.2f} | {r.settings} |\n"
                        for r in ranked.itertuples())
        text += f"\nChosen: {ranked['variant'].iloc[0] or 'the current defaults'}.\n"
    return text + ("\nval_acc selects; test_acc is reported. mfm_bound (fit_val) fits γ/β on the validation split, "
                   "so its val_acc is left empty.\n")


def write_table(df: pd.DataFrame, md_path: str | Path, title: str = "", command: str = "") -> str:
    """Write the markdown (`render_markdown`) and ``*_summary.csv`` beside ``md_path``; returns the markdown.

    Example:
        >>> import tempfile, pathlib
        >>> df = pd.DataFrame({"dataset": "d", "setting": "lt_if10", "method": ["ce", "mfm"], "variant": "",
        ...                    "seed": 0, "test_acc": [60.0, 64.0], "seconds": 1.0})
        >>> "| mfm | +4.00 (n=1) |" in write_table(df, pathlib.Path(tempfile.mkdtemp()) / "a.md")
        True
    """
    metrics = [m for m in ("test_acc", "val_acc", "medium_acc", "few_acc", "seconds") if m in df.columns]
    summary = grid_summary.summarise(df, metrics, "ce")
    return grid_summary.write_outputs(df, Path(md_path).with_suffix(""), render_markdown(df), command, title, summary)
