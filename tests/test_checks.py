"""Every exercise check both ways: the right answer passes; plausible wrong ones fail with a hint that
says what is wrong and does not contain the answer."""
import math
import re

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metakit.data.longtail import longtail_counts
from metakit.meta import lookahead
from metakit.teaching import checks


def template(*args):
    raise NotImplementedError("Exercise: write your solution here")


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        check(*args, **kwargs)
    message = str(info.value)
    assert message.startswith("Not yet. Hint: ")
    return message


def numbers(message: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", message))


# ---- check_counts: n_max 600, 10 classes, imbalance 50 (expected counts 600, 388, ..., 12)
N_MAX, C, IF = 600, 10, 50
RIGHT = longtail_counts(N_MAX, C, IF)
EXACT = [N_MAX * (1 / IF) ** (i / (C - 1)) for i in range(C)]


def test_counts_right_answer_passes(capsys):
    checks.check_counts(RIGHT, imbalance=IF, n_max=N_MAX, num_classes=C)
    checks.check_counts([100, 100, 10, 10], imbalance=10, n_max=100, num_classes=4, profile="step")
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong,hint", [
    ([int(N_MAX * (1 / IF) ** (i / C)) for i in range(C)], "exponent reaches 1 at the last class"),   # off by one
    (RIGHT[::-1], "class 0 is the head"),                                                             # wrong order
    ([round(c) for c in EXACT], "rounded down"),
    (RIGHT[:-1], "9 counts for 10 classes"),                                                          # a class short
    ({}, "not dict"),
    (None, "not NoneType"),
    ([N_MAX] * C, "the tail"),                                                                        # imbalance 1
    (RIGHT[:3] + [RIGHT[3] + 7] + RIGHT[4:], "class 3 keeps"),
])
def test_counts_wrong_answers_fail_without_the_answer(wrong, hint):
    message = failure(checks.check_counts, wrong, imbalance=IF, n_max=N_MAX, num_classes=C)
    assert hint in message
    assert not numbers(message) & {str(c) for c in RIGHT[1:]}, message          # no expected count leaks
    assert str(RIGHT) not in message


def test_counts_step_profile_wrong_half():
    message = failure(checks.check_counts, [100, 10, 10, 10], imbalance=10, n_max=100, num_classes=4, profile="step")
    assert "class 1 keeps 10 images: too few" in message


# ---- check_changed_fraction
def test_changed_fraction_both_ways(capsys):
    checks.check_changed_fraction(lambda p, c: p * (c - 1) / c)
    assert "✓" in capsys.readouterr().out
    assert "including the true one" in failure(checks.check_changed_fraction, lambda p, c: p)
    low = failure(checks.check_changed_fraction, lambda p, c: p / c)
    assert "too low" in low and "0.1000" not in low                       # the answer at p=0.2, C=2 is 0.1
    assert "one number, not dict" in failure(checks.check_changed_fraction, lambda p, c: {})
    assert "NotImplementedError" in failure(checks.check_changed_fraction, template)


