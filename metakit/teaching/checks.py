"""Checks for the notebooks' exercises: a friendly ✓ when right, an AssertionError with a hint when not.

Each check compares the student's answer with an independent computation from the package.

Example:
    >>> check_counts([50, 5], imbalance=10, n_max=50)
    ✓ counts match the exp long tail (imbalance 10, n_max 50).
"""
from __future__ import annotations

import itertools
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.data.longtail import longtail_counts
from metakit.meta import MetaLearner, lookahead
from metakit.experiments.sweep import FIELDS
from metakit.teaching.toy import meta_loss, toy_problem


def _ok(message: str) -> None:
    print(f"✓ {message}")


def _require(condition: bool, hint: str) -> None:
    if not condition:
        raise AssertionError(f"Not yet. Hint: {hint}")


def check_counts(counts, imbalance: float, n_max: int, profile: str = "exp") -> None:
    """Your per-class counts equal the long tail of ``imbalance`` (largest class ``n_max``).

    Example:
        >>> check_counts([10, 10, 1], 10, 10, "exp")
        Traceback (most recent call last):
        AssertionError: Not yet. Hint: class 1 should keep int(n_max * (1/imbalance) ** (i/(C-1))) = 3 images, yours 10.
    """
    counts = [int(c) for c in counts]
    want = longtail_counts(n_max, len(counts), imbalance, profile)
    for i, (got, expected) in enumerate(zip(counts, want)):
        formula = "int(n_max * (1/imbalance) ** (i/(C-1)))" if profile == "exp" else "n_max or int(n_max/imbalance)"
        _require(got == expected, f"class {i} should keep {formula} = {expected} images, yours {got}.")
    _ok(f"counts match the {profile} long tail (imbalance {imbalance:g}, n_max {n_max}).")


def check_changed_fraction(fn: Callable[[float, int], float]) -> None:
    """``fn(noise_rate, num_classes)`` gives the expected fraction of labels uniform noise changes.

    Example:
        >>> check_changed_fraction(lambda p, c: p * (c - 1) / c)
        ✓ uniform noise changes p·(C−1)/C of the labels: it may draw the true class.
    """
    for p, c in itertools.product((0.0, 0.2, 0.4, 0.8), (2, 10, 100)):
        got, want = float(fn(p, c)), p * (c - 1) / c
        _require(np.isclose(got, want), f"for noise_rate={p}, num_classes={c} expected {want:.4f}, got {got:.4f}. "
                                         "A replaced label is drawn from all C classes — including the true one.")
    _ok("uniform noise changes p·(C−1)/C of the labels: it may draw the true class.")


def _random_problem(seed: int):
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (7,), generator=gen)
    return net, x, y


def check_lookahead(fn: Callable) -> None:
    """``fn(net, loss, lr)`` returns θ' = θ − lr·∇θ loss by name, differentiable in ``lr`` and in the loss.

    Example:
        >>> check_lookahead(lambda net, loss, lr: lookahead(net, loss, lr))
        ✓ your look-ahead equals metakit.meta.lookahead, and its hypergradients too.
    """
    for seed in range(3):
        net, x, y = _random_problem(seed)
        lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        phi = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)     # a meta-parameter in the loss
        ours = lookahead(net, phi * F.cross_entropy(net(x), y), lr)
        yours = fn(net, phi * F.cross_entropy(net(x), y), lr)               # a fresh graph for yours
        _require(isinstance(yours, dict) and set(yours) == set(ours),
                 f"return a dict keyed by parameter name, like {sorted(ours)}.")
        for name in ours:
            _require(torch.allclose(yours[name], ours[name]), f"θ'[{name!r}] differs: subtract lr * gradient.")
        probe = torch.randn(3, 5, dtype=torch.float64)
        out = functional_call(net, yours, (probe,)).sum()
        g_yours = torch.autograd.grad(out, [lr, phi], allow_unused=True) if out.requires_grad else (None, None)
        _require(all(g is not None for g in g_yours),
                 "θ' must stay differentiable in lr and in what the loss depends on: take the gradient "
                 "with torch.autograd.grad(..., create_graph=True), and do not .detach().")
        g_ours = torch.autograd.grad(functional_call(net, ours, (probe,)).sum(), [lr, phi])
        _require(all(torch.allclose(a, b) for a, b in zip(g_yours, g_ours)),
                 "the hypergradient through your θ' differs: use θ − lr · grad for every parameter.")
    _ok("your look-ahead equals metakit.meta.lookahead, and its hypergradients too.")


