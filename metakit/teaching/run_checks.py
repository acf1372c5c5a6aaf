"""Checks for the exercises that train (notebooks 03–05): each compares the student's run with an
independent one — a rerun of its first epoch, the config it should differ from in one field, a
table column recomputed — and names what is wrong without printing the right value.

Example:
    >>> import pandas as pd
    >>> h = pd.DataFrame({"epoch": [1, 2, 3], "val_acc": [10.0, 30.0, 20.0], "test_acc": [10.0, 20.0, 30.0],
    ...                   "train_acc": [5.0, 6.0, 7.0]})
    >>> check_best_epoch({"fixed": 2}, {"fixed": h})
    ✓ best_epoch names the epoch of the best validation accuracy of every run.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from metakit.teaching.checks import _ok, _require


def _history_of(run) -> pd.DataFrame:
    return run.history if hasattr(run, "history") else run


def check_every_step(every_step, official: pd.DataFrame, profile: str, seed: int, dataset: str) -> None:
    """``every_step`` is the history of the table entry ``mlrsnet_every_step`` (notebook 03).

    Its length is compared with ``official`` (the official protocol's history, which it must not
    be) and its first epoch with a one-epoch rerun of that entry at ``profile``, ``seed``, ``dataset``.
    """
    from metakit.experiments import run
    from metakit.studies.schedules import table_config

    _require(isinstance(every_step, pd.DataFrame) and {"lr", "train_loss"} <= set(every_step.columns),
             f"store the run's history (result.history, a DataFrame), not a {type(every_step).__name__}.")
    _require(len(every_step) == len(official), f"your history has {len(every_step)} epochs, the official run "
                                               f"{len(official)}: run the table entry at this notebook's profile.")
    same = every_step[["train_loss", "lr"]].to_numpy().shape == official[["train_loss", "lr"]].to_numpy().shape and \
        np.allclose(every_step[["train_loss", "lr"]].to_numpy(), official[["train_loss", "lr"]].to_numpy())
    _require(not same, "this is the official protocol's history: run the table entry mlrsnet_every_step instead.")
    first = run(table_config("cifar10", "mlrsnet_every_step", profile, seed, dataset=dataset, epochs=1)).history.iloc[0]
    _require(np.allclose(every_step[["train_loss", "lr"]].iloc[0].to_numpy(float), [first["train_loss"], first["lr"]],
                         rtol=1e-6), "your first epoch differs from a rerun of the table entry mlrsnet_every_step "
                                     "(same profile, seed and DATASET): check the entry's name and the options.")
    _ok("every_step is the history of the final_net ablation meta-updating every step.")


def check_high_noise(high_noise, uniform: dict) -> None:
    """``high_noise`` maps ``"cosine"`` and ``"mlrsnet"`` to runs whose config is ``uniform``'s with noise_rate 0.6 (notebook 04)."""
    _require(isinstance(high_noise, dict), f"high_noise is a dict name → Result, not a {type(high_noise).__name__}.")
    _require(set(high_noise) == {"cosine", "mlrsnet"}, f"high_noise has the entries {sorted(high_noise)}; the "
                                                      "exercise reruns the cosine and MLR-SNet entries.")
    for name, result in high_noise.items():
        _require(hasattr(result, "config"), f"high_noise[{name!r}] is a {type(result).__name__}; store what run returns.")
        want = dataclasses.replace(uniform[name].config, noise_rate=0.6).resolve()
        got = result.config.resolve()
        for field in dataclasses.fields(want):
            if field.name == "progress":
                continue
            mine = getattr(got, field.name)
            _require(mine == getattr(want, field.name), f"high_noise[{name!r}] differs from uniform[{name!r}] in "
                                                        f"{field.name} (yours {mine!r}): change only the noise rate.")
    _ok("high_noise reruns cosine and MLR-SNet at 60% uniform noise, nothing else changed.")


