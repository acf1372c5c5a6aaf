"""Save a learned modulator with its metadata, and load it into another classifier.

The file is the learner format of `metakit.learners.store` (kind "modulation"; constructor
arguments ``names``, ``channels``, ``kind``, ``hidden``; metadata ``model``), read back with
``torch.load(weights_only=True)``. Loading refuses a classifier of another model, or with other
channel counts unless the modulator is width-free (kind "shared"), with a clear error, before
touching the net.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from metakit.learners.modulation.attach import Modulation, attach, infer_channels, resolve_where
from metakit.learners.modulation.layers import WIDTH_FREE_KINDS
from metakit.learners.store import load_learner, read_header, register_kind, save_learner

register_kind("modulation", Modulation, lambda m: {"names": list(m.names), "channels": list(m.channels),
                                                   "kind": m.kind, "hidden": m.hidden}, "an MFM modulation")


def save_modulator(modulation: Modulation, path: str | Path, *, model: str, config: Any = None) -> Path:
    """Write ``modulation``'s weights and metadata to ``path`` (atomically).

    Args:
        modulation: the learned `Modulation` (``net.modulation`` or ``result.method.modulation``).
        path: the file to write, e.g. ``runs/mfm_net_digits.pt``.
        model: the classifier's model name (``Config.model``), checked when loading.
        config: the run's resolved `Config` that learned it (None when unknown).

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
    return save_learner(modulation, path, config=config, model=model)


def read_metadata(path: str | Path) -> dict:
    """The metadata of a saved modulator: version, model, kind, where, channels, hidden.

    Example:
        >>> import tempfile
        >>> p = save_modulator(Modulation(["fc"], [4]), Path(tempfile.mkdtemp()) / "m.pt", model="mlp")
        >>> read_metadata(p)["where"], read_metadata(p)["model"]
        (['fc'], 'mlp')
    """
    return _metadata(read_header(path, "modulation", argument="modulator"))


def _metadata(header: dict) -> dict:
    init = header["init"]
    return {"version": header["version"], "model": header["metadata"].get("model"), "kind": init["kind"],
            "where": init["names"], "channels": init["channels"], "hidden": init["hidden"]}


def load_modulator(path: str | Path, net: nn.Module, *, model: str | None = None) -> Modulation:
    """Load a saved modulator and attach it to ``net``; refuse a mismatched classifier.

    Args:
        path: a file written by `save_modulator`.
        net: the fresh classifier to modulate (no modulation attached yet).
        model: ``net``'s model name; it must equal the saved one (None skips this check,
            the channel check still runs).

    Returns:
        The attached `Modulation` holding the saved weights (trainable; freeze it at will). A
        modulator of kind "shared" also fits a net whose modulated layers have other widths.

    Example:
        >>> import tempfile
        >>> from metakit.models import build_model
        >>> a, b = build_model("digits_cnn", 10, (1, 8, 8)), build_model("digits_cnn", 10, (1, 8, 8))
        >>> p = save_modulator(attach(a, "blocks", kind="net"), Path(tempfile.mkdtemp()) / "m.pt", model="digits_cnn")
        >>> load_modulator(p, b, model="digits_cnn").names
        ['block1', 'block2']
    """
    saved, header = load_learner(path, "modulation", argument="modulator")
    meta = _metadata(header)
    if model is not None and model != meta["model"]:
        raise ValueError(f"modulator={str(path)!r} was learned on model={meta['model']!r} but this classifier is "
                         f"model={model!r}; transfer it to a {meta['model']!r} or learn a new one.")
    try:
        names = resolve_where(net, meta["where"])
    except ValueError as err:
        raise ValueError(f"modulator={str(path)!r} modulates {meta['where']} which this "
                         f"{type(net).__name__} does not have ({err}).") from None
    channels = [infer_channels(net, n) for n in names]
    if channels != meta["channels"] and meta["kind"] in WIDTH_FREE_KINDS:   # the same weights at the new widths
        rebuilt = Modulation(meta["where"], channels, meta["kind"], meta["hidden"])
        rebuilt.load_state_dict(saved.state_dict())
        saved = rebuilt
    elif channels != meta["channels"]:
        raise ValueError(f"modulator={str(path)!r} expects channels {meta['channels']} at {names} but this "
                         f"{type(net).__name__} has {channels}; use the same architecture it was learned on "
                         f"(or learn a width-free one: method='mfm_net' with shared=True).")
    device = next(net.parameters()).device
    return attach(net, meta["where"], modulation=saved.to(device))
