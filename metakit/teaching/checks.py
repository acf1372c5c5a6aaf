"""Checks for the notebooks' exercises: a friendly ✓ when right, an AssertionError with a hint when not.

Each check compares the student's answer with an independent computation from the package, and
says what is wrong (the sign, the order, a missing term) without printing the right answer.
Checks on whole runs (notebooks 03–05) live in `metakit.teaching.run_checks`.

Example:
    >>> check_counts([50, 5], imbalance=10, n_max=50, num_classes=2)
    ✓ counts match the exp long tail (imbalance 10, n_max 50).
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.data.longtail import longtail_counts
from metakit.studies.sweep import FIELDS
from metakit.meta import MetaLearner, lookahead
from metakit.teaching.toy import meta_loss, toy_problem


def _ok(message: str) -> None:
    print(f"✓ {message}")


def _require(condition: bool, hint: str) -> None:
    if not condition:
        raise AssertionError(f"Not yet. Hint: {hint}")


def _call(fn: Callable, *args, what: str):
    """``fn(*args)``; the unmodified template (NotImplementedError) becomes a hint, not a traceback."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise AssertionError(f"Not yet. Hint: {what} still raises NotImplementedError: replace the "
                             "placeholder line with your solution.") from None


def _number(value, what: str) -> float:
    _require(isinstance(value, (int, float, np.number)) or (torch.is_tensor(value) and value.numel() == 1),
             f"{what} must return one number, not {type(value).__name__}.")
    return float(value)


def check_counts(counts, imbalance: float, n_max: int, num_classes: int | None = None, profile: str = "exp") -> None:
    """Your per-class counts equal the long tail of ``imbalance`` (largest class ``n_max``, ``num_classes`` classes).

    Example:
        >>> check_counts([10, 1, 1], 10, 10, 3)
        Traceback (most recent call last):
        AssertionError: Not yet. Hint: class 1 keeps 1 images: too few for the exp profile at imbalance 10 (it falls from n_max at class 0 to n_max/imbalance at the last class).
    """
    _require(isinstance(counts, (list, tuple, np.ndarray)),
             f"counts must be a list with one whole number per class, not {type(counts).__name__}.")
    num_classes = len(counts) if num_classes is None else num_classes
    _require(len(counts) == num_classes, f"you gave {len(counts)} counts for {num_classes} classes: one per class.")
    _require(all(isinstance(c, (int, np.integer)) or (isinstance(c, float) and c.is_integer()) for c in counts),
             "counts are whole numbers of images, one int per class.")
    counts = [int(c) for c in counts]
    want = longtail_counts(n_max, num_classes, imbalance, profile)
    if counts != want:
        _require(counts != want[::-1], "class 0 is the head: the counts fall as the class index grows.")
        _require(counts[0] == want[0], f"class 0 (the head) keeps all n_max = {n_max} images; yours {counts[0]}.")
        if profile == "exp":
            exact = [n_max * (1.0 / imbalance) ** (i / (num_classes - 1)) for i in range(num_classes)]
            _require(counts != [round(c) for c in exact] and counts != [math.ceil(c) for c in exact],
                     "a count is rounded down to a whole image (int), not to the nearest or up.")
            _require(counts[-1] == want[-1], f"the last class (the tail) should be imbalance = {imbalance:g} times "
                                             "smaller than the head: the exponent reaches 1 at the last class.")
        i = next(i for i, (a, b) in enumerate(zip(counts, want)) if a != b)
        shape = ("it falls from n_max at class 0 to n_max/imbalance at the last class" if profile == "exp"
                 else "the first half of the classes keeps n_max, the rest n_max/imbalance")
        _require(False, f"class {i} keeps {counts[i]} images: too {'many' if counts[i] > want[i] else 'few'} "
                        f"for the {profile} profile at imbalance {imbalance:g} ({shape}).")
    _ok(f"counts match the {profile} long tail (imbalance {imbalance:g}, n_max {n_max}).")


def check_changed_fraction(fn: Callable[[float, int], float]) -> None:
    """``fn(noise_rate, num_classes)`` gives the expected fraction of labels uniform noise changes.

    Example:
        >>> check_changed_fraction(lambda p, c: p * (c - 1) / c)
        ✓ uniform noise changes p·(C−1)/C of the labels: it may draw the true class.
    """
    for p, c in itertools.product((0.2, 0.4, 0.8, 0.0), (2, 10, 100)):
        got, want = _number(_call(fn, p, c, what="changed_fraction"), "changed_fraction"), p * (c - 1) / c
        if np.isclose(got, want):
            continue
        _require(not np.isclose(got, p), "a replaced label is drawn from all C classes — including the true one, "
                                         "and then it does not change.")
        _require(False, f"for noise_rate={p}, num_classes={c} yours gives {got:.4f}: too "
                        f"{'high' if got > want else 'low'}. Of the labels the noise replaces, which keep their class?")
    _ok("uniform noise changes p·(C−1)/C of the labels: it may draw the true class.")


