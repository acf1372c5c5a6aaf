"""The meta-step: hypergradients vs finite differences (float64, BatchNorm in train mode) for every
entry and rule, fast rule == general rule, no side effect of the virtual step, and the fused real
step == an ordinary optimiser step."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.meta import MetaLearner, MetaStep, cloned_buffers, lookahead, normalize_weights, theta


class Weights(MetaLearner):
    """A small Meta-Weight-Net: sum-normalised sigmoid weights of detached losses."""
    enters = "loss"

    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))

    def weights(self, per_sample_loss):
        return normalize_weights(torch.sigmoid(self.mlp(per_sample_loss.unsqueeze(1))).squeeze(1))


class Modulation(MetaLearner):
    """Per-channel scale and shift inside the classifier (MFM-like)."""
    enters = "forward"

    def __init__(self, channels):
        super().__init__()
        self.scale = nn.Parameter(1 + 0.3 * torch.randn(channels))
        self.shift = nn.Parameter(0.3 * torch.randn(channels))

    def forward(self, x):
        return x * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)


class LossLR(MetaLearner):
    """α = base · 2σ(a·log ℓ + b): a loss-driven step size (MLR-SNet-like)."""
    enters = "lr"

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.tensor(0.7)), nn.Parameter(torch.tensor(-0.2))

    def inner_lr(self, loss, base_lr):
        return base_lr * 2 * torch.sigmoid(self.a * loss.log() + self.b)


def make(entry, seed=0, momentum=0.9):
    """A float64 conv-BN net, its learner and optimisers, and a train/meta batch pair."""
    torch.manual_seed(seed)
    learner = {"loss": Weights, "forward": lambda: Modulation(3), "lr": LossLR}[entry]()
    layers = [nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3)]
    if entry == "forward":
        layers.insert(2, learner)
    net = nn.Sequential(*layers).double()
    learner.double()
    optimizer = torch.optim.SGD(theta(net, learner).values(), 0.5, momentum=momentum, nesterov=momentum > 0,
                                weight_decay=1e-2)
    meta_opt = torch.optim.SGD(learner.parameters(), 0.1)
    batches = [(torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.randint(0, 3, (6,))) for _ in range(2)]
    return net, learner, optimizer, meta_opt, batches


def meta_objective(net, learner, train_batch, meta_batch, lr, wd, meta_mode="train"):
    """L_meta(θ'(φ)) evaluated from scratch: the finite differences' independent computation."""
    (x, y), (xm, ym) = train_batch, meta_batch
    params = theta(net, learner)
    loss = learner.train_loss(F.cross_entropy(functional_call(net, {**params, **cloned_buffers(net)}, (x,)), y,
                                              reduction="none"))
    alpha = learner.inner_lr(loss.detach(), lr)
    grads = torch.autograd.grad(loss, list(params.values()))
    virtual = {n: p - alpha * (g + wd * p) for (n, p), g in zip(params.items(), grads)}
    meta_net = copy.deepcopy(net).train(meta_mode == "train")
    return F.cross_entropy(functional_call(meta_net, {**virtual, **cloned_buffers(net)}, (xm,)), ym).item()


def finite_differences(net, learner, train_batch, meta_batch, lr, wd, eps=1e-6, meta_mode="train", objective=None):
    """Central differences of ``objective()`` (default: `meta_objective`) in every entry of φ."""
    objective = objective or (lambda: meta_objective(net, learner, train_batch, meta_batch, lr, wd, meta_mode))
    out = []
    for p in learner.parameters():
        flat, grad = p.data.view(-1), torch.zeros(p.numel(), dtype=torch.float64)
        for i in range(p.numel()):
            keep = flat[i].item()
            flat[i] = keep + eps
            plus = objective()
            flat[i] = keep - eps
            minus = objective()
            flat[i] = keep
            grad[i] = (plus - minus) / (2 * eps)
        out.append(grad.view_as(p))
    return torch.cat([g.flatten() for g in out])


def flat(grads, learner):
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grads, learner.parameters())])


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("entry", ["loss", "forward", "lr"])
@pytest.mark.parametrize("rule", ["auto", "general", "rof"])
def test_hypergradient_matches_finite_differences(entry, rule):
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make(entry)
    step = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, rule=rule)
    assert step.rule == ({"loss": "jvp", "forward": "general", "lr": "lr"}[entry] if rule == "auto" else rule)
    hyper = flat(step.hypergradient(train_batch, meta_batch).grads, learner)
    fd = finite_differences(net, learner, train_batch, meta_batch, 0.5, 1e-2)
    assert fd.norm() > 1e-3                                    # a real signal, not zero == zero
    assert rel_err(hyper, fd) < 1e-4


@pytest.mark.parametrize("entry", ["loss", "forward", "lr"])
def test_eval_mode_meta_forward_matches_finite_differences(entry):
    """meta_mode="eval": the meta forward normalises with the running statistics, and the
    hypergradient is still exact; it differs from the train-mode one (the mode matters)."""
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make(entry, seed=2)
    bn = net[1]
    with torch.no_grad():                                       # running stats unlike any batch's
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0])), bn.running_var.copy_(torch.tensor([0.5, 2.0, 4.0]))
    step = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, meta_mode="eval")
    hyper = step.hypergradient(train_batch, meta_batch)
    fd = finite_differences(net, learner, train_batch, meta_batch, 0.5, 1e-2, meta_mode="eval")
    assert rel_err(flat(hyper.grads, learner), fd) < 1e-4
    train_mode = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2).hypergradient(train_batch, meta_batch)
    assert rel_err(flat(train_mode.grads, learner), fd) > 1e-2
    assert net.training and bn.running_mean[1].item() == -1.0   # mode and statistics given back untouched


@pytest.mark.parametrize("entry", ["loss", "lr"])
def test_fast_rule_equals_general_rule(entry):
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make(entry, seed=1)
    fast = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2).hypergradient(train_batch, meta_batch)
    general = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, rule="general")
    slow = general.hypergradient(train_batch, meta_batch)
    assert rel_err(flat(fast.grads, learner), flat(slow.grads, learner)) < 1e-10
    assert abs(fast.meta_loss.item() - slow.meta_loss.item()) < 1e-12


@pytest.mark.parametrize("entry", ["loss", "forward", "lr"])
@pytest.mark.parametrize("rule", ["auto", "general", "rof"])
def test_virtual_step_leaves_the_real_model_untouched(entry, rule):
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make(entry)
    step = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, rule=rule)
    before = {n: t.clone() for n, t in {**theta(net, learner), **dict(net.named_buffers())}.items()}
    phi_before = [p.clone() for p in learner.parameters()]
    step.meta_update(train_batch, meta_batch)
    after = {**theta(net, learner), **dict(net.named_buffers())}
    assert all(torch.equal(before[n], after[n]) for n in before), "θ or a BatchNorm buffer moved"
    assert net[1].num_batches_tracked.item() == 0
    assert any(not torch.equal(a, p) for a, p in zip(phi_before, learner.parameters())), "φ did not move"


@pytest.mark.parametrize("entry", ["loss", "lr"])
def test_fused_real_step_equals_a_fresh_optimizer_step(entry):
    """The fast rules reuse the training forward; the result must be the optimiser's own."""
    runs = []
    for rule in ("auto", "general"):
        net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make(entry, seed=2)
        step = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, rule=rule)
        stats = [step(train_batch, meta_batch) for _ in range(3)]
        momentum = [optimizer.state[p]["momentum_buffer"] for p in theta(net, learner).values()]
        runs.append((net.state_dict(), momentum, stats))
    (state_a, mom_a, stats_a), (state_b, mom_b, stats_b) = runs
    for name in state_a:
        assert torch.allclose(state_a[name].double(), state_b[name].double(), rtol=0, atol=1e-10), name
    assert all(torch.allclose(a, b, rtol=0, atol=1e-10) for a, b in zip(mom_a, mom_b))
    assert state_a["1.num_batches_tracked"].item() == 3
    for a, b in zip(stats_a, stats_b):
        assert abs(a["loss"].item() - b["loss"].item()) < 1e-10 and abs(a["lr"].item() - b["lr"].item()) < 1e-12


