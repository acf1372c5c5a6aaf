"""The MLR-SNet authors' released LR-net snapshots, loaded into metakit's learner format.

The official repository (xjtushujun/MLR-SNet, MIT) releases the LR net after epochs 1, 100 and
200 of meta-training ResNet-18 on CIFAR-10 (``meta-test/mlr_snet {1,100,200}.pth``). They are
state dicts of its meta-test network: one cell (`metakit.learners.lr_cells.OfficialTestCell`,
keys ``layer1.fc_{i2h,h2h}.{0,2}.*``) and a linear head (``layer3.*``), reading the raw loss.
`load_official` maps them onto `MLRSNet(cell="official_test", normalise=False)` snapshots, so the
staged meta-test (`metakit.schedules.learned.StagedSchedule`) runs the authors' own schedule on
any task; `import_official` saves them with their provenance (file names and SHA-256s).

Example:
    >>> import torch
    >>> state = {k: torch.zeros(shape) for k, shape in official_keys(50).items()}
    >>> snaps = load_official([state, state, state])
    >>> snaps.epochs, snaps.last.cell_kind, round(float(snaps.last.response(torch.tensor([2.0]))[0]), 3)
    ((1, 100, 200), 'official_test', 0.5)
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Mapping, Sequence

import torch

from metakit.learners.lr_net import LRSnapshots, MLRSNet, save_schedule

EPOCHS = (1, 100, 200)   # the meta-training epochs of the released files
FILES = ("mlr_snet 1.pth", "mlr_snet 100.pth", "mlr_snet 200.pth")   # their names in the official repository


def official_keys(hidden: int = 50) -> dict[str, torch.Size]:
    """The key layout of an official snapshot → its shape (what `load_official` checks a file against)."""
    net = MLRSNet(10, hidden, 1.0, normalise=False, cell="official_test")
    return {_theirs(k): v.shape for k, v in net.state_dict().items() if k.startswith(("cell.", "head."))}


def _theirs(key: str) -> str:
    """metakit's key → the official one: ``cell.*`` is ``layer1.*``, ``head.*`` is ``layer3.*``."""
    return key.replace("cell.", "layer1.", 1) if key.startswith("cell.") else key.replace("head.", "layer3.", 1)


def load_official(states: Sequence[Mapping[str, torch.Tensor]], epochs: Sequence[int] = EPOCHS,
                  num_classes: int = 10) -> LRSnapshots:
    """`LRSnapshots` from the official state dicts (one a snapshot, ``epochs`` in order).

    Args:
        states: the loaded files (``torch.load(path, map_location="cpu", weights_only=True)``).
        epochs: the meta-training epoch of each.
        num_classes: C of the source task (CIFAR-10: 10); the staged schedule re-sets it for a new task.
    """
    if len(states) != len(epochs):
        raise ValueError(f"states holds {len(states)} snapshots but epochs={list(epochs)}; give one epoch a snapshot.")
    hidden = int(states[0]["layer3.weight"].shape[1]) if "layer3.weight" in states[0] else 50
    want = official_keys(hidden)
    nets = []
    for epoch, state in zip(epochs, states):
        got = {k: tuple(v.shape) for k, v in state.items()}
        if got != {k: tuple(v) for k, v in want.items()}:
            missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
            raise ValueError(f"snapshot of epoch {epoch} is not an official MLR-SNet meta-test state dict (missing "
                             f"{missing[:3]}, unexpected {extra[:3]}, or other shapes); pass the files "
                             f"{list(FILES)} of xjtushujun/MLR-SNet.")
        net = MLRSNet(num_classes, hidden, 1.0, normalise=False, cell="official_test")
        mine = net.state_dict()
        with torch.no_grad():
            for key in mine:
                if key.startswith(("cell.", "head.")):
                    mine[key].copy_(state[_theirs(key)].float())
        if not all(torch.isfinite(t).all() for t in mine.values()):
            raise ValueError(f"snapshot of epoch {epoch} holds NaN or inf weights; it is not a usable LR net.")
        nets.append(net)
    return LRSnapshots.of(nets, epochs)


def sha256(path: str | Path) -> str:
    """The file's SHA-256 (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def import_official(paths: Sequence[str | Path], out: str | Path, epochs: Sequence[int] = EPOCHS) -> Path:
    """Load the official files and save them as a metakit schedule file, their provenance recorded."""
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"snapshot {str(p)!r} is not there; get {list(FILES)} from xjtushujun/MLR-SNet "
                                    f"(meta-test/).")
    states = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
    snapshots = load_official(states, epochs)
    return save_schedule(snapshots, out, source="the MLR-SNet authors' released snapshots (xjtushujun/MLR-SNet, "
                         "meta-test/, MIT licence)", files=[Path(p).name for p in paths],
                         sha256=[sha256(p) for p in paths], dataset="cifar10", model="resnet18", epochs=list(epochs))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m metakit.learners.official --dir ../shared/mlrsnet_official --out runs/official_mlrsnet.pt``."""
    parser = argparse.ArgumentParser(prog="python -m metakit.learners.official", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="folder of the three snapshot files")
    parser.add_argument("--names", nargs=3, default=["snapshot_epoch001.pth", "snapshot_epoch100.pth",
                                                      "snapshot_epoch200.pth"], help="their names, epochs 1/100/200")
    parser.add_argument("--out", required=True, help="the schedule file to write (keep it out of the repository)")
    args = parser.parse_args(argv)
    try:
        path = import_official([Path(args.dir) / n for n in args.names], args.out)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
