"""The grid pipeline: resumable tidy CSV, paired deltas with a t interval, failures and bad input."""
import json
import math
import multiprocessing
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from metakit.experiments import Config
from metakit.studies.grid import GridRun, columns, git_commit, read_csv, run_grid, setting_of, stored_config
from metakit.studies.report import render_markdown, write_outputs
from metakit.studies.stats import paired_delta, summarise


def grid(seeds=(0, 1), methods=("ce", "focal")):
    return [GridRun(Config(method=m, profile="smoke", imbalance=10, seed=s)) for m in methods for s in seeds]


class Counting:
    """A fake job: 50 + seed (+ 10 for focal), counting its calls; raises for the seeds in ``fail``."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, config):
        self.calls.append((config.method, config.seed))
        if config.seed in self.fail:
            raise RuntimeError(f"seed {config.seed} diverged")
        return {"test_acc": 50.0 + config.seed + 10 * (config.method == "focal"), "seconds": 0.5}


def test_rows_are_in_the_results_format():
    df = run_grid(grid(), job=Counting())
    assert list(df.columns) == columns() + ["config", "error"]
    for row in df.to_dict("records"):   # each row keeps the resolved config that made it: rerun it from there
        assert stored_config(row).canonical() == Config(**json.loads(row["config"])).canonical()
        assert (stored_config(row).method, stored_config(row).seed) == (row["method"], row["seed"])
    assert df[["dataset", "setting", "method", "variant", "seed"]].values.tolist() == [
        ["digits", "lt_if10", m, "", s] for m in ("ce", "focal") for s in (0, 1)]
    assert df["val_acc"].isna().all() and df["error"].isna().all()
    assert (df["commit"] == git_commit()).all()
    assert "momentum" in run_grid(grid(), job=Counting(), momentum=True).columns


def test_setting_names_the_data_condition():
    assert setting_of(Config(imbalance=50)) == "lt_if50"
    assert setting_of(Config(noise_kind="flip", noise_rate=0.4)) == "noise_flip_40"
    assert setting_of(Config(imbalance=10, noise_kind="uniform", noise_rate=0.2)) == "lt_if10_noise_uniform_20"
    assert setting_of(Config()) == "balanced"


def test_rerun_skips_finished_rows_and_resumes(tmp_path):
    path, first = tmp_path / "g.csv", Counting()
    df = run_grid(grid(), path, job=first)
    assert len(first.calls) == 4 and len(read_csv(path)) == 4
    again = Counting()
    bigger = run_grid(grid(seeds=(0, 1, 2)), path, job=again)
    assert sorted(again.calls) == [("ce", 2), ("focal", 2)]                     # only the new seed ran
    assert bigger["test_acc"].tolist() == [50.0, 51.0, 52.0, 60.0, 61.0, 62.0]
    assert read_csv(path).iloc[:4]["test_acc"].tolist() == df["test_acc"].tolist()
    nothing = Counting()
    run_grid(grid(seeds=(0, 1, 2)), path, job=nothing)
    assert nothing.calls == []


def test_a_failed_run_is_left_out_of_the_csv_and_retried(tmp_path):
    path = tmp_path / "g.csv"
    df = run_grid(grid(), path, job=Counting(fail={1}))
    assert df["error"].notna().tolist() == [False, True, False, True]
    assert "seed 1 diverged" in df["error"][1] and math.isnan(df["test_acc"][1])
    on_disk = read_csv(path)
    assert on_disk[["method", "seed"]].values.tolist() == [["ce", 0], ["focal", 0]]
    retry = Counting()
    run_grid(grid(), path, job=retry)
    assert sorted(retry.calls) == [("ce", 1), ("focal", 1)] and len(read_csv(path)) == 4


KILLED_GRID = textwrap.dedent("""
    import os, signal, sys
    from metakit.experiments import Config
    from metakit.studies.grid import GridRun, run_grid
    calls = []
    def die_on_the_third(config):
        calls.append(config)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGKILL)   # mid-grid, between two CSV writes
        return {"test_acc": 50.0 + config.seed, "seconds": 0.0}
    run_grid([GridRun(Config(profile="smoke", imbalance=10, seed=s)) for s in range(4)], sys.argv[1],
             job=die_on_the_third)
