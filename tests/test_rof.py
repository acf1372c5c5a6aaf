"""The reverse-over-forward ("rof") rule and the cause of its old disagreement on ResNet-32.

The cause (metakit.meta.norms): reverse mode through PyTorch's fused train-mode normalisation
JVP drops the term through the batch statistics, so ∇φ ⟨∇θ L_train, v⟩ is wrong exactly when φ
sits upstream of a train-mode BatchNorm (MFM after a block), and right when every BatchNorm
lies before φ. The rof rule runs normalisations as primitive ops; it must match the double
backward and finite differences (float64), and the fused variant must not.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.learners.modulation import attach
from metakit.meta import MetaStep, cloned_buffers, theta
from metakit.meta.norms import primitive_norms
from metakit.meta.rules import general_rule, rof_rule
from metakit.models import build_model


class Tiny(nn.Module):
    """conv → conv → norm → ReLU → linear on (B, 1, 4, 4); MFM modulation attaches by module name."""

    def __init__(self, norm):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.norm = {"batch": lambda: nn.BatchNorm2d(3), "group": lambda: nn.GroupNorm(1, 3),
                     "layer": lambda: nn.LayerNorm([3, 4, 4]),
                     "instance": lambda: nn.InstanceNorm2d(3, affine=True)}[norm]()
        self.fc = nn.Linear(48, 3)

    def forward(self, x):
        return self.fc(F.relu(self.norm(self.conv2(self.conv1(x)))).flatten(1))     # (B, 3)


def tiny(position="before_bn", norm="batch", seed=0):
    """A float64 `Tiny` with γ/β (non-identity) after conv1 (upstream of the norm) or after the
    BatchNorm (nothing normalised downstream of φ), and a train/meta batch pair."""
    torch.manual_seed(seed)
    net = Tiny(norm).double()
    modulation = attach(net, ["conv1" if position == "before_bn" else "norm"])
    with torch.no_grad():
        for p in modulation.parameters():
            p.add_(0.3 * torch.randn_like(p))
    batches = [(torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,))) for _ in range(2)]
    return net, modulation, batches


def meta_step(net, learner, meta_mode="train", weight_decay=1e-2, rule="auto", lr=0.5):
    optimizer = torch.optim.SGD(theta(net, learner).values(), lr, momentum=0.9, weight_decay=weight_decay)
    return MetaStep(net, learner, optimizer, torch.optim.SGD(learner.parameters(), 0.1),
                    weight_decay=weight_decay, meta_mode=meta_mode, rule=rule)


def look_ahead_loss(step, train_batch, meta_batch):
    """L_meta(θ'(φ); φ) from scratch (independent of the rules): the finite differences' function."""
    (x, y), (xm, ym) = train_batch, meta_batch
    net, params = step.net, theta(step.net, step.learner)
    loss = F.cross_entropy(functional_call(net, {**params, **cloned_buffers(net)}, (x,)), y)
    grads = torch.autograd.grad(loss, list(params.values()))
    virtual = {n: p - step.base_lr * (g + step.weight_decay * p) for (n, p), g in zip(params.items(), grads)}
    meta_net = copy.deepcopy(net).train(step.meta_mode == "train")
    return F.cross_entropy(functional_call(meta_net, {**virtual, **cloned_buffers(net)}, (xm,)), ym).item()


def directional_fd(step, train_batch, meta_batch, direction, eps):
    """(h(φ + ε r) − h(φ − ε r)) / 2ε along ``direction`` r; φ is restored afterwards."""
    def shift(scale):
        with torch.no_grad():
            for p, r in zip(step.meta_params, direction):
                p.add_(scale * r)
    shift(eps)
    plus = look_ahead_loss(step, train_batch, meta_batch)
    shift(-2 * eps)
    minus = look_ahead_loss(step, train_batch, meta_batch)
    shift(eps)
    return (plus - minus) / (2 * eps)


def along(grads, direction):
    return sum((g * r).sum() for g, r in zip(grads, direction) if g is not None).item()


def flat(grads, params):
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grads, params)])


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("position", ["before_bn", "after_bn"])
def test_fused_batch_norm_jvp_is_wrong_exactly_when_phi_feeds_a_batch_norm(position):
    """The pinned cause: fused BN's JVP under reverse mode errs iff φ is upstream of a train-mode BN."""
    net, modulation, (train_batch, meta_batch) = tiny(position)
    step = meta_step(net, modulation)
    reference = flat(general_rule(step, train_batch, meta_batch).grads, step.meta_params)
    fused = flat(rof_rule(step, train_batch, meta_batch, exact_norms=False).grads, step.meta_params)
    exact = flat(rof_rule(step, train_batch, meta_batch).grads, step.meta_params)
    assert rel_err(exact, reference) < 1e-10
    if position == "before_bn":
        assert rel_err(fused, reference) > 1e-2          # the missing batch-statistics term
    else:
        assert rel_err(fused, reference) < 1e-10         # nothing upstream of the BN depends on φ


@pytest.mark.parametrize("meta_mode", ["train", "eval"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_rof_rule_matches_finite_differences(meta_mode, weight_decay):
    net, modulation, (train_batch, meta_batch) = tiny("before_bn", seed=1)
    with torch.no_grad():                                  # running statistics unlike the batches'
        net.norm.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        net.norm.running_var.copy_(torch.tensor([0.5, 2.0, 4.0]))
    step = meta_step(net, modulation, meta_mode, weight_decay, rule="rof")
    assert step.rule == "rof"
    hyper = step.hypergradient(train_batch, meta_batch)
    for seed in range(2):
        direction = [torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(seed))
                     for p in step.meta_params]
        fd = directional_fd(step, train_batch, meta_batch, direction, 1e-6)
        assert abs(fd) > 1e-3 and abs(along(hyper.grads, direction) - fd) < 1e-6 * abs(fd)
    general = meta_step(net, modulation, meta_mode, weight_decay, rule="general").hypergradient(train_batch, meta_batch)
    assert rel_err(flat(hyper.grads, step.meta_params), flat(general.grads, step.meta_params)) < 1e-10
    assert abs(hyper.meta_loss.item() - general.meta_loss.item()) < 1e-12


@pytest.mark.parametrize("norm", ["group", "layer", "instance"])
def test_rof_rule_is_exact_through_other_normalisations(norm):
    net, modulation, (train_batch, meta_batch) = tiny("before_bn", norm)
    step = meta_step(net, modulation)
    reference = flat(general_rule(step, train_batch, meta_batch).grads, step.meta_params)
    assert rel_err(flat(rof_rule(step, train_batch, meta_batch).grads, step.meta_params), reference) < 1e-10


@pytest.mark.parametrize("kind", ["net", "shared"])
def test_rof_rule_is_exact_for_modulator_networks(kind):
    """MFM mode 2: per-sample γ/β from a network reading the feature's statistics, upstream of the BN."""
    torch.manual_seed(0)
    net = Tiny("batch").double()
    modulation = attach(net, ["conv1"], kind=kind, hidden=4)
    with torch.no_grad():                                  # off the identity (the last layer starts at zero)
        for p in modulation.parameters():
            p.add_(0.3 * torch.randn_like(p))
    batches = [(torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,))) for _ in range(2)]
    step = meta_step(net, modulation)
    reference = flat(general_rule(step, *batches).grads, step.meta_params)
    assert reference.norm() > 1e-3
    assert rel_err(flat(rof_rule(step, *batches).grads, step.meta_params), reference) < 1e-10


