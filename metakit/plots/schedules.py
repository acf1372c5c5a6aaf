"""Seaborn figures for learning-rate schedules: LR curves, accuracy curves, the LR net's response and its
LR along given loss trajectories."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def _long(histories: dict[str, pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [h.assign(schedule=name)[["epoch", "schedule", *columns]] for name, h in histories.items()]
    return pd.concat(frames, ignore_index=True)


def plot_lr_curves(histories: dict[str, pd.DataFrame], ax: plt.Axes | None = None, log: bool = True) -> plt.Axes:
    """The (epoch-mean) LR of each run against the epoch.

    Args:
        histories: name → ``Result.history``.
        ax: axes to draw into (default: a new figure).
        log: log-scale LR axis.

    Example:
        >>> h = pd.DataFrame({"epoch": [1, 2], "lr": [0.1, 0.05]})
        >>> plot_lr_curves({"a": h}).get_ylabel()
        'learning rate'
    """
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    sns.lineplot(data=_long(histories, ["lr"]), x="epoch", y="lr", hue="schedule", ax=ax)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate per epoch")
    return ax


def plot_accuracy_curves(histories: dict[str, pd.DataFrame], axes=None) -> plt.Figure:
    """Train accuracy (on the labels the net sees, noisy or not) and test accuracy per epoch.

    Memorising noisy labels shows as train accuracy rising while test accuracy falls.

    Example:
        >>> h = pd.DataFrame({"epoch": [1, 2], "train_acc": [50., 60.], "test_acc": [55., 54.]})
        >>> len(plot_accuracy_curves({"a": h}).axes)
        2
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
    else:
        fig = axes[0].figure
    data = _long(histories, ["train_acc", "test_acc"])
    for ax, column, title in zip(axes, ("train_acc", "test_acc"), ("train (labels as given)", "test (clean)")):
        sns.lineplot(data=data, x="epoch", y=column, hue="schedule", ax=ax)
        ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title)
    return fig


def plot_lr_response(curves: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """The LR net's output against the (normalised) loss, one line per point of the run.

    Args:
        curves: from `metakit.learners.lr_net.response_curves`.

    Example:
        >>> from metakit.learners.lr_net import MLRSNet, response_curves
        >>> df = response_curves(MLRSNet(10, hidden=4, gamma=0.2), [2.3, 1.0, 0.5], at=(0.5,))
        >>> plot_lr_response(df).get_xlabel()
        'training loss / log C'
    """
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    data = curves.assign(state=[f"state at {p:.0%} of the run" for p in curves["progress"]])
    sns.lineplot(data=data, x="normalised_loss", y="lr", hue="state", ax=ax)
    ax.set(xlabel="training loss / log C", ylabel="learning rate", title="learned LR as a function of the loss")
    return ax


def plot_lr_trajectories(frames: dict[str, pd.DataFrame], axes=None) -> plt.Figure:
    """Loss trajectories (left) and the LR a frozen schedule gives along each (right), per step.

    Args:
        frames: name → `metakit.schedules.replay.replay` output (columns step, loss, lr).
        axes: two axes to draw into (default: a new figure).

    Example:
        >>> df = pd.DataFrame({"step": [0, 1], "loss": [2.0, 1.5], "lr": [0.3, 0.2]})
        >>> [ax.get_ylabel() for ax in plot_lr_trajectories({"high": df}).axes]
        ['training loss', 'learning rate']
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    fig = axes[0].figure
    long = pd.concat([f.assign(trajectory=name) for name, f in frames.items()], ignore_index=True)
    sns.lineplot(data=long, x="step", y="loss", hue="trajectory", ax=axes[0])
    sns.lineplot(data=long, x="step", y="lr", hue="trajectory", ax=axes[1])
    axes[0].set(xlabel="step", ylabel="training loss", title="loss trajectory fed to the schedule")
    axes[1].set(xlabel="step", ylabel="learning rate", title="LR of the frozen MLR-SNet")
    fig.tight_layout()
    return fig


def plot_stage_outputs(curves: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Each staged snapshot's output LR / γ against the loss it reads, one line per (net, snapshot).

    Args:
        curves: columns ``net`` (e.g. "ours", "authors'"), ``snapshot`` (its meta-training epoch),
            ``loss`` and ``output`` (`metakit.probes.lr_net.output_by_loss`).
        ax: axes to draw into (default: a new figure).

    Example:
        >>> c = pd.DataFrame({"net": "ours", "snapshot": [1, 1], "loss": [0.5, 2.0], "output": [0.5, 0.4]})
        >>> plot_stage_outputs(c).get_yscale()
        'log'
    """
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    data = curves.assign(snapshot=curves["snapshot"].map(lambda e: f"epoch {e}"))
    sns.lineplot(data=data, x="loss", y="output", hue="snapshot", style="net", ax=ax)
    ax.set_yscale("log")
    ax.set(xlabel="training loss the net reads", ylabel="output LR / γ", title="staged snapshots: output by loss")
    return ax
