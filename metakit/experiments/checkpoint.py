"""Checkpoints that restore a run exactly, loaded with ``weights_only=True``.

A run's checkpoint (`metakit.experiments.run.snapshot_run`) holds the state dicts of its
parts: net, optimiser, schedule, the method's own `Method.state_dict` (learner, meta-optimiser,
`MetaStep` counter and whatever else the method declares), the batch generators, and the
global RNG states (`rng_state`). Files are written atomically (`save_checkpoint`) and read
without unpickling code (`load_checkpoint`); `on_checkpoint` lets a caller watch the writes.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from metakit.io import atomic_torch_save

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
    """Load a checkpoint safely (``weights_only=True``), with a clear error if it is unreadable."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint '{path}' does not exist; run without resume=True to start fresh.") from None
    except Exception as err:  # corrupted or not a metakit checkpoint
        raise ValueError(f"checkpoint '{path}' cannot be loaded safely ({type(err).__name__}: {err}); delete it "
                         f"to start fresh.") from None
