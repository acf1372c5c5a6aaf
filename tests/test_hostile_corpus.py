"""A corpus of hostile inputs, one case each, across every surface metakit reads or writes: run options,
output paths, checkpoints and resume, learner files, split files, the MNIST-1D cache, results CSVs and
data_prep (issue #36).

Each case plants its files in a fresh folder, calls the entry point in this process (the command line's
``main``; a SIGALRM guard turns a hang into a failure) and asserts the exit status, exactly one line on
stderr naming the argument or file (and no traceback), nothing on stdout for a refusal (nothing trained),
no file left behind, and every planted file unchanged (nothing already saved lost). `CASES` is the table:
(surface, name, expected class, what it plants and runs, words the line must hold); `counts` gives the
cases by surface and class.
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from data_prep import cifar as cifar_cli
from data_prep import splits as split_cli
from metakit.cli import main as cli
from metakit.data.mnist1d import cache_folder, generator_args, load_samples, _npy_bytes, _sha256
from metakit.data.sources import load_source
from metakit.data.splits import SplitSpec, _digest, make_split, save_split
from metakit.experiments import Config, config_key, run
from metakit.learners.lr_net import MLRSNet, save_schedule
from metakit.studies.grid import columns

ROOT = Path(__file__).resolve().parents[1]
RUN = ["metakit", "run", "--profile", "smoke", "--no-progress", "--epochs", "1"]
TABLE = ["metakit", "table", "long-tail", "--profile", "smoke", "--epochs", "1", "--methods", "ce", "--imbalances",
         "10", "--seeds", "0", "--out", "T"]
TABLE_CSV = "T/long_tail_smoke_e1.csv"


@dataclass
class Case:
    """One hostile input: ``plant(tmp, made)`` writes its files under ``tmp`` (the test's working folder) and
    returns the argv ("metakit", "splits" or "cifar" first); ``made`` holds the files made once per session."""

    surface: str
    name: str
    expect: str                            # refused | warned | resumed | cleaned
    plant: Callable[[Path, dict], list[str]]
    words: tuple[str, ...] = ()
    code: int | None = None                # default: 2 when refused, else 0
    env: dict = field(default_factory=dict)


def argv(*args: str) -> Callable[[Path, dict], list[str]]:
    return lambda tmp, made: list(args)


# --- what the cases plant -----------------------------------------------------------------------------------

def with_file(path: str, text: str, *rest: str) -> Callable[[Path, dict], list[str]]:
    def plant(tmp, made):
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_text(text)
        return list(rest)
    return plant


def with_folder(path: str, *rest: str) -> Callable[[Path, dict], list[str]]:
    def plant(tmp, made):
        (tmp / path).mkdir(parents=True)
        return list(rest)
    return plant


def with_link(target: str, name: str, *rest: str) -> Callable[[Path, dict], list[str]]:
    def plant(tmp, made):
        (tmp / name).symlink_to(target)
        return list(rest)
    return plant


def checkpoint_name() -> str:
    return f"ce-{config_key(Config(profile='smoke', epochs=1).resolve())}.pt"


def with_checkpoint(edit: Callable[[dict], object] | None = None, *extra: str) -> Callable[[Path, dict], list[str]]:
    """The session's 1-epoch smoke checkpoint in Q/, edited, and a ``--resume`` of it."""
    def plant(tmp, made):
        (tmp / "Q").mkdir()
        path = tmp / "Q" / made["checkpoint"].name
        if edit is None:
            shutil.copy(made["checkpoint"], path)
        else:
            state = torch.load(made["checkpoint"], weights_only=True)
            state = edit(state) or state
            torch.save(state, path)
        return RUN + ["--checkpoint-dir", "Q", "--resume", *extra]
    return plant


def checkpoint_bytes(data: Callable[[bytes], bytes]) -> Callable[[Path, dict], list[str]]:
    def plant(tmp, made):
        (tmp / "Q").mkdir()
        (tmp / "Q" / made["checkpoint"].name).write_bytes(data(made["checkpoint"].read_bytes()))
        return RUN + ["--checkpoint-dir", "Q", "--resume"]
    return plant


def fifo_checkpoint(tmp, made):
    (tmp / "Q").mkdir()
    os.mkfifo(tmp / "Q" / checkpoint_name())
    return RUN + ["--checkpoint-dir", "Q", "--resume"]


def folder_checkpoint(tmp, made):
    (tmp / "Q" / checkpoint_name()).mkdir(parents=True)
    return RUN + ["--checkpoint-dir", "Q"]


def learner(edit: Callable[[dict], None]) -> Callable[[Path, dict], list[str]]:
    """A saved MLR-SNet LR net, edited, as a frozen mlrsnet run's schedule_file."""
    def plant(tmp, made):
        blob = torch.load(save_schedule(MLRSNet(10, hidden=4, gamma=0.2), tmp / "lr.pt"), weights_only=True)
        edit(blob)
        torch.save(blob, tmp / "lr.pt")
        return RUN + ["--method", "mlrsnet", "--option", f'schedule_file="{tmp / "lr.pt"}"']
    return plant


def set_key(key: str, value) -> Callable[[dict], None]:
    def edit(blob):
        blob[key] = value
    return edit


def set_state(name: str, value: float) -> Callable[[dict], None]:
    def edit(blob):
        blob["state_dict"][name] = torch.tensor(value)
    return edit


def set_init(name: str, value) -> Callable[[dict], None]:
    def edit(blob):
        blob["init"][name] = value
    return edit


def split_file(edit: Callable[[dict], None] | None = None, *flags: str, check: bool = False,
               imbalance: float = 10) -> Callable[[Path, dict], list[str]]:
    """A digits split (IF ``imbalance``) whose payload ``edit`` rewrites, its sha256 recomputed (a careful forger)."""
    def plant(tmp, made):
        split = make_split(SplitSpec(imbalance=imbalance, meta_per_class=5), made["digits"])
        path = save_split(split, tmp / "split.json")
        if edit is not None:
            record = json.loads(path.read_text())
            edit(record["split"])
            record["sha256"] = _digest(record["split"])
            path.write_text(json.dumps(record))
        if check:
            return ["splits", "--check", str(path)]
        return RUN + ["--split-file", str(path), *flags]
    return plant


def cache(edit: Callable[[Path], None]) -> Callable[[Path, dict], list[str]]:
    """The session's small MNIST-1D cache copied to data/, ``edit`` applied to its folder."""
    def plant(tmp, made):
        shutil.copytree(made["mnist1d_root"], tmp / "data")
        edit(tmp / "data" / made["mnist1d_folder"].relative_to(made["mnist1d_root"]))
        return RUN + ["--dataset", "mnist1d", "--data-root", str(tmp / "data")]
    return plant


def rewrite_array(name: str, array: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def edit(folder):
        data = _npy_bytes(array(np.load(folder / name)))
        (folder / name).write_bytes(data)
        meta = json.loads((folder / "meta.json").read_text())
        meta["sha256"][name] = _sha256(data)
        (folder / "meta.json").write_text(json.dumps(meta))
    return edit


def write_meta(text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / "meta.json").write_text(text)


HEADER = columns() + ["profile", "epochs", "config"]


def row(**changes) -> dict:
    return {"dataset": "digits", "setting": "lt_if10", "method": "ce", "variant": "", "seed": 5, "test_acc": 50.0,
            "val_acc": 50.0, "many_acc": "", "medium_acc": "", "few_acc": 40.0, "seconds": 1.0, "commit": "abc1234",
            "profile": "smoke", "epochs": 1, "config": ""} | changes


def results_csv(*rows: dict, header: list[str] = HEADER, tail: str = "\n") -> Callable[[Path, dict], list[str]]:
    """A table command whose CSV already holds ``rows`` (``tail``: how the file ends)."""
    def plant(tmp, made):
        lines = [",".join(header)] + [",".join(str(r.get(c, "")) for c in header) for r in rows]
        (tmp / "T").mkdir()
        (tmp / TABLE_CSV).write_text("\n".join(lines) + tail)
        return TABLE
    return plant


def results_bytes(data: bytes) -> Callable[[Path, dict], list[str]]:
    def plant(tmp, made):
        (tmp / "T").mkdir()
        (tmp / TABLE_CSV).write_bytes(data)
        return TABLE
    return plant


def study_out(blocker: str) -> Callable[[Path, dict], list[str]]:
    """A study whose --out CSV is fine but one of its companions (``blocker``) is a folder."""
    def plant(tmp, made):
        (tmp / "S" / blocker).mkdir(parents=True)
        return ["metakit", "study", "long_tail", "--profile", "smoke", "--epochs", "1", "--methods", "ce",
                "--imbalances", "10", "--seeds", "0", "--out", "S/t.csv"]
    return plant


def respelled_resume(tmp, made):
    shutil.copytree(made["checkpoint"].parent, tmp / "Q")
    return RUN + ["--checkpoint-dir", "Q/", "--resume", "--device", "cpu", "--data-root",
                  os.environ["METAKIT_DATA"] + "/./"]


DIGITS_300 = "1" * 300


def negative(payload):
    payload["train_idx"][0] = -1


def out_of_range(payload):
    payload["train_idx"][0] = 10**6


def meta_is_train(payload):
    payload["meta_idx"] = payload["train_idx"][:len(payload["meta_idx"])]


def duplicated(payload):
    payload["train_idx"][1] = payload["train_idx"][0]


def wrong_counts(payload):
    payload["class_counts"][0] += 1


def extra_spec_key(payload):
    payload["spec"]["extra"] = 1


def extra_key(payload):
    payload["note"] = "hi"


def cut_labels(payload):
    payload["train_labels"] = payload["train_labels"][:-1]


def relabelled(payload):
    i = payload["train_idx"][0]
    payload["train_idx"][0], payload["train_idx"][-1] = payload["train_idx"][-1], i   # labels no longer the pool's


def bool_indices(payload):
    payload["meta_idx"] = [True] * len(payload["meta_idx"])


CASES = [
    # surface, name, class, plant -> argv, words in the one line
    Case("options", "300-digit epochs", "refused", argv(*RUN, "--epochs", DIGITS_300), ("epochs=", "300 digits")),
    Case("options", "huge seed", "refused", argv(*RUN, "--seed", "9" * 40), ("seed=", "2147483647")),
    Case("options", "weight decay 1e300", "refused", argv(*RUN, "--weight-decay", "1e300"), ("weight_decay=1e+300",)),
    Case("options", "gamma 1e308", "refused", argv(*RUN, "--gamma", "1e308"), ("gamma=1e+308",)),
    Case("options", "lr inf", "refused", argv(*RUN, "--lr", "1e400"), ("lr=inf",)),
    Case("options", "warm-up 1e308", "refused", argv(*RUN, "--warmup-epochs", "1e308"), ("warmup_epochs=",)),
    Case("options", "imbalance 1e300", "refused", argv(*RUN, "--imbalance", "1e300"), ("imbalance=1e+300",)),
    Case("options", "width 1e5", "refused", argv(*RUN, "--model", "mlp", "--width", "100000"), ("width=100000",)),
    Case("options", "meta-every 1e30", "refused", argv(*RUN, "--meta-every", "1" + "0" * 30), ("meta_every=",)),
    Case("options", "momentum nan", "refused", argv(*RUN, "--momentum", "nan"), ("momentum=nan",)),
    Case("options", "option inf", "refused", argv(*RUN, "--method", "focal", "--option", "focal_gamma=1e400"),
         ("focal_gamma=inf",)),
    Case("options", "option 300 digits", "refused",
         argv(*RUN, "--method", "focal", "--option", f"focal_gamma={DIGITS_300}"), ("focal_gamma=", "300 digits")),
    Case("options", "empty split file", "refused", argv(*RUN, "--split-file", ""), ("split_file=''",)),
    Case("options", "table --workers 1e30", "refused", argv(*TABLE, "--workers", "1" + "0" * 30),
         ("workers=", "[1, 1024]")),
    Case("options", "table --seeds 1e40", "refused", argv(*TABLE[:-3], "9" * 40, "--out", "T"), ("seed=", "too large")),
    Case("options", "split --seed 1e40", "refused", argv("splits", "--seed", "9" * 40, "--out", "s.json"),
         ("argument --seed", "too large")),
    Case("options", "split --imbalance 1e300", "refused", argv("splits", "--imbalance", "1e300", "--out", "s.json"),
         ("argument --imbalance", "1e+300")),
    Case("options", "split --train-per-class 0", "refused",
         argv("splits", "--train-per-class", "0", "--out", "s.json"),
         ("argument --train-per-class", "train_per_class=0")),
    Case("options", "warm-up as long as the run", "warned", argv(*RUN, "--warmup-epochs", "1"),
         ("warning: warmup_epochs=1 >= epochs=1",)),
    Case("options", "milestone beyond the run", "warned",
         argv(*RUN, "--schedule", "multistep", "--milestones", "0.5", "5"),
         ("warning: milestones=", "5 is at or beyond")),
    Case("options", "momentum 1", "warned", argv(*RUN, "--momentum", "1"), ("warning: momentum=1",)),

    Case("output paths", "learner under a dangling symlink", "refused",
         with_link("missing", "link", *RUN, "--method", "mwnet", "--save-learner", "link/w.pt"),
         ("--save-learner", "link/w.pt", "dangling symlink")),
    Case("output paths", "learner under a symlink loop", "refused",
         with_link("link", "link", *RUN, "--method", "mwnet", "--save-learner", "link/w.pt"),
         ("--save-learner", "symlink loop")),
    Case("output paths", "learner is a dangling symlink", "refused",
         with_link("missing/w.pt", "w.pt", *RUN, "--method", "mwnet", "--save-learner", "w.pt"),
         ("--save-learner", "dangling symlink")),
    Case("output paths", "learner is a folder", "refused",
         with_folder("w.pt", *RUN, "--method", "mwnet", "--save-learner", "w.pt"), ("--save-learner", "is a folder")),
    Case("output paths", "learner under /proc", "refused",
         argv(*RUN, "--method", "mwnet", "--save-learner", "/proc/metakit/w.pt"), ("--save-learner", "/proc")),
    Case("output paths", "checkpoint dir is a file", "refused",
         with_file("Q", "a file", *RUN, "--checkpoint-dir", "Q"), ("--checkpoint-dir", "'Q'", "is a file")),
    Case("output paths", "checkpoint dir under /proc", "refused", argv(*RUN, "--checkpoint-dir", "/proc/metakit"),
         ("--checkpoint-dir", "/proc")),
    Case("output paths", "checkpoint dir a dangling symlink", "refused",
         with_link("missing", "Q", *RUN, "--checkpoint-dir", "Q"), ("--checkpoint-dir", "dangling symlink")),
    Case("output paths", "checkpoint name is a folder", "refused", folder_checkpoint, ("checkpoint", "is a folder")),
    Case("output paths", "data root is a file (mnist1d)", "refused",
         with_file("d", "a file", *RUN, "--dataset", "mnist1d", "--data-root", "d"), ("data root", "'d'")),
    Case("output paths", "$METAKIT_DATA under /proc (mnist1d)", "refused", argv(*RUN, "--dataset", "mnist1d"),
         ("data root", "/proc/metakit", "$METAKIT_DATA"), env={"METAKIT_DATA": "/proc/metakit"}),
    Case("output paths", "table --out is a file", "refused", with_file("T", "a file", *TABLE),
         ("--out", "'T'", "is a file")),
    Case("output paths", "table --out under /proc", "refused", argv(*TABLE[:-1], "/proc/metakit"), ("--out", "/proc")),
    Case("output paths", "study CSV is a folder", "refused", study_out("t.csv"), ("--out", "t.csv", "is a folder")),
    Case("output paths", "study markdown is a folder", "refused", study_out("t.md"), ("--out", "t.md", "is a folder")),
    Case("output paths", "study findings is a folder", "refused", study_out("t_findings.md"),
         ("--out", "t_findings.md", "is a folder")),
    Case("output paths", "split --out under /proc", "refused",
         argv("splits", "--out", "/proc/metakit/s.json"), ("--out", "/proc/metakit/s.json")),
    Case("output paths", "split --out under a dangling symlink", "refused",
         with_link("missing", "link", "splits", "--out", "link/s.json"), ("--out", "dangling symlink")),
    Case("output paths", "cifar --root under /proc", "refused",
         argv("cifar", "--dataset", "cifar10", "--root", "/proc/metakit"), ("--root", "/proc")),

    Case("checkpoints", "a FIFO at the checkpoint path", "refused", fifo_checkpoint,
         ("checkpoint", "not a plain file")),
    Case("checkpoints", "epochs_done 999", "refused", with_checkpoint(lambda s: s.update(epochs_done=999)),
         ("checkpoint", "epochs_done=999", "[0, 1]")),
    Case("checkpoints", "epochs_done -5", "refused", with_checkpoint(lambda s: s.update(epochs_done=-5)),
         ("epochs_done=-5",)),
    Case("checkpoints", "epochs_done True", "refused", with_checkpoint(lambda s: s.update(epochs_done=True)),
         ("epochs_done=True",)),
    Case("checkpoints", "history of another length", "refused", with_checkpoint(lambda s: s.update(history=[])),
         ("checkpoint", "history", "epochs 1..1")),
    Case("checkpoints", "newer format", "refused", with_checkpoint(lambda s: s.update(format=99)),
         ("checkpoint", "newer metakit", "upgrade metakit")),
    Case("checkpoints", "lacks its net", "refused", with_checkpoint(lambda s: s.pop("net") and None),
         ("checkpoint", "lacks ['net']")),
    Case("checkpoints", "a list, not a dict", "refused", with_checkpoint(lambda s: [1, 2]), ("checkpoint", "list")),
    Case("checkpoints", "truncated", "refused", checkpoint_bytes(lambda b: b[:len(b) // 2]),
         ("checkpoint", "cannot be loaded safely")),
    Case("checkpoints", "text", "refused", checkpoint_bytes(lambda b: b"epochs_done: 1\n"),
         ("checkpoint", "cannot be loaded safely")),
    Case("checkpoints", "resume with --device, data root spelled otherwise", "resumed", respelled_resume,
         ("resuming from epoch 1 of 1",)),

    Case("learner files", "version True", "refused", learner(set_key("version", True)), ("lr.pt", "version=True")),
    Case("learner files", "version 0", "refused", learner(set_key("version", 0)), ("lr.pt", "version=0")),
    Case("learner files", "version -1", "refused", learner(set_key("version", -1)), ("lr.pt", "version=-1")),
    Case("learner files", "version '1'", "refused", learner(set_key("version", "1")), ("lr.pt", "version='1'")),
    Case("learner files", "newer version", "refused", learner(set_key("version", 2)), ("lr.pt", "upgrade metakit")),
    Case("learner files", "gamma NaN", "refused", learner(set_state("gamma", float("nan"))), ("lr.pt", "NaN", "gamma")),
    Case("learner files", "gamma -5", "refused", learner(set_state("gamma", -5.0)), ("lr.pt", "gamma=[-5.0]", "> 0")),
    Case("learner files", "loss scale 0", "refused", learner(set_state("loss_scale", 0.0)), ("lr.pt", "loss_scale")),
    Case("learner files", "hidden 1e9", "refused", learner(set_init("hidden", 10**9)),
         ("lr.pt", "hidden=1000000000", "beyond 4096")),
    Case("learner files", "weights of another size", "refused", learner(set_init("hidden", 8)),
         ("lr.pt", "tensors its constructor does not build")),
    Case("learner files", "a million snapshots", "refused",
         learner(lambda b: b.update(kind="lr_snapshots", init={"num_classes": 10, "count": 10**6})),
         ("lr.pt", "count=1000000")),

    Case("split files", "IF 10 split, --imbalance 1", "refused", split_file(None, "--imbalance", "1"),
         ("split.json", "made for imbalance=10", "has imbalance=1.0", "--imbalance 10")),
    Case("split files", "digits split for mnist1d", "refused",
         split_file(None, "--dataset", "mnist1d", "--imbalance", "10"),
         ("split.json", "dataset='digits'", "dataset='mnist1d'")),
    Case("split files", "negative index", "refused", split_file(negative, "--imbalance", "10"),
         ("split.json", "negative index")),
    Case("split files", "index beyond the pool", "refused", split_file(out_of_range, "--imbalance", "10"),
         ("split.json", "beyond the 1097 images")),
    Case("split files", "meta set = training set", "refused", split_file(meta_is_train, "--imbalance", "10"),
         ("split.json", "meta_idx shares")),
    Case("split files", "an index twice", "refused", split_file(duplicated, "--imbalance", "10"),
         ("split.json", "twice")),
    Case("split files", "class counts not the bincount", "refused", split_file(wrong_counts, "--imbalance", "10"),
         ("split.json", "bincount")),
    Case("split files", "labels of one index fewer", "refused", split_file(cut_labels, "--imbalance", "10"),
         ("split.json", "lengths differ")),
    Case("split files", "labels not the pool's", "refused", split_file(relabelled, "--imbalance", "10"),
         ("split.json", "not the dataset's labels")),
    Case("split files", "bools for indices", "refused", split_file(bool_indices, "--imbalance", "10"),
         ("split.json", "meta_idx is not a list of integers")),
    Case("split files", "--check, an extra spec key", "refused", split_file(extra_spec_key, check=True),
         ("split.json", "not a SplitSpec"), code=1),
    Case("split files", "--check, an extra key", "refused", split_file(extra_key, check=True),
         ("split.json", "unknown keys ['note']"), code=1),
    Case("split files", "--check, a negative index", "refused", split_file(negative, check=True),
         ("split.json", "negative index"), code=1),
    Case("split files", "--check, beyond the pool", "refused", split_file(out_of_range, check=True),
         ("split.json", "beyond the 1097 images"), code=1),

    Case("mnist1d cache", "meta.json not JSON", "refused", cache(write_meta("{damaged")),
         ("meta.json", "is damaged", "delete the folder")),
    Case("mnist1d cache", "meta.json a list", "refused", cache(write_meta("[1, 2]")), ("meta.json", "is damaged")),
    Case("mnist1d cache", "signal length 39", "refused", cache(rewrite_array("x.npy", lambda x: x[:, :39])),
         ("x.npy", "expected float32", "final_seq_length")),
    Case("mnist1d cache", "NaN signals", "refused", cache(rewrite_array("x.npy", lambda x: x * np.nan)),
         ("x.npy", "NaN")),
    Case("mnist1d cache", "label 10", "refused", cache(rewrite_array("y.npy", lambda y: np.where(y == 9, 10, y))),
         ("y.npy", "labels 0..10")),
    Case("mnist1d cache", "x.npy truncated", "refused",
         cache(lambda f: (f / "x.npy").write_bytes((f / "x.npy").read_bytes()[:100])), ("x.npy", "SHA-256")),

    Case("results CSVs", "a run twice", "refused", results_csv(row(), row()),
         (TABLE_CSV, "lines 2 and 3 both hold", "delete one")),
    Case("results CSVs", "seed 0.7", "refused", results_csv(row(seed=0.7)), (TABLE_CSV, "line 2", "seed=0.7")),
    Case("results CSVs", "seed -1", "refused", results_csv(row(seed=-1)), (TABLE_CSV, "seed=-1")),
    Case("results CSVs", "a row cut mid-way", "refused", results_csv(row(), row(seed=6), tail=""),
         (TABLE_CSV, "line 3 is cut short", "run the same command again")),
    Case("results CSVs", "a row with an extra field", "refused", results_csv(row(), row(seed="6,7")),
         (TABLE_CSV, "line 3 has 16 fields where the header has 15")),
    Case("results CSVs", "a metric that is not a number", "refused", results_csv(row(test_acc="abc")),
         (TABLE_CSV, "test_acc='abc' is not a number")),
    Case("results CSVs", "an empty method", "refused", results_csv(row(method="")), (TABLE_CSV, "method is empty")),
    Case("results CSVs", "an older format", "refused", results_csv(row(), header=HEADER[:3] + HEADER[5:]),
         (TABLE_CSV, "lacks the results columns ['variant', 'seed']")),
    Case("results CSVs", "binary", "refused", results_bytes(b"\x89PNG\x00\xff\xfe"), (TABLE_CSV, "not UTF-8")),
]


def counts() -> dict[tuple[str, str], int]:
    """Cases by (surface, expected class)."""
    return dict(collections.Counter((c.surface, c.expect) for c in CASES))


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """What several cases copy: a 1-epoch smoke checkpoint, the digits pool, a small MNIST-1D cache."""
    folder = tmp_path_factory.mktemp("made")
    run(Config(profile="smoke", epochs=1, progress=False), checkpoint_dir=folder / "Q")
    (checkpoint,) = (folder / "Q").glob("*.pt")
    args = generator_args(num_samples=10 * 180)                          # the smoke profile's small set
    load_samples(folder / "data", args=args)
    return {"checkpoint": checkpoint, "digits": load_source("digits").train_y, "mnist1d_root": folder / "data",
            "mnist1d_folder": cache_folder(folder / "data", "mnist1d", args)}


def call(args: list[str]) -> int:
    """Run one entry point as the shell would: its exit status, its warnings on stderr (pytest records them)."""
    entry = {"metakit": cli, "splits": split_cli.main, "cifar": cifar_cli.main}[args[0]]

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        try:
            return entry(args[1:])
        except SystemExit as exit_:
            return exit_.code


def files(folder: Path) -> dict[Path, bytes]:
    return {p: (p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*") if not p.is_symlink()
            and not p.is_dir()}


def alarm(signum, frame):
    raise TimeoutError("the case hung")


@pytest.mark.parametrize("case", CASES, ids=[f"{c.surface}: {c.name}" for c in CASES])
def test_hostile_input(case, made, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    args = case.plant(tmp_path, made)
    before = files(tmp_path)
    capsys.readouterr()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    try:
        code = call(args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    expected = case.code if case.code is not None else (2 if case.expect == "refused" else 0)
    assert code == expected, err
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    prefix = {"refused": "error: ", "warned": "warning: ", "resumed": "resuming from "}[case.expect]
    assert lines[0].startswith(prefix) and all(w in lines[0] for w in case.words), lines[0]
    if case.expect == "refused":
        assert out == "", out                                             # nothing trained, no metrics
    after = files(tmp_path)
    assert sorted(map(str, set(after) - set(before))) == []               # no file left behind
    assert all(after.get(p) == data for p, data in before.items())        # nothing already saved lost


def test_the_corpus_covers_every_surface():
    surfaces = {c.surface for c in CASES}
    assert len(CASES) >= 60 and len({c.name for c in CASES}) == len(CASES)
    assert surfaces == {"options", "output paths", "checkpoints", "learner files", "split files",
                        "mnist1d cache", "results CSVs"}
    assert {c.expect for c in CASES} == {"refused", "warned", "resumed"}


def test_a_write_killed_before_its_rename_leaves_a_temporary_the_next_write_removes(tmp_path):
    """SIGKILL inside `atomic_write_bytes` (after the temporary is written, before the rename) keeps the old file;
    the next write to that path, by a later process, removes the temporary."""
    target = tmp_path / "t.csv"
    target.write_text("old\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = ("import os, signal; from metakit import io; "
              "io.os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL); "
              f"io.atomic_write_text({str(target)!r}, 'new\\n')")
    proc = subprocess.run([sys.executable, "-c", killed], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    (stale,) = tmp_path.glob(".t.csv.*.tmp")
    assert target.read_text() == "old\n"
    again = f"from metakit.io import atomic_write_text; atomic_write_text({str(target)!r}, 'newer\\n')"
    subprocess.run([sys.executable, "-c", again], env=env, check=True, timeout=120)
    assert target.read_text() == "newer\n" and sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_metrics_are_printed_before_the_learner_is_saved(tmp_path, monkeypatch, capsys):
    """A save that fails after training (the disk filled up) loses no number: the metrics are already out."""
    from metakit import cli as cli_module

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli_module, "save_learner", disk_full)
    code = cli(["run", "--profile", "smoke", "--no-progress", "--epochs", "1", "--method", "mwnet",
                "--save-learner", str(tmp_path / "w.pt")])
    out, err = capsys.readouterr()
    assert code == 2 and "test_acc=" in out and not list(tmp_path.iterdir())
    assert err.strip().splitlines() == ["error: OSError: [Errno 28] No space left on device"]