def _random_problem(seed: int, frozen: bool):
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    if frozen:
        net[0].bias.requires_grad_(False)                                  # a frozen parameter stays out of θ
    x = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (7,), generator=gen)
    return net, x, y


def check_lookahead(fn: Callable) -> None:
    """``fn(net, loss, lr, weight_decay)`` is θ' = θ − lr·(∇θ loss + weight_decay·θ) over the trainable θ, by name.

    θ' must stay differentiable in ``lr`` and in what the loss depends on; a parameter with
    ``requires_grad=False`` is left out, as `metakit.meta.lookahead` does.

    Example:
        >>> check_lookahead(lambda net, loss, lr, wd: lookahead(net, loss, lr, weight_decay=wd))
        ✓ your look-ahead equals metakit.meta.lookahead (with weight decay, frozen parameters left out), and its hypergradients too.
    """
    for seed, wd, frozen in ((0, 0.0, False), (1, 0.1, False), (2, 0.05, True)):
        net, x, y = _random_problem(seed, frozen)
        lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        phi = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)     # a meta-parameter in the loss
        ours = lookahead(net, phi * F.cross_entropy(net(x), y), lr, weight_decay=wd)
        try:
            yours = _call(fn, net, phi * F.cross_entropy(net(x), y), lr, wd, what="my_lookahead")  # a fresh graph
        except RuntimeError as err:
            if not frozen:
                raise
            raise AssertionError(f"Not yet. Hint: your look-ahead raised {err!r} on a net with a frozen parameter "
                                 "(requires_grad=False): only the trainable parameters have a gradient.") from None
        _require(isinstance(yours, dict), f"return a dict keyed by parameter name, not {type(yours).__name__}.")
        extra, missing = sorted(set(yours) - set(ours)), sorted(set(ours) - set(yours))
        _require(not extra, f"θ' holds {extra}: a frozen parameter (requires_grad=False) is not stepped; leave it out.")
        _require(not missing, f"θ' lacks {missing}: return one entry per trainable parameter.")
        grads = dict(zip(ours, torch.autograd.grad(F.cross_entropy(net(x), y) * phi, [p for n, p in net.named_parameters()
                                                                                     if n in ours])))
        params = dict(net.named_parameters())
        for name in ours:
            if torch.allclose(yours[name], ours[name]):
                continue
            _require(not torch.allclose(yours[name], params[name] + lr * (grads[name] + wd * params[name])),
                     f"θ'[{name!r}] moved up the gradient: the step goes against it.")
            _require(not torch.allclose(yours[name], params[name] - lr * grads[name]),
                     f"θ'[{name!r}] lacks the weight decay: with weight_decay={wd} the step also shrinks θ.")
            _require(False, f"θ'[{name!r}] differs from one SGD step with weight_decay={wd}.")
        probe = torch.randn(3, 5, dtype=torch.float64)
        out = functional_call(net, yours, (probe,)).sum()
        g_yours = torch.autograd.grad(out, [lr, phi], allow_unused=True) if out.requires_grad else (None, None)
        _require(all(g is not None for g in g_yours),
                 "θ' must stay differentiable in lr and in what the loss depends on: take the gradient "
                 "with torch.autograd.grad(..., create_graph=True), and do not .detach().")
        g_ours = torch.autograd.grad(functional_call(net, ours, (probe,)).sum(), [lr, phi])
        _require(all(torch.allclose(a, b) for a, b in zip(g_yours, g_ours)),
                 "the hypergradient through your θ' differs from autograd through metakit's look-ahead.")
    _ok("your look-ahead equals metakit.meta.lookahead (with weight decay, frozen parameters left out), "
        "and its hypergradients too.")


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
        got = _number(_call(fn, net, train_batch, meta_batch, lr, what="lr_hypergradient"), "lr_hypergradient")
        if np.isclose(got, want, rtol=1e-6, atol=1e-10):
            continue
        (x, y), (xm, ym) = train_batch, meta_batch
        params = list(net.parameters())
        g = torch.autograd.grad(F.cross_entropy(net(x), y), params)
        g_meta_at_theta = torch.autograd.grad(F.cross_entropy(net(xm), ym), params)   # the wrong point: θ, not θ'
        at_theta = -sum((a * b).sum() for a, b in zip(g_meta_at_theta, g)).item()
        _require(not np.isclose(got, -want, rtol=1e-6), "the sign is flipped: θ' = θ − α g, so a larger α moves θ' "
                                                        "against g.")
        _require(not np.isclose(got, at_theta, rtol=1e-6), "take ∇θ L_meta at the stepped weights θ', not at θ.")
        _require(False, f"yours gives {got:.6g} (seed {seed}, lr {lr}), not the derivative autograd finds through "
                        "the look-ahead: dL_meta/dα = −(∇θ L_meta at θ') · g, summed over every parameter.")
    _ok("dL_meta/dα = −⟨∇L_meta(θ'), ∇L_train(θ)⟩ matches autograd through the look-ahead.")


