"""ImageNet from torchvision's ImageFolder layout: the same files and labels as torchvision, the standard
transforms, deterministic streamed batches, the natural class sizes, and one-line errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from _tiny_imagenet import NAMES, WNIDS, write_tiny_imagenet
from metakit.data.imagenet import IMAGENET_MEAN, IMAGENET_STD, load_imagenet
from metakit.data.splits import SplitSpec, make_split
from metakit.experiments import Config

TINY = {"image_size": 32, "resize": 36, "workers": 0}
CPU = torch.device("cpu")


@pytest.fixture
def tiny(tmp_path):
    return tmp_path, write_tiny_imagenet(tmp_path, meta=True)


def test_files_labels_and_classes_are_what_torchvision_lists(tiny):
    from torchvision.datasets import ImageFolder, ImageNet

    root, expected = tiny
    src = load_imagenet(root, TINY)
    for part, files, labels in (("train", src.train_files, src.train_y), ("val", src.test_files, src.test_y)):
        ours = [(str(root / "imagenet" / part / f.decode()), int(y)) for f, y in zip(files, labels)]
        assert ours == ImageFolder(str(root / "imagenet" / part)).samples == expected[part]
        assert ours == ImageNet(str(root / "imagenet"), split=part).samples     # also torchvision's ImageNet root
    assert src.classes == [NAMES[w][0] for w in WNIDS] == [c[0] for c in ImageNet(str(root / "imagenet")).classes]
    assert (src.num_classes, src.input_shape, len(src.train_y), len(src.test_y)) == (3, (3, 32, 32), 12, 6)
    (root / "imagenet" / "meta.bin").unlink()                                  # plain ImageFolder: named by folder
    assert load_imagenet(root, TINY).classes == list(WNIDS)


def test_evaluation_batches_are_resize_centre_crop_normalised_rgb(tiny):
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    root, _ = tiny
    src = load_imagenet(root, TINY)
    batches = list(src.batches("test", None, src.test_y, 4, CPU, train=False))
    reference = ImageFolder(str(root / "imagenet" / "val"), transform=T.Compose(
        [T.Resize(36), T.CenterCrop(32), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]))
    x = torch.cat([b.x for b in batches])                                      # (6, 3, 32, 32), in file order
    assert torch.equal(x, torch.stack([reference[i][0] for i in range(6)]))
    assert torch.cat([b.y for b in batches]).tolist() == src.test_y.tolist() and [len(b.y) for b in batches] == [4, 2]
    # independent numbers: un-normalised, a greyscale JPEG has three equal channels; the class hue survives
    pixels = x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    grey = [i for i, f in enumerate(src.test_files) if Image.open(root / "imagenet/val" / f.decode()).mode == "L"]
    assert grey and all(torch.allclose(pixels[i, 0], pixels[i, 1], atol=1e-6) for i in grey)
    colour = [i for i in range(6) if i not in grey]
    hue = pixels[colour].mean(dim=(2, 3)).argmax(1)                            # brightest channel
    assert hue.tolist() == [(2 + int(src.test_y[i])) % 3 for i in colour]      # the writer's roll of (60, 120, 200)


def test_training_batches_are_random_crops_reproducible_by_seed_and_generator_state(tiny):
    root, _ = tiny
    src = load_imagenet(root, TINY)

    def epoch(b):
        return [(batch.x.clone(), batch.y.clone(), batch.index.clone()) for batch in b]

    def same(p, q):
        return len(p) == len(q) and all(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) for a, b in zip(p, q))

    torch.manual_seed(0)                                    # workers=0: the crops draw on the global RNG (run seeds it)
    a = src.batches("train", None, src.train_y, 5, CPU, train=True, seed=3)
    first = epoch(a)
    assert [tuple(x.shape) for x, _, _ in first] == [(5, 3, 32, 32), (5, 3, 32, 32), (2, 3, 32, 32)]
    assert sorted(torch.cat([i for _, _, i in first]).tolist()) == list(range(12))   # every image once
    assert all(torch.equal(y, torch.as_tensor(src.train_y)[i]) for _, y, i in first)
    state, rng = a.generator.get_state(), torch.get_rng_state()                 # what a checkpoint keeps
    second = epoch(a)
    assert not torch.equal(first[0][2], second[0][2])                          # reshuffled
    torch.manual_seed(0)
    b = src.batches("train", None, src.train_y, 5, CPU, train=True, seed=3)
    assert same(epoch(b), first)                                               # same seeds, same batches
    b.generator.set_state(state)
    torch.set_rng_state(rng)
    assert same(epoch(b), second)                                              # resumed mid-run
    crops = torch.cat([x for x, _, _ in first])[torch.cat([i for _, _, i in first]).argsort()]   # file order
    centre = next(iter(src.batches("train", None, src.train_y, 12, CPU, train=False))).x
    assert crops.shape == centre.shape and not torch.allclose(crops, centre)   # random resized crops, not centre ones


def test_worker_processes_give_the_same_centre_crops(tiny):
    root, _ = tiny
    one = load_imagenet(root, TINY).batches("test", None, np.arange(6) % 3, 3, CPU, train=False)
    two = load_imagenet(root, {**TINY, "workers": 2}).batches("test", None, np.arange(6) % 3, 3, CPU, train=False)
    assert all(torch.equal(p.x, q.x) for p, q in zip(one, two))


def test_the_split_keeps_every_image_of_unequal_classes():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 5)
    split = make_split(SplitSpec("imagenet", meta_per_class=0), labels)
    assert split.class_counts == [7, 3, 5] and sorted(split.train_idx.tolist()) == list(range(15))
    assert make_split(SplitSpec("cifar10", meta_per_class=0), labels).class_counts == [3, 3, 3]  # CIFAR: n_max each
    with pytest.raises(ValueError, match="dataset='imagenet' keeps every training image.*imbalance=10"):
        SplitSpec("imagenet", imbalance=10, meta_per_class=0).validate()


@pytest.mark.parametrize("fields,words", [
    (dict(profile="smoke"), ["dataset='imagenet' runs at the paper profile only", "--profile paper"]),
    (dict(method="mwnet"), ["method='mwnet' draws meta batches", "streamed"]),
    (dict(method="mlrsnet", meta_per_class=0), ["method='mlrsnet' draws meta batches", "schedule_file"]),
    (dict(method="ce", meta_per_class=10), ["meta_per_class=10", "--meta-per-class 0"]),
    (dict(data_options={"image_size": 64, "resize": 32}), ["resize=32 is smaller than image_size=64"]),
    (dict(data_options={"crop": 3}), ["'crop'"]),
])
def test_config_refuses_what_imagenet_does_not_run(fields, words):
    with pytest.raises((ValueError, TypeError)) as err:
        Config(**{"dataset": "imagenet", "profile": "paper", **fields}).resolve()
    assert all(w in str(err.value) for w in words), err.value


def test_imagenet_defaults_are_resnet50_standard_recipe():
    c = Config(dataset="imagenet", profile="paper").resolve()
    assert (c.model, c.epochs, c.batch_size, c.weight_decay, c.milestones, c.meta_per_class) == \
        ("resnet50", 90, 256, 1e-4, (30, 60), 0)


def test_missing_or_malformed_folders_are_one_line_naming_root_and_layout(tiny, tmp_path):
    root, _ = tiny
    with pytest.raises(FileNotFoundError) as err:
        load_imagenet(tmp_path / "nowhere", TINY)
    text = str(err.value)
    assert "\n" not in text and f"data_root='{tmp_path / 'nowhere'}'" in text
    assert "imagenet/train/<wnid>/*.JPEG" in text and "torchvision.datasets.ImageNet" in text
    shutil.rmtree(root / "imagenet" / "val" / WNIDS[2])
    with pytest.raises(ValueError, match=r"not the same ones \(e.g. \['n01484850'\]\)"):
        load_imagenet(root, TINY)
    (root / "imagenet" / "val" / WNIDS[2]).mkdir()                               # an empty class folder
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes n01484850"):
        load_imagenet(root, TINY)
    shutil.rmtree(root / "imagenet" / "val")
    with pytest.raises(FileNotFoundError, match="imagenet/val' is missing"):
        load_imagenet(root, TINY)


def test_a_meta_bin_that_is_not_torchvisions_is_refused_in_one_line(tiny):
    root, _ = tiny
    (root / "imagenet" / "meta.bin").write_text("not a torch file")
    with pytest.raises(ValueError, match="meta.bin' is not torchvision.datasets.ImageNet's meta file") as err:
        load_imagenet(root, TINY)
    assert "\n" not in str(err.value)


class Crash(RuntimeError):
    """Stands in for a killed job."""


def test_a_streamed_meta_test_resumes_to_the_numbers_of_an_uninterrupted_run(tiny, tmp_path):
    from metakit.experiments import run
    from metakit.experiments.checkpoint import on_checkpoint
    from metakit.learners.lr_net import LRSnapshots, MLRSNet, save_schedule

    root, _ = tiny
    nets = [MLRSNet(10, hidden=8, gamma=0.5, normalise=False) for _ in range(4)]
    with torch.no_grad():
        for i, net in enumerate(nets):
            net.head.bias.fill_(-5.0 - i)                     # a cool LR, one per snapshot
    snapshots = save_schedule(LRSnapshots.of(nets), tmp_path / "snapshots.pt")
    config = Config(method="mlrsnet", profile="paper", dataset="imagenet", model="resnet50", data_root=str(root),
                    epochs=3, batch_size=12, meta_per_class=0, data_options=TINY,
                    options={"schedule_file": str(snapshots)}, progress=False, device="cpu")
    straight = run(config)

    def crash_after_first(path, state):
        if state["epochs_done"] == 1:
            raise Crash(path)

    with on_checkpoint(crash_after_first), pytest.raises(Crash):
        run(config, checkpoint_dir=tmp_path / "ckpt")
    resumed = run(config, checkpoint_dir=tmp_path / "ckpt", resume=True)
    columns = [c for c in straight.history.columns if c != "seconds"]
    assert straight.history[columns].equals(resumed.history[columns])            # order, crops, LRs, losses
    assert straight.metrics["test_acc"] == resumed.metrics["test_acc"]
    assert [w["snapshot"] for w in resumed.method.trainer.schedule.switches] == [1, 2, 4]  # stage 1 from the checkpoint
