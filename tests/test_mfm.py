"""MFM methods: hypergradient vs finite differences, options, smoke runs and transfer via run()."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.experiments import Config, run
from metakit.meta import MetaStep, theta
from metakit.methods import METHODS
from metakit.methods.losses import logit_adjusted_loss
from metakit.methods.mfm import MFM, MFMNet
from metakit.learners.modulation import attach, read_metadata


class TinyNet(nn.Module):
    """conv-BN-ReLU block, pooled feature, linear head: every kind of place MFM can act."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
        self.fc = nn.Linear(3, 4)
        self.block_names = self.stage_names = ["block1"]

    def forward(self, x):
        return self.fc(self.block1(x).mean((2, 3)))


def _meta_loss(net, phi_names, phi_values, batches, lr, wd):
    """L_meta(θ'(φ)) computed directly, without MetaStep: the independent side of the check."""
    (x, y), (xm, ym) = batches
    with torch.no_grad():
        for name, value in zip(phi_names, phi_values):
            net.get_parameter(name).copy_(value)
    params = {n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()
              if not n.startswith("modulation")}
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    loss = F.cross_entropy(functional_call(net, {**params, **buffers}, (x,)), y)
    grads = torch.autograd.grad(loss, list(params.values()))
    stepped = {n: p - lr * (g + wd * p) for (n, p), g in zip(params.items(), grads)}
    with torch.no_grad():
        return F.cross_entropy(functional_call(net, {**stepped, **buffers}, (xm,)), ym).item()


