"""Checks for the notebooks' exercises: a friendly ✓ when right, an AssertionError with a hint when not.

Each check compares the student's answer with an independent computation from the package, and
says what is wrong (the sign, the order, a missing term) without printing the right answer. Where
the exercise is to write what the package already has, the library's version is switched off
while the answer runs (`metakit.teaching.guard`): calling it is told, not passed. An unmodified
template or a crash becomes a one-line hint. Checks on tables (notebooks 02, 06) live in
`metakit.teaching.table_checks`, on whole runs (03–05) in `metakit.teaching.run_checks`.

Example:
    >>> check_counts(lambda n_max, c, imbalance: longtail_counts(n_max, c, imbalance), imbalance=10, n_max=50,
    ...              num_classes=2)
    Traceback (most recent call last):
    AssertionError: Not yet. Hint: my_counts called the library's metakit.data.longtail.longtail_counts: this exercise is to write it yourself (the check compares yours with it).
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.data.longtail import longtail_counts
from metakit.meta import MetaLearner, lookahead
from metakit.teaching import toy
from metakit.teaching.guard import LibraryCalled, first_derivatives, refusing
from metakit.teaching.toy import meta_loss, toy_problem


def _ok(message: str) -> None:
    print(f"✓ {message}")


def _require(condition: bool, hint: str) -> None:
    __tracebackhide__ = True                       # IPython shows the cell and the hint, not this frame
    if not condition:
        raise AssertionError(f"Not yet. Hint: {hint}")


def _call(fn: Callable, *args, what: str, refuse: tuple = (), crash: Callable | None = None):
    """``fn(*args)`` with ``refuse``'s functions switched off; a template, a call to them or a crash becomes a hint.

    ``crash(err)`` may turn an exception into a more specific hint (or None for the generic one).
    """
    __tracebackhide__ = True
    if not callable(fn):
        _require(False, f"{what} must be a function (def {what}(...)), not a {type(fn).__name__}.")
    try:
        with refusing(*refuse):
            return fn(*args)
    except NotImplementedError:
        hint = f"{what} still raises NotImplementedError: replace the placeholder line with your solution."
    except LibraryCalled as err:
        hint = (f"{what} called the library's {err}: this exercise is to write it yourself (the check compares "
                "yours with it).")
    except Exception as err:  # noqa: BLE001 — any crash of the student's code gets one line, not a traceback
        hint = (crash(err) if crash else None) or (f"{what} raised {type(err).__name__}: "
                                                  f"{(str(err).splitlines() or [''])[0]}")
    raise AssertionError(f"Not yet. Hint: {hint}") from None


def _number(value, what: str) -> float:
    __tracebackhide__ = True
    _require(value is not None, f"{what} returned None: end it with return.")
    _require(isinstance(value, (int, float, np.number)) or (torch.is_tensor(value) and value.numel() == 1),
             f"{what} must return one number, not {type(value).__name__}.")
    return float(value)


# (n_max, num_classes, imbalance) at which my_counts is checked besides the notebook's own point
COUNT_POINTS = ((100, 10, 10), (600, 7, 100), (40, 3, 4))


def check_counts(fn: Callable[[int, int, float], list], imbalance: float, n_max: int, num_classes: int,
                 profile: str = "exp") -> None:
    """``fn(n_max, num_classes, imbalance)`` gives the long tail's per-class counts, here and at `COUNT_POINTS`.

    Checked at several points, so counts written out by hand for the notebook's point do not pass;
    `metakit.data.longtail.longtail_counts` (what the answer is compared with) is switched off while ``fn`` runs.

    Example:
        >>> check_counts(lambda n, c, f: [int(n * (1 / f) ** (i / (c - 1))) for i in range(c)], 10, 50, 2)
        ✓ counts match the exp long tail at 4 points (n_max, classes, imbalance), e.g. (50, 2, 10).
    """
    __tracebackhide__ = True
    _require(callable(fn), f"pass your function itself (check_counts(my_counts, ...)), not its counts "
                           f"({type(fn).__name__}): the check calls it at several points.")
    for point in ((n_max, num_classes, imbalance), *COUNT_POINTS):
        counts = _call(fn, *point, what="my_counts", refuse=(longtail_counts,))
        _counts_at(counts, *point, profile)
    _ok(f"counts match the {profile} long tail at {1 + len(COUNT_POINTS)} points (n_max, classes, imbalance), "
        f"e.g. ({n_max}, {num_classes}, {imbalance:g}).")


def _counts_at(counts, n_max: int, num_classes: int, imbalance: float, profile: str) -> None:
    __tracebackhide__ = True
    at = f"at n_max={n_max}, num_classes={num_classes}, imbalance={imbalance:g}"
    _require(isinstance(counts, (list, tuple, np.ndarray)),
             f"my_counts must return a list with one whole number per class, not {type(counts).__name__}.")
    _require(len(counts) == num_classes, f"{at} you gave {len(counts)} counts for {num_classes} classes: one per class.")
    _require(all(isinstance(c, (int, np.integer)) or (isinstance(c, float) and c.is_integer()) for c in counts),
             "counts are whole numbers of images, one int per class.")
    counts = [int(c) for c in counts]
    want = longtail_counts(n_max, num_classes, imbalance, profile)
    if counts == want:
        return
    _require(counts != want[::-1], "class 0 is the head: the counts fall as the class index grows.")
    _require(counts[0] == want[0], f"{at} class 0 (the head) keeps all n_max = {n_max} images; yours {counts[0]}.")
    if profile == "exp":
        exact = [n_max * (1.0 / imbalance) ** (i / (num_classes - 1)) for i in range(num_classes)]
        _require(counts != [round(c) for c in exact] and counts != [math.ceil(c) for c in exact],
                 "a count is rounded down to a whole image (int), not to the nearest or up.")
        _require(counts[-1] == want[-1], f"{at} the last class (the tail) should be imbalance = {imbalance:g} times "
                                         "smaller than the head: the exponent reaches 1 at the last class.")
    i = next(i for i, (a, b) in enumerate(zip(counts, want)) if a != b)
    shape = ("it falls from n_max at class 0 to n_max/imbalance at the last class" if profile == "exp"
             else "the first half of the classes keeps n_max, the rest n_max/imbalance")
    _require(False, f"{at} class {i} keeps {counts[i]} images: too {'many' if counts[i] > want[i] else 'few'} "
                    f"for the {profile} profile ({shape}).")


def check_changed_fraction(fn: Callable[[float, int], float]) -> None:
    """``fn(noise_rate, num_classes)`` gives the expected fraction of labels uniform noise changes.

    Example:
        >>> check_changed_fraction(lambda p, c: p * (c - 1) / c)
        ✓ uniform noise changes p·(C−1)/C of the labels: it may draw the true class.
    """
    __tracebackhide__ = True
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


def _grads_held(net: nn.Module) -> dict[str, torch.Tensor]:
    """Fill every trainable ``.grad`` with a stand-in for the last real step's gradient (as in a training loop)."""
    held = {}
    for name, p in net.named_parameters():
        if p.requires_grad:
            p.grad = torch.full_like(p, 0.37)
            held[name] = p.grad.clone()
    return held


