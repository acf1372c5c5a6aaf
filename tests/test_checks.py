"""Exercise checks accept right answers and reject wrong ones with a hint."""
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from metakit.teaching import checks
from metakit.meta import lookahead


def test_counts(capsys):
    checks.check_counts([100, 31, 10], imbalance=10, n_max=100)
    assert "✓" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="class 1 should keep"):
        checks.check_counts([100, 50, 10], imbalance=10, n_max=100)
    checks.check_counts([100, 100, 10, 10], imbalance=10, n_max=100, profile="step")


def test_changed_fraction_rejects_p():
    with pytest.raises(AssertionError, match="true one"):
        checks.check_changed_fraction(lambda p, c: p)


def test_lookahead_rejects_detached_and_wrong_sign():
    def detached(net, loss, lr):
        return {n: (p - lr * g).detach() for (n, p), g in
                zip(net.named_parameters(), torch.autograd.grad(loss, list(net.parameters())))}

    def plus(net, loss, lr):
        return {n: p + lr * g for (n, p), g in zip(net.named_parameters(),
                                                   torch.autograd.grad(loss, list(net.parameters()), create_graph=True))}
    with pytest.raises(AssertionError, match="create_graph"):
        checks.check_lookahead(detached)
    with pytest.raises(AssertionError, match="differs"):
        checks.check_lookahead(plus)
    checks.check_lookahead(lambda net, loss, lr: lookahead(net, loss, lr))


def lr_hypergradient(net, train_batch, meta_batch, lr):
    """dL_meta/dα = −⟨∇θ L_meta(θ'), ∇θ L_train(θ)⟩, first derivatives only."""
    (x, y), (xm, ym) = train_batch, meta_batch
    params = dict(net.named_parameters())
    g = torch.autograd.grad(F.cross_entropy(net(x), y), list(params.values()))
    stepped = {n: (p - lr * gi).detach().requires_grad_() for (n, p), gi in zip(params.items(), g)}
    meta = F.cross_entropy(functional_call(net, stepped, (xm,)), ym)
    g_meta = torch.autograd.grad(meta, list(stepped.values()))
    return -sum((a * b).sum() for a, b in zip(g_meta, g)).item()


def test_lr_hypergradient_first_order_formula():
    checks.check_lr_hypergradient(lr_hypergradient)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_lr_hypergradient(lambda *a: -lr_hypergradient(*a))


def test_grid_and_best():
    with pytest.raises(AssertionError, match="not a Config field"):
        checks.check_grid({"imbalanse": [1, 2]}, runs=2)
    with pytest.raises(AssertionError, match="has 2 configurations"):
        checks.check_grid({"imbalance": [1, 2]}, runs=4)
    with pytest.raises(AssertionError, match="vary 'seed'|vary 'noise_rate'"):
        checks.check_grid({"imbalance": [1, 2]}, runs=2, must_vary=("noise_rate",))
    t = pd.DataFrame({"lr": [0.1, 0.1, 0.5, 0.5], "seed": [0, 1, 0, 1], "test_acc": [80, 90, 99, 60]})
    with pytest.raises(AssertionError, match="Average over seeds"):
        checks.check_best(lambda t, f: t.loc[t["test_acc"].idxmax(), f], t, "lr")


def test_lookahead_without_create_graph_is_rejected():
    def first_order(net, loss, lr):
        grads = torch.autograd.grad(loss, list(net.parameters()))            # no create_graph
        return {n: p - lr * g for (n, p), g in zip(net.named_parameters(), grads)}
    with pytest.raises(AssertionError, match="create_graph"):
        checks.check_lookahead(first_order)
