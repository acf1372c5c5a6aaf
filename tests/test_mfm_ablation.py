"""MFM's ablation options (params, meta_gradient, drw), the frozen-θ bound and the ablation table."""
import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metakit.cli import main
from metakit.experiments import Config, run
from metakit.studies.grid import LABELS
from metakit.probes.mfm_bound import bound_job, fit_modulation
from metakit.studies.mfm_ablation import ABLATIONS, VARIANTS, ablation_config, ablation_runs, choose_defaults
from metakit.learners.modulation import attach
from metakit.meta import MetaStep
from metakit.methods.base import Trainer
from metakit.methods.mfm import MFM, MFMNet


class MLPNet(nn.Module):
    """A hidden layer and a linear head: fc's input is the modulated feature (no BatchNorm)."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Linear(5, 6), nn.Tanh())
        self.fc = nn.Linear(6, 4)
        self.block_names = self.stage_names = ["block1"]

    def forward(self, x):
        return self.fc(self.block1(x))


def _batches():
    torch.manual_seed(0)
    return (torch.randn(8, 5, dtype=torch.float64), torch.arange(8) % 4,
            torch.randn(4, 5, dtype=torch.float64), torch.arange(4))


def _smoke(**options):
    return Config(method="mfm", profile="smoke", imbalance=20, epochs=1, progress=False, device="cpu",
                  options={"meta_start": 0.0, **options})


@pytest.mark.parametrize("params, fixed, value", [("gamma", "beta", 0.0), ("beta", "gamma", 1.0)])
def test_gamma_only_and_beta_only_leave_the_other_exactly_at_the_identity(params, fixed, value):
    r = run(_smoke(params=params, where="blocks+fc"))
    for layer in r.net.modulation.layers.values():
        assert torch.equal(getattr(layer, fixed), torch.full_like(getattr(layer, fixed), value))
        learned = getattr(layer, params)
        assert not torch.equal(learned, torch.full_like(learned, 1.0 - value))   # the learned one moved


def test_params_is_refused_for_the_modulator_network():
    with pytest.raises(ValueError, match="params='gamma' applies to method='mfm'"):
        MFMNet(10, [10] * 10, params="gamma")


def test_first_order_meta_gradient_is_the_direct_term_at_a_detached_look_ahead():
    """first_order: ∂L_meta(θ', φ)/∂φ with θ' = θ − α·sg[∇θ L_train + wd·θ], computed here by hand;
    the exact hypergradient adds the look-ahead's mixed term and must differ."""
    x, y, xm, ym = _batches()
    net = MLPNet().double()
    mod = attach(net, "blocks+fc")
    with torch.no_grad():
        for p in mod.parameters():
            p.add_(0.3 * torch.randn_like(p))
    lr, wd = 0.5, 1e-3
    theta = {n: p for n, p in net.named_parameters() if not n.startswith("modulation")}
    phi = {n: p for n, p in net.named_parameters() if n.startswith("modulation")}
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), list(theta.values()))
    stepped = {n: (p - lr * (g + wd * p)).detach() for (n, p), g in zip(theta.items(), grads)}
    expected = torch.autograd.grad(F.cross_entropy(functional_call(net, stepped, (xm,)), ym), list(phi.values()))

    def hyper(first_order):
        opt = torch.optim.SGD(theta.values(), lr=lr)
        step = MetaStep(net, mod, opt, torch.optim.SGD(mod.parameters(), 1.0), weight_decay=wd,
                        first_order=first_order)
        return step.hypergradient((x, y), (xm, ym)).grads

    for got, want in zip(hyper(True), expected):
        torch.testing.assert_close(got, want)
    assert any(not torch.allclose(a, b) for a, b in zip(hyper(False), expected))


