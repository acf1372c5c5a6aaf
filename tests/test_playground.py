"""The playground's config mapping and one headless call."""

from metakit.teaching import playground


def test_noise_kind_none_ignores_the_slider_and_values_are_typed():
    c = playground.playground_config("ce", 10, "none", 0.4, 5, "cosine", "smoke")
    assert (c.noise_kind, c.noise_rate, c.imbalance, c.meta_per_class) == ("none", 0.0, 10.0, 5)
    c = playground.playground_config("ce", 1, "flip", 0.2, 3, "exp", "smoke", seed=2, epochs=1)
    assert (c.noise_kind, c.noise_rate, c.schedule, c.seed, c.epochs) == ("flip", 0.2, "exp", 2, 1)


def test_show_run_prints_and_returns_a_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METAKIT_CACHE", str(tmp_path))
    fig = playground.show_run("ce", 10, "uniform", 0.2, 5, "cosine", "smoke", epochs=1)
    assert "test accuracy" in capsys.readouterr().out and len(fig.axes) == 2
    playground.show_run("ce", 10, "uniform", 0.2, 5, "cosine", "smoke", epochs=1)
    assert "cached" in capsys.readouterr().out


def test_controls_defaults():
    c = playground.controls(imbalance=20, method="ce")
    assert c["imbalance"].value == 20 and c["method"].value == "ce" and c["noise_kind"].value == "none"


def test_the_dataset_switch_reaches_the_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METAKIT_CACHE", str(tmp_path))
    fig = playground.show_run("ce", 10, "none", 0.0, 10, "cosine", "smoke", epochs=1, dataset="mnist1d")
    assert "ce on mnist1d: test accuracy" in capsys.readouterr().out and "mnist1d" in fig.axes[0].get_title()


def fake_playground(**defaults):
    calls = []
    pg = playground.Playground(lambda **kw: calls.append(kw), fixed={"profile": "smoke", "epochs": 1}, **defaults)
    return pg, calls


def test_slider_ticks_train_nothing_and_each_press_trains_once():
    pg, calls = fake_playground(imbalance=10, method="ce")
    assert len(calls) == 1 and calls[0]["imbalance"] == 10 and calls[0]["profile"] == "smoke"   # headless default
    for value in (20, 50, 5, 2):                         # a slider dragged across four ticks
        pg.controls["imbalance"].value = value
    pg.controls["noise_rate"].value = 0.4
    assert len(calls) == 1 and pg.status.value.startswith("changed") and "press Run" in pg.status.value
    pg.button.click()
    assert len(calls) == 2 and (calls[1]["imbalance"], calls[1]["noise_rate"]) == (2, 0.4)
    pg.button.click()
    pg.button.click()
    assert len(calls) == 4 and pg.runs == 4 and pg.status.value == "up to date (run 4)"


def test_a_press_goes_through_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METAKIT_CACHE", str(tmp_path))
    pg = playground.Playground(fixed={"profile": "smoke", "epochs": 1}, imbalance=10, method="ce")
    assert "trained in" in capsys.readouterr().out
    pg.controls["imbalance"].value = 20
    pg.controls["imbalance"].value = 10                  # back to the setting already run
    pg.button.click()
    assert "cached" in capsys.readouterr().out and len(list(tmp_path.glob("*.json"))) == 1


def test_fixed_may_not_shadow_a_control():
    import pytest

    with pytest.raises(ValueError, match=r"sets \['imbalance'\], which are controls"):
        playground.Playground(lambda **kw: None, fixed={"imbalance": 10})


def test_notebook_06_runs_the_playground_on_a_button():
    import nbformat
    from pathlib import Path

    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "06_ablation_playground.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "Playground(" in code and "interact(show_run" not in code
