import pytest
import torch

from metakit.models import MODELS, build_model, count_parameters


@pytest.mark.parametrize("name,classes,expected", [
    ("resnet32", 10, 464_154),       # the ~0.46 M of He et al.
    ("resnet18", 10, 11_173_962),    # CIFAR ResNet-18
    ("wrn28_10", 10, 36_479_194),    # the ~36.5 M of Zagoruyko & Komodakis
    ("wrn28_10", 100, 36_536_884),
])
def test_parameter_counts(name, classes, expected):
    assert count_parameters(build_model(name, classes)) == expected


def test_resnet32_count_by_formula():
    # conv layers: stem 3*16*9, then per stage n=5 blocks of two 3x3 convs; BN has 2 per channel
    def conv(cin, cout):
        return cin * cout * 9
    total = conv(3, 16) + 2 * 16
    cin = 16
    for w in (16, 32, 64):
        for b in range(5):
            total += conv(cin if b == 0 else w, w) + conv(w, w) + 4 * w
        cin = w
    total += 64 * 10 + 10
    assert count_parameters(build_model("resnet32", 10)) == total


@pytest.mark.parametrize("name", MODELS)
def test_forward_and_named_stages(name):
    shape = {"digits_cnn": (1, 8, 8), "mlp": (1, 8, 8), "resnet1d": (1, 40), "cnn1d": (1, 40)}.get(name, (3, 32, 32))
    net = build_model(name, 7, shape)
    x = torch.randn(2, *shape)
    assert net(x).shape == (2, 7)
    modules = dict(net.named_modules())
    assert net.block_names and net.stage_names
    assert all(n in modules for n in net.block_names + net.stage_names)


def test_unknown_model_named():
    with pytest.raises(ValueError, match="model='vgg'"):
        build_model("vgg", 10)
