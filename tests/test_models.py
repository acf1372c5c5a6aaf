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


TORCHVISION_TWINS = {"mobilenetv2": "mobilenet_v2", "shufflenetv2": "shufflenet_v2_x1_0", "resnet50": "resnet50"}
FEATURES = {"mobilenetv2": 1280, "shufflenetv2": 1024, "resnet50": 2048}  # the pooled feature fed to fc


@pytest.mark.parametrize("name", sorted(TORCHVISION_TWINS))
def test_paper_models_have_torchvisions_weights_shapes_and_count(name):
    import torchvision

    ours = build_model(name, 10)
    theirs = getattr(torchvision.models, TORCHVISION_TWINS[name])(weights=None, num_classes=10)
    assert count_parameters(ours) == count_parameters(theirs)
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(tuple(p.shape) for p in theirs.parameters())
    assert sorted(tuple(b.shape) for b in ours.buffers()) == sorted(tuple(b.shape) for b in theirs.buffers())


@pytest.mark.parametrize("name,at_1000", [("resnet50", 25_557_032), ("mobilenetv2", 3_504_872),
                                          ("shufflenetv2", 2_278_604)])
def test_paper_model_counts_follow_the_head_formula(name, at_1000):
    # the published ImageNet counts (torchvision's docs), and only fc grows with the classes: (F + 1) per class
    assert count_parameters(build_model(name, 1000)) == at_1000
    assert count_parameters(build_model(name, 1000)) - count_parameters(build_model(name, 10)) == \
        990 * (FEATURES[name] + 1)


@pytest.mark.parametrize("name,last", [("mobilenetv2", "head"), ("shufflenetv2", "conv5")])
def test_cifar_mobile_nets_keep_a_4x4_map_where_torchvision_keeps_1x1(name, last):
    import torchvision

    def last_map(net, module):
        seen = []
        handle = module.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[-2:])))
        net.eval()(torch.zeros(1, 3, 32, 32))
        handle.remove()
        return seen[0]

    ours = build_model(name, 10)
    theirs = getattr(torchvision.models, TORCHVISION_TWINS[name])(weights=None, num_classes=10)
    assert last_map(ours, getattr(ours, last)) == (4, 4)               # 32 / 8: stride-1 stem (the CIFAR variant)
    assert last_map(theirs, theirs.features[-1] if name == "mobilenetv2" else theirs.conv5) == (1, 1)  # 32 / 32
    assert last_map(ours, ours.stem) == (32, 32)


def test_resnet50_is_torchvisions_and_loads_its_state_dict():
    import torchvision

    theirs = torchvision.models.resnet50(weights=None, num_classes=5).eval()
    ours = build_model("resnet50", 5, (3, 64, 64)).eval()
    ours.load_state_dict(theirs.state_dict())                           # same keys, same shapes
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    assert build_model("resnet50", 5, (1, 64, 64))(torch.zeros(2, 1, 64, 64)).shape == (2, 5)   # 1-channel stem
