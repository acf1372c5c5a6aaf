import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metakit.experiments import Config, run
from metakit.meta import MetaStep
from metakit.learners.lr_net import MLRSNet, load_schedule, save_schedule
from metakit.schedules import LearnedSchedule


def test_fresh_net_starts_at_base_lr_and_advances_its_state_only_in_after_step():
    net = MLRSNet(num_classes=10, hidden=6)
    lr = net.inner_lr(torch.tensor(1.7), 0.05)
    assert float(lr.detach()) == pytest.approx(0.05) and float(net.gamma) == pytest.approx(0.1)
    h0 = net.h.clone()
    net.inner_lr(torch.tensor(0.3), 0.05)
    assert torch.equal(net.h, h0)                       # inner_lr does not advance the state
    net.after_step(torch.tensor(1.7))
    assert not torch.equal(net.h, h0) and net.steps.item() == 1
    assert not net.h.requires_grad                     # detached between steps


def test_lr_depends_on_phi_and_the_loss_is_normalised_by_log_classes():
    a, b = MLRSNet(10, hidden=4, gamma=0.2), MLRSNet(100, hidden=4, gamma=0.2)
    b.load_state_dict({**a.state_dict(), "loss_scale": b.loss_scale})
    nn.init.normal_(a.head.weight), nn.init.normal_(b.head.weight)
    b.head.load_state_dict(a.head.state_dict())
    lr = a.inner_lr(torch.tensor(2.0))
    assert lr.requires_grad
    # a loss of log(10) on 10 classes reads as a loss of log(100) on 100 classes
    assert a.inner_lr(torch.tensor(10.0).log()).item() == pytest.approx(b.inner_lr(torch.tensor(100.0).log()).item())


def _phi_vector(learner):
    return torch.cat([p.detach().reshape(-1) for p in learner.parameters()])


def test_exact_hypergradient_via_metastep_matches_central_differences_float64():
    torch.manual_seed(0)
    net = nn.Linear(4, 3).double()
    learner = MLRSNet(3, hidden=3, gamma=0.3).double()
    nn.init.normal_(learner.head.weight, std=0.5)
    for loss in (1.0, 0.7):                              # a non-zero carried state (h, c)
        learner.after_step(torch.tensor(loss))
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.randint(0, 3, (8,))
    x_meta, y_meta = torch.randn(6, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    wd = 1e-2
    frozen_net, frozen_learner = copy.deepcopy(net), copy.deepcopy(learner)
    phi_before = _phi_vector(learner)
    step = MetaStep(net, learner, torch.optim.SGD(net.parameters(), lr=0.1),
                    torch.optim.SGD(learner.parameters(), lr=1.0), weight_decay=wd)
    step((x, y), (x_meta, y_meta))
    hypergradient = phi_before - _phi_vector(learner)   # SGD with lr 1: Δφ = −∇φ L_meta

    # independent: L_meta(φ) = CE(x_meta · W'ᵀ + b', y_meta), θ' = θ − lr(φ)·(∇θ L_train + wd·θ)
    w, b = frozen_net.weight.detach().requires_grad_(), frozen_net.bias.detach().requires_grad_()
    train_loss = F.cross_entropy(F.linear(x, w, b), y)
    gw, gb = torch.autograd.grad(train_loss, (w, b))
    gw, gb = gw + wd * w.detach(), gb + wd * b.detach()

    def meta_loss() -> float:
        with torch.no_grad():
            lr = frozen_learner.inner_lr(train_loss.detach())
            return F.cross_entropy(F.linear(x_meta, w - lr * gw, b - lr * gb), y_meta).item()

    numeric, eps = [], 1e-6
    for p in frozen_learner.parameters():
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = meta_loss()
            flat[i] = old - eps
            down = meta_loss()
            flat[i] = old
            numeric.append((up - down) / (2 * eps))
    numeric = torch.tensor(numeric, dtype=torch.float64)
    assert numeric.abs().max() > 1e-4                    # the check is not vacuous
    torch.testing.assert_close(hypergradient, numeric, rtol=1e-5, atol=1e-8)


def test_saved_schedule_reloads_to_identical_outputs(tmp_path):
    torch.manual_seed(1)
    net = MLRSNet(10, hidden=5, gamma=0.2)
    nn.init.normal_(net.head.weight)
    path = save_schedule(net, tmp_path / "lr.pt", dataset="digits", epochs=3)
    loaded, meta = load_schedule(path)
    assert meta["dataset"] == "digits" and meta["hidden"] == 5
    losses = [2.3, 1.9, 1.2, 0.8, 0.8, 0.3]
    lrs = []
    for lr_net in (net, loaded):
        w = torch.zeros(1, requires_grad=True)
        schedule = LearnedSchedule(lr_net, torch.optim.SGD([w], lr=1.0))
        lrs.append([schedule.step(torch.tensor(v)) for v in losses])
    assert lrs[0] == lrs[1]
    assert len(set(lrs[0])) > 1                          # the LR moves with the loss


def test_load_schedule_refuses_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="schedule_file"):
        load_schedule(tmp_path / "nope.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"schedule_file=.*other.pt.* is not a metakit learner file.*expected a lr_net"):
        load_schedule(tmp_path / "other.pt")


def test_learned_schedule_needs_the_loss():
    schedule = LearnedSchedule(MLRSNet(10, hidden=3, gamma=0.2), torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
    with pytest.raises(ValueError, match="loss=None"):
        schedule.step()


@pytest.mark.parametrize("options,match", [({"meta_every": 0}, "meta_every"), ({"hidden": 0}, "hidden"),
                                           ({"meta_per_epoch": 0}, "meta_per_epoch"), ({"colour": 1}, "colour")])
def test_bad_options_named(options, match):
    with pytest.raises((ValueError, TypeError), match=match):
        run(Config(method="mlrsnet", profile="smoke", options=options, progress=False))
