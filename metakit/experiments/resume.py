"""Resuming a run: the key of what changes its numbers, and the checkpoint a ``--resume`` continues from.

A checkpoint is named by `config_key`, the hash of `run_identity` (the config as the validator sees
it, paths made absolute, the device left out), so ``--device cpu`` or ``data/`` for ``./data`` find
the same file. `find_checkpoint` returns it, or says in one line why there is none: the folder is
empty, or its nearest checkpoint differs in the fields it names.

Example:
    >>> config_key(Config(profile="smoke", device="cpu").resolve()) == config_key(Config(profile="smoke").resolve())
    True
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path

import torch

from metakit.data.source import default_root
from metakit.experiments.config import Config
from metakit.io import check_writable_file
from metakit.options import require


def run_identity(config: Config) -> dict:
    """What a run's numbers depend on, as the validator sees it: `Config.canonical` (numbers by their declared
    type, the method's options parsed, ``progress`` left out) with the paths made absolute (``./data``,
    ``data/`` and None with ``$METAKIT_DATA`` unset are one folder) and the device left out (it changes no
    number on CPU; resuming a GPU run on another device is the user's call).

    Example:
        >>> a = run_identity(Config(profile="smoke", device="cpu", data_root="./data"))
        >>> a == run_identity(Config(profile="smoke", data_root="data/"))
        True
    """
    values = config.canonical()
    values.pop("device", None)
    root = values.get("data_root")
    values["data_root"] = str((default_root() if root is None else Path(root).expanduser()).resolve())
    if values.get("split_file"):
        values["split_file"] = str(Path(values["split_file"]).expanduser().resolve())
    return values


def config_key(config: Config) -> str:
    """A short hash of everything that changes a run's numbers (`run_identity`: not ``progress``, not ``device``).

    Example:
        >>> config_key(Config(profile="smoke").resolve()) == config_key(Config(profile="smoke", progress=False).resolve())
        True
    """
    return identity_key(run_identity(config))


def identity_key(identity: dict) -> str:
    """The 16-hex-digit hash of a `run_identity`."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_checkpoint_args(checkpoint_dir: str | Path | None, resume: bool) -> None:
    """Refuse ``resume`` without a folder, and an empty folder name (``''`` would silently mean "here")."""
    if isinstance(checkpoint_dir, str):
        require("checkpoint_dir", checkpoint_dir, str, nullable=True, nonempty=True, example="'runs/checkpoints'")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir=...: the folder the killed run wrote its checkpoints to.")


def check_checkpoint_path(path: str | Path | None) -> None:
    """Refuse, before any data is read, a checkpoint file the run could not write after its first epoch
    (a folder or a dangling symlink of that name, a folder on the way that is a file, /proc, ...).

    Example:
        >>> import tempfile
        >>> check_checkpoint_path(tempfile.mkdtemp())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: checkpoint '/...' is a folder; move it aside, or pass another --checkpoint-dir.
    """
    if path is not None:
        check_writable_file(path, "checkpoint", fix="move it aside, or pass another --checkpoint-dir.")


def no_checkpoint_message(folder: str | Path) -> str:
    """The refusal of ``--resume`` when ``folder`` is missing or holds no checkpoint."""
    return f"--resume but {folder} holds no checkpoint; drop --resume to start a new run."


def _stored_identity(path: Path) -> dict | None:
    """The `run_identity` a checkpoint file was written for; None if it is not a readable run checkpoint."""
    state = None
    for mmap in (True, False):   # mmap: the config is read without reading the weights
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            break
        except Exception:  # noqa: BLE001 — not a zip checkpoint / not a checkpoint at all
            continue
    return state_identity(state) if isinstance(state, dict) else None


def state_identity(state: dict) -> dict | None:
    """The `run_identity` of the config a checkpoint was written for: stored since the key left out the device
    and resolved the paths; rebuilt from its config for an older checkpoint. None if it cannot be."""
    if isinstance(state.get("identity"), dict):
        return state["identity"]
    if not isinstance(state.get("config"), dict):
        return None
    try:
        names = {f.name for f in dataclasses.fields(Config)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run_identity(Config(**{k: v for k, v in state["config"].items() if k in names}))
    except Exception:  # noqa: BLE001 — a config this version no longer accepts: not resumable either
        return None


def find_checkpoint(config: Config, checkpoint_dir: str | Path) -> Path:
    """The checkpoint to resume ``config`` from, or a one-line ValueError saying why there is none.

    The file named by `config_key` comes first; otherwise a file of the folder written for the same
    `run_identity` (e.g. under an older key) is taken. If the folder holds only checkpoints of other configs,
    the error names the nearest one and the fields that differ.
    """
    folder = Path(checkpoint_dir)
    path = folder / f"{config.method}-{config_key(config)}.pt"
    if os.path.lexists(path):     # e.g. a folder or a pipe of that name: refused by name, never opened blindly
        return path
    files = sorted((f for f in folder.glob("*.pt") if f.is_file()), key=lambda p: -p.stat().st_mtime) \
        if folder.is_dir() else []   # plain files only: a pipe would block the read
    if not files:
        raise ValueError(no_checkpoint_message(checkpoint_dir))
    ours, nearest = run_identity(config), None
    for file in files:
        theirs = _stored_identity(file)
        if theirs is None:
            continue
        if theirs == ours:
            return file
        diff = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
        if nearest is None or len(diff) < len(nearest[1]):
            nearest = (file, diff, theirs)
    if nearest is None:
        raise ValueError(f"no checkpoint for this config in {checkpoint_dir}: its {len(files)} .pt file(s) are not "
                         f"metakit run checkpoints; drop --resume to start fresh.")
    file, diff, theirs = nearest

    def show(value) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    fields = ", ".join(f"{k} ({show(theirs.get(k))} vs {show(ours.get(k))})" for k in diff)
    raise ValueError(f"no checkpoint for this config in {checkpoint_dir}: {file} differs in {fields}; pass the same "
                     f"flags, or drop --resume to start fresh.")