def check_best_epoch(best_epoch, runs: dict) -> None:
    """``best_epoch[name]`` is the epoch (as numbered in ``history["epoch"]``) of the best *validation* accuracy of ``runs[name]``.

    The validation split selects the epoch and the test set only reports (notebook 04): an answer
    that picks the best test (or train) epoch is refused wherever that epoch is not also a best
    validation epoch. Ties: any epoch of the best validation accuracy is right.

    Example:
        >>> h = pd.DataFrame({"epoch": [1, 2, 3], "val_acc": [10.0, 30.0, 20.0], "test_acc": [10.0, 20.0, 30.0],
        ...                   "train_acc": [5.0, 6.0, 7.0]})
        >>> check_best_epoch({"fixed": 3}, {"fixed": h})
        Traceback (most recent call last):
        AssertionError: Not yet. Hint: best_epoch['fixed'] is the epoch of the best test accuracy; select on the validation split (history['val_acc']): the test set only reports.
    """
    _require(isinstance(best_epoch, dict), f"best_epoch is a dict name → epoch, not a {type(best_epoch).__name__}.")
    missing, extra = sorted(set(runs) - set(best_epoch)), sorted(set(best_epoch) - set(runs))
    _require(not missing, f"best_epoch has no entry for {missing}: one per run.")
    _require(not extra, f"best_epoch names {extra}, which are not runs here.")
    for name, epoch in best_epoch.items():
        h = _history_of(runs[name])
        _require(isinstance(epoch, (int, np.integer)), f"best_epoch[{name!r}] must be an int epoch number, "
                                                       f"not {type(epoch).__name__}.")
        if "val_acc" not in h or h["val_acc"].isna().all():
            raise ValueError(f"run {name!r} has no validation accuracy (history['val_acc']); this exercise needs a "
                             f"dataset with a validation split (digits, mnist1d).")
        if int(epoch) in set(h.loc[h["val_acc"] == h["val_acc"].max(), "epoch"].astype(int)):
            continue
        row = h.reset_index(drop=True)["val_acc"].idxmax()
        _require(int(epoch) != row, f"epochs are numbered as in history['epoch'] (from 1); best_epoch[{name!r}] = "
                                    f"{epoch} looks like a row index.")
        for column, what in (("test_acc", "test"), ("train_acc", "train")):
            _require(int(epoch) not in set(h.loc[h[column] == h[column].max(), "epoch"].astype(int)),
                     f"best_epoch[{name!r}] is the epoch of the best {what} accuracy; select on the validation split "
                     f"(history['val_acc']): the test set only reports.")
        _require(False, f"epoch {epoch} is not the epoch of {name!r}'s best validation accuracy.")
    _ok("best_epoch names the epoch of the best validation accuracy of every run.")


def check_small_lr(small_lr, reference: pd.DataFrame, lr: float = 0.02, *, profile: str | None = None,
                   seed: int = 0, dataset: str | None = None) -> None:
    """``small_lr`` is the transfer table of the MLP variation at ``lr`` for ``fixed`` and ``learned`` (notebook 05).

    ``reference`` holds the same variation's rows at the source LR (from the notebook's
    ``transfer``): the learned schedule sets every step's LR itself, so its row must equal the
    reference's learned row, while the fixed baseline must end at ``lr``. With ``profile``, the
    fixed baseline is rerun (MLP at ``lr``, ``seed``, ``dataset``; as long as the student's run of
    it): a row written by hand does not pass.
    """
    __tracebackhide__ = True
    _require(isinstance(small_lr, pd.DataFrame) and {"schedule", "final_lr", "test_acc"} <= set(small_lr.columns),
             f"store the table transfer_table returns, not a {type(small_lr).__name__}.")
    _require(list(small_lr["schedule"]) == ["fixed", "learned"], f"small_lr has the schedules "
                                                                f"{list(small_lr['schedule'])}: run the fixed baseline "
                                                                "only, beside the learned schedule.")
    fixed, learned = small_lr.set_index("schedule").loc["fixed"], small_lr.set_index("schedule").loc["learned"]
    _require(math.isclose(float(fixed["final_lr"]), lr, rel_tol=1e-6),                  # a float32 LR
             f"the fixed baseline ends at LR {float(fixed['final_lr']):g}: set the variation's lr to {lr}.")
    ref = reference.set_index("schedule").loc["learned"]
    _require(math.isclose(float(learned["test_acc"]), float(ref["test_acc"]), abs_tol=1e-9) and
             math.isclose(float(learned["final_lr"]), float(ref["final_lr"]), rel_tol=1e-6),
             "your learned run differs from the MLP variation's learned run above, which it should repeat: "
             "the same model (mlp) and data, and the learned schedule ignores lr.")
    if profile is not None:
        from metakit.studies.schedules import schedule_job, table_config

        rerun = schedule_job(table_config("cifar10", "fixed", profile, seed, model="mlp", lr=lr, dataset=dataset))
        _require(math.isclose(float(fixed["test_acc"]), rerun["test_acc"], abs_tol=1e-6),
                 "your fixed row's test accuracy is not what the fixed baseline reaches on the MLP at this lr "
                 "(rerun here at the same profile and seed): run it with transfer_table, don't write the row.")
    _ok(f"small_lr runs the MLP at lr {lr}: the fixed baseline at {lr}, the learned schedule unchanged.")


