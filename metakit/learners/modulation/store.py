"""Save a learned modulator with its metadata, and load it into another classifier.

The file is a plain ``torch.save`` dict read back with ``torch.load(weights_only=True)``:
``{"state_dict": {...}, "meta": {"version", "model", "kind", "where", "channels", "hidden"}}``.
Loading refuses a classifier of another model or with other channel counts, with a clear error,
before touching the net.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from metakit.io import atomic_torch_save
from metakit.learners.modulation.attach import Modulation, attach, infer_channels, resolve_where

FORMAT_VERSION = 1


def save_modulator(modulation: Modulation, path: str | Path, *, model: str) -> Path:
    """Write ``modulation``'s weights and metadata to ``path`` (atomically).

    Args:
        modulation: the learned `Modulation` (``net.modulation`` or ``result.method.modulation``).
        path: the file to write, e.g. ``runs/mfm_net_digits.pt``.
        model: the classifier's model name (``Config.model``), checked when loading.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> p = save_modulator(Modulation(["block1"], [4], "net", 8), Path(tempfile.mkdtemp()) / "m.pt",
        ...                    model="digits_cnn")
        >>> read_metadata(p)["channels"]
        [4]
    """
    if not isinstance(modulation, Modulation):
        raise TypeError(f"modulation={type(modulation).__name__} must be a metakit.learners.modulation.Modulation.")
    if not isinstance(model, str) or not model:
        raise ValueError(f"model={model!r} must be the classifier's model name, e.g. 'digits_cnn'.")
    meta = {"version": FORMAT_VERSION, "model": model, "kind": modulation.kind, "where": list(modulation.names),
            "channels": list(modulation.channels), "hidden": modulation.hidden}
    state = {k: v.detach().cpu().clone() for k, v in modulation.state_dict().items()}
    return atomic_torch_save({"state_dict": state, "meta": meta}, path)


def read_metadata(path: str | Path) -> dict:
    """The metadata dict of a saved modulator (version, model, kind, where, channels, hidden)."""
    return _read(path)["meta"]


def _read(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"modulator={str(path)!r} does not exist; save one with "
                                f"save_modulator(...) or result.method.save(path) after an mfm_net run.")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "meta" not in blob or "state_dict" not in blob:
        raise ValueError(f"modulator={str(path)!r} is not a metakit modulator file (no 'meta'/'state_dict').")
    if blob["meta"].get("version") != FORMAT_VERSION:
        raise ValueError(f"modulator={str(path)!r} has format version {blob['meta'].get('version')}; "
                         f"this metakit reads version {FORMAT_VERSION}. Re-save it with this version.")
    return blob


def load_modulator(path: str | Path, net: nn.Module, *, model: str | None = None) -> Modulation:
    """Load a saved modulator and attach it to ``net``; refuse a mismatched classifier.

    Args:
        path: a file written by `save_modulator`.
        net: the fresh classifier to modulate (no modulation attached yet).
        model: ``net``'s model name; it must equal the saved one (None skips this check,
            the channel check still runs).

    Returns:
        The attached `Modulation` holding the saved weights (trainable; freeze it at will).

    Example:
        >>> import tempfile
        >>> from metakit.models import build_model
        >>> a, b = build_model("digits_cnn", 10, 1, 8), build_model("digits_cnn", 10, 1, 8)
        >>> p = save_modulator(attach(a, "blocks", kind="net"), Path(tempfile.mkdtemp()) / "m.pt", model="digits_cnn")
        >>> load_modulator(p, b, model="digits_cnn").names
        ['block1', 'block2']
    """
    blob = _read(path)
    meta = blob["meta"]
    if model is not None and model != meta["model"]:
        raise ValueError(f"modulator={str(path)!r} was learned on model={meta['model']!r} but this classifier is "
                         f"model={model!r}; transfer it to a {meta['model']!r} or learn a new one.")
    try:
        names = resolve_where(net, meta["where"])
    except ValueError as err:
        raise ValueError(f"modulator={str(path)!r} modulates {meta['where']} which this "
                         f"{type(net).__name__} does not have ({err}).") from None
    channels = [infer_channels(net, n) for n in names]
    if channels != meta["channels"]:
        raise ValueError(f"modulator={str(path)!r} expects channels {meta['channels']} at {names} but this "
                         f"{type(net).__name__} has {channels}; use the same architecture it was learned on.")
    modulation = Modulation(meta["where"], meta["channels"], meta["kind"], meta["hidden"])
    modulation.load_state_dict(blob["state_dict"])
    device = next(net.parameters()).device
    return attach(net, meta["where"], modulation=modulation.to(device))
