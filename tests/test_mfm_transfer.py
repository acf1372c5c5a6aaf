"""The modulator-transfer table: sources learned once per seed, frozen/init rows that load them, resumable."""
import pandas as pd
import pytest
import torch

from metakit.cli import main
from metakit.studies import Plan
from metakit.studies.mfm_transfer import METHODS, STUDY, TARGETS, modulator_path, target_config, transfer_runs
from metakit.learners.store import load_learner


def test_each_method_and_target_resolves_to_what_it_says():
    configs = {(t, m): target_config(t, m, 0, "laptop", "m.pt").resolve() for t in TARGETS for m in METHODS}
    assert configs["if50", "mfm_frozen"].options == {"modulator": "m.pt", "freeze": True}
    assert configs["if50", "mfm_init"].options == {"modulator": "m.pt", "freeze": False}
    assert configs["if50", "mfm_net"].options == {"shared": True} and configs["if50", "mfm"].method == "mfm"
    assert configs["width", "ce"].width == 64 and configs["variant", "ce"].data_options["seed"] == 7
    assert {configs[t, "ce"].imbalance for t in TARGETS} == {100, 50, 10}
    assert len({repr(c) for c in configs.values()}) == len(configs)   # no two rows run the same thing
    with pytest.raises(ValueError, match="targets='if20'"):
        transfer_runs(["if20"], [0], "smoke")


def test_transfer_table_learns_the_source_once_freezes_it_and_resumes(tmp_path, capsys):
    argv = ["table", "mfm-transfer", "--profile", "smoke", "--epochs", "1", "--targets", "width", "--seeds", "0",
            "--methods", "ce", "mfm_frozen", "--out", str(tmp_path)]
    assert main(argv) == 0
    df = pd.read_csv(tmp_path / "mfm_transfer_smoke_e1.csv")
    assert sorted(zip(df.setting, df.method)) == [("transfer_source", "mfm_net"), ("transfer_width", "ce"),
                                                  ("transfer_width", "mfm_frozen")]
    path = modulator_path(tmp_path, "smoke", 0)
    saved, _ = load_learner(path, "modulation")
    assert saved.kind == "shared" and any(not torch.all(p == 0) for p in saved.layer("fc").mlp[2].parameters())
    capsys.readouterr()
    path.unlink()    # its row stays: the next call relearns the same modulator and reruns no row
    assert main(argv) == 0
    relearned, _ = load_learner(path, "modulation")
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), relearned.state_dict().values()))
    assert "2 of 2 runs already in" in capsys.readouterr().out


def test_the_study_defaults_to_every_target_and_transfer_method(tmp_path, capsys):
    rows = STUDY.rows(Plan("smoke", (0,)))
    assert sorted({r.setting for r in rows}) == sorted(f"transfer_{t}" for t in TARGETS)
    assert sorted({r.method for r in rows}) == sorted(METHODS) and len(rows) == len(TARGETS) * len(METHODS)
    assert main(["table", "noise", "--targets", "if50", "--out", str(tmp_path)]) != 0
    assert "--targets does not apply to table noise" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything is written