def _first_lr(schedule_file: str | Path, snapshot: str = "last", loss: float = 3.0, gamma: float | None = None,
              vocab_size: int | None = None, steps: int = 1) -> float:
    """The LR a fresh `LearnedSchedule` on one snapshot of ``schedule_file`` gives to ``loss`` at its ``steps``-th step."""
    from metakit.learners.lr_net import load_schedule

    snapshots = load_schedule(schedule_file)[0]                       # a fresh state (h, c)
    net = snapshots.last if snapshot == "last" else snapshots.at_epoch(1)
    if vocab_size is not None:
        net.num_classes = int(vocab_size)
        if net.normalise:
            net.loss_scale.fill_(math.log(vocab_size))
    if gamma is not None:
        net.gamma.fill_(gamma)
    net.reset_state()
    with torch.no_grad():
        for _ in range(steps - 1):
            net.after_step(torch.tensor(float(loss)))
        return float(net.inner_lr(torch.tensor(float(loss))))


def _one_float(value, name: str) -> None:
    __tracebackhide__ = True
    _require(value is not None, f"{name} is still None: compute it in the cell above.")
    _require(isinstance(value, (int, float)) and not isinstance(value, bool),
             f"{name} is one float (what .step returns), not a {type(value).__name__}.")


def check_first_lr(first_lr, schedule_file: str | Path, loss: float = math.log(10)) -> None:
    """``first_lr`` is the first LR the last snapshot of ``schedule_file``, as a `LearnedSchedule`, gives to ``loss`` (notebook 03).

    Example:
        >>> from metakit.learners.lr_net import LRSnapshots, MLRSNet, save_schedule
        >>> import tempfile, pathlib
        >>> f = save_schedule(LRSnapshots.of([MLRSNet(10, hidden=4, gamma=g) for g in (0.1, 0.2)]),
        ...                   pathlib.Path(tempfile.mkdtemp()) / "s.pt")
        >>> check_first_lr(0.5, f)
        Traceback (most recent call last):
        AssertionError: Not yet. Hint: yours (0.5) is not the first LR the last snapshot gives to a loss of log(10).
    """
    __tracebackhide__ = True
    _one_float(first_lr, "first_lr")
    if math.isclose(first_lr, _first_lr(schedule_file, "last", loss), rel_tol=1e-6):
        _ok("first_lr is the last snapshot's LR for a loss of log(10) on a fresh schedule's first step.")
        return
    _require(not math.isclose(first_lr, _first_lr(schedule_file, "first", loss), rel_tol=1e-6),
             "that is the first snapshot; use the last one.")
    _require(not math.isclose(first_lr, _first_lr(schedule_file, "last", loss, steps=2), rel_tol=1e-6),
             "that is the LR of the second step: the LSTM carries a state, so take the first .step of a fresh schedule.")
    _require(False, f"yours ({first_lr:.4g}) is not the first LR the last snapshot gives to a loss of log(10).")


