"""MNIST-1D: offline generation, a byte-identical and tamper-proof cache, the CIFAR-10-LT protocol."""
import json
import urllib.request

import numpy as np
import pytest
import torch

from metakit.data import mnist1d
from metakit.data.batches import Batches
from metakit.data.sources import load_source
from metakit.data.splits import SplitSpec, make_split
from metakit.experiments import Config, run

SMALL_ARGS = mnist1d.generator_args(num_samples=200)


def test_generation_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("mnist1d tried to download")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    requests = pytest.importorskip("requests")
    monkeypatch.setattr(requests, "get", refuse)
    x, y = mnist1d.generate(SMALL_ARGS)
    assert x.shape == (200, 40) and np.bincount(y).tolist() == [20] * 10


def test_regenerated_cache_is_byte_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    mnist1d.load_samples(a, args=SMALL_ARGS)
    mnist1d.load_samples(b, args=SMALL_ARGS)
    folder_a, folder_b = mnist1d.cache_folder(a, "mnist1d", SMALL_ARGS), mnist1d.cache_folder(b, "mnist1d", SMALL_ARGS)
    for name in ("x.npy", "y.npy", "meta.json"):
        assert (folder_a / name).read_bytes() == (folder_b / name).read_bytes()


def test_cache_name_holds_the_generator_arguments(tmp_path):
    other = dict(SMALL_ARGS, iid_noise_scale=0.1)
    assert mnist1d.cache_folder(tmp_path, "mnist1d", SMALL_ARGS) != mnist1d.cache_folder(tmp_path, "mnist1d", other)
    mnist1d.load_samples(tmp_path, args=other)
    meta = json.loads((mnist1d.cache_folder(tmp_path, "mnist1d", other) / "meta.json").read_text())
    assert meta["args"]["iid_noise_scale"] == 0.1
    x1, _ = mnist1d.load_samples(tmp_path, args=SMALL_ARGS)
    x2, _ = mnist1d.load_samples(tmp_path, args=other)
    assert not np.array_equal(x1, x2)  # other arguments, other samples (never the cached ones)


def test_tampered_cache_is_refused(tmp_path):
    x, _ = mnist1d.load_samples(tmp_path, args=SMALL_ARGS)
    folder = mnist1d.cache_folder(tmp_path, "mnist1d", SMALL_ARGS)
    data = bytearray((folder / "x.npy").read_bytes())
    data[-1] ^= 0xFF
    (folder / "x.npy").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        mnist1d.load_samples(tmp_path, args=SMALL_ARGS)


def test_unknown_generator_argument_is_named():
    with pytest.raises(ValueError, match="data_options key 'noise' is unknown"):
        mnist1d.generator_args(noise=0.1)
    with pytest.raises(ValueError, match="data_options key 'noise' is unknown"):
        Config(dataset="mnist1d", data_options={"noise": 0.1}).resolve()  # before any data is generated


def test_split_is_balanced_and_disjoint(tmp_path):
    source = mnist1d.load_mnist1d(tmp_path, sizes=(12, 3, 5))
    for y, n in ((source.train_y, 12), (source.val_y, 3), (source.test_y, 5)):
        assert np.bincount(y).tolist() == [n] * 10
    rows = lambda x: {tuple(r) for r in x.flatten(1).tolist()}  # noqa: E731
    assert not rows(source.train_x) & rows(source.test_x) and not rows(source.val_x) & rows(source.test_x)
    assert source.train_x.dtype == torch.float32 and source.train_x.shape[1:] == (1, 40)


@pytest.mark.parametrize("imbalance,total", [(100, 12406), (50, 13996), (10, 20431)])
def test_cifar10_lt_counts_with_the_meta_set_taken_out_first(imbalance, total):
    labels = np.repeat(np.arange(10), mnist1d.POOL_PER_CLASS)
    split = make_split(SplitSpec("mnist1d", imbalance, meta_per_class=10, train_per_class=5000), labels)
    expected = [int(5000 * (1 / imbalance) ** (i / 9)) for i in range(10)]  # LDAM-DRW's formula
    assert split.class_counts == expected and sum(expected) == total and len(split.train_idx) == total
    assert np.bincount(labels[split.meta_idx]).tolist() == [10] * 10
    assert not set(split.meta_idx) & set(split.train_idx)