def test_lr_rule_steps_with_the_updated_step_size():
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make("lr", momentum=0.0)
    step = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2)
    params = {n: p.detach().clone() for n, p in theta(net, learner).items()}
    loss = F.cross_entropy(net(train_batch[0]), train_batch[1])     # plain forward, as the real step's
    grads = torch.autograd.grad(loss, list(theta(net, learner).values()))
    net.load_state_dict({**net.state_dict(), "1.num_batches_tracked": torch.tensor(0)})
    net[1].reset_running_stats()
    stats = step(train_batch, meta_batch)
    alpha = learner.inner_lr(loss.detach(), 0.5).item()                # φ_new
    assert stats["lr"].item() == pytest.approx(alpha, rel=1e-12)
    for (n, p), g in zip(params.items(), grads):
        assert torch.allclose(theta(net, learner)[n], p - alpha * (g + 1e-2 * p), atol=1e-12)
    assert optimizer.param_groups[0]["lr"] == 0.5                      # the base LR is given back


def test_meta_every_and_clipping():
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make("loss")
    step = MetaStep(net, learner, optimizer, meta_opt, meta_every=2, meta_clip=1e-3)
    keys = [sorted(step(train_batch, meta_batch)) for _ in range(3)]
    assert ["meta_loss" in k for k in keys] == [True, False, True]
    hyper = step.hypergradient(train_batch, meta_batch)
    step.apply_meta_gradient(hyper.grads)
    assert torch.cat([p.grad.flatten() for p in learner.parameters()]).norm() <= 1e-3 * (1 + 1e-6)


