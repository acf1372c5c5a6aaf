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
from metakit.teaching import checks, table_checks


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


# ---- check_counts: my_counts(n_max, num_classes, imbalance), checked at the notebook's point and at COUNT_POINTS
N_MAX, C, IF = 600, 10, 50
RIGHT = longtail_counts(N_MAX, C, IF)


def right_counts(n_max, num_classes, imbalance):
    return [int(n_max * (1 / imbalance) ** (i / (num_classes - 1))) for i in range(num_classes)]


def test_counts_right_answer_passes(capsys):
    checks.check_counts(right_counts, imbalance=IF, n_max=N_MAX, num_classes=C)
    assert capsys.readouterr().out.count("✓") == 1


@pytest.mark.parametrize("wrong,hint", [
    (lambda n, c, f: [int(n * (1 / f) ** (i / c)) for i in range(c)], "exponent reaches 1 at the last class"),
    (lambda n, c, f: right_counts(n, c, f)[::-1], "class 0 is the head"),
    (lambda n, c, f: [round(n * (1 / f) ** (i / (c - 1))) for i in range(c)], "rounded down"),
    (lambda n, c, f: right_counts(n, c, f)[:-1], "9 counts for 10 classes"),
    (lambda n, c, f: {}, "not dict"),
    (lambda n, c, f: None, "not NoneType"),
    (lambda n, c, f: [n] * c, "the tail"),
    (lambda n, c, f: RIGHT, "at n_max=100, num_classes=10, imbalance=10"),        # hard-coded: right at one point only
    (lambda n, c, f: [v + (i == 2) for i, v in enumerate(right_counts(n, c, f))], "class 2 keeps 252 images: too many"),
    (template, "NotImplementedError"),
    (lambda n, c: [], "raised TypeError"),                                           # a crash: one line, no traceback
    (longtail_counts, "called the library's metakit.data.longtail.longtail_counts"),  # my_counts = longtail_counts
    (lambda n, c, f: longtail_counts(n, c, f), "write it yourself"),                 # a wrapper
])
def test_counts_wrong_answers_fail_without_the_answer(wrong, hint):
    message = failure(checks.check_counts, wrong, imbalance=IF, n_max=N_MAX, num_classes=C)
    assert hint in message, message
    assert not numbers(message) & {str(c) for c in RIGHT[1:]}, message          # no expected count leaks
    assert str(RIGHT) not in message


def test_counts_given_as_a_list_are_refused():
    assert "pass your function itself" in failure(checks.check_counts, RIGHT, imbalance=IF, n_max=N_MAX, num_classes=C)


def test_counts_step_profile_wrong_half():
    wrong = lambda n, c, f: [n] + [int(n / f)] * (c - 1)                          # noqa: E731
    message = failure(checks.check_counts, wrong, imbalance=10, n_max=100, num_classes=4, profile="step")
    assert "class 1 keeps 10 images: too few" in message


def test_the_library_is_back_after_a_refused_answer():
    failure(checks.check_counts, longtail_counts, imbalance=IF, n_max=N_MAX, num_classes=C)
    assert longtail_counts(N_MAX, C, IF) == RIGHT


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
    assert capsys.readouterr().out.count("✓") == 1


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


def stateful(net, loss, lr, weight_decay):
    """backward(create_graph=True) and .grad: adds to whatever .grad held."""
    loss.backward(create_graph=True)
    return {n: p - lr * (p.grad + weight_decay * p) for n, p in net.named_parameters() if p.requires_grad}


def stateful_zeroed(net, loss, lr, weight_decay):
    net.zero_grad()
    return stateful(net, loss, lr, weight_decay)


@pytest.mark.parametrize("wrong,hint", [
    (stateful, "changed the parameters' .grad"),
    (stateful_zeroed, "changed the parameters' .grad"),
    (lambda *a: {n: v.float() for n, v in right_lookahead(*a).items()}, "is torch.float32 but the parameters are "
                                                                        "torch.float64"),
    (lookahead, "called the library's metakit.meta.core.lookahead"),                 # my_lookahead = lookahead
    (lambda net, loss, lr, wd: lookahead(net, loss, lr, weight_decay=wd), "write it yourself"),
    (lambda net, loss, lr: {}, "raised TypeError"),
])
def test_lookahead_stateful_float32_and_the_library_fail(wrong, hint):
    assert hint in failure(checks.check_lookahead, wrong)


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


