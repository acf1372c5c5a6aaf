"""The noise table: its protocol per dataset, its rows (which rebuild the configs that made them), its summary and command."""
import dataclasses

import pandas as pd
import pytest

from metakit.cli import main
from metakit.studies import Plan, rerun_config, run_study, write_study
from metakit.studies.grid import read_csv, setting_of
from metakit.studies.noise import METHODS, STUDY, noise_config, noise_of, render_markdown, summarise


def noise_grid(methods, datasets, seeds, profile, csv_path, job, overrides=None):
    return run_study(dataclasses.replace(STUDY, job=job), Plan(profile, seeds, {"methods": methods, "datasets": datasets},
                                                               overrides or {}), csv_path)


def fake_job(ran):
    def job(config):
        ran.append(config)
        return {"test_acc": 50.0 + len(ran), "seconds": 0.0}
    return job


@pytest.mark.parametrize("overrides", [{}, {"epochs": 2}])
def test_config_of_row_is_the_config_the_grid_ran(tmp_path, overrides):
    ran, path = [], tmp_path / "noise.csv"
    noise_grid(["ce", "mwnet", "sched_cosine"], ["mnist1d", "digits"], [0, 1], "laptop", path, fake_job(ran),
               overrides)
    rows = read_csv(path, momentum=True)
    assert len(rows) == len(ran) == 2 * 2 * 3 * 2
    by_acc = {50.0 + i + 1: config for i, config in enumerate(ran)}
    for row in rows.to_dict("records"):
        for stored in (row, dict(row, config=None)):   # from the config column, and rebuilt from the labels
            assert rerun_config(STUDY, stored).canonical() == by_acc[row["test_acc"]].canonical()
    first = rows.iloc[0]
    assert rerun_config(STUDY, first, "smoke").resolve().profile == "smoke"
    assert rerun_config(STUDY, first, "smoke").resolve().epochs == 3        # the smoke profile's own, not the row's


def test_noise_of_reads_every_setting_the_grid_writes():
    for kind, rate in [("uniform", 0.4), ("flip", 0.4), ("flip2", 0.2), ("uniform", 0.05)]:
        assert noise_of(setting_of(noise_config("ce", "digits", kind, rate, 0, "smoke").resolve())) == (kind, rate)
    with pytest.raises(ValueError, match="setting='lt_if100' is not a noise setting"):
        noise_of("lt_if100")


def test_summary_pairs_deltas_across_momentum_and_renders():
    df = pd.DataFrame({"dataset": "mnist1d", "setting": "noise_uniform_40", "variant": "",
                       "method": ["ce", "ce", "sched_fixed", "sched_fixed"], "seed": [0, 1, 0, 1],
                       "momentum": [0.9, 0.9, 0.0, 0.0], "test_acc": [60.0, 62.0, 65.0, 66.0]})
    s = summarise(df).set_index("method")
    assert s.loc["sched_fixed", "test_acc_delta"] == pytest.approx(4.5) and s.loc["sched_fixed", "paired_seeds"] == 2
    text = render_markdown(summarise(df))
    assert "| ce | 61.00 ± 1.41 |" in text and "| sched_fixed | +4.50 [" in text and "momentum 0" in text


def test_a_row_without_its_tags_is_refused():
    with pytest.raises(ValueError, match=r"row lacks \['profile', 'epochs'\]"):
        rerun_config(STUDY, {"dataset": "mnist1d", "setting": "noise_uniform_40", "method": "ce", "seed": 0})


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
    df = noise_grid(["ce", "mwnet", "sched_cosine"], ["digits"], [0, 1], "smoke", tmp_path / "n.csv", fake)
    assert df[["setting", "method", "momentum"]].drop_duplicates().values.tolist() == [
        ["noise_uniform_40", "ce", 0.9], ["noise_uniform_40", "mwnet", 0.9], ["noise_uniform_40", "sched_cosine", 0.0],
        ["noise_flip_40", "ce", 0.9], ["noise_flip_40", "mwnet", 0.9], ["noise_flip_40", "sched_cosine", 0.0]]
    text = write_study(STUDY, df, tmp_path / "n.md")
    assert "| mwnet | +10.00 [+10.00, +10.00] (n=2) | +10.00 [+10.00, +10.00] (n=2) |" in text  # across momentum
    assert pd.read_csv(tmp_path / "n_summary.csv")["paired_seeds"].tolist() == [0, 2, 2] * 2
    findings = (tmp_path / "n_findings.md").read_text()
    assert "| mwnet beats ce | digits | noise_flip_40 | test_acc | +10.00 [+10.00, +10.00] | 2 | holds |" in findings


def test_cli_refuses_imbalances_for_the_noise_table(capsys, tmp_path):
    code = main(["table", "noise", "--profile", "smoke", "--imbalances", "10", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--imbalances does not apply to table noise" in err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_markdown_adds_the_val_selected_accuracy_when_the_rows_have_it():
    df = pd.DataFrame({"dataset": "mnist1d", "setting": "noise_uniform_40", "variant": "", "method": ["ce", "ce"],
                       "seed": [0, 1], "momentum": 0.9, "test_acc": [60.0, 62.0], "test_acc_at_val": [70.0, 72.0]})
    text = render_markdown(summarise(df))
    assert "best validation accuracy" in text and "| ce | 71.00 ± 1.41 |" in text
    assert "best validation accuracy" not in render_markdown(summarise(df.drop(columns="test_acc_at_val")))
