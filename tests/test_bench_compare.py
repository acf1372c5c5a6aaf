"""bench/compare.py: the equality check refuses a wrong hypergradient, missing peers become rows, the CSV's shape."""
from __future__ import annotations

import csv

import pytest
import torch

from bench import compare
from bench.peers.common import Setup, make_data
from bench.peers.libraries import Copy, Metakit, Plain, require
from bench.peers.report import COLUMNS

TINY = Setup(model="digits_cnn", input_shape=(1, 8, 8), batch=8, meta_batch=8, dtype=torch.float64)
TINY_ARGS = ["--model", "digits_cnn", "--input-shape", "1,8,8", "--batch", "8", "--rounds", "1", "--warmup", "0",
             "--memory", "none", "--meta-every-rounds", "1", "--loader-n", "0"]


class OffByAFactor(Copy):
    """A peer whose hypergradient is 0.1 % too large (a wrong α, say)."""

    def hypergradient(self):
        return [None if g is None else 1.001 * g for g in super().hypergradient()]


class NoWeightDecay(Copy):
    """A peer that forgets the virtual step's weight decay (a plausible bug)."""

    def hypergradient(self):
        wd, self.setup.weight_decay = self.setup.weight_decay, 0.0
        try:
            return super().hypergradient()
        finally:
            self.setup.weight_decay = wd


def _specs(work, *extra):
    plain = compare.Spec("plain", "torch", "default", lambda w, s, d: Plain("weight", s, d))
    return [plain, compare.Spec(work, "copy", "default", Copy), compare.Spec(work, "metakit", "default", Metakit),
            *extra]


@pytest.mark.parametrize("work", ["lr", "weight", "forward"])
def test_the_check_times_a_right_entry_and_refuses_a_wrong_one(work):
    setup = Setup(**{**TINY.__dict__, "weight_decay": 5e-2})          # a weight-decay term big enough to see
    wrong = [compare.Spec(work, "fake", "off_by_0.1%", OffByAFactor),
             compare.Spec(work, "fake", "no_weight_decay", NoWeightDecay)]
    specs = _specs(work, *wrong)
    data = make_data(setup)
    compare.check(specs, setup, data, 1e-4, log=lambda msg: None)
    by = {s.variant: s.result for s in specs[1:]}
    assert by["default"]["status"] == "ok" and by["default"]["hyper_rel_err"] < 1e-10
    assert by["off_by_0.1%"]["status"].startswith("hypergradient mismatch")
    assert by["off_by_0.1%"]["hyper_rel_err"] == pytest.approx(1e-3, rel=1e-6)
    assert by["no_weight_decay"]["status"].startswith("hypergradient mismatch")
    compare.time_entries(specs, setup, data, warmup=0, rounds=1, log=lambda msg: None)
    assert "ratio" in specs[2].result and all("ratio" not in s.result for s in specs[3:])


def test_a_missing_peer_is_a_row_not_a_crash():
    def missing(work, setup, data):
        require("metakit_no_such_peer")

    specs = _specs("weight", compare.Spec("weight", "nopeer", "default", missing))
    compare.check(specs, TINY, make_data(TINY), 1e-4, log=lambda msg: None)
    assert specs[-1].result["status"].startswith("not installed")
    assert not compare.runnable(specs[-1])


def test_amortised_rows_follow_from_the_measured_ratios():
    meta = compare.Spec("weight", "metakit", "default", None, {"ratio": 4.0, "peak_mem_ratio": 2.0})
    real = compare.Spec("weight", "metakit", "real_only", None, {"ratio": 1.0})
    rows = {s.variant: s.result["ratio"] for s in compare.amortised([meta, real], epoch_steps=500)}
    assert rows == pytest.approx({"meta_every_1": 4.0, "meta_every_10": 1.3, "meta_every_100": 1.03,
                                  "meta_every_epoch": 1.006})


def test_a_tiny_run_writes_one_row_per_entry_with_the_columns(tmp_path):
    out = tmp_path / "bench"
    compare.main([*TINY_ARGS, "--out", str(out)])
    with open(f"{out}.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS
    keys = {(r["work"], r["library"], r["variant"]) for r in rows}
    for work in ("lr", "weight", "forward"):
        for library in ("metakit", "higher", "torchopt", "betty", "copy"):
            assert (work, library, "default") in keys
        for variant in ("meta_every_1", "meta_every_10", "meta_every_100", "meta_every_epoch",
                        "meta_every_10_measured", "real_only"):
            assert (work, "metakit", variant) in keys
    for r in rows:
        timed = r["status"] in ("ok", "approximate by design")
        assert timed == (r["ratio"] != ""), r
        assert timed or r["status"].startswith(("not installed", "cannot run")), r
    ours = {r["work"]: r for r in rows if r["library"] == "metakit" and r["variant"] == "default"}
    assert all(float(ours[w]["hyper_rel_err"]) < 1e-10 for w in ours)
    text = (tmp_path / "bench.md").read_text()
    assert "python bench/compare.py" in text and "Load average" in text and "## Targets" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.csv", "bench.md"]      # no temporaries left


PEAK_OF = """
import torch
from bench.peers.measure import peak_mib
def one_after_another():          # two 64 MiB tensors, the first freed before the second exists
    a = torch.ones(16 * 2**20); del a
    b = torch.ones(16 * 2**20); del b
def both_at_once():
    a = torch.ones(16 * 2**20); b = torch.ones(16 * 2**20); del a, b
print(peak_mib(one_after_another), peak_mib(both_at_once))
"""


def test_a_memory_child_counts_live_tensors():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PEAK_OF], env=compare.child_env(65536), capture_output=True,
                         text=True, check=True)
    sequential, together = map(float, out.stdout.split())
    assert 60 < sequential < 72 and 124 < together < 140      # 64 and 128 MiB of live tensors
    assert "MALLOC_MMAP_THRESHOLD_" not in compare.child_env(0)
    with pytest.raises(SystemExit):
        compare.parse_args(["--mmap-threshold", "-1"])
