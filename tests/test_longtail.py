import pytest

from metakit.data.longtail import longtail_counts, shot_group


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("imbalance", [10, 100, 200])
def test_counts_equal_ldam_formula(num_classes, imbalance):
    n_max = 50000 // num_classes
    expected = [int(n_max * (1 / imbalance) ** (i / (num_classes - 1))) for i in range(num_classes)]
    counts = longtail_counts(n_max, num_classes, imbalance)
    assert counts == expected
    assert counts[0] == n_max and counts[-1] == int(n_max / imbalance)


def test_cifar10_if100_published_counts():
    assert longtail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(longtail_counts(5000, 10, 100)) == 12406
    assert longtail_counts(5000, 10, 200)[-1] == 25


def test_cifar100_if100_total_matches_ldam():
    assert sum(longtail_counts(500, 100, 100)) == 10847  # CIFAR-100-LT, IF 100 (LDAM-DRW)


def test_step_profile_halves():
    assert longtail_counts(100, 4, 10, "step") == [100, 100, 10, 10]


def test_balanced_is_flat():
    assert set(longtail_counts(5000, 10, 1)) == {5000}


@pytest.mark.parametrize("bad", [0.5, 0, -3, float("nan")])
def test_bad_imbalance_named(bad):
    with pytest.raises(ValueError, match="imbalance"):
        longtail_counts(100, 10, bad)


def test_shot_groups():
    assert [shot_group(n) for n in (101, 100, 20, 19, 1)] == ["many", "medium", "medium", "few", "few"]
