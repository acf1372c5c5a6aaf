"""The long-tail study: grid → tidy CSV → mean ± std → Markdown, resumable."""
import dataclasses
import functools
import itertools

import pandas as pd
import pytest

from metakit.cli import main
from metakit.methods import METHODS
from metakit.studies import Plan, rerun_config, run_study
from metakit.studies.grid import read_csv, timed_run
from metakit.studies.long_tail import COLUMNS, REFERENCE, STUDY, grid_configs, render_markdown, summarise

PLAN = Plan("smoke", (0, 1), {"methods": ["ce", "focal"], "imbalances": [10, 5]}, {"epochs": 1})


def long_tail_grid(plan=PLAN, csv_path=None, run_fn=None):
    """The study through `run_study`, its job's `run` replaced by ``run_fn`` where given."""
    study = STUDY if run_fn is None else dataclasses.replace(STUDY, job=functools.partial(timed_run, run_fn=run_fn))
    return run_study(study, plan, csv_path)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "lt.csv"
    return path, long_tail_grid(csv_path=path)


@pytest.mark.slow  # 8 one-epoch runs (~3-10 s in all), shared by the three
def test_csv_has_one_row_per_run_of_the_grid(grid):
    path, df = grid
    on_disk = read_csv(path)
    assert list(on_disk.columns) == COLUMNS + ["config"] and len(on_disk) == len(df) == 2 * 2 * 2
    expected = set(itertools.product(["ce", "focal"], ["digits"], ["lt_if10", "lt_if5"], [0, 1]))
    assert set(map(tuple, on_disk[["method", "dataset", "setting", "seed"]].values.tolist())) == expected
    assert on_disk["val_acc"].between(0, 100).all() and (on_disk["variant"] == "").all()  # digits' validation split
    assert on_disk["commit"].nunique() == 1 and on_disk["commit"][0] != ""
    assert (on_disk["epochs"] == 1).all() and (on_disk["profile"] == "smoke").all()
    assert on_disk["test_acc"].between(0, 100).all()


@pytest.mark.slow  # 8 one-epoch runs (~3-10 s in all), shared by the three
def test_summary_matches_pandas_mean_and_std(grid):
    _, df = grid
    ours = summarise(df).set_index(["dataset", "method", "setting"]).sort_index()
    theirs = df.groupby(["dataset", "method", "setting"])["test_acc"].agg(["mean", "std", "count"]).sort_index()
    assert ours["test_acc_mean"].tolist() == pytest.approx(theirs["mean"].tolist())
    assert ours["test_acc_std"].tolist() == pytest.approx(theirs["std"].tolist())
    assert ours["seeds"].tolist() == theirs["count"].tolist() == [2] * 4
    text = render_markdown(summarise(df))
    row = next(line for line in text.splitlines() if line.startswith("| focal |"))
    m, s = theirs.loc[("digits", "focal", "lt_if10"), ["mean", "std"]]
    assert f"{m:.2f} ± {s:.2f}" in row and row.index("±") < row.rindex("±")     # IF 10 first, then IF 5


@pytest.mark.slow  # 8 one-epoch runs (~3-10 s in all), shared by the three
def test_rerun_skips_finished_runs_and_resumes(grid, tmp_path):
    path, df = grid
    def must_not_run(config):
        raise AssertionError(f"re-ran {config}")
    again = long_tail_grid(csv_path=path, run_fn=must_not_run)
    assert again["test_acc"].tolist() == df["test_acc"].tolist()
    partial = tmp_path / "partial.csv"
    df.iloc[:3].to_csv(partial, index=False)
    ran = []
    fake = type("R", (), {"metrics": dict(test_acc=50.0, many_acc=1.0, medium_acc=2.0, few_acc=float("nan"))})
    long_tail_grid(csv_path=partial, run_fn=lambda c: ran.append(c) or fake)
    assert len(ran) == 5 and len(read_csv(partial)) == 8


