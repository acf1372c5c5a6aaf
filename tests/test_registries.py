"""A model or dataset registered by a decorator is buildable/loadable by name; unknown names list the choices."""
import numpy as np
import pytest
import torch
from torch import nn

from metakit.data import registry as data_registry
from metakit.data.registry import register_dataset
from metakit.data.source import Source
from metakit.data.sources import DATASETS, load_source
from metakit.models import MODELS, NamedStages, build_model
from metakit.models import registry as model_registry
from metakit.models.registry import register_model


@pytest.fixture(autouse=True)
def scratch_registries(monkeypatch):
    """Each test registers into copies, so nothing it adds outlives it."""
    monkeypatch.setattr(model_registry, "_REGISTRY", dict(model_registry._REGISTRY))
    monkeypatch.setattr(data_registry, "_REGISTRY", dict(data_registry._REGISTRY))


class Toy(NamedStages):
    def __init__(self, num_classes: int, in_features: int, hidden: int = 3):
        super().__init__()
        self.block1 = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden))
        self.fc = nn.Linear(hidden, num_classes)
        self.block_names = self.stage_names = ["block1"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block1(x))


def test_a_registered_model_builds_by_name_with_its_width():
    @register_model("toy", inputs="any", width="hidden")
    def toy(num_classes, input_shape, hidden=3):
        return Toy(num_classes, int(np.prod(input_shape)), hidden)

    assert "toy" in model_registry.model_names(inputs="any", sized=True)
    net = build_model("toy", 4, (2, 5), width=6)
    assert isinstance(net, Toy) and net.fc.in_features == 6
    assert net(torch.zeros(3, 2, 5)).shape == (3, 4)
    assert build_model("toy", 4, (2, 5)).fc.in_features == 3          # no width: the builder's own


def test_a_registered_image_model_checks_the_input_shape_and_refuses_a_width():
    register_model("toy_images")(lambda num_classes, input_shape: Toy(num_classes, int(np.prod(input_shape))))
    assert build_model("toy_images", 2, (1, 2, 2))(torch.zeros(1, 1, 2, 2)).shape == (1, 2)
    with pytest.raises(ValueError, match=r"model='toy_images' takes \(C, H, W\) images but input_shape=\(1, 40\)"):
        build_model("toy_images", 2, (1, 40))
    with pytest.raises(ValueError, match="width=8 but model='toy_images' has a fixed width"):
        build_model("toy_images", 2, (1, 2, 2), width=8)


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(ValueError, match="model='vgg' is unknown; use one of") as err:
        build_model("vgg", 10)
    assert str(MODELS) in str(err.value)


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="model='resnet32' is registered twice"):
        register_model("resnet32")(lambda num_classes, input_shape: None)
    with pytest.raises(ValueError, match="dataset='digits' is registered twice"):
        register_dataset("digits")(lambda name, root, size, options: None)


def tiny_source(name: str) -> Source:
    x = torch.arange(2 * 4, dtype=torch.uint8).reshape(4, 1, 1, 2)
    return Source(name, x, np.array([0, 1, 0, 1]), x[:2], np.array([0, 1]), ["a", "b"], (0.0,), (1.0,), "none")


def test_a_registered_dataset_loads_by_name_and_gets_its_arguments(tmp_path):
    seen = []

    @register_dataset("toy", options="toy settings")
    def toy(name, root, size, options):
        seen.append((name, root, size, options))
        return tiny_source(name)

    src = load_source("toy", tmp_path, "small", {"k": 1})
    assert src.name == "toy" and src.num_classes == 2
    assert seen == [("toy", tmp_path, "small", {"k": 1})]
    assert "toy" in data_registry.dataset_names(options=True)


def test_options_are_refused_by_a_dataset_that_takes_none(tmp_path):
    register_dataset("toy_plain")(lambda name, root, size, options: tiny_source(name))
    assert load_source("toy_plain", tmp_path).name == "toy_plain"
    with pytest.raises(ValueError, match="dataset='toy_plain' is not generated") as err:
        load_source("toy_plain", tmp_path, options={"k": 1})
    assert "dataset='mnist1d' (generator arguments) or 'imagenet' (image sizes, workers)" in str(err.value)


def test_unknown_dataset_lists_the_registered_ones():
    with pytest.raises(ValueError, match="dataset='mnist' is unknown; use one of") as err:
        load_source("mnist")
    assert str(DATASETS) in str(err.value)
    assert DATASETS == ("digits", "mnist1d", "cifar10", "cifar100", "imagenet")
