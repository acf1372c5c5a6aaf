"""scripts/gamma_share.py: LR / γ per stage of a frozen run, from a schedule the transfer table made."""
import importlib.util
from pathlib import Path

import pytest

from metakit.studies.grid import read_csv
from metakit.studies import Plan, get_study, run_study

SPEC = importlib.util.spec_from_file_location("gamma_share", Path(__file__).resolve().parents[1] / "scripts/gamma_share.py")
gamma_share = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gamma_share)


def test_each_stage_gives_gamma_the_mean_lr_and_their_ratio_and_the_table_resumes(tmp_path, capsys):
    plan = Plan("smoke", (0,), {"source": "digits", "variations": ["same"], "entries": ["mlrsnet"]}, {"epochs": 3})
    run_study(get_study("schedule_transfer"), plan, tmp_path / "digits" / "schedule_transfer_smoke.csv")
    args = ["--sources", "digits", "--momenta", "0", "--seeds", "0", "--profile", "smoke", "--folder", str(tmp_path),
            "--out", str(tmp_path)]
    assert gamma_share.main(args) == 0
    row = read_csv(tmp_path / "schedule_gamma_share.csv", momentum=True).iloc[0]
    assert (row.setting, row.method, row.variant, row.momentum) == ("transfer_same", "sched_mlrsnet", "", 0.0)
    for k in gamma_share.STAGES:   # LR = γ · sigmoid(·): the ratio is the net's output, in (0, 1)
        assert row[f"gamma_{k}"] > 0 and 0 < row[f"lr_over_gamma_{k}"] < 1
        assert row[f"lr_over_gamma_{k}"] == pytest.approx(row[f"lr_{k}"] / row[f"gamma_{k}"], rel=1e-12)
    assert "| digits, 0 | 1 |" in (tmp_path / "schedule_gamma_share.md").read_text()
    capsys.readouterr()
    gamma_share.main(args)
    assert "1 of 1 runs already in" in capsys.readouterr().out


def test_a_missing_schedule_is_one_line_naming_the_folder_and_the_command(tmp_path):
    with pytest.raises(SystemExit, match=r"^--folder=.*is not there; make it with `python -m metakit schedule-table "
                                         r"transfer --profile smoke --source mnist1d --momentum 0.9"):
        gamma_share.main(["--sources", "mnist1d", "--momenta", "0.9", "--profile", "smoke", "--folder", str(tmp_path)])
    assert not (tmp_path / "schedule_gamma_share.csv").exists()