def check_unscaled_lr(unscaled_lr, schedule_file: str | Path, vocab_size: int, loss: float = 3.0) -> None:
    """``unscaled_lr`` is the first LR the last snapshot of ``schedule_file`` gives to ``loss`` with its learned γ (notebook 05)."""
    __tracebackhide__ = True
    _one_float(unscaled_lr, "unscaled_lr")
    if math.isclose(unscaled_lr, _first_lr(schedule_file, "last", loss, vocab_size=vocab_size), rel_tol=1e-6):
        _ok("unscaled_lr is the last snapshot's first LR with its learned γ: no re-scaling to the LM's LR.")
        return
    _require(not math.isclose(unscaled_lr, _first_lr(schedule_file, "last", loss, 2 * 3.0, vocab_size), rel_tol=1e-6),
             "yours re-scales γ to the optimiser's LR: leave base_lr out, keep the learned γ.")
    _require(not math.isclose(unscaled_lr, _first_lr(schedule_file, "first", loss, vocab_size=vocab_size),
                              rel_tol=1e-6), "that is the first snapshot; load the last one.")
    _require(False, f"yours ({unscaled_lr:.4g}) is not the first LR the last snapshot gives to a loss of {loss:g}.")


STEP_TOL = 5e-6   # after the first steps, at least (see check_mwnet_loop for the measurements behind both)
RUN_TOL = 1e-2    # after the whole run, at least


def _train_yours(fn, parts, epochs: int) -> None:
    """Run the student's loop with the library's loops switched off (`metakit.teaching.guard`)."""
    from metakit.meta.step import MetaStep
    from metakit.methods.mwnet import MWNet
    from metakit.teaching import mwnet_loop as ml
    from metakit.teaching.checks import _call

    __tracebackhide__ = True

    def crash(err: Exception) -> str | None:
        text = str(err)
        if isinstance(err, RuntimeError) and ("does not require grad" in text or "not have been used" in text):
            return ("your meta loss does not reach the weight net's parameters: θ' must keep the graph of ∇θ L_train "
                    "(create_graph=True), and the weights in the virtual step must not be detached.")
        return None
    _call(fn, parts, epochs, what="my_mwnet_training", crash=crash,
          refuse=(ml.reference_loop, ml._meta_update, ml.library_steps, MWNet.train_step, MetaStep.__call__, MetaStep.meta_update))


def _far(a: dict, b: dict, start: dict) -> float:
    from metakit.teaching.mwnet_loop import distance

    return max(distance(a, b, start).values())


