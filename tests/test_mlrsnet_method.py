"""The ``mlrsnet`` method through `run`: meta-training, the learned response, frozen reuse."""
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
