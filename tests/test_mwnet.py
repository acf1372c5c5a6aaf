"""Meta-Weight-Net: its hypergradient against the `higher` library's unrolled step, its options,
its recipe, and a smoke run through `experiments.run`."""
import copy

import higher
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metakit.experiments import Config, run, seed_everything
from metakit.meta import MetaStep
from metakit.methods import get_method
from metakit.learners import WeightNet
from metakit.methods.mwnet import MWNet


def setup(seed=0, normalize="sum"):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(64, 3)).double()
    weight_net = WeightNet(hidden=100, normalize=normalize).double()
    x, y = torch.randn(8, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (8,))
    xm, ym = torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    return net, weight_net, (x, y), (xm, ym)


def higher_hypergradient(net, weight_net, train_batch, meta_batch, lr, weight_decay):
    """The peer computation: `higher` unrolls one differentiable SGD step (double backward)."""
    (x, y), (xm, ym) = train_batch, meta_batch
    net = copy.deepcopy(net)                                  # higher's functional net shares buffers
    inner = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=weight_decay)
    with higher.innerloop_ctx(net, inner, copy_initial_weights=True) as (fnet, diffopt):
        per_sample_loss = F.cross_entropy(fnet(x), y, reduction="none")
        diffopt.step((weight_net.weights(per_sample_loss.detach()) * per_sample_loss).sum())
        meta_loss = F.cross_entropy(fnet(xm), ym)
        return torch.cat([g.flatten() for g in torch.autograd.grad(meta_loss, list(weight_net.parameters()))])


@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_jvp_hypergradient_matches_higher(normalize):
    net, weight_net, train_batch, meta_batch = setup(normalize=normalize)
    optimizer = torch.optim.SGD(net.parameters(), 0.3, momentum=0.9, weight_decay=5e-4)
    step = MetaStep(net, weight_net, optimizer, torch.optim.Adam(weight_net.parameters()), weight_decay=5e-4)
    assert step.rule == "jvp"
    ours = torch.cat([g.flatten() for g in step.hypergradient(train_batch, meta_batch).grads])
    peer = higher_hypergradient(net, weight_net, train_batch, meta_batch, 0.3, 5e-4)
    assert peer.norm() > 1e-4
    assert ((ours - peer).norm() / peer.norm()).item() < 1e-10


def test_options_are_checked():
    with pytest.raises(ValueError, match="first_order"):
        MWNet(3, [5, 3, 1], first_order=True)
    with pytest.raises(ValueError, match="colour"):
        MWNet(3, [5, 3, 1], colour="red")
    with pytest.raises(ValueError, match="hidden=0"):
        MWNet(3, [5, 3, 1], hidden=0)
    with pytest.raises(ValueError, match="normalize='max'"):
        MWNet(3, [5, 3, 1], normalize="max")
    with pytest.raises(ValueError, match="rule='jvp'"):
        MWNet(3, [5, 3, 1], rule="jvp")


def test_paper_recipe_is_mwnet_long_tail():
    config = Config(method="mwnet", profile="paper", imbalance=100).resolve()
    assert (config.model, config.epochs, config.batch_size, config.lr, config.nesterov) == ("resnet32", 100, 100, 0.1, True)
    assert (config.weight_decay, config.milestones, config.gamma, config.schedule) == (5e-4, (80, 90), 0.1, "multistep")
    assert get_method("mwnet") is MWNet


def test_weights_are_normalised_and_follow_the_loss():
    weights = WeightNet(hidden=100).weights(torch.linspace(0, 5, 10))
    assert weights.shape == (10,) and torch.all(weights > 0)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_smoke_run_trains_and_meta_updates():
    result = run(Config(method="mwnet", dataset="digits", imbalance=10, profile="smoke", progress=False))
    history = result.history
    assert {"meta_loss", "lr", "train_loss"} <= set(history.columns)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["lr"].iloc[-1] < history["lr"].iloc[0]                  # the cosine Schedule still ran
    assert history["meta_loss"].notna().all() and (history["meta_loss"] > 0).all()
    seed_everything(result.config.seed)                        # run() builds the weight net right after seeding
    initial = MWNet(10, result.split.class_counts).weight_net
    moved = [not torch.equal(a, b) for a, b in zip(initial.parameters(), result.method.weight_net.parameters())]
    assert all(moved), "the meta-updates did not change the weight net"
    assert 0 <= result.metrics["test_acc"] <= 100
