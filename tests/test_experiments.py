import pytest

from metakit.cli import main
from metakit.experiments import Config, run


def test_ce_smoke_run_has_history_and_metrics():
    r = run(Config(method="ce", imbalance=10, profile="smoke", progress=False))
    assert len(r.history) == r.config.epochs
    assert {"train_loss", "test_acc", "lr", "many_acc", "few_acc"} <= set(r.history.columns)
    assert len(r.metrics["per_class_acc"]) == 10
    assert r.metrics["test_acc"] == pytest.approx(r.history["test_acc"].iloc[-1])


def test_same_seed_same_numbers_on_cpu():
    a = run(Config(imbalance=5, profile="smoke", seed=2, progress=False, device="cpu"))
    b = run(Config(imbalance=5, profile="smoke", seed=2, progress=False, device="cpu"))
    c = run(Config(imbalance=5, profile="smoke", seed=3, progress=False, device="cpu"))
    assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))
    assert not a.history["train_loss"].equals(c.history["train_loss"])


def test_laptop_ce_learns_digits():
    r = run(Config(profile="laptop", epochs=15, progress=False))
    assert r.metrics["test_acc"] > 90


@pytest.mark.parametrize("field,value,match", [
    ("imbalance", 0.5, "imbalance"), ("noise_rate", 1.0, "noise_rate"), ("dataset", "mnist", "dataset='mnist'"),
    ("model", "vgg", "model='vgg'"), ("method", "magic", "method='magic'"), ("profile", "huge", "profile='huge'"),
    ("meta_per_class", 10_000, "meta_per_class"), ("epochs", 0, "epochs"), ("lr", -1.0, "lr"),
    ("batch_size", 2.5, "batch_size"),
])
def test_bad_config_named(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        run(Config(**{"profile": "smoke", "progress": False, field: value}))


def test_cli_prints_result(capsys):
    assert main(["run", "--method", "ce", "--dataset", "digits", "--imbalance", "10", "--profile", "smoke",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test_acc=" in out and "imbalance=10" in out


def test_cli_bad_input_exit_code(capsys):
    assert main(["run", "--noise-rate", "2", "--noise-kind", "uniform", "--profile", "smoke"]) == 2
    assert "noise_rate=2.0" in capsys.readouterr().err