def finite_difference(net, train_batch, meta_batch, lr, eps=1e-5):
    (x, y), (xm, ym) = train_batch, meta_batch
    params = dict(net.named_parameters())
    g = torch.autograd.grad(F.cross_entropy(net(x), y), list(params.values()))
    with torch.no_grad():
        def at(a):
            return F.cross_entropy(functional_call(net, {n: p - a * gi for (n, p), gi in zip(params.items(), g)},
                                                   (xm,)), ym).item()
        return (at(lr + eps) - at(lr - eps)) / (2 * eps)


def double_backward(net, train_batch, meta_batch, lr):
    """Exact, but through a graph built with create_graph=True."""
    (x, y), (xm, ym) = train_batch, meta_batch
    alpha = torch.tensor(lr, dtype=torch.float64, requires_grad=True)
    params = dict(net.named_parameters())
    g = torch.autograd.grad(F.cross_entropy(net(x), y), list(params.values()), create_graph=True)
    stepped = {n: p - alpha * gi for (n, p), gi in zip(params.items(), g)}
    return torch.autograd.grad(F.cross_entropy(functional_call(net, stepped, (xm,)), ym), alpha)[0].item()


def through_the_library(net, train_batch, meta_batch, lr):
    alpha = torch.tensor(lr, dtype=torch.float64, requires_grad=True)
    learner = checks.MetaLearner()
    learner.inner_lr = lambda loss, base: alpha
    return torch.autograd.grad(checks.meta_loss(net, learner, train_batch, meta_batch, lr), alpha)[0].item()


@pytest.mark.parametrize("wrong,hint", [
    (finite_difference, "looks like a finite difference"),
    (double_backward, "first derivatives only"),
    (through_the_library, "called the library's metakit.teaching.toy.meta_loss"),
])
def test_lr_hypergradient_refuses_finite_differences_and_second_order_graphs(wrong, hint):
    assert abs(wrong(*checks.toy_problem(seed=0), 0.1) - lr_hypergradient(*checks.toy_problem(seed=0), 0.1)) < 1e-6
    assert hint in failure(checks.check_lr_hypergradient, wrong)


# ---- check_grid
GRID = {"lt_profile": ["exp", "step"], "imbalance": [10, 50]}
ASK = dict(runs=4, must_vary=("lt_profile", "imbalance"))


def test_grid_right_answer_passes(capsys):
    table_checks.check_grid(GRID, **ASK, expect={"imbalance": [50, 10]})
    table_checks.check_grid({"imbalance": [1, 10], "noise_rate": [0.0]}, runs=2)
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
    assert hint in failure(table_checks.check_grid, wrong, **ASK)


def test_grid_wrong_values_fail_without_naming_the_right_ones():
    message = failure(table_checks.check_grid, {"lt_profile": ["exp", "step"], "imbalance": [10, 100]}, **ASK,
                      expect={"imbalance": [10, 50]})
    assert "grid['imbalance']" in message and "50" not in message


# ---- check_best: selected on the mean validation accuracy over seeds
T = pd.DataFrame({"imbalance": [1, 1, 50, 50], "seed": [0, 1, 0, 1], "val_acc": [80, 90, 99, 60],
                  "test_acc": [80, 90, 99, 99]})


def test_best_right_answer_on_val_acc_passes(capsys):
    table_checks.check_best(lambda t, f: t.groupby(f)["val_acc"].mean().idxmax(), T, "imbalance")
    assert "best imbalance = 1" in capsys.readouterr().out
    table_checks.check_best(lambda t, f: t.groupby(f)["val_acc"].mean().idxmax(), T.drop(columns="val_acc"), "imbalance")
    assert "has no val_acc column" in capsys.readouterr().out       # ablate's table: the check's own tables decide


