"""The "MLR-SNet at the paper's scale" commands of docs/guide/schedules.md, end-to-end on tiny data in the real formats.

Each command is read from that page itself, run through the CLI (`metakit.cli.main`) with only
epochs, sizes and paths overridden, on tiny CIFAR-10/100 pickles (`_tiny_cifar`) and a tiny
ImageFolder of JPEGs (`_tiny_imagenet`). The meta-train must write per-epoch snapshots; each
meta-test must load them and set every step's LR as the staged protocol says, which the test
recomputes on its own from the snapshot file (LSTM cell, head, γ formula) and the logged losses.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _tiny_cifar import write_tiny
from _tiny_imagenet import write_tiny_imagenet
from metakit import cli
from metakit.data.cifar import CIFAR
from metakit.data.splits import Split, SplitSpec, save_split
from metakit.learners.lr_net import LRSnapshots, load_schedule, save_schedule
from metakit.learners.store import read_header
from metakit.models import count_parameters
from metakit.schedules.learned import StagedSchedule

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = {"cifar10": "runs/mlrsnet_cifar10.pt", "cifar100": "runs/mlrsnet_cifar100.pt"}  # the README's paths
CPU = ["--device", "cpu", "--no-progress"]


def readme_commands() -> dict[tuple[str, str, str], list[str]]:
    """(dataset, model, "train" | "test") → the argv of each command in the README's section."""
    text = (ROOT / "docs" / "guide" / "schedules.md").read_text().split("## MLR-SNet at the paper's scale")[1].split("\n## ")[0]
    out = {}
    for line in re.findall(r"`python -m metakit (run [^`]+)`", text):
        argv = shlex.split(line)
        flag = lambda name: argv[argv.index(name) + 1]  # noqa: E731
        out[(flag("--dataset"), flag("--model"), "train" if "--save-learner" in argv else "test")] = argv
    return out


def command(key: tuple[str, str, str], files: dict[str, Path], *overrides: str) -> list[str]:
    """The README's command with its snapshot paths replaced by ``files`` and ``overrides`` appended."""
    argv = list(readme_commands()[key])
    for dataset, path in SNAPSHOTS.items():
        argv = [a.replace(path, str(files[dataset])) if dataset in files else a for a in argv]
    return argv + list(overrides) + CPU


def run_cli(argv: list[str], monkeypatch) -> "cli.Result":
    """Run the command line in this process; returns the `Result` its `run` produced."""
    seen, real = [], cli.run
    monkeypatch.setattr(cli, "run", lambda config, **kw: seen.append(real(config, **kw)) or seen[-1])
    assert cli.main(argv) == 0
    return seen[0]


def official_gamma(loss: float, classes: int) -> float:
    """γ = |sqrt(L)·ln(L·C) / C^0.25 / 4| (the official meta-test script), written out again here."""
    return abs(math.sqrt(loss) * math.log(loss * classes) / classes ** 0.25 / 4)


