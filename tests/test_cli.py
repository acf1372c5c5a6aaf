"""The command line as a new user meets it: documented flags, one-line errors with exit status 2."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metakit.cli import build_parser, main
from metakit.experiments import Config
from metakit.methods import METHODS
from metakit.options import describe

ROOT = Path(__file__).resolve().parents[1]


def cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "METAKIT_DEVICE": "cpu"}
    return subprocess.run([sys.executable, "-m", "metakit", *argv], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=120)


def run_help() -> str:
    run_parser = build_parser()._subparsers._group_actions[0].choices["run"]
    return run_parser.format_help()


def test_run_help_documents_every_config_flag_with_help_and_default():
    text = " ".join(run_help().split())
    for f in dataclasses.fields(Config):
        if f.name in ("options", "progress"):
            continue
        pairs = {"data_options": "--data-option", "schedule_options": "--schedule-option"}  # KEY=JSON flags
        flag = pairs.get(f.name, "--" + f.name.replace("_", "-"))
        assert flag in text, flag
        if f.name not in pairs:  # a KEY=JSON flag has its own help
            assert " ".join(f.metadata["help"].split()) in text, f.name
    assert "(default: exp)" in text and "{exp,step}" in text          # default and choices of lt_profile


def test_run_help_lists_every_method_and_each_of_its_options():
    text = " ".join(run_help().split())
    for name, cls in METHODS.items():
        assert f" {name}:" in text, name
        for key, default, help_text in describe(cls.Options):
            assert f"{key}={default}: {' '.join(help_text.split())}" in text, (name, key)


@pytest.mark.parametrize("argv,words", [
    (["--milestones", "5", "3"], ["milestones=(5.0, 3.0)", "must increase", "(3.0, 5.0)"]),
    (["--imbalance", "0"], ["imbalance=0.0", "[1, inf)"]),
    (["--option", "focal_gamma"], ["KEY=VALUE"]),
    (["--method", "focal", "--option", "gamma=2"], ["'gamma' is unknown", "focal_gamma"]),
    (["--epochs", "three"], ["--epochs", "three"]),
    (["--lt-profile", "zigzag"], ["--lt-profile", "zigzag"]),
])
def test_bad_flags_give_one_line_and_status_2(capsys, argv, words):
    code = None
    try:
        code = main(["run", "--profile", "smoke", "--no-progress", *argv])
    except SystemExit as stop:  # argparse's own refusals exit too
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


def test_a_file_that_is_not_a_learner_is_one_line(tmp_path):
    proc = cli("run", "--profile", "smoke", "--method", "mlrsnet", "--option", 'schedule_file="/etc/passwd"')
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "/etc/passwd" in proc.stderr and "Traceback" not in proc.stderr


def test_unusable_checkpoint_dir_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = cli("run", "--profile", "smoke", "--checkpoint-dir", str(blocker / "x"), "--no-progress")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --checkpoint-dir") and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""                       # nothing trained, nothing printed


def test_debug_shows_the_traceback():
    proc = cli("run", "--profile", "smoke", "--milestones", "5", "3", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_a_batch_larger_than_the_data_is_said():
    with pytest.warns(UserWarning, match=r"batch_size=100000 exceeds the \d+ training images"):
        assert main(["run", "--profile", "smoke", "--no-progress", "--epochs", "1", "--batch-size", "100000"]) == 0


def test_a_table_made_in_seed_chunks_summarises_every_seed(tmp_path, capsys):
    for seed in ("0", "1"):
        assert main(["table", "long-tail", "--profile", "smoke", "--epochs", "1", "--methods", "ce",
                     "--imbalances", "10", "--seeds", seed, "--out", str(tmp_path)]) == 0
    text = (tmp_path / "long_tail_smoke_e1.md").read_text()
    assert "; 2 runs, seeds 0, 1." in text and "(n=" not in text.split("Paired")[0]
    assert "± " in text.split("Paired")[0]  # a std over the two seeds, not one chunk's single number


def test_save_learner_is_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for argv, words in ((["--method", "ce", "--save-learner", str(tmp_path / "w.pt")],
                         ["--save-learner", "method='ce' meta-learns nothing", "'mlrsnet'"]),
                        (["--method", "mwnet", "--save-learner", str(blocker / "w.pt")],
                         ["--save-learner", "cannot be written", "is not a writable folder"]),
                        (["--method", "mwnet", "--save-learner", str(tmp_path)], ["is a folder"])):
        assert main(["run", "--profile", "smoke", "--no-progress", *argv]) == 2
        out = capsys.readouterr()
        assert out.out == "" and len(out.err.strip().splitlines()) == 1, out   # nothing trained, one line
        assert all(w in out.err for w in words), out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_save_learner_writes_the_trained_meta_learner(tmp_path):
    from metakit.learners.store import load_learner

    out = tmp_path / "new" / "weight_net.pt"
    assert main(["run", "--profile", "smoke", "--no-progress", "--method", "mwnet", "--epochs", "1",
                 "--save-learner", str(out)]) == 0
    net, header = load_learner(out, "weight_net")
    assert header["config"]["method"] == "mwnet" and header["metadata"] == {"dataset": "digits",
                                                                         "model": "digits_cnn", "epochs": 1}
    assert any(p.abs().sum() > 0 for p in net.parameters())
