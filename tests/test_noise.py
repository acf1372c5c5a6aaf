import numpy as np
import pytest

from metakit.data.noise import corrupt_labels


def labels(per_class=2000, classes=10):
    return np.repeat(np.arange(classes), per_class)


def test_uniform_rate_matches_formula():
    y = labels()
    noisy, T = corrupt_labels(y, 10, "uniform", 0.4, np.random.default_rng(0))
    # a replaced label draws the true class with probability 1/C
    assert np.mean(noisy != y) == pytest.approx(0.4 * 9 / 10, abs=0.01)
    assert np.allclose(T.sum(1), 1)
    assert np.diag(T).mean() == pytest.approx(0.6 + 0.4 / 10, abs=0.01)


def test_flip_goes_to_next_class_only():
    y = labels()
    noisy, T = corrupt_labels(y, 10, "flip", 0.4, np.random.default_rng(1))
    changed = noisy != y
    assert np.all(noisy[changed] == (y[changed] + 1) % 10)
    assert np.diag(np.roll(T, -1, axis=1)).mean() == pytest.approx(0.4, abs=0.02)


def test_flip2_splits_between_two_classes():
    y = labels()
    noisy, T = corrupt_labels(y, 10, "flip2", 0.4, np.random.default_rng(2))
    assert T[0, 1] == pytest.approx(0.2, abs=0.03) and T[0, 2] == pytest.approx(0.2, abs=0.03)
    assert T[0, 3:].sum() == 0


def test_transition_matches_counts():
    y = labels(50, 3)
    noisy, T = corrupt_labels(y, 3, "uniform", 0.5, np.random.default_rng(3))
    for i in range(3):
        for j in range(3):
            assert T[i, j] == pytest.approx(np.mean(noisy[y == i] == j))


def test_no_noise_is_identity():
    y = labels(10)
    noisy, T = corrupt_labels(y, 10, "none", 0.0, np.random.default_rng(0))
    assert np.array_equal(noisy, y) and np.allclose(T, np.eye(10))


@pytest.mark.parametrize("kind,rate,match", [("uniform", 1.0, "noise_rate"), ("uniform", -0.1, "noise_rate"),
                                             ("gaussian", 0.2, "noise_kind"), ("none", 0.2, "noise_kind")])
def test_bad_noise_named(kind, rate, match):
    with pytest.raises(ValueError, match=match):
        corrupt_labels(labels(5), 10, kind, rate, np.random.default_rng(0))