def test_meta_gradient_off_steps_phi_by_adam_on_the_training_loss_and_theta_by_sgd():
    x, y, _, _ = _batches()
    net = MLPNet().double()
    method = MFM(4, [8, 4, 2, 1], meta_gradient="off", meta_start=0.0, where="fc")
    assert not method.uses_meta_set                       # off: no meta batches are drawn
    method.prepare(net)
    theta = method.classifier_parameters(net)
    trainer = Trainer(net, torch.optim.SGD(theta, lr=0.1), SimpleNamespace(update=lambda loss: 0.1),
                      torch.device("cpu"))
    method.setup(trainer)
    phi = list(method.modulation.parameters())
    loss = F.cross_entropy(net(x), y)
    g_phi = torch.autograd.grad(loss, phi, retain_graph=True)
    g_theta = torch.autograd.grad(loss, theta)
    lr = MFM.recipe("laptop")["meta_lr"]                 # no Config: the recipe's meta-LR
    want_phi = [p.detach() - lr * g / (g.abs() + 1e-8) for p, g in zip(phi, g_phi)]  # Adam's first step
    want_theta = [p.detach() - 0.1 * g for p, g in zip(theta, g_theta)]
    method.start_epoch(0, trainer)
    method.train_step(trainer, SimpleNamespace(x=x, y=y), None)
    for got, want in zip(phi + theta, want_phi + want_theta):
        torch.testing.assert_close(got.detach(), want)


def test_drw_weights_the_loss_by_the_effective_number_from_80_percent_of_the_epochs():
    counts, beta = [50, 10, 2], 0.996                                    # digits' class-balanced β
    method = MFM(3, counts, config=SimpleNamespace(epochs=10, dataset="digits"), drw=True)
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    ce = F.cross_entropy(logits, y, reduction="none")
    method.start_epoch(7, None)
    torch.testing.assert_close(method.per_sample_loss(logits, y), ce)     # epoch 7 of 10: not yet
    method.start_epoch(8, None)
    w = [(1 - beta) / (1 - beta ** n) for n in counts]
    w = torch.tensor([3 * v / sum(w) for v in w])                         # normalised to sum C
    torch.testing.assert_close(method.per_sample_loss(logits, y), w[y] * ce)
    fresh = MFM(3, counts, config=SimpleNamespace(epochs=10, dataset="digits"), drw=True)
    fresh.load_state_dict(method.state_dict())
    assert fresh.drw_on


def test_fit_modulation_lowers_the_fit_loss_and_leaves_theta_untouched():
    x, y, _, _ = _batches()
    net = MLPNet().double()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    start = F.cross_entropy(net(x), y).item()
    fit_modulation(net, x, y, steps=50, lr=0.05)
    assert F.cross_entropy(net(x), y).item() < start - 0.05
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters() if n in before)


def test_bound_job_reports_the_cross_entropy_run_it_starts_from():
    config = Config(profile="smoke", imbalance=10, epochs=1, progress=False, device="cpu")
    plain = run(config).metrics["test_acc"]
    out = bound_job(config, fit="val", steps=5)
    assert out["ce_test_acc"] == pytest.approx(plain) and math.isnan(out["val_acc"])
    assert 0 <= out["test_acc"] <= 100 and not math.isnan(bound_job(config, fit="meta", steps=5)["val_acc"])


def test_every_ablation_changes_the_resolved_config_and_no_two_coincide():
    default = ablation_config("mfm", {}, "mnist1d", 100, 0, "laptop").resolve()
    configs = {name: ablation_config(m, f, "mnist1d", 100, 0, "laptop").resolve() for name, (m, f) in ABLATIONS.items()}
    assert all(c != default for c in configs.values())
    assert len({repr(c) for c in configs.values()}) == len(configs)


def test_ablation_runs_label_every_variant_once_per_seed():
    runs = ablation_runs(["digits"], [10], [0, 1], "smoke")
    labels = [tuple(r.labels()[k] for k in LABELS) for r in runs]
    assert len(runs) == 2 * len(VARIANTS) and len(set(labels)) == len(labels)
    assert [r.config.seed for r in runs[:len(VARIANTS)]] == [0] * len(VARIANTS)   # seed-major chunks


