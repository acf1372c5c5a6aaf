"""The ``mlrsnet`` method through `run`: meta-training, the learned response, frozen reuse."""
import math

import pytest
import torch

from metakit.experiments import Config, run
from metakit.learners.lr_net import save_schedule


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    return run(Config(method="mlrsnet", profile="smoke", epochs=3, noise_kind="uniform", noise_rate=0.4,
                      options={"hidden": 16}, meta_lr=1e-2, schedule="cosine", progress=False))


def test_lr_net_responds_to_the_loss_after_meta_training(trained):
    net = trained.method.lr_net
    losses = torch.linspace(0.1, 1.2, 12) * net.loss_scale
    fresh = type(net)(10, hidden=16, gamma=float(net.gamma), normalise=False).response(losses)
    learned = net.response(losses)
    assert (fresh.max() - fresh.min()).item() == 0.0      # untrained: the LR ignores the loss
    assert (learned.max() - learned.min()).item() > 1e-3 * float(net.gamma)


def test_hand_schedule_does_not_override_the_learned_lr(trained):
    lrs = trained.history["lr"]
    # the config asked for cosine, which would end near 0; the LR net owns the LR instead
    assert lrs.iloc[-1] > 0.02 and lrs.nunique() > 1
    assert "meta_loss" in trained.history.columns
    assert {row["epoch"] for row in trained.method.trace} == set(range(trained.config.epochs))
    assert trained.history["meta_loss"].notna().all() and len(trained.learner) == trained.config.epochs


def test_frozen_schedule_file_drives_a_new_run_without_meta_set(trained, tmp_path):
    path = save_schedule(trained.learner, tmp_path / "lr.pt", dataset="digits")
    r = run(Config(method="mlrsnet", profile="smoke", epochs=2, batch_size=32, model="mlp",
                   options={"schedule_file": str(path)}, progress=False))
    assert not r.method.uses_meta_set and r.method.step is None
    gammas = [w["gamma"] for w in r.method.trainer.schedule.switches]
    assert r.history["lr"].between(0, max(gammas)).all()
    steps = [row["lr"] for row in r.method.trace]
    assert len(set(steps)) > 1


def test_missing_schedule_file_is_named():
    with pytest.raises(FileNotFoundError, match="schedule_file"):
        run(Config(method="mlrsnet", profile="smoke", options={"schedule_file": "missing.pt"}, progress=False))


def _lrs_by_hand(snapshots, losses, classes):
    """The staged meta-test in float64 from the weights alone: LSTM equations, γ formula, stages."""
    import math

    import numpy as np

    epochs, iters = len(losses), len(losses[0])
    mid = epochs // 3
    count = len(snapshots)
    chosen = [snapshots.nets[i - 1] for i in (1, max(1, count // 2), count)]
    hidden = chosen[0].hidden
    h, c = np.zeros(hidden), np.zeros(hidden)
    sig = lambda v: 1 / (1 + np.exp(-v))                                          # noqa: E731
    out, stage = [], None
    for e, epoch in enumerate(losses):
        new = 2 if e >= 2 * mid else 1 if e >= mid else 0
        if new != stage:
            stage = new
            full = epoch[0] if e == 0 else sum(losses[e - 1]) / iters
            gamma = abs(math.sqrt(full) * math.log(full * classes) / classes ** 0.25 / 4)
        p = {k: v.detach().double().numpy() for k, v in chosen[stage].state_dict().items()}
        for loss in epoch:
            x = loss / float(p["loss_scale"])
            z = p["cell.weight_ih"][:, 0] * x + p["cell.bias_ih"] + p["cell.weight_hh"] @ h + p["cell.bias_hh"]
            i, f, g, o = np.split(z, 4)                                           # torch's gate order
            c_new = sig(f) * c + sig(i) * np.tanh(g)
            h_new = sig(o) * np.tanh(c_new)
            out.append(gamma * float(sig(p["head.weight"][0] @ h_new + p["head.bias"][0])))
            h, c = h_new, c_new
    return out


def test_the_frozen_schedule_responds_to_a_higher_vs_lower_loss_trajectory(trained):
    """Item 2 of issue 17: the LR follows the loss, by a measured amount, the same by hand and by the library."""
    from metakit.schedules.replay import trajectory_response

    snaps = trained.learner
    epochs = trained.config.epochs
    per_epoch = [[row["loss"] for row in trained.method.trace if row["epoch"] == e] for e in range(epochs)]
    iters = min(len(e) for e in per_epoch)
    losses = [e[:iters] for e in per_epoch]
    out = trajectory_response(snaps, losses, num_classes=10, factor=1.25)
    high = _lrs_by_hand(snaps, [[v * 1.25 for v in e] for e in losses], 10)
    low = _lrs_by_hand(snaps, [[v / 1.25 for v in e] for e in losses], 10)
    torch.testing.assert_close(torch.tensor(out["high"]["lr"].tolist(), dtype=torch.float64),
                               torch.tensor(high, dtype=torch.float64), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(torch.tensor(out["low"]["lr"].tolist(), dtype=torch.float64),
                               torch.tensor(low, dtype=torch.float64), rtol=1e-5, atol=1e-7)
    by_hand = sum(high) / len(high) - sum(low) / len(low)
    assert out["lr_diff"] == pytest.approx(by_hand, rel=1e-4)
    # the direction: above L = 1/C a higher full loss means a larger γ, so the higher trajectory gets the larger LR
    assert out["gamma_rel"] > 0.2 and out["lr_diff"] > 0 and out["lr_rel"] > 0.1
    # the net's own share, measured: it moves the LR by a stated, non-zero amount beside γ's
    assert out["net_rel"] != 0.0 and abs(out["net_rel"]) < abs(out["lr_rel"])


def _mean_loss(net, batches, train_mode: bool) -> float:
    """The mean cross-entropy over the batches, computed apart from the method (a copy of the net)."""
    import copy

    import torch.nn.functional as F
    net = copy.deepcopy(net).train(train_mode)
    with torch.no_grad():
        losses = [F.cross_entropy(net(b.x), b.y, reduction="sum") for b in batches]
    return float(sum(losses)) / sum(len(b.y) for b in batches)


def test_batch_stats_loss_measures_gamma_on_batch_statistics_and_leaves_running_stats_alone():
    from metakit.experiments.run import build

    parts = build(Config(method="mlrsnet", profile="smoke", model="resnet32", seed=0,
                         options={"variant": "batch_stats_loss"}).resolve())
    method, net, batches = parts.method, parts.trainer.net, parts.trainer.train_eval
    before, mode = {k: v.clone() for k, v in net.state_dict().items()}, net.training
    batch_loss = method.full_train_loss()
    method.batch_stats = False                                         # the default's measurement
    eval_loss = method.full_train_loss()
    assert batch_loss == pytest.approx(_mean_loss(net, batches, True), rel=1e-5)
    assert eval_loss == pytest.approx(_mean_loss(net, batches, False), rel=1e-5)
    # fresh running statistics make ResNet-32's eval-mode loss far above ln C; batch statistics do not
    assert eval_loss > 3 * math.log(10) and batch_loss < eval_loss / 4
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and net.training == mode