def check_grid(grid: dict, runs: int, must_vary: tuple[str, ...] = (), expect: dict | None = None) -> None:
    """``grid`` is a valid `metakit.studies.sweep.ablate` grid of ``runs`` configurations varying ``must_vary``.

    Args:
        grid: the student's field → values.
        runs: how many configurations the exercise asks for.
        must_vary: fields that must take at least two values; with it, no other field may vary.
        expect: the values the exercise asks for, per field (compared as sets); the hint names the
            field, never the values.

    Example:
        >>> check_grid({"imbalance": [1, 10], "noise_rate": [0.0]}, runs=2)
        ✓ a grid of 2 configurations over imbalance, noise_rate.
    """
    from metakit.experiments import Config
    from metakit.studies.sweep import jobs

    _require(isinstance(grid, dict) and len(grid) > 0, "a grid is a non-empty dict: field name → list of values.")
    for name, values in grid.items():
        _require(name in FIELDS, f"{name!r} is not a Config field; fields are {FIELDS}.")
        _require(isinstance(values, list) and len(values) > 0, f"grid[{name!r}] must be a non-empty list.")
        _require(len({repr(v) for v in values}) == len(values), f"grid[{name!r}] repeats a value: every "
                                                                "configuration would run twice.")
    for name in must_vary:
        _require(len(grid.get(name, [])) > 1, f"vary {name!r}: give it at least two values.")
    others = [name for name, values in grid.items() if len(values) > 1 and name not in must_vary]
    _require(not must_vary or not others, f"the exercise varies {', '.join(must_vary)} only; {others} varies too.")
    try:
        jobs(grid, Config(profile="smoke"))                       # resolves every config: bad values say why
    except (ValueError, TypeError) as err:
        raise AssertionError(f"Not yet. Hint: a configuration of your grid is not valid: {err}") from None
    size = int(np.prod([len(v) for v in grid.values()]))
    _require(size == runs, f"your grid has {size} configurations (the product of the list lengths); we asked for {runs}.")
    for name, values in (expect or {}).items():
        _require({repr(v) for v in grid.get(name, [])} == {repr(v) for v in values},
                 f"grid[{name!r}] = {grid.get(name)!r} holds other values than the exercise asks for; reread it.")
    _ok(f"a grid of {size} configurations over {', '.join(grid)}.")


def _best_tables(field: str) -> list[pd.DataFrame]:
    """Tables on which the single best run, the median, the max and the first seed all point elsewhere than the mean."""
    runs = {"a": [90.0, 10.0, 10.0],      # the single best run, the best maximum and first seed
            "b": [40.0, 45.0, 70.0],      # the best mean: the answer
            "c": [50.0, 50.0, 50.0],      # the best median
            "d": [20.0, 20.0, 20.0]}      # the lowest mean
    tables = []
    for values in ((3, 7, 11, 15), (13, 9, 15, 5)):               # b is 7, then 9: never first or last by value
        label = dict(zip("abcd", values))
        tables.append(pd.DataFrame([{field: label[k], "seed": s, "test_acc": acc}
                                    for k, accs in runs.items() for s, acc in enumerate(accs)]))
    return tables


def check_best(fn: Callable[[pd.DataFrame, str], object], table: pd.DataFrame, field: str) -> None:
    """``fn(table, field)`` returns the value of ``field`` with the highest mean ``test_acc`` over seeds.

    ``fn`` runs on ``table`` and on two small tables of the check's own, on which the single best
    run, the median and the maximum over seeds point to another value than the mean.

    Example:
        >>> t = pd.DataFrame({"lr": [0.1, 0.1, 0.5, 0.5], "seed": [0, 1, 0, 1], "test_acc": [80, 90, 99, 60]})
        >>> check_best(lambda t, f: t.groupby(f)["test_acc"].mean().idxmax(), t, "lr")
        ✓ best lr = 0.1 (mean test accuracy 85.0% over seeds).
    """
    for t in [*_best_tables(field), table]:
        means = t.groupby(field)["test_acc"].mean()
        want, got = means.idxmax(), _call(fn, t.copy(), field, what="best_setting")
        _require(np.ndim(got) == 0 and not isinstance(got, (dict, pd.DataFrame, pd.Series)),
                 f"return one value of {field!r}, not a {type(got).__name__}.")
        if got == want:
            continue
        by_seed = t.groupby(field)["test_acc"]
        _require(got in set(means.index), f"yours {got!r} is not a value of {field!r} in the table.")
        _require(got != t.loc[t["test_acc"].idxmax(), field], "yours is the setting of the single best run: "
                                                             "average test_acc over the seeds first.")
        _require(got != by_seed.median().idxmax() and got != by_seed.max().idxmax(),
                 "average over seeds with the mean (not the median or the maximum).")
        _require(got != means.idxmin(), "yours has the lowest mean: take the highest.")
        _require(False, f"yours {got!r} is not the value of {field!r} with the highest mean test_acc over seeds.")
    means = table.groupby(field)["test_acc"].mean()
    _ok(f"best {field} = {means.idxmax()} (mean test accuracy {means.max():.1f}% over seeds).")
