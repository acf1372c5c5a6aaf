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
