"""The toy look-ahead equals MetaStep's hypergradient and finite differences, for all three entries."""
import pytest
import torch

from metakit.meta import MetaStep, lookahead, theta
from metakit.teaching.toy import FeatureScale, LossToLR, WeightNet, directional_difference, meta_loss, toy_problem

INNER_LR = 0.5


def setup(kind, dataset="digits"):
    if kind == "forward":
        learner = FeatureScale(16)
        net, tb, mb = toy_problem(seed=1, modulation=learner, dataset=dataset)
    else:
        learner = WeightNet() if kind == "loss" else LossToLR()
        net, tb, mb = toy_problem(seed=1, dataset=dataset)
    return net, learner, tb, mb


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
@pytest.mark.parametrize("kind", ["loss", "forward", "lr"])
def test_hand_written_hypergradient_equals_metastep_and_finite_differences(kind, dataset):
    net, learner, tb, mb = setup(kind, dataset)
    phi = list(learner.parameters())
    hand = torch.autograd.grad(meta_loss(net, learner, tb, mb, INNER_LR), phi)
    step = MetaStep(net, learner, torch.optim.SGD(theta(net, learner).values(), lr=INNER_LR),
                    torch.optim.SGD(phi, lr=0.0))
    step.meta_update(tb, mb)
    for h, p in zip(hand, phi):
        assert torch.allclose(h, p.grad, rtol=1e-10, atol=1e-12)
    assert any(h.abs().sum() > 1e-8 for h in hand)  # a zero gradient would make the test vacuous
    direction = [torch.randn_like(p) for p in phi]
    fd = directional_difference(lambda: meta_loss(net, learner, tb, mb, INNER_LR), phi, direction)
    analytic = sum((h * d).sum() for h, d in zip(hand, direction)).item()
    assert fd == pytest.approx(analytic, rel=1e-5, abs=1e-9)


def test_lookahead_matches_hand_step():
    net, (x, y), _ = toy_problem(seed=2)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)
    stepped = lookahead(net, loss, 0.3)
    for (name, p), g in zip(net.named_parameters(), grads):
        assert torch.allclose(stepped[name], p - 0.3 * g)


def test_noisy_labels_in_the_toy_batch_and_bad_rate():
    _, (_, y_noisy), _ = toy_problem(seed=0, noise_rate=0.5)
    _, (_, y_clean), _ = toy_problem(seed=0, noise_rate=0.0)
    assert 0 < (y_noisy != y_clean).float().mean() < 1
    with pytest.raises(ValueError, match="noise_rate=1"):
        toy_problem(noise_rate=1)


def test_meta_set_votes_against_wrong_labels_after_some_training():
    from metakit.teaching.toy import SampleWeights
    net, (x, y), meta_batch = toy_problem(seed=1)
    _, (_, clean), _ = toy_problem(seed=1, noise_rate=0.0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    votes = SampleWeights(len(y))
    vote = -torch.autograd.grad(meta_loss(net, votes, (x, y), meta_batch, INNER_LR), votes.weight)[0]
    wrong = y != clean
    assert vote[~wrong].mean() > 0 > vote[wrong].mean()


def test_mnist1d_toy_batches_are_standardised_signals():
    net, (x, y), (xm, ym) = toy_problem(seed=0, dataset="mnist1d")
    assert tuple(x.shape) == (64, 40) and tuple(xm.shape) == (30, 40) and net.body.in_features == 40
    assert x.dtype == torch.float64 and abs(float(x.mean())) < 0.5 and set(y.tolist()) <= set(range(10))
