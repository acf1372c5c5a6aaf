"""MLR-SNet: an LSTM that maps the training loss to the learning rate, and its frozen schedule.

The LR net reads the training loss of the current batch, normalised as ``loss / log(C)`` (C
classes, or the vocabulary size of a language model), so that it starts near 1 on every task
(a random classifier's cross-entropy is log C) and a net learned on 10 classes can drive a
run with 100. One `nn.LSTMCell` carries a state (h, c) from step to step; a linear head and a
sigmoid give the LR (Eq. 4 of MLR-SNet):

    h_t, c_t = LSTMCell(loss_t / log C, (h_{t-1}, c_{t-1}))
    lr_t     = γ · sigmoid(w · h_t + b)

γ rule: the paper's code sets γ to the scale of the initial LR. Here γ = 2 · base_lr, taken
from the optimiser's LR at the first call (or given), and the head starts at zero, so a fresh net starts at exactly the base LR and may move it anywhere in
(0, 2 · base_lr).

The SAME cell serves meta-training (`MLRSNet` as a `MetaLearner` with ``enters="lr"``) and
frozen use (`metakit.schedules.LearnedSchedule`), unlike the public code whose test-time cell differs from the
training one (so its transferred schedule hardly reacts to the loss). The state is detached
between steps, so the graph never grows beyond one step.

References: Shu et al., "MLR-SNet: Transferable LR Schedules for Heterogeneous Tasks"
(arXiv 2007.14546, TPAMI 2022).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from metakit.distributed import mean_over_ranks
from metakit.learners.store import load_learner, register_kind, save_learner
from metakit.meta import MetaLearner

class MLRSNet(MetaLearner):
    """The LR net: loss → learning rate through one LSTM cell with a carried state.

    Args:
        num_classes: classes (or vocabulary size) of the task; the loss is divided by log of it.
        hidden: LSTM hidden size (the paper uses 50).
        gamma: the LR ceiling γ; None sets it to 2 × the first ``base_lr`` seen (see module doc).

    Use it in a `metakit.meta.MetaStep` to meta-train; hand it to `metakit.schedules.LearnedSchedule` to use it
    frozen in an ordinary loop.

    Example:
        >>> net = MLRSNet(num_classes=10, hidden=8)
        >>> round(net.inner_lr(torch.tensor(2.3), 0.1).item(), 3)     # starts at the base LR
        0.1
        >>> net.after_step(torch.tensor(2.3)); net.steps.item()
        1
    """

    enters = "lr"

    def __init__(self, num_classes: int, hidden: int = 50, gamma: float | None = None):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes={num_classes!r} must be an integer >= 2 (log C normalises the loss).")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden={hidden!r} must be a positive integer, e.g. 50.")
        if gamma is not None and not gamma > 0:
            raise ValueError(f"gamma={gamma!r} must be > 0 (the LR ceiling), or None to take 2 x base_lr.")
        self.cell = nn.LSTMCell(1, hidden)
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("loss_scale", torch.tensor(math.log(num_classes)))
        self.register_buffer("gamma", torch.tensor(float("nan") if gamma is None else float(gamma)))
        self.register_buffer("h", torch.zeros(1, hidden))
        self.register_buffer("c", torch.zeros(1, hidden))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def hidden(self) -> int:
        return self.cell.hidden_size

    def reset_state(self) -> None:
        """Zero (h, c): start a new training run."""
        self.h.zero_()
        self.c.zero_()
        self.steps.zero_()

    def _features(self, loss: torch.Tensor | float) -> torch.Tensor:
        # under torchrun every rank reads the global mean loss, so all ranks take the same LR
        loss = mean_over_ranks(torch.as_tensor(loss, dtype=self.h.dtype, device=self.h.device).detach())
        return (loss / self.loss_scale).reshape(1, 1)                                 # (1, 1)

    def _cell(self, loss: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cell(self._features(loss), (self.h, self.c))                      # (1, H) each

    def inner_lr(self, loss: torch.Tensor | float, base_lr: float | None = None) -> torch.Tensor:
        """lr_t = γ · sigmoid(head(h_t)), differentiable in φ; the state does not advance.

        Args:
            loss: this step's training loss (detached; only its value is read).
            base_lr: the optimiser's LR; fixes γ = 2 · base_lr on the first call when γ is unset.

        Returns:
            A scalar tensor.
        """
        if torch.isnan(self.gamma):
            if base_lr is None or not base_lr > 0:
                raise ValueError(f"base_lr={base_lr!r}: gamma is unset, so the first call needs base_lr > 0.")
            self.gamma.fill_(2.0 * float(base_lr))
        h, _ = self._cell(loss)
        return self.gamma * torch.sigmoid(self.head(h)).reshape(())                  # Eq. 4

    @torch.no_grad()
    def after_step(self, loss: torch.Tensor | float) -> None:
        """Advance (h, c) once with this step's loss (called once per real step)."""
        h, c = self._cell(loss)
        self.h.copy_(h)
        self.c.copy_(c)
        self.steps += 1

    @torch.no_grad()
    def response(self, losses: torch.Tensor) -> torch.Tensor:
        """The LR the net would give for each loss in ``losses`` from its current state (N,).

        Example:
            >>> MLRSNet(10, hidden=4, gamma=0.2).response(torch.tensor([0.1, 2.0])).shape
            torch.Size([2])
        """
        x = (losses.to(self.h) / self.loss_scale).reshape(-1, 1)                      # (N, 1)
        state = (self.h.expand(len(x), -1), self.c.expand(len(x), -1))
        h, _ = self.cell(x, state)                                                     # (N, H)
        return self.gamma * torch.sigmoid(self.head(h)).reshape(-1)