def check_mwnet_loop(fn, config=None, steps: int = 3) -> None:
    """``fn(parts, epochs)`` trains `metakit.teaching.mwnet_loop.LoopParts` as ``run(config)`` does (notebook 01).

    Distances are per group (θ, BatchNorm statistics, the weight net's output on a grid of losses):
    |yours − library| / |library − start|, the largest of the three. The library computes the same
    numbers in another order than a hand-written loop (∇φ L_meta by one forward-mode JVP, not a
    double backward), so float32 rounding differs; how far that carries is measured, not guessed:
    ``gap`` is the distance between the library's own two exact rules (``rule="auto"`` and
    ``rule="general"``) at the same seed, and each tolerance is ``max(floor, 10 × gap)``.

    1. ``fn`` runs ``steps`` iterations; they must be within ``max(STEP_TOL, 10 × gap)`` of the
       library's first steps (either rule). A loop much closer to one of the loops that make one
       known mistake (`metakit.teaching.mwnet_loop.MISTAKES`) is told that mistake.
    2. ``fn`` runs the whole config; it must be within ``max(RUN_TOL, 10 × gap)`` of ``run(config)``.

    Measured at ``loop_config(dataset, seed, epochs=2)``, digits and MNIST-1D, seeds 0–3 (14 steps).
    After 3 steps: right loops written three ways are within 7e-7 of the library's nearer rule; the
    two rules are up to 2e-5 apart (MNIST-1D, seed 2: Adam's first steps on near-zero
    meta-gradients), hence the measured step tolerance. Every known mistake but one is 1e-4 or more
    away (most 2e-3 or more); leaving the weight decay out of the virtual step moves the weights by
    as little as 8e-7, and is told when the loop is ten times closer to that mistake than to the
    library. After the whole run, rounding alone reaches 1.6e-3 (MNIST-1D, seed 2), and a loop with
    its own rounding ends 5e-4 away on a seed where the two rules end 7e-7 apart: the gap is only a
    lower bound, hence the floor ``RUN_TOL``. A run one epoch short, or with the same batch order
    every epoch, is 5e-2 or more away. At 3 epochs MNIST-1D's gap reaches 6e-2 (the tolerance follows).

    Example:
        >>> from metakit.teaching.mwnet_loop import loop_config, reference_loop
        >>> check_mwnet_loop(reference_loop, loop_config("digits", epochs=1))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        AssertionError: Not yet. Hint: my_mwnet_training called the library's metakit.teaching.mwnet_loop.reference_loop: ...
    """
    from metakit.experiments import run
    from metakit.teaching import mwnet_loop as ml

    __tracebackhide__ = True
    config = (config or ml.loop_config()).resolve()
    general = dataclasses.replace(config, options={**config.options, "rule": "general"})
    start = ml.snapshot(ml.loop_parts(config))
    yours = ml.loop_parts(config, steps=steps)
    _train_yours(fn, yours, 1)
    got = ml.snapshot(yours)
    _require(not torch.equal(got["θ"], start["θ"]), "your loop left the classifier as it was: the real step ends "
                                                    "with parts.optimizer.step().")
    _require(not torch.equal(got["weight net"], start["weight net"]), ml.MISTAKES["detached"])
    library = [ml.snapshot(ml.library_steps(c, steps)) for c in (config, general)]
    step_tol = max(STEP_TOL, 10 * _far(library[1], library[0], start))
    right = min(_far(got, lib, start) for lib in library)
    wrong = {}
    for mistake in ml.MISTAKES:
        parts = ml.loop_parts(config, steps=steps)
        ml.reference_loop(parts, 1, mistake)
        wrong[mistake] = _far(got, ml.snapshot(parts), start)
    closest = min(wrong, key=wrong.get)
    _require(not (wrong[closest] <= step_tol and 10 * wrong[closest] <= right), ml.MISTAKES[closest])
    _require(right <= step_tol, f"after {steps} steps your weights differ from the library's first {steps} steps by "
                                f"{right:.1e} of how far they moved (tolerance {step_tol:.0e}). Go through one step "
                                "in order: this step's LR, the virtual step on the weighted training loss, the meta "
                                "loss at θ', the weight net's update, the real step with the updated weights.")
    yours = ml.loop_parts(config)
    _train_yours(fn, yours, config.epochs)

    def state(result) -> dict:
        return ml.snapshot(ml.LoopParts(result.net, result.learner, None, None, None, [], None, 0.0))

    library_run = state(run(config))
    gap = _far(state(run(general)), library_run, start)
    tolerance = max(RUN_TOL, 10 * gap)
    off = ml.distance(ml.snapshot(yours), library_run, start)
    group = max(off, key=off.get)
    _require(off[group] <= tolerance, f"your first {steps} steps match the library's, but after {config.epochs} "
                                      f"epochs your {group} differs from run(config)'s by {off[group]:.1e} of how far "
                                      f"it moved (tolerance {tolerance:.0e}): train `epochs` passes over "
                                      "parts.train, with a new meta batch and one schedule update every step.")
    n = config.epochs * len(yours.train)
    _ok(f"your loop matches metakit's mwnet run: after {config.epochs} epoch{'s' if config.epochs > 1 else ''} "
        f"({n} steps) it is {off[group]:.1e} away ({group}, relative to how far training moved it; tolerance "
        f"{tolerance:.0e}, where the library's own two exact hypergradient rules end {gap:.1e} apart); after the "
        f"first {steps} steps {right:.1e} (tolerance {step_tol:.0e}).")
