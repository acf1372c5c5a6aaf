"""The noisy-label table: its protocol per dataset, its rows, and its command."""
import pandas as pd
import pytest

from metakit.cli import main
from metakit.experiments.noise_tables import METHODS, noise_config, noise_grid, write_table


def test_mnist1d_rows_follow_the_noise_protocol():
    configs = {m: noise_config(m, "mnist1d", "uniform", 0.4, 3, "laptop").resolve() for m in METHODS}
    assert {c.train_per_class for c in configs.values()} == {1200} and {c.meta_per_class for c in configs.values()} == {100}
    assert {c.seed for c in configs.values()} == {3}  # paired: every row sees the same split and noisy labels
    assert configs["ce"].momentum == configs["mwnet"].momentum == 0.9
    for name in ("fixed", "multistep", "cosine", "sgdr"):
        assert (configs[f"sched_{name}"].momentum, configs[f"sched_{name}"].schedule) == (0.0, name)
    assert configs["sched_mlrsnet"].method == "mlrsnet" and configs["sched_mlrsnet"].momentum == 0.0


def test_unknown_row_is_named():
    with pytest.raises(ValueError, match="method='sched_adamw' is unknown"):
        noise_config("sched_adamw", "mnist1d", "uniform", 0.4, 0, "laptop")


def test_grid_labels_rows_and_pairs_deltas_against_ce(tmp_path):
    fake = lambda config: {"test_acc": 50.0 + 10 * (config.method == "mwnet") + config.seed, "seconds": 0.0}  # noqa: E731
    df = noise_grid(["ce", "mwnet", "sched_cosine"], ["digits"], [("flip", 0.4)], [0, 1], "smoke",
                    csv_path=tmp_path / "n.csv", job=fake)
    assert df[["setting", "method", "momentum"]].drop_duplicates().values.tolist() == [
        ["noise_flip_40", "ce", 0.9], ["noise_flip_40", "mwnet", 0.9], ["noise_flip_40", "sched_cosine", 0.0]]
    text = write_table(df, tmp_path / "n.md")
    assert "| mwnet | +10.00 [+10.00, +10.00] (n=2) |" in text  # paired across momentum, against ce
    assert pd.read_csv(tmp_path / "n_summary.csv")["paired_seeds"].tolist() == [0, 2, 2]


def test_cli_refuses_imbalances_for_the_noise_table(capsys, tmp_path):
    code = main(["table", "noise", "--profile", "smoke", "--imbalances", "10", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--imbalances=[10.0] does not apply to the noise table" in err
    assert not list(tmp_path.iterdir())  # nothing half-written