def test_lookahead_is_one_sgd_step():
    net = nn.Linear(3, 1).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    loss = (net(x) ** 2).mean()
    virtual = lookahead(net, loss, 0.1, weight_decay=0.5)
    g = torch.autograd.grad((net(x) ** 2).mean(), net.weight)[0]
    assert torch.allclose(virtual["weight"], net.weight - 0.1 * (g + 0.5 * net.weight))


def test_bad_arguments_raise_clear_errors():
    net, learner, optimizer, meta_opt, _ = make("loss")
    with pytest.raises(ValueError, match="rule='fast'"):
        MetaStep(net, learner, optimizer, meta_opt, rule="fast")
    with pytest.raises(ValueError, match="first_order=True"):
        MetaStep(net, learner, optimizer, meta_opt, first_order=True)
    with pytest.raises(ValueError, match="meta_every=0"):
        MetaStep(net, learner, optimizer, meta_opt, meta_every=0)
    with pytest.raises(ValueError, match="meta_clip=-1"):
        MetaStep(net, learner, optimizer, meta_opt, meta_clip=-1)
    with pytest.raises(ValueError, match="rule='rof' with first_order=True"):
        MetaStep(net, Modulation(3), optimizer, meta_opt, rule="rof", first_order=True)
    with pytest.raises(ValueError, match="meta_mode='test'"):
        MetaStep(net, learner, optimizer, meta_opt, meta_mode="test")


def test_first_order_drops_only_the_mixed_term():
    """lr entry: first order is exact; forward entry: only φ's direct use in the meta forward."""
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make("lr")
    exact = MetaStep(net, learner, optimizer, meta_opt, rule="general").hypergradient(train_batch, meta_batch)
    first = MetaStep(net, learner, optimizer, meta_opt, first_order=True, rule="general").hypergradient(
        train_batch, meta_batch)
    assert rel_err(flat(first.grads, learner), flat(exact.grads, learner)) < 1e-12
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make("forward")
    step = MetaStep(net, learner, optimizer, meta_opt, first_order=True)
    first = flat(step.hypergradient(train_batch, meta_batch).grads, learner)
    virtual = lookahead(net, F.cross_entropy(net(train_batch[0]), train_batch[1]), 0.5,
                        params=theta(net, learner), create_graph=False)
    direct = {n: v.detach() for n, v in virtual.items()}                # θ' held fixed
    meta_loss = F.cross_entropy(functional_call(net, {**direct, **cloned_buffers(net)}, (meta_batch[0],)),
                                meta_batch[1])
    assert rel_err(first, flat(torch.autograd.grad(meta_loss, list(learner.parameters())), learner)) < 1e-12


def test_checkpoint_round_trip_keeps_calls_and_meta_optimizer():
    """Method.state_dict's default keeps the MetaStep's counter and meta-optimiser state."""
    from metakit.methods.base import Method

    class Holding(Method):
        def __init__(self, learner, step):
            super().__init__(num_classes=2, class_counts=[1, 1])
            self._learner, self._step = learner, step

        @property
        def learner(self):
            return self._learner

        def current_meta_step(self):
            return self._step

    net, learner, optimizer, _, (train_batch, meta_batch) = make("loss")
    step = MetaStep(net, learner, optimizer, torch.optim.Adam(learner.parameters(), 1e-3), meta_every=2)
    for _ in range(3):
        step(train_batch, meta_batch)
    fresh = MetaStep(net, learner, optimizer, torch.optim.Adam(learner.parameters(), 1e-3), meta_every=2)
    Holding(learner, fresh).load_state_dict(copy.deepcopy(Holding(learner, step).state_dict()))
    assert fresh.calls == 3
    old, new = step.meta_optimizer.state_dict()["state"], fresh.meta_optimizer.state_dict()["state"]
    assert old.keys() == new.keys() and all(torch.equal(old[k]["exp_avg"], new[k]["exp_avg"]) for k in old)


