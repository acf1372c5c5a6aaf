import json

import numpy as np
import pytest

from metakit.data import load_source
from metakit.data.splits import SplitSpec, load_split, make_split, save_split


@pytest.fixture(scope="module")
def digits():
    return load_source("digits")


def test_meta_is_balanced_clean_and_disjoint(digits):
    split = make_split(SplitSpec(imbalance=10, noise_kind="uniform", noise_rate=0.4, meta_per_class=7), digits.train_y)
    meta_labels = digits.train_y[split.meta_idx]
    assert np.bincount(meta_labels).tolist() == [7] * 10
    assert not set(split.meta_idx) & set(split.train_idx)
    assert np.array_equal(split.clean_labels, digits.train_y[split.train_idx])
    assert np.bincount(split.clean_labels).tolist() == split.class_counts


def test_counts_follow_formula_after_meta_removal(digits):
    split = make_split(SplitSpec(imbalance=10, meta_per_class=5), digits.train_y)
    n_max = min(np.bincount(digits.train_y)) - 5
    assert split.class_counts == [int(n_max * 0.1 ** (i / 9)) for i in range(10)]


def test_deterministic_in_seed(digits):
    a = make_split(SplitSpec(imbalance=5, noise_kind="flip", noise_rate=0.3, seed=3), digits.train_y)
    b = make_split(SplitSpec(imbalance=5, noise_kind="flip", noise_rate=0.3, seed=3), digits.train_y)
    c = make_split(SplitSpec(imbalance=5, noise_kind="flip", noise_rate=0.3, seed=4), digits.train_y)
    assert np.array_equal(a.train_idx, b.train_idx) and np.array_equal(a.train_labels, b.train_labels)
    assert not np.array_equal(a.train_idx, c.train_idx)


def test_save_load_roundtrip_and_tamper(tmp_path, digits):
    split = make_split(SplitSpec(imbalance=10, noise_kind="uniform", noise_rate=0.2), digits.train_y)
    path = save_split(split, tmp_path / "s.json")
    back = load_split(path)
    assert back.spec == split.spec and np.array_equal(back.train_labels, split.train_labels)
    assert np.allclose(back.transition, split.transition)
    record = json.loads(path.read_text())
    record["split"]["train_labels"][0] = (record["split"]["train_labels"][0] + 1) % 10
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="sha256"):
        load_split(path)


def test_too_many_meta_images_named(digits):
    with pytest.raises(ValueError, match="meta_per_class=500"):
        make_split(SplitSpec(meta_per_class=500), digits.train_y)


def test_a_split_of_other_sizes_is_refused_naming_the_size_and_the_flag():
    """A split keeps its sizes: one made with 5 meta images a class does not serve a run of 10."""
    from metakit.data.splits import check_fits
    split = make_split(SplitSpec(imbalance=2, meta_per_class=5), np.repeat(np.arange(2), 20))
    check_fits(split, SplitSpec(imbalance=2, meta_per_class=5), None)
    with pytest.raises(ValueError, match=r"made for meta_per_class=5 but this run has meta_per_class=10; pass "
                                         r"--meta-per-class 5"):
        check_fits(split, SplitSpec(imbalance=2, meta_per_class=10), None)