# ---- check_lookahead: θ' = θ − lr·(g + wd·θ), trainable parameters only
def right_lookahead(net, loss, lr, weight_decay):
    params = {n: p for n, p in net.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {n: p - lr * (g + weight_decay * p) for (n, p), g in zip(params.items(), grads)}


def test_lookahead_right_answers_pass(capsys):
    checks.check_lookahead(right_lookahead)
    checks.check_lookahead(lambda net, loss, lr, wd: lookahead(net, loss, lr, weight_decay=wd))
    assert capsys.readouterr().out.count("✓") == 2


def cell_7(net, loss, lr, weight_decay):
    """Notebook 01's hand-written step, copied: no weight decay, every parameter."""
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad(loss, params, create_graph=True)
    return {n: p - lr * g for n, p, g in zip(names, params, grads)}


def all_params(net, loss, lr, weight_decay):
    names, params = zip(*net.named_parameters())
    grads = torch.autograd.grad(loss, [p for p in params if p.requires_grad], create_graph=True, allow_unused=True)
    out = right_lookahead(net, loss, lr, weight_decay)
    return {**out, **{n: p for n, p in net.named_parameters() if not p.requires_grad}}


def plus(net, loss, lr, weight_decay):
    params = {n: p for n, p in net.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {n: p + lr * (g + weight_decay * p) for (n, p), g in zip(params.items(), grads)}


def detached(net, loss, lr, weight_decay):
    return {n: v.detach() for n, v in right_lookahead(net, loss, lr, weight_decay).items()}


def first_order(net, loss, lr, weight_decay):
    params = {n: p for n, p in net.named_parameters() if p.requires_grad}
    grads = torch.autograd.grad(loss, list(params.values()))                     # no create_graph
    return {n: p - lr * (g + weight_decay * p) for (n, p), g in zip(params.items(), grads)}


@pytest.mark.parametrize("wrong,hint", [
    (template, "NotImplementedError"),
    (lambda *a: {}, "lacks"),
    (lambda *a: [], "return a dict"),
    (plus, "moved up the gradient"),
    (lambda net, loss, lr, wd: right_lookahead(net, loss, lr, 0.0), "lacks the weight decay"),
    (cell_7, "lacks the weight decay"),
    (all_params, "frozen parameter"),
    (detached, "create_graph=True"),
    (first_order, "create_graph=True"),
])
def test_lookahead_wrong_answers_fail(wrong, hint):
    message = failure(checks.check_lookahead, wrong)
    assert hint in message
    assert "grad(" not in message.replace("torch.autograd.grad(..., create_graph=True)", "")   # no solution code


def test_lookahead_that_crashes_on_a_frozen_parameter_is_told_why():
    def crashes(net, loss, lr, weight_decay):
        params = dict(net.named_parameters())
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)   # errors on the frozen one
        return {n: p - lr * (g + weight_decay * p) for (n, p), g in zip(params.items(), grads)}
    assert "only the trainable parameters have a gradient" in failure(checks.check_lookahead, crashes)


# ---- check_lr_hypergradient
def lr_hypergradient(net, train_batch, meta_batch, lr, at_theta=False):
    """dL_meta/dα = −⟨∇θ L_meta(θ'), ∇θ L_train(θ)⟩, first derivatives only."""
    (x, y), (xm, ym) = train_batch, meta_batch
    params = dict(net.named_parameters())
    g = torch.autograd.grad(F.cross_entropy(net(x), y), list(params.values()))
    step = 0.0 if at_theta else lr
    stepped = {n: (p - step * gi).detach().requires_grad_() for (n, p), gi in zip(params.items(), g)}
    meta = F.cross_entropy(functional_call(net, stepped, (xm,)), ym)
    g_meta = torch.autograd.grad(meta, list(stepped.values()))
    return -sum((a * b).sum() for a, b in zip(g_meta, g)).item()


def test_lr_hypergradient_both_ways(capsys):
    checks.check_lr_hypergradient(lr_hypergradient)
    assert "✓" in capsys.readouterr().out
    right = lr_hypergradient(*checks.toy_problem(seed=0), 0.1)
    for wrong, hint in [(lambda *a: -lr_hypergradient(*a), "sign is flipped"),
                        (lambda *a: lr_hypergradient(*a, at_theta=True), "not at θ"),
                        (lambda *a: 2 * lr_hypergradient(*a), "summed over every parameter"),
                        (lambda *a: {}, "one number"), (template, "NotImplementedError")]:
        message = failure(checks.check_lr_hypergradient, wrong)
        assert hint in message and f"{right:.6g}" not in message and f"{right:.4g}" not in message


# ---- check_grid
GRID = {"lt_profile": ["exp", "step"], "imbalance": [10, 50]}
ASK = dict(runs=4, must_vary=("lt_profile", "imbalance"))


def test_grid_right_answer_passes(capsys):
    checks.check_grid(GRID, **ASK, expect={"imbalance": [50, 10]})
    checks.check_grid({"imbalance": [1, 10], "noise_rate": [0.0]}, runs=2)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong,hint", [
    ({}, "non-empty dict"),
    ([("lt_profile", ["exp", "step"])], "non-empty dict"),
    ({"lt_profile": ["exp", "exp"], "imbalance": [10, 50]}, "repeats a value"),
    ({"lt_profile": ["exp", "linear"], "imbalance": [10, 50]}, "not valid"),
    ({"lt_profile": ["exp", "step"], "imbalance": [10]}, "vary 'imbalance'"),
    ({"lt_profile": ["exp", "step"], "imbalance": [10, 50], "seed": [0, 1]}, "seed"),
    ({"lt_profile": ["exp", "step"], "imbalance": [10, 50, 100]}, "6 configurations"),
    ({"lt_profile": "exp", "imbalance": [10, 50]}, "non-empty list"),
    ({"imbalanse": [10, 50], "lt_profile": ["exp", "step"]}, "not a Config field"),
])
def test_grid_wrong_answers_fail(wrong, hint):
    assert hint in failure(checks.check_grid, wrong, **ASK)


def test_grid_wrong_values_fail_without_naming_the_right_ones():
    message = failure(checks.check_grid, {"lt_profile": ["exp", "step"], "imbalance": [10, 100]}, **ASK,
                      expect={"imbalance": [10, 50]})
    assert "grid['imbalance']" in message and "50" not in message


# ---- check_best
def test_best_right_answer_passes(capsys):
    t = pd.DataFrame({"lr": [0.1, 0.1, 0.5, 0.5], "seed": [0, 1, 0, 1], "test_acc": [80, 90, 99, 60]})
    checks.check_best(lambda t, f: t.groupby(f)["test_acc"].mean().idxmax(), t, "lr")
    assert "best lr = 0.1" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (lambda t, f: t.loc[t["test_acc"].idxmax(), f], "single best run"),
    (lambda t, f: t.groupby(f)["test_acc"].median().idxmax(), "not the median"),
    (lambda t, f: t.groupby(f)["test_acc"].max().idxmax(), "single best run"),
    (lambda t, f: t.groupby(f)["test_acc"].mean().idxmin(), "lowest mean"),
    (lambda t, f: t[t["seed"] == 0].groupby(f)["test_acc"].mean().idxmax(), "single best run"),
    (lambda t, f: t.groupby(f)["test_acc"].mean(), "not a Series"),
    (lambda t, f: t.groupby(f)["test_acc"].mean().max(), "not a value of"),
    (lambda t, f: {}, "not a dict"),
    (template, "NotImplementedError"),
])
def test_best_wrong_answers_fail_without_the_answer(wrong, hint):
    t = pd.DataFrame({"imbalance": [1, 1, 50, 50], "seed": [0, 1, 0, 1], "test_acc": [80, 90, 99, 60]})
    message = failure(checks.check_best, wrong, t, "imbalance")
    assert hint in message
    assert not numbers(message) & {"7", "9"}, message              # the best values of the check's own tables


def test_best_catches_the_single_best_run_even_when_the_notebook_table_agrees():
    """On this table the single best run and the best mean coincide: the check's own tables still catch it."""
    t = pd.DataFrame({"imbalance": [1, 1, 50, 50], "seed": [0, 1, 0, 1], "test_acc": [95, 90, 60, 50]})
    assert "single best run" in failure(checks.check_best, lambda t, f: t.loc[t["test_acc"].idxmax(), f], t, "imbalance")
