"""Figures of the schedule-transfer tables, drawn only from what ``results/`` stores.

The transfer table (``results/<dataset>/schedule_transfer_laptop.csv``) keeps two LRs a run: ``mid_lr``
(the epoch-mean LR of the middle epoch) and ``final_lr`` (of the last). The γ-share table
(``results/schedule_gamma_share.csv``, ``scripts/gamma_share.py``) keeps, per stage of the frozen
schedule on its own task, γ and the stage's mean LR. A hand schedule's LR is a function of its config
(`metakit.schedules.hand.lr_function`), so its whole curve is computed, not stored. So:

- `hand_lr_curves` + `stage_lr_curve` + `stored_lr_points` → `plot_lr_by_epoch`: the hand curves, the
  frozen schedule's stage means, and every stored LR as a marker on top;
- `plot_final_lr_vs_accuracy`: each run's final LR against its test accuracy, one panel per momentum;
- `plot_gamma_vs_lr`: each stage's γ against its mean LR (LR = γ · sigmoid(·) lies below LR = γ);
- `stored_note`: what the files hold and what they do not, as a markdown sentence a notebook shows.

Example:
    >>> rows = pd.DataFrame({"setting": "transfer_same", "method": ["sched_cosine", "sched_mlrsnet"], "variant": "",
    ...                      "momentum": 0.0, "seed": 0, "epochs": 4, "mid_lr": [0.05, 0.02], "final_lr": [0.001, 0.004],
    ...                      "test_acc": [90.0, 91.0]})
    >>> stored_lr_points(rows).epoch.tolist()
    [3, 4, 3, 4]
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from metakit.schedules.hand import lr_function
from metakit.schedules.learned import switch_epochs

LEARNED = "sched_mlrsnet"   # the frozen MLR-SNet's rows in the transfer table
STEPS_PER_EPOCH = 8         # steps per epoch averaged into a hand schedule's epoch-mean LR (as history["lr"] is)


def _image_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Default-variant image runs: no source (meta-training) row, no language model (no accuracy)."""
    keep = (rows["setting"] != "transfer_source") & rows["test_acc"].notna() & (rows["variant"].fillna("") == "")
    return rows[keep]


def hand_lr_curves(configs: Mapping[str, Any], steps_per_epoch: int = STEPS_PER_EPOCH) -> pd.DataFrame:
    """The epoch-mean LR of each hand schedule, computed from its config.

    A hand schedule sets each step's LR from the progress at the step's start
    (`metakit.schedules.hand.Schedule`), so an epoch's mean is the mean over its steps' start points; a run's
    real step count only moves the mean within the epoch (under 0.1% of the base LR on the digits table).

    Args:
        configs: schedule label → a resolved config (`metakit.experiments.Config`, e.g. from
            `metakit.studies.rerun_config` of one of the table's rows): ``schedule``, ``lr``, ``epochs``,
            ``milestones``, ``gamma``, ``warmup_epochs`` and ``schedule_options`` are read.
        steps_per_epoch: the steps averaged per epoch.

    Returns:
        Columns ``schedule``, ``epoch`` (1-based, as ``Result.history``) and ``lr``.

    Example:
        >>> from types import SimpleNamespace as C
        >>> c = C(schedule="multistep", lr=0.1, epochs=4, milestones=(0.5,), gamma=0.1, warmup_epochs=0,
        ...       schedule_options={})
        >>> hand_lr_curves({"sched_multistep": c}).lr.round(3).tolist()
        [0.1, 0.1, 0.01, 0.01]
    """
    frames = []
    for label, c in configs.items():
        options = {k: v for k, v in dict(c.schedule_options or {}).items() if k in ("t0", "t_mult")}
        f = lr_function(c.schedule, c.lr, c.epochs, milestones=c.milestones, gamma=c.gamma,
                        warmup_epochs=c.warmup_epochs, **options)
        lrs = [float(np.mean([f(e + k / steps_per_epoch) for k in range(steps_per_epoch)])) for e in range(c.epochs)]
        frames.append(pd.DataFrame({"schedule": label, "epoch": range(1, c.epochs + 1), "lr": lrs}))
    return pd.concat(frames, ignore_index=True)