def test_reference_rows_show_published_numbers():
    df = pd.DataFrame({"dataset": "cifar10", "method": "ldam_drw", "setting": ["lt_if100", "lt_if50"], "seed": 0,
                       "test_acc": [77.0, 80.0]})
    lines = render_markdown(summarise(df, ["test_acc"])).splitlines()
    assert "| ldam_drw | 77.00 | 80.00 |" in lines                          # one seed: no ± std
    assert "| reference: LDAM-DRW | 77.03 | – |" in lines
    assert f"| reference: cross-entropy | {REFERENCE['cifar10']['cross-entropy'][100]:.2f} | 74.81 |" in lines


def test_grid_defaults_and_bad_input():
    configs = grid_configs(profile="smoke", seeds=[0])
    assert {c.method for c in configs} == set(METHODS) - {"hd", "mlrsnet"} and {c.dataset for c in configs} == {"digits"}
    assert sorted({c.imbalance for c in configs}) == [1.0, 5.0, 10.0, 20.0]
    paper = grid_configs(["ce"], seeds=[0], profile="paper")
    assert {c.dataset for c in paper} == {"cifar10", "cifar100"} and len(paper) == 12
    with pytest.raises(ValueError, match="method='nope'"):
        grid_configs(["nope"], profile="smoke")
    with pytest.raises(ValueError, match="imbalance=0.5"):
        grid_configs(["ce"], imbalances=[0.5], profile="smoke")
    with pytest.raises(ValueError, match="'seed'"):
        grid_configs(["ce"], profile="smoke", overrides={"seed": 3})
    with pytest.raises(ValueError, match=r"the grid is empty \(methods=\[\].*give at least one of each"):
        grid_configs([], profile="smoke")


def test_cli_writes_csv_and_markdown(tmp_path, capsys):
    assert main(["table", "long-tail", "--profile", "smoke", "--methods", "ce", "--imbalances", "10", "--seeds", "0",
                 "--epochs", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| ce |" in out
    assert len(read_csv(tmp_path / "long_tail_smoke_e1.csv")) == 1
    assert "| ce |" in (tmp_path / "long_tail_smoke_e1.md").read_text()
    assert "| ce beats" not in (tmp_path / "long_tail_smoke_e1_findings.md").read_text()  # nothing to compare
    assert main(["study", "long_tail", "--profile", "smoke", "--methods", "ce", "focal", "--imbalances", "10",
                 "--seeds", "0", "1", "--epochs", "1", "--out", str(tmp_path / "s.csv")]) == 0
    findings = (tmp_path / "s_findings.md").read_text()
    assert "| focal beats ce | digits | lt_if10 | test_acc |" in findings and "| 2 |" in findings
    assert main(["table", "long-tail", "--profile", "smoke", "--methods", "magic", "--out", str(tmp_path)]) == 2
    assert "method='magic'" in capsys.readouterr().err


@pytest.mark.parametrize("overrides", [{}, {"epochs": 1}])
def test_rerun_config_is_the_config_the_grid_ran(tmp_path, overrides):
    ran, path = [], tmp_path / "lt.csv"
    fake = type("R", (), {"metrics": dict(test_acc=50.0, many_acc=1.0, medium_acc=2.0, few_acc=float("nan"))})
    plan = Plan("laptop", (0, 1), {"methods": ["ce", "mwnet"], "datasets": ["mnist1d", "digits"], "imbalances": [100, 1]},
                overrides)
    long_tail_grid(plan, csv_path=path, run_fn=lambda c: ran.append(c) or fake)
    rows = read_csv(path)
    assert len(rows) == len(ran) == 16
    ran_by = {(c.dataset, c.imbalance, c.method, c.seed): c for c in ran}
    for row in rows.to_dict("records"):
        for stored in (row, dict(row, config=None)):   # from the config column, and rebuilt from the labels
            rebuilt = rerun_config(STUDY, stored)
            key = (rebuilt.dataset, rebuilt.imbalance, rebuilt.method, rebuilt.seed)
            assert rebuilt.canonical() == ran_by[key].canonical()
    smoke = rerun_config(STUDY, rows.iloc[0], "smoke").resolve()
    assert (smoke.profile, smoke.epochs) == ("smoke", 3)
    with pytest.raises(ValueError, match="variant='final_net'"):
        rerun_config(STUDY, dict(rows.iloc[0], variant="final_net", config=None))
