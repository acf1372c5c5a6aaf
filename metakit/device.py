"""Pick the compute device once, for the whole kit.

`device()` prefers CUDA, then Apple's MPS, then the CPU. The environment variable
``METAKIT_DEVICE`` (or the ``prefer`` argument) overrides the choice, e.g. to force the CPU on a
machine that has a GPU.
"""
from __future__ import annotations

import os

import torch

_KNOWN = ("cuda", "mps", "cpu")


def device(prefer: str | None = None) -> torch.device:
    """The device metakit runs on.

    Args:
        prefer: "cuda", "cuda:1", "mps" or "cpu"; None reads ``METAKIT_DEVICE`` and otherwise picks
            the fastest available (CUDA, then MPS, then CPU). Use it to pin a run to the CPU
            for a deterministic comparison.

    Returns:
        The chosen ``torch.device``.

    Example:
        >>> from metakit import device
        >>> device("cpu")
        device(type='cpu')
    """
    choice = prefer if prefer is not None else os.environ.get("METAKIT_DEVICE") or None
    if choice is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = str(choice).split(":")[0]
    if kind not in _KNOWN:
        raise ValueError(f"device={choice!r} is not a device; use one of {', '.join(_KNOWN)} (e.g. 'cuda:0').")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={choice!r} but CUDA is not available here; use 'cpu' or leave it unset.")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={choice!r} but MPS is not available here; use 'cpu' or leave it unset.")
    return torch.device(choice)