def stage_lr_curve(share: pd.DataFrame, epochs: int, label: str = LEARNED) -> pd.DataFrame:
    """The frozen schedule's LR as the γ-share table stores it: each stage's mean LR (median over seeds).

    Args:
        share: rows of ``results/schedule_gamma_share.csv`` for one dataset, setting and momentum (the median
            over its seeds is drawn, as in `stored_lr_points`): columns ``gamma_k``, ``lr_k`` for each stage k.
        epochs: the run's length; the stages start at `metakit.schedules.learned.switch_epochs`.

    Returns:
        Columns ``schedule``, ``epoch`` (1-based), ``lr`` and ``gamma``: one row per epoch.

    Example:
        >>> share = pd.DataFrame({"gamma_1": [1.0], "lr_1": [0.5], "gamma_2": [0.2], "lr_2": [0.1],
        ...                       "gamma_3": [0.1], "lr_3": [0.04]})
        >>> stage_lr_curve(share, 6).lr.tolist()
        [0.5, 0.5, 0.1, 0.1, 0.04, 0.04]
    """
    if share.empty:
        raise ValueError("stage_lr_curve: share has no rows; pick a dataset and momentum that "
                         "results/schedule_gamma_share.csv holds (scripts/gamma_share.py makes it).")
    starts = [*switch_epochs(epochs), epochs]
    rows = []
    for k in range(3):
        lr, gamma = float(share[f"lr_{k + 1}"].median()), float(share[f"gamma_{k + 1}"].median())
        rows += [{"schedule": label, "epoch": e + 1, "lr": lr, "gamma": gamma} for e in range(starts[k], starts[k + 1])]
    return pd.DataFrame(rows)