@pytest.mark.parametrize("entry", ["loss", "lr"])
def test_fast_rules_tolerate_unused_parameters(entry):
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make(entry)
    net.register_parameter("unused", nn.Parameter(torch.ones(2, dtype=torch.float64)))  # never in the forward
    optimizer.add_param_group({"params": [net.unused]})
    fast = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2)
    general = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, rule="general")
    a, b = fast.hypergradient(train_batch, meta_batch), general.hypergradient(train_batch, meta_batch)
    assert rel_err(flat(a.grads, learner), flat(b.grads, learner)) < 1e-10
    fast(train_batch, meta_batch)
    assert net.unused.grad is None


def optimizer_step_objective(net, learner, optimizer, train_batch, meta_batch):
    """L_meta after torch's own SGD step at LR α(φ), on copies: momentum_lookahead's independent computation."""
    (x, y), (xm, ym) = train_batch, meta_batch
    loss = F.cross_entropy(functional_call(net, {**theta(net, learner), **cloned_buffers(net)}, (x,)), y)
    grads = torch.autograd.grad(loss, list(theta(net, learner).values()))
    alpha = learner.inner_lr(loss.detach(), optimizer.param_groups[0]["lr"]).item()
    copy_net = copy.deepcopy(net)
    copy_opt = type(optimizer)(theta(copy_net).values(), lr=alpha)
    copy_opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))   # its buffers would be shared
    copy_opt.param_groups[0]["lr"] = alpha
    for p, g in zip(theta(copy_net).values(), grads):
        p.grad = g.clone()
    copy_opt.step()
    return F.cross_entropy(functional_call(copy_net, {**theta(copy_net), **cloned_buffers(net)}, (xm,)), ym).item()


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_lookahead_is_the_optimizers_own_step_and_its_hypergradient_is_exact(nesterov):
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make("lr", seed=3)
    optimizer.param_groups[0]["nesterov"] = nesterov
    plain = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2)
    for _ in range(2):                                   # momentum buffers that are not the gradient
        plain(train_batch, None)
    step = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, momentum_lookahead=True)
    hyper = flat(step.hypergradient(train_batch, meta_batch).grads, learner)
    fd = finite_differences(net, learner, train_batch, meta_batch, 0.5, 1e-2, objective=lambda: optimizer_step_objective(
        net, learner, optimizer, train_batch, meta_batch))
    assert fd.norm() > 1e-3 and rel_err(hyper, fd) < 1e-4
    assert rel_err(flat(plain.hypergradient(train_batch, meta_batch).grads, learner), fd) > 1e-2  # plain SGD's differs


def test_momentum_lookahead_is_the_plain_step_at_momentum_zero_and_refused_where_it_cannot_hold():
    net, learner, optimizer, meta_opt, (train_batch, meta_batch) = make("lr", momentum=0.0)
    a = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2, momentum_lookahead=True)
    b = MetaStep(net, learner, optimizer, meta_opt, weight_decay=1e-2)
    a(train_batch, None)                                 # a step taken: still no buffer at momentum 0
    assert torch.equal(flat(a.hypergradient(train_batch, meta_batch).grads, learner),
                       flat(b.hypergradient(train_batch, meta_batch).grads, learner))
    with pytest.raises(ValueError, match=r"^momentum_lookahead=True with rule='general': only the lr rule"):
        MetaStep(net, learner, optimizer, meta_opt, rule="general", momentum_lookahead=True)
    adam = torch.optim.Adam(theta(net, learner).values())
    with pytest.raises(ValueError, match=r"^momentum_lookahead=True with optimizer=Adam: .*momentum_lookahead=False\.$"):
        MetaStep(net, learner, adam, meta_opt, momentum_lookahead=True)
    with pytest.raises(TypeError, match="momentum_lookahead=.yes. must be True or False"):
        MetaStep(net, learner, optimizer, meta_opt, momentum_lookahead="yes")
