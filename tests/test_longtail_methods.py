"""Long-tail baselines: each loss against an independent computation, plus a smoke run each."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metakit.data.batches import Batches
from metakit.experiments import Config, run
from metakit.methods import METHODS
from metakit.methods.longtail import (DEFAULT_BETA, ClassBalancedLoss, ClassBalancedResampling, Focal, LDAMDRW,
                                      LogitAdjustment)
from metakit.methods.losses import NormedLinear, ldam_margins
from metakit.models import build_model

COUNTS = [119, 55, 25, 11]
LONGTAIL = ("cb_loss", "cb_resample", "focal", "ldam_drw", "logit_adj")


def batch(seed=0, n=16, c=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


def test_cb_weights_match_effective_number_formula():
    beta = 0.99
    m = ClassBalancedLoss(4, COUNTS, beta=beta)
    effective = [(1 - beta ** n) / (1 - beta) for n in COUNTS]              # Eq. 3 of Cui et al., by hand
    inverse = [1 / e for e in effective]
    expected = [4 * w / sum(inverse) for w in inverse]
    assert m.class_weights.tolist() == pytest.approx(expected, rel=1e-6)
    assert m.class_weights.sum().item() == pytest.approx(4.0)


def test_cb_loss_is_weighted_ce_and_weighted_focal():
    z, y = batch()
    ce = ClassBalancedLoss(4, COUNTS, beta=0.999)
    w = ce.class_weights.double()
    hand = torch.stack([-w[t] * torch.log_softmax(z[i], 0)[t] for i, t in enumerate(y.tolist())])
    assert torch.allclose(ce.per_sample_loss(z, y), hand)
    assert ce.loss(z, y).item() == pytest.approx(hand.mean().item())
    fo = ClassBalancedLoss(4, COUNTS, beta=0.999, base="focal", focal_gamma=2.0)
    p = torch.softmax(z, 1)[torch.arange(len(y)), y]
    assert torch.allclose(fo.per_sample_loss(z, y), -w[y] * (1 - p) ** 2 * torch.log(p))


def test_beta_defaults_by_dataset():
    assert ClassBalancedLoss(4, COUNTS).beta == 0.9999
    digits = Config(profile="smoke").resolve()
    assert ClassBalancedLoss(4, COUNTS, digits).beta == DEFAULT_BETA["digits"] == 0.996


def test_focal_gamma_zero_is_ce_and_gamma_two_by_hand():
    z, y = batch(1)
    assert torch.allclose(Focal(4, COUNTS, focal_gamma=0.0).per_sample_loss(z, y),
                          F.cross_entropy(z, y, reduction="none"))
    p = torch.softmax(z, 1)[torch.arange(len(y)), y]
    assert torch.allclose(Focal(4, COUNTS, focal_gamma=2.0).per_sample_loss(z, y), -(1 - p) ** 2 * torch.log(p))
    assert Focal(4, COUNTS).focal_gamma == 1.0


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_gradient_stays_finite_on_a_sample_whose_probability_rounds_to_one(gamma):
    """γ < 1: (1 − p)^γ has an infinite slope at p = 1 (a diverged tuning run on MNIST-1D-LT IF 100)."""
    z = torch.tensor([[40.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.0, -1.0]], requires_grad=True)
    assert torch.softmax(z, 1)[0, 0] == 1.0                     # float32 rounds it to exactly one
    Focal(4, COUNTS, focal_gamma=gamma).per_sample_loss(z, torch.tensor([0, 1])).sum().backward()
    assert torch.isfinite(z.grad).all()
    p = torch.softmax(z.detach(), 1)[1, 1]
    assert Focal(4, COUNTS, focal_gamma=gamma).per_sample_loss(z.detach(), torch.tensor([0, 1]))[1].item() == \
        pytest.approx((-(1 - p) ** gamma * torch.log(p)).item())


def test_ldam_margins_follow_quarter_power_formula():
    margins = ldam_margins(COUNTS, 0.5).tolist()
    raw = [10 / n ** 0.25 for n in COUNTS]                                     # Δ_c = C / n_c^{1/4}
    assert margins == pytest.approx([0.5 * r / max(raw) for r in raw], rel=1e-6)
    assert max(margins) == pytest.approx(0.5) and margins[-1] == pytest.approx(0.5)


def test_ldam_loss_by_hand_before_and_after_drw():
    m = LDAMDRW(4, COUNTS, drw_epoch=3, beta=0.999)
    z = torch.tensor([[0.2, -0.1, 0.4, 0.0], [0.1, 0.3, -0.2, 0.5]], dtype=torch.float64)
    y = torch.tensor([1, 3])
    d = m.margins.double()
    hand = []
    for zi, t in zip(z, y.tolist()):
        shifted = zi.clone()
        shifted[t] -= d[t]
        logits = 30 * shifted
        hand.append(math.log(sum(math.exp(v) for v in logits.tolist())) - logits[t].item())
    m.start_epoch(2, None)
    assert m.per_sample_loss(z, y).tolist() == pytest.approx(hand)
    assert m.loss(z, y).item() == pytest.approx(sum(hand) / 2)
    m.start_epoch(3, None)
    w = m.class_weights.double()[y]
    assert m.loss(z, y).item() == pytest.approx(float((w * torch.tensor(hand)).sum() / w.sum()))


def test_drw_switches_at_drw_epoch_default_80_percent():
    config = Config(profile="smoke", epochs=10).resolve()
    m = LDAMDRW(4, COUNTS, config)
    assert m.drw_epoch == 8
    switched = []
    for epoch in range(10):
        m.start_epoch(epoch, None)
        switched.append(m.class_weights is not None)
    assert switched == [False] * 8 + [True] * 2
    assert LDAMDRW(4, COUNTS, Config(profile="paper").resolve()).drw_epoch == 160


def test_ldam_prepare_installs_normed_head_same_size():
    net = build_model("digits_cnn", 10, (1, 8, 8))
    old = net.fc
    net = LDAMDRW(10, list(range(100, 0, -10)), drw_epoch=0).prepare(net)
    assert isinstance(net.fc, NormedLinear)
    assert (net.fc.in_features, net.fc.out_features) == (old.in_features, old.out_features)
    x = torch.randn(3, net.fc.in_features)
    w = net.fc.weight
    cosine = torch.stack([torch.stack([F.cosine_similarity(xi, w[:, c], 0) for c in range(10)]) for xi in x])
    assert torch.allclose(net.fc(x), cosine, atol=1e-6)


def test_logit_adjusted_loss_is_ce_on_shifted_logits_and_balanced_softmax():
    z, y = batch(2)
    prior = torch.tensor(COUNTS, dtype=torch.float64) / sum(COUNTS)
    m = LogitAdjustment(4, COUNTS, tau=0.5)
    assert torch.allclose(m.per_sample_loss(z, y), F.cross_entropy(z + 0.5 * prior.log(), y, reduction="none"))
    # balanced softmax (Ren et al.): p_y = π_y e^{z_y} / Σ_j π_j e^{z_j}
    balanced = -torch.log(prior[y] * z.exp()[torch.arange(len(y)), y] / (prior * z.exp()).sum(1))
    assert torch.allclose(LogitAdjustment(4, COUNTS).per_sample_loss(z, y), balanced)
    assert torch.allclose(LogitAdjustment(4, COUNTS, tau=0).per_sample_loss(z, y),
                          F.cross_entropy(z, y, reduction="none"))


def test_resampling_draws_classes_uniformly():
    labels = np.repeat(np.arange(4), COUNTS)
    weights = ClassBalancedResampling(4, COUNTS).sample_weights(labels)
    b = Batches(torch.zeros(len(labels), 1, 2, 2, dtype=torch.uint8), labels, 50, torch.device("cpu"), (0.,), (1.,),
                seed=0, sample_weights=weights)
    drawn = torch.cat([bt.y for _ in range(40) for bt in b]).numpy()
    freq = np.bincount(drawn, minlength=4) / len(drawn)
    assert len(drawn) == 40 * len(labels)
    assert np.abs(freq - 0.25).max() < 0.02   # binomial sd ~0.005 at 8,400 draws; CE order would give 0.57


@pytest.mark.parametrize("name,options,error,match", [
    ("cb_loss", {"beta": 1.0}, ValueError, "beta=1.0"), ("cb_loss", {"base": "mse"}, ValueError, "base='mse'"),
    ("cb_loss", {"focal_gamma": 2}, ValueError, "focal_gamma=2"),
    ("focal", {"focal_gamma": -1}, ValueError, "focal_gamma=-1"),
    ("ldam_drw", {"max_m": 0}, ValueError, "max_m=0"), ("ldam_drw", {"drw_epoch": -2}, ValueError, "drw_epoch=-2"),
    ("ldam_drw", {"s": "big"}, TypeError, "s='big'"), ("logit_adj", {"tau": float("nan")}, ValueError, "tau=nan"),
    ("cb_resample", {"beta": 0.9}, ValueError, "beta"), ("focal", {"gamma": 2}, ValueError, "'gamma'.*focal_gamma"),
])
def test_bad_options_raise_clear_errors(name, options, error, match):
    """Out of range: ValueError; wrong type: TypeError (one validator, metakit.options.check)."""
    with pytest.raises(error, match=match):
        run(Config(method=name, options=options, imbalance=10, profile="smoke", progress=False))


def test_registered_and_paper_recipe():
    assert set(LONGTAIL) <= set(METHODS)
    c = Config(method="ldam_drw", profile="paper").resolve()
    assert (c.epochs, c.batch_size, c.warmup_epochs, c.milestones, c.gamma) == (200, 128, 5, (160, 180), 0.01)


@pytest.mark.parametrize("name", LONGTAIL)
def test_smoke_run_every_method(name):
    r = run(Config(method=name, imbalance=10, profile="smoke", progress=False, device="cpu"))
    assert len(r.history) == r.config.epochs and np.isfinite(r.history["train_loss"]).all()
    assert 0 <= r.metrics["test_acc"] <= 100
    if name == "ldam_drw":
        assert isinstance(r.net.fc, NormedLinear) and r.method.class_weights is not None  # DRW on at epoch 2 of 3