def stored_lr_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Every method's stored LRs (median over seeds): ``mid_lr`` at the middle epoch, ``final_lr`` at the last.

    Args:
        rows: transfer-table rows of one setting and momentum.

    Returns:
        Columns ``schedule``, ``epoch`` (1-based: ``mid_lr`` is the history's row ``epochs // 2``), ``lr``.
    """
    out = []
    for method, part in _image_rows(rows).groupby("method", sort=True):
        epochs = int(part["epochs"].iloc[0])
        out += [{"schedule": method, "epoch": epochs // 2 + 1, "lr": float(part["mid_lr"].median())},
                {"schedule": method, "epoch": epochs, "lr": float(part["final_lr"].median())}]
    return pd.DataFrame(out, columns=["schedule", "epoch", "lr"])


def plot_lr_by_epoch(curves: pd.DataFrame, points: pd.DataFrame | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """LR per epoch (log scale): ``curves`` as lines, the stored ``points`` as markers, a schedule's in one colour.

    Example:
        >>> curves = pd.DataFrame({"schedule": "a", "epoch": [1, 2], "lr": [0.1, 0.01]})
        >>> plot_lr_by_epoch(curves, curves.iloc[[1]]).get_yscale()
        'log'
    """
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    names = list(dict.fromkeys([*curves["schedule"], *([] if points is None else points["schedule"])]))
    palette = dict(zip(names, sns.color_palette(n_colors=len(names))))
    sns.lineplot(data=curves, x="epoch", y="lr", hue="schedule", palette=palette, drawstyle="steps-mid", ax=ax)
    if points is not None and len(points):
        sns.scatterplot(data=points, x="epoch", y="lr", hue="schedule", palette=palette, marker="X", s=70,
                        legend=False, ax=ax)
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="learning rate (epoch mean)", title="LR per epoch (×: the values the table stores)")
    ax.legend(title="schedule", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_final_lr_vs_accuracy(rows: pd.DataFrame, axes=None) -> plt.Figure:
    """Each image run's final LR against its test accuracy, one panel per momentum, one colour per method.

    Example:
        >>> rows = pd.DataFrame({"setting": "transfer_same", "method": ["a", "b"], "variant": "", "momentum": 0.0,
        ...                      "final_lr": [0.1, 0.001], "test_acc": [90.0, 91.0]})
        >>> [ax.get_xscale() for ax in plot_final_lr_vs_accuracy(rows).axes]
        ['log']
    """
    images = _image_rows(rows)
    momenta = sorted(images["momentum"].unique())
    if axes is None:
        fig, axes = plt.subplots(1, len(momenta), figsize=(5.5 * len(momenta), 3.8), sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, momentum in zip(axes, momenta):
        part = images[images["momentum"] == momentum]
        sns.scatterplot(data=part, x="final_lr", y="test_acc", hue="method", style="method", ax=ax, s=35)
        ax.set_xscale("log")
        ax.set(xlabel="LR of the last epoch", ylabel="test accuracy (%)", title=f"momentum {momentum:g}")
    fig.tight_layout()
    return fig


def plot_gamma_vs_lr(share: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Each stage's γ against its mean LR (one dot per seed and stage); the line LR = γ is the ceiling.

    Args:
        share: rows of ``results/schedule_gamma_share.csv`` (columns ``gamma_k``, ``lr_k``, ``momentum``).

    Example:
        >>> share = pd.DataFrame({"momentum": 0.0, "gamma_1": [1.0], "lr_1": [0.5], "gamma_2": [0.2], "lr_2": [0.1],
        ...                       "gamma_3": [0.1], "lr_3": [0.04]})
        >>> plot_gamma_vs_lr(share).get_xlabel()
        'γ (LR scale of the stage)'
    """
    long = pd.concat([share.assign(stage=f"stage {k}", gamma=share[f"gamma_{k}"], lr=share[f"lr_{k}"])
                      for k in (1, 2, 3)], ignore_index=True)
    long = long.assign(momentum=long["momentum"].map("momentum {:g}".format))
    ax = ax or plt.subplots(figsize=(5.5, 4))[1]
    sns.scatterplot(data=long, x="gamma", y="lr", hue="stage", style="momentum", s=55, ax=ax)
    low, high = long[["gamma", "lr"]].min().min(), long["gamma"].max()
    ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--", label="LR = γ")
    ax.set(xscale="log", yscale="log", xlabel="γ (LR scale of the stage)", ylabel="mean LR of the stage",
           title="frozen schedule: γ against the LR it gives")
    ax.legend(fontsize="small")
    return ax


def stored_note(rows: pd.DataFrame, share: pd.DataFrame, dataset: str) -> str:
    """What the committed files hold for the LR figures and what they do not, in one markdown paragraph.

    Example:
        >>> rows = pd.DataFrame({"setting": ["transfer_same", "transfer_lm"], "method": LEARNED, "variant": "",
        ...                      "momentum": 0.0, "seed": 0, "epochs": 4, "mid_lr": [0.1, None], "final_lr": [0.1, None],
        ...                      "test_acc": [90.0, None]})
        >>> print(stored_note(rows, pd.DataFrame(columns=["dataset", "setting"]), "digits"))  # doctest: +NORMALIZE_WHITESPACE
        **Stored:** 1 image runs with 2 LRs each (`mid_lr`, `final_lr`); per-stage γ and mean LR for 0 runs of the
        frozen schedule on digits (settings: none). **Not stored:** a per-epoch LR column (no run's LR curve can be
        drawn from the table); γ of the frozen schedule in 1 of the table's 1 image settings (transfer_same). The
        hand schedules' curves are computed from their configs.
    """
    images = _image_rows(rows)
    stored_lrs = [c for c in ("mid_lr", "final_lr") if c in images.columns]
    mine = share[share["dataset"] == dataset] if len(share) else share
    settings = sorted(set(mine["setting"])) if len(mine) else []
    per_epoch = [c for c in rows.columns if c.startswith("lr_")]
    without = sorted(set(images["setting"]) - set(settings))
    missing = ([] if per_epoch else ["a per-epoch LR column (no run's LR curve can be drawn from the table)"]) + (
        [f"γ of the frozen schedule in {len(without)} of the table's {images['setting'].nunique()} image settings "
         f"({', '.join(without)})"] if without else [])
    return (f"**Stored:** {len(images)} image runs with {len(stored_lrs)} LRs each "
            f"({', '.join(f'`{c}`' for c in stored_lrs)}); per-stage γ and mean LR for {len(mine)} runs of the "
            f"frozen schedule on {dataset} (settings: {', '.join(settings) or 'none'}). "
            + (f"**Not stored:** {'; '.join(missing)}. " if missing else "")
            + "The hand schedules' curves are computed from their configs.")