def check_lookahead(fn: Callable) -> None:
    """``fn(net, loss, lr, weight_decay)`` is θ' = θ − lr·(∇θ loss + weight_decay·θ) over the trainable θ, by name.

    θ' must stay differentiable in ``lr`` and in what the loss depends on; a parameter with
    ``requires_grad=False`` is left out, as `metakit.meta.lookahead` does (switched off while ``fn``
    runs). The parameters' ``.grad`` hold a previous gradient, as in a training loop: the look-ahead
    must neither read nor change them (``backward`` + ``.grad`` would).

    Example:
        >>> check_lookahead(lambda net, loss, lr, wd: {n: p - lr * (g + wd * p) for (n, p), g in zip(
        ...     net.named_parameters(), torch.autograd.grad(loss, list(net.parameters()), create_graph=True))})
        Traceback (most recent call last):
        AssertionError: Not yet. Hint: my_lookahead raised RuntimeError on a net with a frozen parameter (requires_grad=False): only the trainable parameters have a gradient.
    """
    __tracebackhide__ = True
    for seed, wd, frozen in ((0, 0.0, False), (1, 0.1, False), (2, 0.05, True)):
        net, x, y = _random_problem(seed, frozen)
        lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        phi = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)     # a meta-parameter in the loss
        ours = lookahead(net, phi * F.cross_entropy(net(x), y), lr, weight_decay=wd)
        held = _grads_held(net)
        frozen_hint = ("my_lookahead raised RuntimeError on a net with a frozen parameter (requires_grad=False): "
                       "only the trainable parameters have a gradient.")
        yours = _call(fn, net, phi * F.cross_entropy(net(x), y), lr, wd, what="my_lookahead", refuse=(lookahead,),
                      crash=lambda err: frozen_hint if frozen and isinstance(err, RuntimeError) else None)
        _require(isinstance(yours, dict), f"return a dict keyed by parameter name, not {type(yours).__name__}.")
        extra, missing = sorted(set(yours) - set(ours)), sorted(set(ours) - set(yours))
        _require(not extra, f"θ' holds {extra}: a frozen parameter (requires_grad=False) is not stepped; leave it out.")
        _require(not missing, f"θ' lacks {missing}: return one entry per trainable parameter.")
        params = dict(net.named_parameters())
        _require(all(params[n].grad is not None and torch.equal(params[n].grad, g) for n, g in held.items()),
                 "your look-ahead changed the parameters' .grad (in a training loop they hold the real step's "
                 "gradient): take the gradient with torch.autograd.grad(..., create_graph=True), which returns it "
                 "and leaves .grad alone.")
        grads = dict(zip(ours, torch.autograd.grad(F.cross_entropy(net(x), y) * phi, [params[n] for n in ours])))
        for name in ours:
            mine = yours[name]
            _require(torch.is_tensor(mine) and mine.shape == params[name].shape,
                     f"θ'[{name!r}] must be a tensor shaped like the parameter {tuple(params[name].shape)}.")
            _require(mine.dtype == params[name].dtype, f"θ'[{name!r}] is {mine.dtype} but the parameters are "
                                                      f"{params[name].dtype}: keep their dtype (no .float()).")
            if torch.allclose(mine, ours[name]):
                continue
            _require(not torch.allclose(mine, params[name] + lr * (grads[name] + wd * params[name])),
                     f"θ'[{name!r}] moved up the gradient: the step goes against it.")
            _require(not torch.allclose(mine, params[name] - lr * grads[name]),
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


class _Wiggle(nn.Module):
    """A ripple on the hidden features that autograd does not see (detached): finite differences do."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + 0.05 * torch.sin(40 * h).detach()


def _hypergradient(net, train_batch, meta_batch, lr: float) -> float:
    alpha = torch.tensor(lr, dtype=torch.float64, requires_grad=True)
    learner = MetaLearner()                                   # φ = α alone, plain mean loss
    learner.inner_lr = lambda loss, base: alpha
    return torch.autograd.grad(meta_loss(net, learner, train_batch, meta_batch, lr), alpha)[0].item()


def check_lr_hypergradient(fn: Callable) -> None:
    """``fn(net, train_batch, meta_batch, lr)`` is dL_meta/dα using first derivatives only.

    Refused: a gradient taken with ``create_graph=True`` (a double backward, e.g. through
    `metakit.meta.lookahead` or `metakit.teaching.toy.meta_loss`, both switched off while ``fn``
    runs), and finite differences, which a net with a ripple autograd does not see (`_Wiggle`) tells apart.

    Example:
        >>> def reference(net, tb, mb, lr):
        ...     (x, y), (xm, ym) = tb, mb
        ...     g = torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters()))
        ...     new = {n: (p - lr * gi).detach().requires_grad_() for (n, p), gi in zip(net.named_parameters(), g)}
        ...     gm = torch.autograd.grad(F.cross_entropy(functional_call(net, new, (xm,)), ym), list(new.values()))
        ...     return -sum((a * b).sum() for a, b in zip(gm, g)).item()
        >>> check_lr_hypergradient(reference)
        ✓ dL_meta/dα = −⟨∇L_meta(θ'), ∇L_train(θ)⟩ matches autograd through the look-ahead, from first derivatives only.
    """
    __tracebackhide__ = True
    library = (lookahead, meta_loss, toy.directional_difference)
    for seed, lr, wiggle in ((0, 0.1, False), (1, 0.5, False), (2, 0.3, True)):
        net, train_batch, meta_batch = toy_problem(seed=seed, modulation=_Wiggle() if wiggle else None)
        want = _hypergradient(net, train_batch, meta_batch, lr)
        with first_derivatives() as seen:
            got = _number(_call(fn, net, train_batch, meta_batch, lr, what="lr_hypergradient", refuse=library),
                          "lr_hypergradient")
        _require(not seen.double, "first derivatives only: your answer takes a gradient with create_graph=True (a "
                                  "double backward; torch.func transforms build one too). Detach θ' and make it a "
                                  "leaf, as the exercise says.")
        if np.isclose(got, want, rtol=1e-6, atol=1e-10):
            continue
        _require(not wiggle, "yours matches on smooth nets but not on one whose forward has a ripple autograd does "
                             "not see: it looks like a finite difference. Take both gradients with "
                             "torch.autograd.grad (exact first derivatives), not by moving α a little.")
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
    _ok("dL_meta/dα = −⟨∇L_meta(θ'), ∇L_train(θ)⟩ matches autograd through the look-ahead, from first derivatives only.")