def test_ablation_table_resumes_and_renders_deltas_against_ce_and_mfm(tmp_path, capsys):
    csv = tmp_path / "mfm_ablation_smoke_e1.csv"
    argv = ["table", "mfm-ablation", "--profile", "smoke", "--epochs", "1", "--datasets", "digits", "--imbalances",
            "10", "--seeds", "0", "--variants", "ce", "mfm", "gamma_only", "fit_meta", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = pd.read_csv(csv)
    assert sorted(first["variant"].fillna("")) == ["", "", "fit_meta", "gamma_only"]
    assert main(argv) == 0 and pd.read_csv(csv).equals(first)          # the second call trains nothing
    md = (tmp_path / "mfm_ablation_smoke_e1.md").read_text()
    assert "Paired difference from ce" in md and "Paired difference from mfm" in md and "mfm_bound (fit_meta)" in md
    assert "already in" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["table", "long-tail", "--variants", "ce"], "--variants does not apply to table long-tail"),
    (["table", "mfm-ablation", "--methods", "ce"], "--methods does not apply to table mfm-ablation"),
    (["study", "noise", "--targets", "if50"], "--targets does not apply to study noise (its choices: --methods"),
    (["table", "mfm-ablation", "--variants", "nope"], "variants='nope'"),
])
def test_bad_table_flags_give_one_line_and_status_2(capsys, argv, words):
    assert main([*argv, "--profile", "smoke", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_defaults_are_chosen_on_validation_over_if10_and_if100_never_on_test_or_held_out_settings():
    """'test_wins' is best on test everywhere and 'if20_wins' best on the held-out IF 20: neither may win."""
    rows = []
    for dataset in ("digits", "mnist1d"):
        for setting, offsets in (("lt_if10", {"": 1, "val_wins": 2, "test_wins": 0, "if20_wins": 1}),
                                 ("lt_if100", {"": 1, "val_wins": 3, "test_wins": 0, "if20_wins": 1}),
                                 ("lt_if20", {"": 1, "val_wins": 0, "test_wins": 0, "if20_wins": 9})):
            for seed in (0, 1):
                rows.append(dict(dataset=dataset, setting=setting, method="ce", variant="", seed=seed,
                                 val_acc=50.0 + seed, test_acc=50.0))
                rows += [dict(dataset=dataset, setting=setting, method="mfm", variant=v, seed=seed,
                              val_acc=50.0 + seed + d, test_acc=60.0 if v == "test_wins" else 50.0)
                         for v, d in offsets.items()]
    ranked = choose_defaults(pd.DataFrame(rows))
    assert ranked["variant"].tolist()[0] == "val_wins" and ranked["settings"].eq(4).all()
    assert ranked.set_index("variant").loc["val_wins", "val_delta"] == pytest.approx(2.5)


def test_defaults_skip_combinations_and_variants_missing_from_a_selection_setting():
    """'partial' wins where it ran but skipped MNIST-1D IF 10, 'plus_drw' wins everywhere: neither is a candidate,
    and the settings the others cover are all three, not just the two 'partial' also ran in."""
    rows = []
    for dataset, setting in (("digits", "lt_if10"), ("mnist1d", "lt_if10"), ("mnist1d", "lt_if100")):
        offsets = {"": 1.0, "plain": 2.0, "plus_drw": 9.0} | ({} if setting == "lt_if10" and dataset == "mnist1d"
                                                              else {"partial": 8.0})
        rows.append(dict(dataset=dataset, setting=setting, method="ce", variant="", seed=0, val_acc=50.0,
                         test_acc=50.0))
        rows += [dict(dataset=dataset, setting=setting, method="mfm", variant=v, seed=0, val_acc=50.0 + d,
                      test_acc=50.0) for v, d in offsets.items()]
    ranked = choose_defaults(pd.DataFrame(rows))
    assert ranked["variant"].tolist() == ["plain", ""] and ranked["settings"].eq(3).all()
