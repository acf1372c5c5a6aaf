"""Modulation layers: identity at init, attach/detach, functional_call, save/load."""
import pytest
import torch
from torch import nn
from torch.func import functional_call

from metakit.models import build_model
from metakit.learners.modulation import (FeatureModulation, Modulation, ModulatorNet, attach, detach, feature_stats,
                                load_modulator, resolve_where, save_modulator, scale_shift_table)


def _net(name="digits_cnn"):
    torch.manual_seed(0)
    return build_model(name, 10, (1, 8, 8)) if name in ("digits_cnn", "mlp") else build_model(name, 10)


def _x(name="digits_cnn", b=4):
    return torch.randn(b, 1, 8, 8) if name in ("digits_cnn", "mlp") else torch.randn(b, 3, 32, 32)


@pytest.mark.parametrize("model,where", [("digits_cnn", "blocks+fc"), ("digits_cnn", "fc"), ("mlp", "blocks"),
                                         ("resnet32", "blocks+fc"), ("resnet32", "stages")])
@pytest.mark.parametrize("kind", ["film", "net", "shared"])
@pytest.mark.parametrize("train", [True, False])
def test_identity_at_init_bit_exact(model, where, kind, train):
    net, x = _net(model), _x(model)
    net.train(train)
    before = net(x)
    mod = attach(net, where, kind=kind)
    assert torch.equal(net(x), before)
    assert len(mod.handles) == len(mod.names) > 0


def test_resnet32_blocks_are_all_modulated():
    net = _net("resnet32")
    mod = attach(net, "blocks")
    assert mod.names == net.block_names and len(mod.names) == 15
    assert mod.channels == [16] * 5 + [32] * 5 + [64] * 5
    assert net(_x("resnet32")).shape == (4, 10)


def test_detach_restores_the_exact_function_after_learning():
    net, x = _net(), _x()
    net.eval()
    before = net(x)
    mod = attach(net, "blocks+fc")
    with torch.no_grad():
        for p in mod.parameters():
            p.add_(0.3)
    assert not torch.allclose(net(x), before)       # modulation acts
    detach(net)
    assert torch.equal(net(x), before)              # and leaves no trace once detached
    assert not any(n.startswith("modulation") for n, _ in net.named_parameters())
    attach(net, modulation=mod)                     # the learned modulation comes back
    assert not torch.allclose(net(x), before)


def test_modulation_acts_where_it_says():
    net, x = _net(), _x()
    net.eval()
    mod = attach(net, ["block2"])
    with torch.no_grad():
        mod.layer("block2").gamma.fill_(2.0)
        mod.layer("block2").beta.fill_(0.5)
        detach(net)
        h = net.block2(net.block1(x))
        expected = net.fc((2.0 * h + 0.5).mean((2, 3)))
        attach(net, modulation=mod)
        assert torch.allclose(net(x), expected, atol=1e-6)


def test_functional_call_sees_theta_and_phi():
    net, x = _net(), _x()
    mod = attach(net, "blocks+fc")
    params = {n: p.detach() * 1.1 for n, p in net.named_parameters() if not n.startswith("modulation")}
    gamma = {n: p.detach() * 2.0 for n, p in net.named_parameters() if n.endswith("gamma")}
    out_a = functional_call(net, {**params, **dict(net.named_buffers())}, (x,))
    out_b = functional_call(net, {**params, **gamma, **dict(net.named_buffers())}, (x,))
    assert not torch.allclose(out_a, out_b)         # substituted γ changes the output: hooks read it
    # gradients reach φ through functional_call
    out_a.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mod.parameters())
    # with γ·2 substituted the same as setting γ·2 in place
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n.endswith("gamma"):
                p.mul_(2.0)
    assert torch.allclose(functional_call(net, {**params, **dict(net.named_buffers())}, (x,)), out_b, atol=1e-6)


def test_modulator_net_per_sample_and_stats():
    h = torch.randn(3, 4, 5, 5)
    stats = feature_stats(h)
    assert torch.allclose(stats[:, :4], h.mean((2, 3)))
    assert torch.allclose(stats[:, 4:], (h.var((2, 3), unbiased=False) + 1e-5).sqrt())
    mod = ModulatorNet(4, hidden=8)
    with torch.no_grad():
        mod.mlp[2].weight.normal_()
    gamma, beta = mod.scale_shift(h)
    assert gamma.shape == beta.shape == (3, 4) and not torch.allclose(gamma[0], gamma[1])


