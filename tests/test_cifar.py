import pickle

import numpy as np
import pytest
import torch

from _tiny_cifar import booby_trapped_pickle, write_tiny
from metakit.data import cifar
from metakit.data.cifar import CIFAR, load_cifar
from metakit.data.longtail import longtail_counts
from metakit.data.sources import load_source
from metakit.data.splits import SplitSpec, make_split


@pytest.fixture(params=["cifar10", "cifar100"])
def tiny(request, tmp_path, monkeypatch):
    expected = write_tiny(tmp_path, request.param)
    monkeypatch.setitem(CIFAR, request.param, expected["table"])
    return request.param, tmp_path, expected


def test_checksum_table_is_torchvisions():
    from torchvision.datasets import CIFAR10, CIFAR100

    for name, tv in (("cifar10", CIFAR10), ("cifar100", CIFAR100)):
        table = CIFAR[name]
        assert (table.folder, table.url, table.archive, table.archive_md5) == (tv.base_folder, tv.url, tv.filename,
                                                                               tv.tgz_md5)
        assert [list(f) for f in table.train] == tv.train_list and [list(f) for f in table.test] == tv.test_list
        assert table.meta == (tv.meta["filename"], tv.meta["md5"]) and table.names_key.decode() == tv.meta["key"]


def test_images_and_labels_round_trip_in_chw(tiny):
    name, root, expected = tiny
    src = load_cifar(name, root)
    assert src.train_x.dtype == torch.uint8 and src.train_x.shape == (len(expected["train_y"]), 3, 32, 32)
    assert np.array_equal(src.train_x.numpy(), expected["train_hwc"].transpose(0, 3, 1, 2))
    assert np.array_equal(src.test_x.numpy(), expected["test_hwc"].transpose(0, 3, 1, 2))
    assert src.train_y.dtype == np.int64 and np.array_equal(src.train_y, expected["train_y"])
    assert np.array_equal(src.test_y, expected["test_y"])
    assert src.classes == expected["classes"] and src.augment == "crop_flip"
    pixels = expected["train_hwc"].astype(np.float64) / 255                        # (N, H, W, C)
    assert np.allclose(src.mean, pixels.mean(axis=(0, 1, 2)), atol=1e-5)
    assert np.allclose(src.std, pixels.std(axis=(0, 1, 2), ddof=1), atol=1e-5)


def test_pixels_agree_with_torchvision_reading_the_same_files(tiny, monkeypatch):
    from torchvision.datasets import CIFAR10, CIFAR100

    name, root, _ = tiny
    tv, table = (CIFAR10 if name == "cifar10" else CIFAR100), CIFAR[name]
    monkeypatch.setattr(tv, "train_list", [list(f) for f in table.train])
    monkeypatch.setattr(tv, "test_list", [list(f) for f in table.test])
    monkeypatch.setattr(tv, "meta", {**tv.meta, "md5": table.meta[1]})
    src = load_cifar(name, root)
    for train, ours_x, ours_y in ((True, src.train_x, src.train_y), (False, src.test_x, src.test_y)):
        theirs = tv(str(root), train=train, download=False)
        assert theirs.classes == src.classes
        for i in range(len(theirs)):
            image, label = theirs[i]                                             # PIL image: (H, W, C)
            assert np.array_equal(np.asarray(image).transpose(2, 0, 1), ours_x[i].numpy()) and label == ours_y[i]


def test_load_source_reads_cifar_from_root(tiny):
    name, root, expected = tiny
    assert np.array_equal(load_source(name, root).train_y, expected["train_y"])


def test_tampered_file_is_refused_before_anything_is_unpickled(tiny, monkeypatch, tmp_path):
    name, root, _ = tiny
    proof = tmp_path / "proof"
    pickle.loads(booby_trapped_pickle(proof))                                     # the trap does fire when loaded
    assert proof.exists()
    canary = tmp_path / "canary"
    meta_file = CIFAR[name].meta[0]                                               # the last file checked
    (root / CIFAR[name].folder / meta_file).write_bytes(booby_trapped_pickle(canary))
    calls, real_loads = [], pickle.loads
    monkeypatch.setattr(cifar.pickle, "loads", lambda *a, **k: calls.append(a) or real_loads(*a, **k))
    with pytest.raises(ValueError, match=f"{meta_file}' failed its checksum") as err:
        load_cifar(name, root)
    assert f"python -m data_prep.cifar --root {root} --dataset {name}" in str(err.value)
    assert not canary.exists() and calls == []                                    # not even the good files


def test_changed_byte_in_a_batch_is_refused(tiny):
    name, root, _ = tiny
    path = root / CIFAR[name].folder / CIFAR[name].train[0][0]
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="failed its checksum"):
        load_cifar(name, root)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_dataset_names_the_download_command(name, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"`python -m data_prep.cifar --root {tmp_path} --dataset {name}`"):
        load_source(name, tmp_path)


def test_one_missing_file_names_it_and_the_command(tiny):
    name, root, _ = tiny
    missing = root / CIFAR[name].folder / CIFAR[name].test[0][0]
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=str(missing)) as err:
        load_cifar(name, root)
    assert f"--dataset {name}" in str(err.value)


def test_unknown_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="dataset='cifar1000' is not a CIFAR dataset"):
        load_cifar("cifar1000", tmp_path)


@pytest.mark.parametrize("num_classes, per_class", [(10, 5000), (100, 500)])
@pytest.mark.parametrize("imbalance", [10, 100, 200])
@pytest.mark.parametrize("meta_per_class", [0, 10])
def test_longtail_counts_of_a_cifar_shaped_pool(num_classes, per_class, imbalance, meta_per_class):
    pool = np.repeat(np.arange(num_classes), per_class)
    spec = SplitSpec(f"cifar{num_classes}", imbalance=imbalance, meta_per_class=meta_per_class)
    split = make_split(spec, pool)
    n_max = per_class - meta_per_class                                            # 5000 or 4990 (CIFAR-10)
    formula = [int(n_max * (1 / imbalance) ** (i / (num_classes - 1))) for i in range(num_classes)]
    assert split.class_counts == formula == np.bincount(split.clean_labels).tolist()
    assert len(split.meta_idx) == meta_per_class * num_classes


def test_cifar10_if100_counts_are_the_ldam_numbers():
    split = make_split(SplitSpec("cifar10", imbalance=100, meta_per_class=0), np.repeat(np.arange(10), 5000))
    assert split.class_counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] == longtail_counts(5000, 10, 100)
    assert len(split.train_idx) == 12406