""")


def test_a_killed_grid_leaves_a_valid_csv_that_resumes(tmp_path):
    path = tmp_path / "g.csv"
    proc = subprocess.run([sys.executable, "-c", KILLED_GRID, str(path)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert read_csv(path)["seed"].tolist() == [0, 1]
    assert not list(tmp_path.glob(".*tmp"))                      # no half-written file left beside it
    rest = Counting()
    run_grid([GridRun(Config(profile="smoke", imbalance=10, seed=s)) for s in range(4)], path, job=rest)
    assert rest.calls == [("ce", 2), ("ce", 3)]


def test_paired_delta_matches_scipy_and_a_hand_formula():
    rng = np.random.default_rng(0)
    reference, values = rng.normal(80, 2, 5), rng.normal(82, 2, 5)
    mean, low, high = paired_delta(values, reference)
    ci = stats.ttest_rel(values, reference).confidence_interval(0.95)
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    d = values - reference                                      # by hand: t_{0.975, 4} = 2.7764451051977987
    half = 2.7764451051977987 * math.sqrt(sum((d - d.mean()) ** 2) / 4) / math.sqrt(5)
    assert (mean, low, high) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half), rel=1e-12)
    one = paired_delta([3.0], [1.0])
    assert one[0] == 2.0 and math.isnan(one[1]) and math.isnan(one[2])


def test_summary_pairs_over_the_common_seeds_only():
    df = pd.DataFrame({"dataset": "digits", "setting": "lt_if10", "variant": "",
                       "method": ["ce"] * 3 + ["mwnet"] * 3, "seed": [0, 1, 2, 1, 2, 3],
                       "test_acc": [80.0, 81.0, 83.0, 84.0, 87.0, 99.0]})
    s = summarise(df, ["test_acc"], reference="ce").set_index("method")
    assert s.loc["mwnet", "seeds"] == 3 and s.loc["mwnet", "test_acc_mean"] == pytest.approx(90.0)
    assert s.loc["mwnet", "paired_seeds"] == 2                   # seeds 1 and 2
    expected = paired_delta([84.0, 87.0], [81.0, 83.0])
    got = tuple(s.loc["mwnet", [f"test_acc_{c}" for c in ("delta", "delta_low", "delta_high")]])
    assert got == pytest.approx(expected) and expected[0] == pytest.approx(3.5)
    assert math.isnan(s.loc["ce", "test_acc_delta"])              # no delta of the reference with itself
    text = render_markdown(summarise(df, ["test_acc"], reference="ce"), reference="ce")
    assert f"| mwnet | {expected[0]:+.2f} [{expected[1]:+.2f}, {expected[2]:+.2f}] (n=2) |" in text


def test_markdown_names_the_command_and_the_commit(tmp_path):
    df = run_grid(grid(seeds=(0,)), job=Counting())
    text = write_outputs(df, tmp_path / "t", render_markdown(summarise(df)), "python -m metakit table x", "T",
                         summarise(df))
    assert text.startswith("## T\n\nMade by `python -m metakit table x` at commit `" + git_commit() + "`")
    assert f"; {len(df)} runs, seeds 0." in text.splitlines()[2]  # how many runs and which seeds stand behind it
    assert (tmp_path / "t.md").read_text() == text and len(pd.read_csv(tmp_path / "t_summary.csv")) == 2


def test_bad_input_names_the_argument_the_value_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"runs=\[\] must be a non-empty list of GridRun"):
        run_grid([])
    with pytest.raises(ValueError, match=r"method='nope' is unknown; use one of \[.*'ce'"):
        run_grid([GridRun(Config(method="nope"))], job=Counting())
    with pytest.raises(TypeError, match="wrap each config: GridRun"):
        run_grid([Config()])
    with pytest.raises(ValueError, match="give each a distinct variant"):
        run_grid(grid() + grid(), tmp_path / "dup.csv", job=Counting())
    old = tmp_path / "old.csv"
    pd.DataFrame({"method": ["ce"], "imbalance": [10.0], "test_acc": [1.0]}).to_csv(old, index=False)
    with pytest.raises(ValueError, match=r"csv_path=.*old.csv.* lacks the results columns .*move it aside"):
        run_grid(grid(), old, job=Counting())
    tagged = tmp_path / "tagged.csv"
    run_grid([GridRun(Config(seed=0), tags={"epochs": 1})], tagged, job=Counting())
    with pytest.raises(ValueError, match="epochs=2; pass another csv_path"):
        run_grid([GridRun(Config(seed=0), tags={"epochs": 2})], tagged, job=Counting())
    df = run_grid(grid(), job=Counting())
    with pytest.raises(ValueError, match=r"reference='mwnet' did not run in this grid; use one of \['ce', 'focal'\]"):
        summarise(df, reference="mwnet")
    with pytest.raises(ValueError, match=r"metrics=\['top5'\] are not columns"):
        summarise(df, ["top5"])


def _slow_fake(config):
    time.sleep(0.02)
    return {"test_acc": float(config.seed), "seconds": 0.0}


def _append(path, seeds):
    run_grid([GridRun(Config(seed=s)) for s in seeds], path, job=_slow_fake)


@pytest.mark.skipif(sys.platform == "win32", reason="the CSV lock is POSIX flock")
def test_two_processes_appending_to_one_csv_keep_every_row(tmp_path):
    """Each process re-reads the CSV under the lock before its rewrite; without that, each would
    write back only its own rows and the other's would be lost."""
    path = tmp_path / "t.csv"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_append, args=(path, range(k, 40, 2))) for k in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert [w.exitcode for w in workers] == [0, 0]
    assert sorted(pd.read_csv(path)["seed"]) == list(range(40))
