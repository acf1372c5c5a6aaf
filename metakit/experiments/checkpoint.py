"""Checkpoints that restore a run exactly, loaded with ``weights_only=True``.

A run's checkpoint (`metakit.experiments.run.snapshot_run`) holds the state dicts of its
parts: net, optimiser, schedule, the method's own `Method.state_dict` (learner, meta-optimiser,
`MetaStep` counter and whatever else the method declares), the batch generators, and the
global RNG states (`rng_state`). Files are written atomically (`save_checkpoint`) and read
without unpickling code (`load_checkpoint`), then checked by content (`check_checkpoint`: format,
counters, history) before anything is restored; `on_checkpoint` lets a caller watch the writes.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from metakit.io import atomic_torch_save, not_a_file

CHECKPOINT_FORMAT = 2  # 2: the method's state is its Method.state_dict() (1 scraped its attributes)
RUN_KEYS = ("config", "key", "epochs_done", "history", "net", "optimizer", "schedule", "method", "train_generator",
            "meta", "rng")
_LISTENERS: list[Callable[[Path, dict], None]] = []


@contextlib.contextmanager
def on_checkpoint(callback: Callable[[Path, dict], None]) -> Iterator[None]:
    """Call ``callback(path, state)`` after every checkpoint written inside the block.

    Use it to watch a long run (report progress, copy checkpoints off the machine) or, in
    tests, to kill a run right after its n-th checkpoint. The callback runs after the file is
    complete on disk.

    Args:
        callback: called with the checkpoint's path and the state just written.

    Example:
        >>> import tempfile
        >>> seen = []
        >>> with on_checkpoint(lambda path, state: seen.append(state["epoch"])):
        ...     _ = save_checkpoint(Path(tempfile.mkdtemp()) / "c.pt", {"epoch": 2})
        >>> seen
        [2]
    """
    _LISTENERS.append(callback)
    try:
        yield
    finally:
        _LISTENERS.remove(callback)


def rng_state() -> dict:
    """The global torch and numpy RNG states (numpy's as tensors, so it loads weights-only).

    Example:
        >>> sorted(rng_state())
        ['numpy_key', 'numpy_pos', 'torch']
    """
    _, key, pos, *_ = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy_key": torch.from_numpy(key.astype(np.int64)),
            "numpy_pos": int(pos)}


def set_rng_state(state: dict) -> None:
    """Inverse of `rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_key"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a checkpoint atomically (write, then rename).

    Example:
        >>> import tempfile
        >>> p = save_checkpoint(Path(tempfile.mkdtemp()) / "c.pt", {"epoch": 1})
        >>> load_checkpoint(p)["epoch"]
        1
    """
    path = atomic_torch_save(state, path)
    for callback in list(_LISTENERS):
        callback(path, state)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint safely (``weights_only=True``), with a clear error if it is unreadable.

    Only a plain file is opened: a pipe (FIFO) or a device at the path would block or never end.

    Example:
        >>> load_checkpoint("/dev/null")
        Traceback (most recent call last):
        ...
        ValueError: checkpoint '/dev/null' is not a plain file (a device, pipe or socket); move it aside, or drop --resume to start fresh.
    """
    path = Path(path)
    problem = not_a_file(path)
    if problem:
        raise ValueError(f"checkpoint '{path}' {problem}; move it aside, or drop --resume to start fresh.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint '{path}' does not exist; run without resume=True to start "
                                f"fresh.") from None
    except Exception as err:  # corrupted or not a metakit checkpoint
        raise ValueError(f"checkpoint '{path}' cannot be loaded safely ({type(err).__name__}: "
                         f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}); it is damaged or not a "
                         f"checkpoint: move it aside, or drop --resume to start fresh.") from None


def check_checkpoint(state: Any, path: str | Path, epochs: int) -> dict:
    """Refuse a run checkpoint whose content cannot continue a run of ``epochs`` epochs; returns it.

    One line names the file, what is wrong and the fix: a newer format asks for a newer metakit (the
    file is fine), an older one for the version that wrote it, a damaged one (``epochs_done`` outside
    [0, epochs], a history that does not count 1..epochs_done) to be moved aside.

    Example:
        >>> check_checkpoint({"format": CHECKPOINT_FORMAT + 1}, "c.pt", 3)
        Traceback (most recent call last):
        ...
        ValueError: checkpoint 'c.pt' was written by a newer metakit (checkpoint format 3; this one reads 2); upgrade metakit to resume it, or drop --resume to start fresh.
    """
    where = f"checkpoint '{path}'"
    damaged = "move it aside (or delete it), or drop --resume to start fresh"
    if not isinstance(state, dict):
        raise ValueError(f"{where} holds a {type(state).__name__}, not a metakit run checkpoint; {damaged}.")
    found = state.get("format")
    if isinstance(found, int) and not isinstance(found, bool) and found > CHECKPOINT_FORMAT:
        raise ValueError(f"{where} was written by a newer metakit (checkpoint format {found}; this one reads "
                         f"{CHECKPOINT_FORMAT}); upgrade metakit to resume it, or drop --resume to start fresh.")
    if found != CHECKPOINT_FORMAT:
        older = isinstance(found, int) and not isinstance(found, bool) and 1 <= found < CHECKPOINT_FORMAT
        raise ValueError(f"{where} is not a metakit run checkpoint of format {CHECKPOINT_FORMAT} (format={found!r})"
                         + ("; resume it with the metakit that wrote it, or drop --resume to start fresh."
                            if older else f"; {damaged}."))
    missing = [k for k in RUN_KEYS if k not in state]
    if missing:
        raise ValueError(f"{where} lacks {missing}: it is damaged; {damaged}.")
    done, history = state["epochs_done"], state["history"]
    if isinstance(done, bool) or not isinstance(done, int) or not 0 <= done <= epochs:
        raise ValueError(f"{where} says epochs_done={done!r}, outside [0, {epochs}] for this run of {epochs} epochs: "
                         f"it is damaged; {damaged}.")
    counted = [row.get("epoch") if isinstance(row, dict) else None for row in history] \
        if isinstance(history, list) else None
    if counted != list(range(1, done + 1)):
        shown = "not a list" if counted is None else f"epochs {counted[:5]}{'...' if len(counted) > 5 else ''}"
        raise ValueError(f"{where} has a history ({shown}) that does not count epochs 1..{done} of its "
                         f"epochs_done={done}: it is damaged; {damaged}.")
    return state
