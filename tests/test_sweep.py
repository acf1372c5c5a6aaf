"""ablate: the tidy table, validation before work, and the cache in between."""
import pytest

from metakit.experiments import Config
from metakit.studies.sweep import ablate, jobs

BASE = Config(profile="smoke", epochs=1, progress=False, device="cpu")


def test_grid_product_times_seeds_in_order():
    configs, varied = jobs({"imbalance": [1, 10], "noise_rate": [0.0, 0.2], "noise_kind": ["uniform"]}, BASE,
                           seeds=[3, 4])
    assert len(configs) == 2 * 2 * 1 * 2
    assert varied == ["imbalance", "noise_rate", "noise_kind"]
    assert [(c.imbalance, c.noise_rate, c.seed) for c in configs[:3]] == [(1, 0.0, 3), (1, 0.0, 4), (1, 0.2, 3)]
    assert all(c.epochs == 1 for c in configs)


def test_list_of_configs_reports_the_fields_that_differ():
    configs, varied = jobs([BASE, Config(profile="smoke", epochs=1, lr=0.05, imbalance=10, device="cpu")])
    assert varied == ["imbalance", "lr"]
    assert len(configs) == 2


@pytest.mark.parametrize("grid,match", [
    ({}, "empty"), ({"imbalanse": [1]}, "imbalanse"), ({"seed": [0, 1]}, "seeds="),
    ({"imbalance": 10}, r"grid\['imbalance'\]"), ({"imbalance": []}, "non-empty"),
    ({"imbalance": [0.5]}, "imbalance=0.5"),
])
def test_bad_grid_raises_before_training(grid, match, tmp_path):
    with pytest.raises((ValueError, TypeError), match=match):
        ablate(grid, BASE, progress=False, cache=tmp_path)
    assert not list(tmp_path.iterdir())                          # nothing trained, nothing cached


def test_bad_seeds_and_base():
    with pytest.raises(ValueError, match="seeds=3"):
        jobs({"imbalance": [1]}, BASE, seeds=3)
    with pytest.raises(TypeError, match="base="):
        jobs({"imbalance": [1]}, base={"profile": "smoke"})


def test_tidy_rows_match_single_runs_and_cache_is_used(tmp_path, capsys):
    table = ablate({"imbalance": [1, 10]}, BASE, seeds=[0], cache=tmp_path)
    assert list(table.columns) == ["imbalance", "seed", "val_acc", "test_acc", "many_acc", "medium_acc", "few_acc",
                                   "seconds", "cached", "error"]
    assert list(table["imbalance"]) == [1, 10] and not table["cached"].any()
    assert "finished=2" in capsys.readouterr().err and table["error"].isna().all()
    again = ablate({"imbalance": [1, 10]}, BASE, seeds=[0], cache=tmp_path, progress=False)
    assert again["cached"].all()
    assert again["test_acc"].tolist() == table["test_acc"].tolist()
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_a_method_option_is_an_ablation_axis_named_by_its_type():
    configs, varied = jobs({"focal_gamma": [0.0, 2.0]}, Config(method="focal", profile="smoke"), seeds=[0])
    assert varied == ["focal_gamma"] and [c.options for c in configs] == [{"focal_gamma": 0.0}, {"focal_gamma": 2.0}]
    listed = [Config(method="focal", profile="smoke"), Config(method="focal", profile="smoke",
                                                                options={"focal_gamma": 2.0})]
    assert jobs(listed)[1] == ["focal_gamma"]            # {} means the default 1.0, which differs from 2.0
    with pytest.raises(ValueError, match="'focal_gama' is neither a Config field nor an option of method='focal'"):
        jobs({"focal_gama": [1]}, Config(method="focal", profile="smoke"))


def test_options_of_different_methods_are_not_columns():
    listed = [Config(method="ce", profile="smoke"), Config(method="mwnet", profile="smoke")]
    assert jobs(listed)[1] == ["method"]
