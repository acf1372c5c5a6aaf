"""MLR-SNet: an LSTM that maps the training loss to the learning rate, and its per-epoch snapshots.

`MLRSNet` reads the current batch's training loss (raw, or divided by log C with
``normalise=True``), carries an LSTM state (h, c) from step to step, detached between steps, and
gives lr_t = γ · sigmoid(w · h_t + b) (Eq. 4 of MLR-SNet). γ is a buffer the caller sets: from the
full training loss (`metakit.schedules.learned.gamma_rule`, the faithful protocol) or, left None,
2 × the first base LR (the ``final_net`` ablation). Meta-train it in a `metakit.meta.MetaStep`;
use it frozen through `metakit.schedules.LearnedSchedule`. `LRSnapshots` holds the net after
every epoch of meta-training. Deviations from the official code: docs/guide/design_notes.md.

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
from metakit.learners.lr_cells import CELLS, OfficialCell, OfficialTestCell
from metakit.learners.store import load_learner, register_kind, save_learner
from metakit.meta import MetaLearner

class MLRSNet(MetaLearner):
    """The LR net: loss → learning rate through one LSTM cell with a carried state.

    Args:
        num_classes: classes (or vocabulary size) of the task.
        hidden: LSTM hidden size (the paper uses 50).
        gamma: the LR ceiling γ; None sets it to 2 × the first ``base_lr`` seen (see module doc).
        normalise: divide the loss by log C (metakit's earlier input); False feeds the raw loss,
            as the official code does (the faithful protocol's choice).
        cell: "lstm" (one `nn.LSTMCell`, metakit's), "official" (`OfficialCell`, the official
            code's training cell) or "official_test" (`OfficialTestCell`, its meta-test cell, which
            the authors' snapshots load into: `metakit.learners.official`).

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

    def __init__(self, num_classes: int, hidden: int = 50, gamma: float | None = None, normalise: bool = True,
                 cell: str = "lstm"):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes={num_classes!r} must be an integer >= 2 (log C normalises the loss).")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden={hidden!r} must be a positive integer, e.g. 50.")
        if gamma is not None and not gamma > 0:
            raise ValueError(f"gamma={gamma!r} must be > 0 (the LR ceiling), or None to take 2 x base_lr.")
        if not isinstance(normalise, bool):
            raise TypeError(f"normalise={normalise!r} must be True (loss / log C) or False (the raw loss).")
        if cell not in CELLS:
            raise ValueError(f"cell={cell!r} is unknown; use one of {CELLS}.")
        self.num_classes, self.normalise, self.cell_kind = num_classes, normalise, cell
        self.cell = {"lstm": nn.LSTMCell, "official": OfficialCell, "official_test": OfficialTestCell}[cell](1, hidden)
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("loss_scale", torch.tensor(math.log(num_classes) if normalise else 1.0))
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
    scale = math.log(probe.num_classes)                                 # a random classifier's loss
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
    """MLRSNet's constructor arguments (γ and the loss scale are buffers, saved with the weights too)."""
    gamma = float(net.gamma)
    return {"num_classes": net.num_classes, "hidden": net.hidden, "gamma": None if math.isnan(gamma) else gamma,
            "normalise": net.normalise, "cell": net.cell_kind}


register_kind("lr_net", MLRSNet, _init_args, "an MLR-SNet LR net")


class LRSnapshots(nn.Module):
    """The LR net after every epoch of meta-training: ``at_epoch(e)`` is the net after epoch e.

    The official code saves the LR net once an epoch and its meta-test switches between three of
    them (`metakit.schedules.learned.StagedSchedule`). Build one with `LRSnapshots.of` from
    copies of a live net; ``run`` returns it as ``Result.learner`` of a faithful ``mlrsnet`` run.

    Args:
        num_classes, hidden, gamma, normalise, cell: as `MLRSNet` (every snapshot shares them).
        count: how many snapshots (epochs of meta-training).
        epochs: the meta-training epoch each snapshot was taken after, increasing; None: 1..count
            (one an epoch). The authors' released files are three: epochs (1, 100, 200).
        outputs: each snapshot's mean output LR / γ over its epoch of meta-training (what the
            ``constant_net`` ablation replaces the net with); None: not recorded.

    Example:
        >>> s = LRSnapshots.of([MLRSNet(10, hidden=4, gamma=0.5) for _ in range(3)])
        >>> len(s), s.at_epoch(3).hidden, float(s.last.gamma)
        (3, 4, 0.5)
    """

    def __init__(self, num_classes: int, hidden: int = 50, gamma: float | None = None, normalise: bool = True,
                 count: int = 1, cell: str = "lstm", epochs: list[int] | tuple[int, ...] | None = None,
                 outputs: list[float] | tuple[float, ...] | None = None):
        super().__init__()
        self.outputs = None if outputs is None else tuple(float(o) for o in outputs)
        if self.outputs is not None and (len(self.outputs) != count or not all(0 < o < 1 for o in self.outputs)):
            raise ValueError(f"outputs={outputs!r} must be {count} mean outputs in (0, 1), one a snapshot.")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count={count!r} must be a positive integer (snapshots, one an epoch).")
        self.epochs = tuple(range(1, count + 1)) if epochs is None else tuple(int(e) for e in epochs)
        if len(self.epochs) != count or self.epochs[0] < 1 or list(self.epochs) != sorted(set(self.epochs)):
            raise ValueError(f"epochs={epochs!r} must be {count} increasing epochs >= 1, one a snapshot.")
        self.nets = nn.ModuleList(MLRSNet(num_classes, hidden, gamma, normalise, cell) for _ in range(count))

    @classmethod
    def of(cls, nets: list[MLRSNet], epochs: list[int] | tuple[int, ...] | None = None,
           outputs: list[float] | None = None) -> "LRSnapshots":
        """Snapshots holding copies of ``nets`` (epoch 1 first; ``epochs``, ``outputs``: as the constructor)."""
        if not nets:
            raise ValueError("nets=[]: take at least one snapshot (one epoch of meta-training) first.")
        first = nets[0]
        out = cls(first.num_classes, first.hidden, None, first.normalise, len(nets), first.cell_kind, epochs, outputs)
        for mine, theirs in zip(out.nets, nets):
            mine.load_state_dict({k: v.detach().cpu() for k, v in theirs.state_dict().items()})
            mine.reset_state()
        return out

    def __len__(self) -> int:
        return len(self.nets)

    def at_epoch(self, epoch: int) -> MLRSNet:
        """The snapshot taken after meta-training epoch ``epoch`` (1-based)."""
        if epoch not in self.epochs:
            held = f"1..{len(self)}" if self.epochs == tuple(range(1, len(self) + 1)) else str(list(self.epochs))
            raise ValueError(f"epoch={epoch!r}: these snapshots were taken after epochs {held}.")
        return self.nets[self.epochs.index(epoch)]

    @property
    def last(self) -> MLRSNet:
        """The final net (what the ``final_net`` ablation uses)."""
        return self.nets[-1]


def _snapshot_args(snapshots: LRSnapshots) -> dict:
    first = snapshots.nets[0]
    args = {"num_classes": first.num_classes, "hidden": first.hidden, "gamma": None, "normalise": first.normalise,
            "count": len(snapshots), "cell": first.cell_kind}
    args |= {} if snapshots.epochs == tuple(range(1, len(snapshots) + 1)) else {"epochs": list(snapshots.epochs)}
    return args | ({} if snapshots.outputs is None else {"outputs": list(snapshots.outputs)})


register_kind("lr_snapshots", LRSnapshots, _snapshot_args, "MLR-SNet LR nets, one snapshot an epoch")


def save_schedule(net: MLRSNet | LRSnapshots, path: str | Path, *, config: Any = None, **metadata: Any) -> Path:
    """Save an LR net or its snapshots (weights, γ, loss scale) with metadata in the learner format.

    Save ``result.learner`` of a faithful run (its `LRSnapshots`, what the staged meta-test
    needs); a single `MLRSNet` is what the ``final_net`` ablation reads.

    Args:
        net: a (meta-trained) `MLRSNet` or `LRSnapshots`.
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
    if not isinstance(net, (MLRSNet, LRSnapshots)):
        raise TypeError(f"net={type(net).__name__} must be a metakit.learners.lr_net.MLRSNet or LRSnapshots.")
    if any(torch.isnan(n.gamma) for n in (net.nets if isinstance(net, LRSnapshots) else [net])):
        raise ValueError("net.gamma is unset: run the net (or pass gamma=) before saving it.")
    return save_learner(net, path, config=config, **metadata)


def load_schedule(path: str | Path) -> tuple[MLRSNet | LRSnapshots, dict]:
    """Load what `save_schedule` wrote (``weights_only=True``); returns (net or snapshots, metadata).

    The metadata holds the constructor arguments (``num_classes``, ``hidden``, ``gamma``, ...)
    and the values given to `save_schedule`. States (h, c) are reset: a loaded schedule starts a
    new run. A file of an older metakit (one net, no ``normalise``) loads as a normalising net.
    Any other file (a weight net, a model checkpoint, text) raises one ValueError naming it.

    Example:
        >>> import tempfile, pathlib
        >>> p = save_schedule(MLRSNet(10, hidden=4, gamma=0.2), pathlib.Path(tempfile.mkdtemp()) / "s.pt")
        >>> net, meta = load_schedule(p); meta["hidden"], round(float(net.gamma), 6)
        (4, 0.2)
    """
    net, header = load_learner(path, ("lr_net", "lr_snapshots"), argument="schedule_file")
    for n in net.nets if isinstance(net, LRSnapshots) else [net]:
        n.reset_state()
    return net, {**header["init"], **header["metadata"]}