def replay_staged(snapshots: LRSnapshots, result, iters: int) -> list[float]:
    """Every step's LR from scratch: one LSTM state carried through all steps, each epoch's snapshot
    weights (1, mid, last at epochs 0, N//3, 2·(N//3)), lr = γ_stage · sigmoid(head(h))."""
    epochs = result.config.epochs
    starts, chosen = (0, epochs // 3, epochs // 3 * 2), (1, max(1, len(snapshots) // 2), len(snapshots))
    gammas = {w["epoch"]: w["gamma"] for w in result.method.trainer.schedule.switches}
    h = c = torch.zeros(1, snapshots.nets[0].hidden)
    lrs, gamma = [], None
    with torch.no_grad():
        for step, row in enumerate(result.method.trace):
            epoch = step // iters
            stage = max(i for i, s in enumerate(starts) if epoch >= s)
            gamma = gammas.get(epoch, gamma) if step % iters == 0 else gamma
            net = snapshots.at_epoch(chosen[stage])
            h, c = net.cell(torch.tensor([[row["loss"]]]), (h, c))              # raw loss in, as the official code
            lrs.append(gamma * torch.sigmoid(net.head(h)).item())
    return lrs


def check_meta_test(result, snapshot_file: Path, classes: int, iters: int, train_images: int) -> None:
    """What every meta-test must show: the full training set, three stages, official γ, the replayed LRs."""
    epochs = result.config.epochs
    assert result.config.options["schedule_file"] == str(snapshot_file) and result.config.meta_per_class == 0
    assert len(result.split.train_idx) == train_images and len(result.split.meta_idx) == 0
    assert result.method.frozen and not result.method.uses_meta_set
    schedule = result.method.trainer.schedule
    snapshots, _ = load_schedule(snapshot_file)
    assert isinstance(schedule, StagedSchedule)
    stages = [(w["epoch"], w["snapshot"]) for w in schedule.switches]
    assert stages == [(0, 1), (1, 2), (2, 4)]                                   # 3 epochs, 4 snapshots
    for switch in schedule.switches:
        assert switch["gamma"] == pytest.approx(official_gamma(switch["train_loss"], classes), rel=1e-12)
    assert len(result.method.trace) == iters * epochs
    logged = [row["lr"] for row in result.method.trace]
    assert logged == pytest.approx(replay_staged(snapshots, result, iters), rel=1e-5)
    assert result.history["lr"].tolist() == pytest.approx([np.mean(logged[e * iters:(e + 1) * iters])
                                                           for e in range(epochs)], rel=1e-5)
    assert 0 <= result.metrics["test_acc"] <= 100 and result.net.fc.out_features == classes


@pytest.fixture(scope="module")
def meta_trained(tmp_path_factory):
    """Tiny CIFAR-10 (2 images a class) and the README's meta-train on it: 4 epochs, ResNet-18."""
    root = tmp_path_factory.mktemp("cifar10")
    table = write_tiny(root, "cifar10", n=4, balanced=True)["table"]
    snapshots = root / "out" / "snapshots.pt"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(CIFAR, "cifar10", table)
        result = run_cli(command(("cifar10", "resnet18", "train"), {"cifar10": snapshots}, "--data-root", str(root),
                                 "--epochs", "4", "--batch-size", "5", "--meta-per-class", "1",
                                 "--save-learner", str(snapshots)), patch)
    torch.set_num_threads(threads)
    return root, table, snapshots, result


def test_meta_train_on_cifar10_writes_one_snapshot_an_epoch(meta_trained):
    _, _, path, result = meta_trained
    c = result.config
    assert (c.method, c.dataset, c.model, c.profile, c.epochs) == ("mlrsnet", "cifar10", "resnet18", "paper", 4)
    assert (c.momentum, c.weight_decay, c.meta_lr) == (0.0, 5e-4, 1e-3)         # the official recipe
    assert len(result.split.meta_idx) == 10 and len(result.split.train_idx) == 10   # 1 a class meta set, the rest
    snapshots, meta = load_schedule(path)
    header = read_header(path, "lr_snapshots")
    assert isinstance(snapshots, LRSnapshots) and len(snapshots) == 4 == meta["epochs"]
    assert (meta["dataset"], meta["model"], header["config"]["method"]) == ("cifar10", "resnet18", "mlrsnet")
    for saved, live in zip(snapshots.nets, result.learner.nets):                # the file holds the run's snapshots
        assert all(torch.equal(saved.state_dict()[k], v) for k, v in live.state_dict().items())
    heads = [n.head.weight.detach().clone() for n in snapshots.nets]
    assert heads[0].abs().sum() > 0                                # a fresh head is zero: updated in epoch 1
    assert all(not torch.equal(a, b) for a, b in zip(heads, heads[1:]))        # and again in every epoch
    assert result.history["meta_loss"].notna().all()                             # one meta-update an epoch
    gamma = official_gamma(result.method.initial_loss, 10)
    assert all(float(n.gamma) == pytest.approx(gamma, rel=1e-6) for n in snapshots.nets)     # a float32 buffer
    assert all(0 < row["lr"] < gamma for row in result.method.trace)


# Meta-tests take one step an epoch (the batch is the whole tiny training set): with a few BatchNorm
# updates an epoch the running statistics lag the weights, the eval-mode training loss that each
# stage derives γ from explodes, and the divergence guard stops the run, on tiny data only.
@pytest.mark.parametrize("model,params", [("mobilenetv2", 2_236_682), ("shufflenetv2", 1_263_854)])
def test_meta_test_on_cifar10_mobile_nets(meta_trained, monkeypatch, model, params):
    root, table, snapshots, _ = meta_trained
    monkeypatch.setitem(CIFAR, "cifar10", table)
    result = run_cli(command(("cifar10", model, "test"), {"cifar10": snapshots}, "--data-root", str(root),
                             "--epochs", "3", "--batch-size", "20"), monkeypatch)
    assert result.config.model == model and count_parameters(result.net) == params
    check_meta_test(result, snapshots, classes=10, iters=1, train_images=20)


def tiny_cifar100(root: Path, train: list[int], meta: list[int], meta_per_class: int = 0) -> tuple[object, Path]:
    """Tiny CIFAR-100 pickles and a saved split holding only ``train`` (and ``meta``) of its images.

    A CIFAR-100 split needs an image of every class (100 of them); WRN-28-10 takes ~0.5 s an image
    on one CPU thread, so the split file (``--split-file``, a real flag) keeps the run to a few images.
    """
    written = write_tiny(root, "cifar100", n=4, balanced=True)
    labels = written["train_y"]
    counts = np.bincount(labels[train], minlength=100).tolist()
    split = Split(SplitSpec("cifar100", meta_per_class=meta_per_class), np.array(train), labels[train],
                  labels[train], np.array(meta, dtype=np.int64), counts, np.eye(100))
    return written["table"], save_split(split, root / "split.json")


def test_meta_test_on_cifar100_wrn28_10(meta_trained, tmp_path, monkeypatch):
    _, _, snapshots, _ = meta_trained
    table, split = tiny_cifar100(tmp_path, train=[0, 1, 2, 3], meta=[])
    monkeypatch.setitem(CIFAR, "cifar100", table)
    result = run_cli(command(("cifar100", "wrn28_10", "test"), {"cifar10": snapshots}, "--data-root", str(tmp_path),
                             "--split-file", str(split), "--epochs", "3", "--batch-size", "4"), monkeypatch)
    assert count_parameters(result.net) == 36_536_884
    check_meta_test(result, snapshots, classes=100, iters=1, train_images=4)


def test_meta_train_on_cifar100_wrn28_10(tmp_path, monkeypatch):
    table, split = tiny_cifar100(tmp_path, train=[0, 1], meta=[2, 3], meta_per_class=10)  # the run's protocol
    monkeypatch.setitem(CIFAR, "cifar100", table)
    out = tmp_path / "snapshots100.pt"
    result = run_cli(command(("cifar100", "wrn28_10", "train"), {"cifar100": out}, "--data-root", str(tmp_path),
                             "--split-file", str(split), "--epochs", "2", "--batch-size", "2"), monkeypatch)
    assert result.config.meta_per_class == 10                                     # the README's 1,000-image meta set
    snapshots, meta = load_schedule(out)
    assert len(snapshots) == 2 and (meta["dataset"], meta["model"]) == ("cifar100", "wrn28_10")
    assert float(snapshots.nets[0].gamma) == pytest.approx(official_gamma(result.method.initial_loss, 100), rel=1e-6)
    assert result.history["meta_loss"].notna().all()


def cooled(snapshot_file: Path, out: Path, shift: float = 5.0) -> Path:
    """The same snapshots with every head's bias lowered by ``shift`` (LR ≈ γ·sigmoid(-5) ≈ γ/150).

    ResNet-50 from scratch on a 12-image batch is thrown off by one step at the fresh snapshots'
    LR (≈ γ/2 ≈ 0.12): the eval-mode training loss the next stage derives γ from jumps to ~1e7, and
    the run stops at the divergence guard (LR > 100 × base LR). That is the protocol's own behaviour
    on tiny data; a cooler schedule keeps this test about the plumbing.
    """
    snapshots, _ = load_schedule(snapshot_file)
    with torch.no_grad():
        for net in snapshots.nets:
            net.head.bias -= shift
    return save_schedule(snapshots, out)


def test_meta_test_on_imagenet_resnet50(meta_trained, tmp_path, monkeypatch):
    snapshots = cooled(meta_trained[2], tmp_path / "cooled.pt")
    write_tiny_imagenet(tmp_path, train_per_class=4, val_per_class=2, meta=True)
    result = run_cli(command(("imagenet", "resnet50", "test"), {"cifar10": snapshots}, "--data-root", str(tmp_path),
                             "--epochs", "3", "--batch-size", "12", "--data-option", "image_size=32",
                             "--data-option", "resize=36", "--data-option", "workers=2"), monkeypatch)
    c = result.config
    assert (c.dataset, c.model, c.batch_size, c.weight_decay, c.momentum) == ("imagenet", "resnet50", 12, 1e-4, 0.0)
    assert c.data_options == {"workers": 2, "image_size": 32, "resize": 36}    # the README's workers=16, overridden
    assert count_parameters(result.net) == 23_514_179                            # ResNet-50 with a 3-class fc
    check_meta_test(result, snapshots, classes=3, iters=1, train_images=12)


def test_a_missing_imagenet_is_one_line_and_writes_nothing(meta_trained, tmp_path):
    _, _, snapshots, _ = meta_trained
    missing, out = tmp_path / "no_data", tmp_path / "learner.pt"
    argv = command(("imagenet", "resnet50", "test"), {"cifar10": snapshots}, "--data-root", str(missing),
                   "--save-learner", str(out))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "METAKIT_DEVICE": "cpu"}
    proc = subprocess.run([sys.executable, "-m", "metakit", *argv], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"data_root='{missing}'" in proc.stderr and "imagenet/train/<wnid>/*.JPEG" in proc.stderr
    assert "Traceback" not in proc.stderr and sorted(p.name for p in tmp_path.iterdir()) == []