@pytest.mark.parametrize("wrong,hint", [
    (lambda t, f: t.groupby(f)["test_acc"].mean().idxmax(), "selects on test_acc"),
    (lambda t, f: t.loc[t["val_acc"].idxmax(), f], "single best run"),
    (lambda t, f: t.groupby(f)["val_acc"].median().idxmax(), "not the median"),
    (lambda t, f: t.groupby(f)["val_acc"].max().idxmax(), "single best run"),
    (lambda t, f: t.groupby(f)["val_acc"].mean().idxmin(), "lowest mean"),
    (lambda t, f: t[t["seed"] == 0].groupby(f)["val_acc"].mean().idxmax(), "single best run"),
    (lambda t, f: t.groupby(f)["val_acc"].mean(), "not a Series"),
    (lambda t, f: t.groupby(f)["val_acc"].mean().max(), "not a value of"),
    (lambda t, f: {}, "not a dict"),
    (template, "NotImplementedError"),
    (lambda t, f: t["no_such_column"], "raised KeyError"),
])
def test_best_wrong_answers_fail_without_the_answer(wrong, hint):
    message = failure(table_checks.check_best, wrong, T, "imbalance")
    assert hint in message, message
    assert not numbers(message) & {"7", "9"}, message              # the best values of the check's own tables


# ---- check_few_shot_gain (notebook 02): mean few_acc of the label minus ce's, over every seed
ROWS = [{"method": m, "seed": s, "few_acc": acc} for s in range(2) for m, acc in (("ce", 10.0 + s), ("mfm", 30.0 - s))]


def right_gain(rows, label):
    df = pd.DataFrame(rows)
    return df.loc[df.method == label, "few_acc"].mean() - df.loc[df.method == "ce", "few_acc"].mean()


def gain_by(stat):
    return lambda rows, label: (lambda m: m[label] - m["ce"])(pd.DataFrame(rows).groupby("method")["few_acc"].agg(stat))


def test_few_shot_gain_both_ways(capsys):
    table_checks.check_few_shot_gain(right_gain, ROWS)
    assert "✓" in capsys.readouterr().out
    for wrong, hint in [(gain_by("median"), "the median"), (gain_by("max"), "the best seed"),
                        (gain_by("first"), "the first row"),                 # one live seed: right on the notebook's rows
                        (lambda r, l: -right_gain(r, l), "sign is flipped"),
                        (lambda r, l: pd.DataFrame(r).query("method == @l")["few_acc"].mean(), "subtract ce's"),
                        (template, "NotImplementedError"), (lambda r: 0, "raised TypeError")]:
        message = failure(table_checks.check_few_shot_gain, wrong, ROWS)
        assert hint in message and "47" not in message and "7.0" not in message, message


# ---- check_beta_change (notebook 02): what β = 1 on fc alone does to the logits
def beta_problem(attach_to="fc", beta=1.0):
    from metakit.learners.modulation import attach
    from metakit.models import build_model

    torch.manual_seed(0)
    net = build_model("digits_cnn", 10, (1, 8, 8)).eval()
    x = torch.randn(8, 1, 8, 8)
    before = net(x)
    if attach_to:
        mod = attach(net, attach_to)
        with torch.no_grad():
            mod.layer("fc").beta.fill_(beta)
    return net, x, before


def test_beta_change_both_ways(capsys):
    net, x, before = beta_problem()
    table_checks.check_beta_change(net(x) - before, net, x)
    assert "✓" in capsys.readouterr().out
    plain, x, _ = beta_problem(attach_to=None)
    for (net, x, before), change, hint in [
            ((plain, x, None), plain.fc.weight.sum(1), "net has no modulation"),            # no modulation at all
            (beta_problem(), beta_problem()[0].fc.weight.sum(1), "one row per image"),
            (beta_problem(beta=0.5), None, "still None"),
            (beta_problem(beta=0.5), torch.zeros(8, 10), "set every β"),
            (beta_problem("blocks+fc"), torch.zeros(8, 10), "attach to 'fc' only"),
            (beta_problem(), torch.zeros(8, 10), "change differs")]:
        message = failure(table_checks.check_beta_change, change, net, x)
        assert hint in message and "weight.sum" not in message, message
    net, x, before = beta_problem()
    assert "sign is flipped" in failure(table_checks.check_beta_change, before - net(x), net, x)
