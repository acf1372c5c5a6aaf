"""The width-free modulator (kind "shared"), loading it across widths, the on/off switch, and Config.width."""
import pytest
import torch

from metakit.experiments import Config
from metakit.experiments.config import validate
from metakit.learners.modulation import (Modulation, ModulatorNet, SharedModulatorNet, attach, detach,
                                         feature_stats, load_modulator, save_modulator)
from metakit.methods.mfm import MFMNet
from metakit.models import build_model


def _perturbed(module, scale=0.5):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def test_shared_modulator_is_one_function_per_channel():
    mod = _perturbed(SharedModulatorNet(5, hidden=6))
    h = torch.randn(3, 5, 7)
    gamma, beta = mod.scale_shift(h)
    mean, std = feature_stats(h).chunk(2, dim=1)
    # channel 2 by hand: the MLP on (mean_2, std_2, mean of means, mean of stds)
    inputs = torch.stack([mean[:, 2], std[:, 2], mean.mean(1), std.mean(1)], dim=1)
    delta_gamma, beta_2 = mod.mlp(inputs).unbind(1)
    assert torch.allclose(gamma[:, 2], 1 + delta_gamma) and torch.allclose(beta[:, 2], beta_2)
    perm = torch.randperm(5)   # permuting the channels permutes γ and β: no weight belongs to a channel
    gamma_p, beta_p = mod.scale_shift(h[:, perm])
    assert torch.allclose(gamma_p, gamma[:, perm]) and torch.allclose(beta_p, beta[:, perm])
    assert sum(p.numel() for p in SharedModulatorNet(64).parameters()) == sum(
        p.numel() for p in SharedModulatorNet(8).parameters()) < sum(p.numel() for p in ModulatorNet(8).parameters())


def test_shared_modulator_loads_into_another_width_and_dense_one_refuses(tmp_path):
    torch.manual_seed(0)
    narrow, wide = build_model("resnet1d", 10, (1, 40)), build_model("resnet1d", 10, (1, 40), width=64)
    shared = _perturbed(attach(narrow, "fc", kind="shared", hidden=8))
    path = save_modulator(shared, tmp_path / "shared.pt", model="resnet1d")
    loaded = load_modulator(path, wide, model="resnet1d")
    assert loaded.channels == [256] and shared.channels == [128]
    h = torch.randn(4, 256)   # the same weights: the same γ/β for the same per-channel inputs
    by_hand = SharedModulatorNet(256, hidden=8)
    by_hand.load_state_dict(shared.layer("fc").state_dict())
    assert torch.equal(loaded.layer("fc")(h), by_hand(h)) and not torch.equal(by_hand(h), h)
    dense = attach(build_model("resnet1d", 10, (1, 40)), "fc", kind="net")
    dense_path = save_modulator(dense, tmp_path / "dense.pt", model="resnet1d")
    with pytest.raises(ValueError, match="expects channels.*shared=True"):
        load_modulator(dense_path, build_model("resnet1d", 10, (1, 40), width=64), model="resnet1d")


def test_disabled_modulation_leaves_the_net_unchanged():
    torch.manual_seed(0)
    net, x = build_model("resnet1d", 10, (1, 40)).eval(), torch.randn(4, 1, 40)
    plain = net(x)
    mod = _perturbed(attach(net, "blocks+fc", kind="film"))
    modulated = net(x)
    mod.enabled = False
    assert torch.equal(net(x), plain) and not torch.allclose(modulated, plain)
    mod.enabled = True
    assert torch.equal(net(x), modulated)
    detach(net)


def test_a_loaded_modulator_acts_from_meta_start(tmp_path):
    net = build_model("resnet1d", 10, (1, 40))
    path = save_modulator(_perturbed(attach(net, "fc", kind="shared")), tmp_path / "m.pt", model="resnet1d")
    config = Config(dataset="mnist1d", model="resnet1d", epochs=10, method="mfm_net")
    method = MFMNet(10, [100] * 10, config, modulator=str(path), freeze=True)
    assert method.kind == "shared" and not method.uses_meta_set
    method.prepare(build_model("resnet1d", 10, (1, 40), width=16))
    switched = [(method.start_epoch(e, None), method.modulation.enabled)[1] for e in range(10)]
    assert switched == [False] * 9 + [True]   # meta_start 0.9 of 10 epochs: the last one


def test_width_reaches_the_model_and_fixed_width_models_refuse():
    assert build_model("cnn1d", 10, (1, 40), width=8).fc.in_features == 8
    assert build_model("mlp", 10, (1, 40), width=16).fc.in_features == 16
    with pytest.raises(ValueError, match="width=64 but model='digits_cnn' has a fixed width"):
        build_model("digits_cnn", 10, (1, 8, 8), width=64)
    with pytest.raises(ValueError, match="width=64 but model='digits_cnn'"):
        validate(Config(profile="smoke", width=64).resolve())
    with pytest.raises(ValueError, match="width"):
        validate(Config(profile="smoke", width=0).resolve())