def test_bad_where_and_channels_named():
    net = _net()
    with pytest.raises(ValueError, match="where='everywhere'"):
        attach(net, "everywhere")
    with pytest.raises(ValueError, match="'block9'"):
        attach(net, ["block9"])
    with pytest.raises(TypeError, match="where=3"):
        resolve_where(net, 3)
    attach(net)
    with pytest.raises(ValueError, match="already has modulation"):
        attach(net)
    with pytest.raises(ValueError, match=r"expects features of shape \(B, 5"):
        FeatureModulation(5)(torch.zeros(2, 4))


def test_save_load_round_trip_identical_outputs(tmp_path):
    net, x = _net(), _x()
    net.eval()
    mod = attach(net, "blocks+fc", kind="net", hidden=8)
    with torch.no_grad():
        for p in mod.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = save_modulator(mod, tmp_path / "m.pt", model="digits_cnn")
    fresh = _net()
    fresh.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("modulation")})
    fresh.eval()
    loaded = load_modulator(path, fresh, model="digits_cnn")
    assert loaded.names == mod.names and loaded.hidden == 8
    assert torch.equal(fresh(x), net(x))


def test_load_refuses_mismatched_model(tmp_path):
    path = save_modulator(attach(_net(), "blocks", kind="net"), tmp_path / "m.pt", model="digits_cnn")
    with pytest.raises(ValueError, match="model='digits_cnn'.*model='mlp'"):
        load_modulator(path, _net("mlp"), model="mlp")
    with pytest.raises(ValueError, match="expects channels"):   # same names, other widths
        load_modulator(path, _net("mlp"))
    with pytest.raises(ValueError, match="does not have"):
        load_modulator(path, _net("resnet32"))
    with pytest.raises(FileNotFoundError, match="modulator="):
        load_modulator(tmp_path / "missing.pt", _net())


def test_scale_shift_table_reads_both_kinds():
    net, x = _net(), _x()
    film = attach(net, "blocks")
    table = scale_shift_table(film)
    assert len(table) == 32 + 64 and (table.gamma == 1).all() and (table.beta == 0).all()
    detach(net)
    table = scale_shift_table(attach(net, "blocks", kind="net"), net, x)
    assert len(table) == 96 and (table.gamma == 1).all()
    assert isinstance(Modulation(["a"], [1]), nn.Module)


def _solve_scale_shift(h: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel γ, β with out = γ·h + β, by least squares over H×W (B, C) each,
    and the channels where every sample's h varies over H×W (elsewhere γ is not identifiable) (C,)."""
    h, out = h.double().flatten(2), out.double().flatten(2)                             # (B, C, HW)
    hc, oc = h - h.mean(2, keepdim=True), out - out.mean(2, keepdim=True)
    spread = (hc * hc).sum(2)                                                          # (B, C)
    gamma = (hc * oc).sum(2) / spread.clamp_min(1e-30)
    return gamma, out.mean(2) - gamma * h.mean(2), (spread > 1e-10).all(0)


@pytest.mark.parametrize("kind", ["film", "net"])
def test_scale_shift_table_equals_the_modulation_the_features_receive(kind):
    """The table against γ, β solved from what each modulated layer does to its features."""
    net, x = _net(), _x(b=6)
    mod = attach(net, "blocks", kind=kind)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in mod.parameters():
            p.add_(0.3 * torch.randn_like(p))
    seen = {}
    grab = [mod.layer(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, (i[0], o)))
            for n in mod.names]
    net.eval()
    with torch.no_grad():
        net(x)
    for handle in grab:
        handle.remove()
    table = scale_shift_table(mod, net, x)
    for name in mod.names:
        gamma, beta, ok = _solve_scale_shift(*seen[name])                               # (B, C), (C,)
        assert ok.float().mean() > 0.5                      # most channels are checked
        rows = table[table.layer == name].sort_values("channel")
        table_gamma, table_beta = torch.tensor(rows.gamma.values), torch.tensor(rows.beta.values)
        torch.testing.assert_close(table_gamma[ok], gamma.mean(0)[ok], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(table_beta[ok], beta.mean(0)[ok], rtol=1e-4, atol=1e-5)
        assert (table_gamma - 1).abs().max() > 1e-2         # not the identity: the check can fail