def test_noise_protocol_12000_training_and_1000_meta():
    labels = np.repeat(np.arange(10), mnist1d.POOL_PER_CLASS)
    split = make_split(SplitSpec("mnist1d", 1, "exp", "uniform", 0.4, 100, 0, 1200), labels)
    assert len(split.train_idx) == 12000 and len(split.meta_idx) == 1000
    flipped = np.mean(split.train_labels != split.clean_labels)
    assert 0.36 - 0.02 < flipped < 0.36 + 0.02  # uniform over all 10 classes: p (C-1)/C


def test_train_per_class_beyond_the_pool_is_refused():
    labels = np.repeat(np.arange(10), 50)
    with pytest.raises(ValueError, match="train_per_class=60 exceeds the 40"):
        make_split(SplitSpec("mnist1d", meta_per_class=10, train_per_class=60), labels)


def test_profiles_give_the_protocol():
    laptop = Config(dataset="mnist1d", profile="laptop", imbalance=100).resolve()
    assert (laptop.model, laptop.batch_size, laptop.train_per_class, laptop.meta_per_class, laptop.data_size) == \
        ("resnet1d", 128, 5000, 10, "full")
    smoke = Config(dataset="mnist1d", profile="smoke").resolve()
    assert smoke.data_size == "small" and smoke.train_per_class == 100
    assert Config(profile="laptop").resolve().model == "digits_cnn"  # digits is unchanged


def test_models_must_fit_the_data_before_anything_loads():
    with pytest.raises(ValueError, match="model='resnet32' takes .C, H, W. images but dataset='mnist1d'"):
        Config(dataset="mnist1d", model="resnet32", profile="smoke").resolve()
    with pytest.raises(ValueError, match="model='resnet1d' takes .C, L. signals but dataset='digits'"):
        Config(dataset="digits", model="resnet1d", profile="smoke").resolve()
    assert Config(dataset="mnist1d", model="mlp", profile="smoke").resolve().model == "mlp"


def test_data_options_only_for_a_generated_dataset():
    with pytest.raises(ValueError, match="data_options=.*dataset='digits' is not generated"):
        load_source("digits", options={"iid_noise_scale": 0.1})
    with pytest.raises(ValueError, match="data_options=.*dataset='digits' is not generated"):
        Config(dataset="digits", data_options={"iid_noise_scale": 0.1}).resolve()


def test_float_batches_are_standardised_not_divided_by_255():
    x = torch.tensor([[[1.0, 3.0]], [[5.0, 7.0]]])                                  # (2, 1, 2)
    batch = next(iter(Batches(x, np.array([0, 1]), 2, torch.device("cpu"), (4.0,), (2.0,), shuffle=False)))
    assert torch.allclose(batch.x, (x - 4.0) / 2.0)
    with pytest.raises(ValueError, match="augment='shift' shifts images"):
        Batches(x, np.array([0, 1]), 2, torch.device("cpu"), (4.0,), (2.0,), augment="shift")


def test_a_smoke_run_beats_chance_on_the_small_set():
    result = run(Config(dataset="mnist1d", profile="smoke", epochs=8, progress=False))
    assert result.metrics["test_acc"] > 20 and 0 <= result.metrics["val_acc"] <= 100  # chance is 10
    assert "val_acc" in result.history.columns


@pytest.mark.parametrize("model", ["resnet1d", "cnn1d", "mlp"])
@pytest.mark.parametrize("method", sorted(__import__("metakit.methods", fromlist=["METHODS"]).METHODS))
def test_every_method_trains_on_every_1d_model(method, model):
    options = {"where": "blocks+fc"} if method in ("mfm", "mfm_net") else {}  # every modulation point
    result = run(Config(method=method, dataset="mnist1d", model=model, profile="smoke", epochs=1, imbalance=10,
                        options=options, progress=False))
    assert np.isfinite(result.history["train_loss"]).all() and 0 <= result.metrics["test_acc"] <= 100
