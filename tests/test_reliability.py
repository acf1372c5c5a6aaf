"""Nothing lost, nothing silently wrong: resume keyed by what changes the numbers, Ctrl-C as one line,
and values that make a run meaningless warned about or refused."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metakit import cli as cli_module
from metakit.cli import main as cli
from metakit.experiments import Config, config_key, run
from metakit.experiments.checkpoint import on_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(profile="smoke", epochs=1, imbalance=5, progress=False)


class Stop(Exception):
    """Raised from a checkpoint listener: an in-process stand-in for a killed run."""


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# 1. resume keyed by what changes the numbers ---------------------------------------------------------------

def test_key_ignores_device_path_spelling_and_numpy_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("METAKIT_DATA", raising=False)                      # None means ./data
    base = config_key(Config(**SMOKE))
    assert config_key(Config(**SMOKE, device="cpu")) == base
    assert config_key(Config(**{**SMOKE, "epochs": np.int64(1), "imbalance": np.float64(5)})) == base
    assert config_key(Config(**SMOKE, data_root="./data")) == config_key(Config(**SMOKE, data_root="data/")) == base
    assert config_key(Config(**SMOKE, data_root=str(tmp_path / "data"))) == base
    assert config_key(Config(**SMOKE, seed=1)) != base                       # what changes the numbers still counts
    assert Config(**{**SMOKE, "epochs": np.int64(1)}).resolve().epochs.__class__ is int


def test_resume_with_device_path_and_numpy_spelling_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = Config(**{**SMOKE, "epochs": 2}, data_root=str(tmp_path / "data"))

    def stop_after_first(path, state):
        raise Stop

    with pytest.raises(Stop), on_checkpoint(stop_after_first):
        run(config, checkpoint_dir="Q")
    (checkpoint,) = Path("Q").glob("*.pt")
    capsys.readouterr()
    respelled = Config(**{**SMOKE, "epochs": np.int64(2)}, device="cpu", data_root="./data")
    resumed = run(respelled, checkpoint_dir="Q/", resume=True)
    assert one_line(capsys.readouterr().err) == f"resuming from epoch 1 of 2 ({Path('Q/') / checkpoint.name})"
    assert sorted(Path("Q").glob("*.pt")) == [checkpoint]                    # no second run beside the first
    fresh = run(config)
    columns = [c for c in fresh.history.columns if c != "seconds"]
    pd.testing.assert_frame_equal(resumed.history[columns], fresh.history[columns])
    assert pd.Series(resumed.metrics).astype(str).equals(pd.Series(fresh.metrics).astype(str))


def test_cli_resume_with_device_and_data_root_spelled_otherwise(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    flags = ["run", "--profile", "smoke", "--no-progress", "--epochs", "1", "--checkpoint-dir", "Q"]
    assert cli(flags + ["--data-root", "./data"]) == 0
    capsys.readouterr()
    assert cli(flags + ["--resume", "--device", "cpu", "--data-root", "data/"]) == 0
    line = one_line(capsys.readouterr().err)
    assert line.startswith("resuming from epoch 1 of 1 (Q/ce-") and line.endswith(".pt)"), line
    assert len(list(Path("Q").glob("*.pt"))) == 1


def test_checkpoint_under_an_older_key_is_found_by_its_config(tmp_path, capsys):
    run(Config(**SMOKE), checkpoint_dir=tmp_path)
    (checkpoint,) = tmp_path.glob("*.pt")
    older = checkpoint.rename(tmp_path / "ce-0123456789abcdef.pt")         # e.g. a key that hashed the device
    capsys.readouterr()
    run(Config(**SMOKE), checkpoint_dir=tmp_path, resume=True)
    assert one_line(capsys.readouterr().err) == f"resuming from epoch 1 of 1 ({older})"
    assert sorted(tmp_path.glob("*.pt")) == [older]


def test_resume_of_another_config_names_the_nearest_and_the_fields(tmp_path, capsys):
    run(Config(**SMOKE), checkpoint_dir=tmp_path)
    (checkpoint,) = tmp_path.glob("*.pt")
    with pytest.raises(ValueError) as err:
        run(Config(**{**SMOKE, "epochs": 2}), checkpoint_dir=tmp_path, resume=True)
    message = one_line(str(err.value))
    assert message == (f"no checkpoint for this config in {tmp_path}: {checkpoint} differs in epochs (1 vs 2); pass "
                       f"the same flags, or drop --resume to start fresh.")
    assert sorted(tmp_path.glob("*.pt")) == [checkpoint]                     # nothing trained, nothing written
    code = cli(["run", "--profile", "smoke", "--imbalance", "5", "--no-progress", "--epochs", "1", "--seed", "3",
                "--checkpoint-dir", str(tmp_path), "--resume"])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("error: no checkpoint for this config") and "seed (0 vs 3)" in line, line


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_resume_without_any_checkpoint_is_refused(tmp_path, capsys, make):
    folder = tmp_path / "Q"
    if make == "empty":
        folder.mkdir()
    with pytest.raises(ValueError, match=r"^--resume but .*Q holds no checkpoint; drop --resume to start a new run"):
        run(Config(**SMOKE), checkpoint_dir=folder, resume=True)
    code = cli(["run", "--profile", "smoke", "--no-progress", "--checkpoint-dir", str(folder), "--resume"])
    assert code == 2
    assert one_line(capsys.readouterr().err) == f"error: --resume but {folder} holds no checkpoint; drop --resume " \
                                                f"to start a new run."
    assert folder.exists() == (make == "empty") and not list(tmp_path.rglob("*.pt"))   # nothing created


# 2. Ctrl-C -----------------------------------------------------------------------------------------------------

def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys, tmp_path):
    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "run", interrupted)
    code = cli(["run", "--profile", "smoke", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert one_line(err) == ("interrupted: nothing saved (no --checkpoint-dir); pass --checkpoint-dir DIR to make a "
                             "run resumable.")
    code = cli(["run", "--profile", "smoke", "--no-progress", "--checkpoint-dir", str(tmp_path)])
    assert code == 130 and "nothing saved in" in one_line(capsys.readouterr().err)


def test_ctrl_c_names_the_last_checkpoint(monkeypatch, capsys, tmp_path):
    from metakit.experiments.checkpoint import save_checkpoint

    def interrupted_after_two_epochs(config, checkpoint_dir=None, resume=False):
        for done in (1, 2):
            save_checkpoint(Path(checkpoint_dir) / "ce-x.pt", {"epochs_done": done, "config": {"epochs": 5}})
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "run", interrupted_after_two_epochs)
    code = cli(["run", "--profile", "smoke", "--no-progress", "--checkpoint-dir", str(tmp_path)])
    assert code == 130
    assert one_line(capsys.readouterr().err) == (f"interrupted: the last checkpoint is {tmp_path / 'ce-x.pt'} (epoch 2 "
                                                 f"of 5); run the same command with --resume to go on from there.")


def test_sigint_during_a_smoke_run_is_one_line_and_130(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "METAKIT_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "metakit", "run", "--profile", "smoke", "--no-progress",
                             "--epochs", "40", "--checkpoint-dir", str(tmp_path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("*.pt")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert list(tmp_path.glob("*.pt")), "no checkpoint written"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    line = one_line(err)
    assert line.startswith(f"interrupted: the last checkpoint is {tmp_path}") and "--resume" in line, line


# 3. values that make a run meaningless --------------------------------------------------------------------------

def test_warmup_as_long_as_the_run_warns():
    with pytest.warns(UserWarning, match=r"warmup_epochs=2 >= epochs=2") as caught:
        Config(**{**SMOKE, "epochs": 2}, warmup_epochs=2).resolve()
    assert all(len(str(w.message).splitlines()) == 1 for w in caught)


def test_a_milestone_after_the_last_epoch_warns():
    with pytest.warns(UserWarning, match=r"milestones=\(1\.0, 5\.0\): 5 is at or beyond the last epoch \(epochs=3\)"):
        Config(**{**SMOKE, "epochs": 3}, schedule="multistep", milestones=(1.0, 5.0)).resolve()


def test_sensible_values_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Config(**{**SMOKE, "epochs": 3}, schedule="multistep", milestones=(1, 2), warmup_epochs=1).resolve()
        Config(**SMOKE, milestones=(160, 180)).resolve()                  # cosine reads no milestones
        Config(profile="paper").resolve()


@pytest.mark.parametrize("field", ["device", "split_file", "data_root"])
def test_empty_path_strings_are_refused_by_the_validator(field):
    with pytest.raises(ValueError, match=rf"^{field}='' is empty; give one, e.g. .*, or leave it out \(None\)\.$"):
        Config(**SMOKE, **{field: ""}).resolve()


def test_empty_checkpoint_dir_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^checkpoint_dir='' is empty"):
        run(Config(**SMOKE), checkpoint_dir="")
    assert cli(["run", "--profile", "smoke", "--no-progress", "--checkpoint-dir", ""]) == 2
    assert one_line(capsys.readouterr().err).startswith("error: checkpoint_dir='' is empty")
    assert cli(["run", "--profile", "smoke", "--no-progress", "--device", ""]) == 2
    assert one_line(capsys.readouterr().err).startswith("error: device='' is empty")
    assert not list(tmp_path.iterdir())


def test_json_output_is_valid_json_with_nan_as_null(capsys):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    assert cli(["run", "--profile", "smoke", "--no-progress", "--epochs", "1", "--imbalance", "5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert record["metrics"]["many_acc"] is None                            # no class has > 100 images here
    assert 0 <= record["metrics"]["test_acc"] <= 100
