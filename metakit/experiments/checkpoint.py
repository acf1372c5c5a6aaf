"""Checkpoints that restore a run exactly, loaded with ``weights_only=True``.

`capture` walks an object's attributes and keeps what a resumed run needs: module and optimiser
state dicts, tensors, numbers, strings, and (recursively) plain objects such as a `MetaStep`
or a `Schedule`. `restore` writes them back into a freshly built object of the same shape. A
method therefore needs no checkpoint code of its own as long as its state lives in such
attributes. RNG states (torch, numpy, every batch generator) are captured by `rng_state`.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from metakit.io import atomic_torch_save

_PLAIN = (int, float, bool, str, type(None))
_SKIP = (torch.device, torch.Generator)


def capture(obj: Any, depth: int = 3, seen: set[int] | None = None) -> Any:
    """A ``weights_only``-loadable snapshot of ``obj``'s state (None for what it cannot keep).

    Args:
        obj: the object to snapshot.
        depth: how many levels of plain objects to descend into.
        seen: ids of modules/optimisers already saved elsewhere in the checkpoint (kept once).

    Example:
        >>> class S: pass
        >>> s = S(); s.net = nn.Linear(1, 1); s.calls = 7
        >>> sorted(capture(s))
        ['calls', 'net']
    """
    seen = set() if seen is None else seen
    if isinstance(obj, (nn.Module, torch.optim.Optimizer)) or hasattr(obj, "state_dict") and callable(obj.state_dict):
        if id(obj) in seen:
            return None
        seen.add(id(obj))
        return {"__state_dict__": obj.state_dict()}
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, _PLAIN):
        return obj
    if isinstance(obj, (list, tuple)):
        return [capture(v, depth, seen) for v in obj]
    if isinstance(obj, dict):
        return {k: capture(v, depth, seen) for k, v in obj.items() if isinstance(k, str)}
    frozen = dataclasses.is_dataclass(obj) and obj.__dataclass_params__.frozen
    if depth > 0 and hasattr(obj, "__dict__") and not isinstance(obj, _SKIP) and not _is_code(obj) and not frozen:
        return {k: capture(v, depth - 1, seen) for k, v in vars(obj).items()
                if not k.startswith("__") and not _is_code(v)}
    return None


def _is_code(obj: Any) -> bool:
    """Functions, methods and classes: rebuilt by the code, never saved (callable objects are)."""
    return inspect.isroutine(obj) or inspect.isclass(obj) or isinstance(obj, functools.partial)


def restore(obj: Any, state: Any, depth: int = 3) -> Any:
    """Write a `capture` snapshot back into ``obj``; returns the restored value.

    Example:
        >>> class S: pass
        >>> a, b = S(), S(); a.calls, b.calls = 7, 0
        >>> _ = restore(b, capture(a)); b.calls
        7
    """
    if isinstance(state, dict) and "__state_dict__" in state:
        obj.load_state_dict(state["__state_dict__"])
        return obj
    if isinstance(obj, torch.Tensor) and isinstance(state, torch.Tensor):
        with torch.no_grad():
            if obj.shape == state.shape:
                obj.copy_(state)
                return obj
        return state.to(obj.device)
    if isinstance(obj, (list, tuple)) and isinstance(state, list) and len(obj) == len(state):
        values = [restore(o, s, depth) for o, s in zip(obj, state)]
        return type(obj)(values) if isinstance(obj, tuple) else values
    if isinstance(obj, dict) and isinstance(state, dict):
        for k, s in state.items():
            obj[k] = restore(obj.get(k), s, depth)
        return obj
    if depth > 0 and hasattr(obj, "__dict__") and isinstance(state, dict) and not isinstance(obj, _PLAIN):
        for k, s in state.items():
            if hasattr(obj, k):
                current = getattr(obj, k)
                new = restore(current, s, depth - 1)
                if new is not current and not isinstance(current, nn.Module):
                    setattr(obj, k, new)
        return obj
    if state is None and not isinstance(obj, _PLAIN):
        return obj
    return state


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
    return atomic_torch_save(state, path)


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