def test_rof_rule_matches_on_resnet32_with_mfm_modulation():
    """The reported case: ResNet-32, modulation after every block, float64; fused errs by percents."""
    torch.manual_seed(0)
    net = build_model("resnet32", 10).double()
    modulation = attach(net, "blocks")
    with torch.no_grad():
        for p in modulation.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x, xm = torch.randn(2, 4, 3, 32, 32, dtype=torch.float64)
    train_batch, meta_batch = (x, torch.tensor([0, 1, 2, 3])), (xm, torch.tensor([4, 5, 6, 7]))
    step = meta_step(net, modulation, weight_decay=5e-4, rule="rof", lr=0.1)
    rof = step.hypergradient(train_batch, meta_batch)
    direction = [torch.randn_like(p) for p in step.meta_params]
    fd = directional_fd(step, train_batch, meta_batch, direction, 1e-8)   # ε small: ReLU kinks are near
    assert abs(along(rof.grads, direction) - fd) < 1e-4 * abs(fd)
    reference = flat(general_rule(step, train_batch, meta_batch).grads, step.meta_params)
    assert rel_err(flat(rof.grads, step.meta_params), reference) < 1e-9
    fused = flat(rof_rule(step, train_batch, meta_batch, exact_norms=False).grads, step.meta_params)
    assert rel_err(fused, reference) > 1e-3


@pytest.mark.parametrize("training", [True, False])
def test_primitive_norms_compute_what_the_fused_kernels_compute(training):
    torch.manual_seed(0)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    layers = [nn.BatchNorm2d(3), nn.BatchNorm1d(48), nn.GroupNorm(1, 3), nn.LayerNorm([4, 4]),
              nn.InstanceNorm2d(3, affine=True)]
    for layer in layers:
        layer = layer.double().train(training)
        with torch.no_grad():
            for t in [*layer.parameters(), *(b for n, b in layer.named_buffers() if n.startswith("running"))]:
                t.uniform_(0.5, 1.5)
        inputs = x.flatten(1) if isinstance(layer, nn.BatchNorm1d) else x
        buffers = {n: b.clone() for n, b in layer.named_buffers()}
        with primitive_norms():
            ours = functional_call(layer, buffers, (inputs,))
        assert torch.allclose(ours, functional_call(layer, cloned_buffers(layer), (inputs,)), atol=1e-12), layer
        own = dict(layer.named_buffers())
        assert all(torch.equal(b, own[n]) for n, b in buffers.items() if n.startswith("running")), "stats moved"