@pytest.mark.parametrize("kind", ["film", "net"])
def test_hypergradient_matches_central_differences_float64(kind):
    torch.manual_seed(0)
    net = TinyNet().double()
    mod = attach(net, "blocks+fc", kind=kind, hidden=5)
    with torch.no_grad():  # move φ off the identity so every path carries gradient
        for p in mod.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, y = torch.randn(6, 1, 4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    xm, ym = torch.randn(4, 1, 4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    lr, wd, eps = 0.5, 1e-3, 1e-6
    names = [n for n, _ in net.named_parameters() if n.startswith("modulation")]
    phi0 = [net.get_parameter(n).detach().clone() for n in names]
    coords = [(i, j) for i, v in enumerate(phi0) for j in range(v.numel())]
    picked = [coords[k] for k in torch.randperm(len(coords))[:12].tolist()]  # all 12 for film
    numeric = []
    for i, j in picked:
        values = []
        for sign in (1, -1):
            shifted = [v.clone() for v in phi0]
            shifted[i].view(-1)[j] += sign * eps
            values.append(_meta_loss(net, names, shifted, ((x, y), (xm, ym)), lr, wd))
        numeric.append((values[0] - values[1]) / (2 * eps))
    _meta_loss(net, names, phi0, ((x, y), (xm, ym)), lr, wd)  # restore φ
    step = MetaStep(net, mod, torch.optim.SGD(theta(net, mod).values(), lr),
                    torch.optim.SGD(mod.parameters(), lr=1.0), weight_decay=wd)
    step((x, y), (xm, ym))
    moved = [(v - net.get_parameter(n).detach()).view(-1) for n, v in zip(names, phi0)]  # SGD at lr 1: φ0 − φ1 = ∇φ
    analytic = torch.stack([moved[i][j] for i, j in picked])
    numeric = torch.tensor(numeric, dtype=torch.float64)
    assert numeric.abs().max() > 1e-4
    assert torch.allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_logit_adjusted_loss_formula():
    logits, prior = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([0.7, 0.2, 0.1])
    shifted = logits[0] + prior.log()
    expected = -(shifted[2] - torch.logsumexp(shifted, 0))
    assert logit_adjusted_loss(logits, torch.tensor([2]), prior.log()).item() == pytest.approx(expected.item())
    m = MFM(3, [70, 20, 10], logit_adj=True)
    assert m.per_sample_loss(logits, torch.tensor([2])).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("cls,options,error,match", [
    (MFM, {"where": "everywhere"}, ValueError, "where='everywhere'"),
    (MFM, {"where": []}, TypeError, "where=\\[\\]"),
    (MFM, {"logit_adj": 1}, TypeError, "logit_adj=1"),
    (MFM, {"hidden": 8}, ValueError, "method='mfm'.*'hidden' is unknown"),
    (MFM, {"meta_start": 1.0}, ValueError, "meta_start=1.0 is out of range; use a number in \\[0, 1\\)"),
    (MFM, {"meta_start": "late"}, TypeError, "meta_start='late'"),
    (MFM, {"meta_steps": 0}, ValueError, "meta_steps=0"),
    (MFM, {"meta_mode": "test"}, ValueError, "meta_mode='test'"),
    (MFMNet, {"hidden": 0}, ValueError, "hidden=0"),
    (MFMNet, {"freeze": "yes"}, TypeError, "freeze='yes'"),
    (MFMNet, {"freeze": True}, ValueError, "freeze=True needs modulator"),
    (MFMNet, {"modulator": "no/such/file.pt"}, FileNotFoundError, "modulator='no/such/file.pt'"),
    (MFMNet, {"modulator": 3}, TypeError, "modulator=3"),
])
def test_bad_options_named(cls, options, error, match):
    with pytest.raises(error, match=match):
        cls(10, [10] * 10, **options)


def test_bad_meta_lr_is_refused_before_work():
    with pytest.raises(ValueError, match="meta_lr"):
        run(Config(method="mfm", meta_lr=-1.0, profile="smoke", progress=False))


def _smoke(method, **kw):
    kw = {"imbalance": 20, "epochs": 1, **kw}
    return Config(method=method, profile="smoke", progress=False, device="cpu", **kw)


def test_mfm_smoke_run_meta_learns_phi_only():
    assert METHODS["mfm"].uses_meta_set and METHODS["mfm_net"].uses_meta_set
    r = run(_smoke("mfm", options={"where": "blocks+fc"}))
    mod = r.net.modulation
    assert r.method.modulation is mod and mod.names == ["block1", "block2", "fc"]
    assert "meta_loss" in r.history and math.isfinite(r.history["meta_loss"].iloc[-1])
    gamma = torch.cat([mod.layer(n).gamma.detach() for n in mod.names])
    assert not torch.equal(gamma, torch.ones_like(gamma))           # the meta-step moved γ
    meta_ids = {id(p) for p in mod.parameters()}
    assert not any(id(p) in meta_ids for g in r.method.meta_step.optimizer.param_groups for p in g["params"])


def test_deferred_start_trains_exactly_as_cross_entropy_until_meta_learning_begins():
    """Before meta_start the modulation sits at the identity and the steps are plain: the history
    must equal cross-entropy's epoch for epoch; from then on φ moves and the runs part."""
    kw = dict(epochs=4, imbalance=20)
    ce = run(_smoke("ce", **kw))
    mfm = run(_smoke("mfm", options={"meta_start": 0.5}, **kw))
    assert mfm.method.first_meta_epoch(4) == 2
    cols = ["train_loss", "train_acc", "test_acc", "test_loss"]
    assert mfm.history[cols].iloc[:2].equals(ce.history[cols].iloc[:2])
    assert mfm.history["meta_loss"].iloc[:2].isna().all() and mfm.history["meta_loss"].iloc[2:].notna().all()
    assert not mfm.history[cols].iloc[2:].equals(ce.history[cols].iloc[2:])
    assert not torch.equal(mfm.net.modulation.layer("fc").gamma, torch.ones(mfm.net.modulation.channels[0]))


def test_meta_steps_counts_meta_updates():
    """meta_steps=k: k meta-updates of φ per meta-iteration (Adam's own step count), one real step."""
    r = run(_smoke("mfm", options={"meta_start": 0.0, "meta_steps": 3, "meta_updates": None}))
    step = r.method.meta_step
    adam_steps = {int(state["step"]) for state in step.meta_optimizer.state.values()}
    assert adam_steps == {3 * step.calls} and step.calls > 0


@pytest.mark.parametrize("dataset, meta_start", [("digits", 0.5), ("digits", 0.0), ("mnist1d", 0.5)])
def test_meta_updates_is_the_run_count_whatever_the_dataset_size(dataset, meta_start):
    """meta_updates=N: exactly N meta-updates of φ (Adam's own step count) whatever the steps an epoch."""
    r = run(_smoke("mfm", dataset=dataset, epochs=2, options={"meta_start": meta_start, "meta_updates": 7}))
    steps = {int(state["step"]) for state in r.method.meta_step.meta_optimizer.state.values()}
    assert steps == {7} and r.method.meta_updates == 7


def test_smoke_defaults_to_a_small_count_and_an_explicit_count_stands():
    """200 meta-updates dwarf a 3-epoch smoke run: smoke defaults to SMOKE_META_UPDATES, other profiles to 200."""
    from types import SimpleNamespace as C

    from metakit.methods.mfm import MFM, SMOKE_META_UPDATES

    counts = {(profile, given): MFM(10, [10] * 10, C(profile=profile, epochs=3, dataset="digits"),
                                    **({"meta_updates": given} if given else {})).options.meta_updates
              for profile in ("smoke", "laptop") for given in (None, 200)}
    assert counts == {("smoke", None): SMOKE_META_UPDATES, ("smoke", 200): 200, ("laptop", None): 200,
                      ("laptop", 200): 200} and SMOKE_META_UPDATES < 200
    r = run(_smoke("mfm"))
    assert r.method.meta_updates == SMOKE_META_UPDATES


def test_meta_updates_and_meta_steps_do_not_combine():
    with pytest.raises(ValueError, match="meta_steps=3 is read only where meta_updates is None"):
        MFM(4, [4, 3, 2, 1], meta_steps=3)


def test_mfm_with_logit_adjustment_trains_on_adjusted_logits():
    """logit_adj=True: the training loss is cross-entropy of z + log π, π the run's class prior."""
    r = run(_smoke("mfm", options={"logit_adj": True, "where": "fc"}))
    counts = torch.tensor(r.split.class_counts, dtype=torch.float64)                # (C,)
    torch.manual_seed(0)
    logits, y = torch.randn(6, len(counts), dtype=torch.float64), torch.arange(6) % len(counts)
    adjusted = logits + torch.log(counts / counts.sum())
    expected = -adjusted.log_softmax(1)[torch.arange(6), y]                          # by hand
    torch.testing.assert_close(r.method.per_sample_loss(logits, y), expected)
    plain = run(_smoke("mfm", options={"logit_adj": False, "where": "fc"}))
    torch.testing.assert_close(plain.method.per_sample_loss(logits, y), F.cross_entropy(logits, y, reduction="none"))
    assert not r.history["train_loss"].equals(plain.history["train_loss"])     # the option reaches training


@pytest.mark.slow
def test_mfm_net_transfer_frozen_and_fine_tuned(tmp_path):
    source = run(_smoke("mfm_net", options={"hidden": 8}))
    path = source.method.save(tmp_path / "modulator.pt")
    assert read_metadata(path)["model"] == "digits_cnn"
    saved = {k: v.clone() for k, v in source.method.modulation.state_dict().items()}
    frozen = run(_smoke("mfm_net", imbalance=50, lt_profile="step", options={"modulator": str(path), "freeze": True}))
    assert not frozen.method.uses_meta_set and "meta_loss" not in frozen.history
    assert all(torch.equal(v, saved[k]) for k, v in frozen.method.modulation.state_dict().items())
    tuned = run(_smoke("mfm_net", imbalance=50, lt_profile="step", options={"modulator": str(path), "freeze": False}))
    assert "meta_loss" in tuned.history
    assert any(not torch.equal(v, saved[k]) for k, v in tuned.method.modulation.state_dict().items())
    with pytest.raises(ValueError, match="model='digits_cnn'.*model='mlp'"):
        run(_smoke("mfm_net", model="mlp", options={"modulator": str(path)}))


def test_paper_profile_resolves_and_resnet32_meta_step_runs():
    config = Config(method="mfm", dataset="cifar10", imbalance=100, profile="paper").resolve()
    assert (config.model, config.meta_lr, config.meta_per_class) == ("resnet32", 1e-3, 10)
    assert Config(method="mfm_net", dataset="cifar100", profile="paper").resolve().meta_lr == 1e-3
    from metakit.models import build_model
    torch.manual_seed(0)
    method = MFM(10, [50] * 10, config, where="blocks+fc")
    net = method.prepare(build_model("resnet32", 10))
    assert method.modulation.names == net.block_names + ["fc"]
    optimizer = torch.optim.SGD(method.classifier_parameters(net), 0.1)
    step = MetaStep(net, method.modulation, optimizer, torch.optim.Adam(method.modulation.parameters(), 1e-3))
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    before = [p.detach().clone() for p in method.modulation.parameters()]
    stats = step((x, y), (x, y))
    assert math.isfinite(stats["meta_loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, method.modulation.parameters()))


def test_mfm_with_ldam_drw_is_ldam_drws_loss_on_s_scaled_cosines():
    """ldam=True, drw=True: the head outputs s·cos; the loss is ldam_drw's (margins, s, Σw·l/Σw) on those cosines."""
    from metakit.methods.longtail import LDAMDRW
    from metakit.methods.losses import NormedLinear
    counts = [40, 20, 10, 5]
    mfm = MFM(4, counts, Config(epochs=10), ldam=True, drw=True)
    net = mfm.prepare(TinyNet())
    assert isinstance(net.fc, NormedLinear) and net.fc.scale == 30
    ldam = LDAMDRW(4, counts, Config(epochs=10))
    torch.manual_seed(0)
    cos, y = torch.rand(8, 4) * 2 - 1, torch.tensor([0, 0, 0, 1, 1, 2, 3, 3])
    for epoch in (0, 8):                                                  # before and after DRW switches on
        mfm.start_epoch(epoch, None), ldam.start_epoch(epoch, None)
        torch.testing.assert_close(mfm.per_sample_loss(30 * cos, y).mean(), ldam.loss(cos, y))
    r = run(_smoke("mfm", options={"ldam": True, "drw": True, "meta_start": 0.0}))
    assert r.method.meta_updates > 0 and math.isfinite(r.metrics["test_acc"])
    with pytest.raises(ValueError, match="ldam=True and logit_adj=True"):
        MFM(4, counts, ldam=True, logit_adj=True)