def check_lr_hypergradient(fn: Callable) -> None:
    """``fn(net, train_batch, meta_batch, lr)`` is dL_meta/dα using first derivatives only.

    Example:
        >>> def reference(net, tb, mb, lr):
        ...     a = torch.tensor(float(lr), dtype=torch.float64, requires_grad=True)
        ...     learner = MetaLearner(); learner.inner_lr = lambda loss, base: a
        ...     return torch.autograd.grad(meta_loss(net, learner, tb, mb, lr), a)[0].item()
        >>> check_lr_hypergradient(reference)
        ✓ dL_meta/dα = −⟨∇L_meta(θ'), ∇L_train(θ)⟩ matches autograd through the look-ahead.
    """
    for seed, lr in ((0, 0.1), (1, 0.5)):
        net, train_batch, meta_batch = toy_problem(seed=seed)
        alpha = torch.tensor(lr, dtype=torch.float64, requires_grad=True)
        learner = MetaLearner()                                   # φ = α alone, plain mean loss
        learner.inner_lr = lambda loss, base: alpha
        want = torch.autograd.grad(meta_loss(net, learner, train_batch, meta_batch, lr), alpha)[0].item()
        got = float(fn(net, train_batch, meta_batch, lr))
        _require(np.isclose(got, want, rtol=1e-6, atol=1e-10),
                 f"expected {want:.6g}, got {got:.6g} (seed {seed}, lr {lr}). θ' = θ − α g, so "
                 "dL_meta/dα = −(∇θ L_meta at θ') · g: take both gradients and sum their products.")
    _ok("dL_meta/dα = −⟨∇L_meta(θ'), ∇L_train(θ)⟩ matches autograd through the look-ahead.")


def check_grid(grid: dict, runs: int, must_vary: tuple[str, ...] = ()) -> None:
    """``grid`` is a valid `metakit.experiments.sweep.ablate` grid of ``runs`` configurations varying ``must_vary``.

    Example:
        >>> check_grid({"imbalance": [1, 10], "noise_rate": [0.0]}, runs=2, must_vary=("imbalance",))
        ✓ a grid of 2 configurations over imbalance, noise_rate.
    """
    _require(isinstance(grid, dict), "a grid is a dict: field name → list of values.")
    for name, values in grid.items():
        _require(name in FIELDS, f"{name!r} is not a Config field; fields are {FIELDS}.")
        _require(isinstance(values, list) and len(values) > 0, f"grid[{name!r}] must be a non-empty list.")
    for name in must_vary:
        _require(len(grid.get(name, [])) > 1, f"vary {name!r}: give it at least two values.")
    size = int(np.prod([len(v) for v in grid.values()]))
    _require(size == runs, f"your grid has {size} configurations (the product of the list lengths); we asked for {runs}.")
    _ok(f"a grid of {size} configurations over {', '.join(grid)}.")


def check_best(fn: Callable[[pd.DataFrame, str], object], table: pd.DataFrame, field: str) -> None:
    """``fn(table, field)`` returns the value of ``field`` with the highest mean ``test_acc`` over seeds.

    Example:
        >>> t = pd.DataFrame({"lr": [0.1, 0.1, 0.5, 0.5], "seed": [0, 1, 0, 1], "test_acc": [80, 90, 99, 60]})
        >>> check_best(lambda t, f: t.groupby(f)["test_acc"].mean().idxmax(), t, "lr")
        ✓ best lr = 0.1 (mean test accuracy 85.0% over seeds).
    """
    means = table.groupby(field)["test_acc"].mean()
    want, got = means.idxmax(), fn(table, field)
    _require(got == want, f"expected {want!r}, got {got!r}. Average over seeds first "
                          f"(table.groupby({field!r})['test_acc'].mean()), then take the arg-max.")
    _ok(f"best {field} = {want} (mean test accuracy {means.max():.1f}% over seeds).")
