"""One DATASET switch: the source, the input shape and the default net follow the config's dataset."""
import pytest
import torch

from metakit.experiments import Config
from metakit.models import build_model
from metakit.teaching.inputs import build_net, input_shape, source_of


@pytest.mark.parametrize("dataset,model,shape", [("digits", "digits_cnn", (1, 8, 8)), ("mnist1d", "resnet1d", (1, 40))])
def test_source_shape_and_net_follow_the_dataset(dataset, model, shape):
    config = Config(profile="smoke", dataset=dataset)
    source = source_of(config)
    assert source.name == dataset and input_shape(source) == shape and config.resolve().model == model
    net = build_net(config, source).eval()
    assert type(net) is type(build_model(model, 10, shape))
    assert net(torch.zeros(3, *shape)).shape == (3, 10)
    if dataset == "mnist1d":                     # smoke: the CI-sized set (110 pool samples a class)
        assert len(source.train_y) == 1100 and source.train_x.dtype == torch.float32