@torch.no_grad()
def response_curves(net: MLRSNet, losses: list[float], at: tuple[float, ...] = (0.1, 0.5, 0.9),
                    grid: torch.Tensor | None = None) -> "pd.DataFrame":
    """LR as a function of the loss, from the states a run reaches: the schedule's response.

    Replays the run's per-step ``losses`` through a copy of ``net`` from a zero state and, at
    each fraction in ``at`` of the run, sweeps the loss over ``grid`` (default 0..1.2·log C).

    Args:
        net: a (trained) LR net; it is copied, not advanced.
        losses: the training loss of every step of a run (e.g. ``[r["loss"] for r in method.trace]``).
        at: fractions of the run whose state to probe.
        grid: the losses to probe (default 50 points in [0.02, 1.2]·log C).

    Returns:
        A DataFrame with columns ``progress``, ``loss``, ``normalised_loss``, ``lr``.

    Example:
        >>> df = response_curves(MLRSNet(10, hidden=4, gamma=0.2), [2.3, 1.0, 0.5, 0.4], at=(0.5,))
        >>> sorted(df.columns), len(df)
        (['loss', 'lr', 'normalised_loss', 'progress'], 50)
    """
    import copy

    import pandas as pd

    probe = copy.deepcopy(net)
    probe.reset_state()
    scale = float(probe.loss_scale)
    grid = torch.linspace(0.02, 1.2, 50) * scale if grid is None else grid
    marks = {min(len(losses) - 1, int(f * len(losses))): f for f in at}
    frames = []
    for step, loss in enumerate(losses):
        if step in marks:
            lr = probe.response(grid).cpu()
            frames.append(pd.DataFrame({"progress": marks[step], "loss": grid.tolist(),
                                        "normalised_loss": (grid / scale).tolist(), "lr": lr.tolist()}))
        probe.after_step(loss)
    return pd.concat(frames, ignore_index=True)


def _init_args(net: MLRSNet) -> dict:
    """MLRSNet's constructor arguments (γ and log C are buffers, saved with the weights too)."""
    gamma = float(net.gamma)
    return {"num_classes": round(math.exp(float(net.loss_scale))), "hidden": net.hidden,
            "gamma": None if math.isnan(gamma) else gamma}


register_kind("lr_net", MLRSNet, _init_args, "an MLR-SNet LR net")


def save_schedule(net: MLRSNet, path: str | Path, *, config: Any = None, **metadata: Any) -> Path:
    """Save the LR net (weights, γ, log C) with metadata in the learner format (`metakit.learners.store`).

    Args:
        net: a (meta-trained) `MLRSNet`.
        path: the ``.pt`` file to write.
        config: the run's resolved `Config` that trained it (None when unknown).
        **metadata: plain values to keep beside the weights (dataset, model, epochs, ...).

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> p = save_schedule(MLRSNet(10, hidden=4, gamma=0.2), pathlib.Path(tempfile.mkdtemp()) / "s.pt",
        ...                   dataset="digits")
        >>> load_schedule(p)[1]["dataset"]
        'digits'
    """
    if not isinstance(net, MLRSNet):
        raise TypeError(f"net={type(net).__name__} must be a metakit.learners.lr_net.MLRSNet.")
    if torch.isnan(net.gamma):
        raise ValueError("net.gamma is unset: run the net (or pass gamma=) before saving it.")
    return save_learner(net, path, config=config, **metadata)


def load_schedule(path: str | Path) -> tuple[MLRSNet, dict]:
    """Load an LR net saved by `save_schedule` (``weights_only=True``); returns (net, metadata).

    The metadata holds the constructor arguments (``num_classes``, ``hidden``, ``gamma``) and the
    values given to `save_schedule`. The state (h, c) is reset: a loaded schedule starts a new run.
    Any other file (a weight net, a model checkpoint, text) raises one ValueError naming it.

    Example:
        >>> import tempfile, pathlib
        >>> p = save_schedule(MLRSNet(10, hidden=4, gamma=0.2), pathlib.Path(tempfile.mkdtemp()) / "s.pt")
        >>> net, meta = load_schedule(p); meta["hidden"], round(float(net.gamma), 6)
        (4, 0.2)
    """
    net, header = load_learner(path, "lr_net", argument="schedule_file")
    net.reset_state()
    return net, {**header["init"], **header["metadata"]}
