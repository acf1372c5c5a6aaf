"""Attach modulation to a classifier without editing its code: forward hooks on named modules.

The modulation layers live in ``net.modulation`` (a `Modulation`, i.e. a registered submodule),
so ``net.named_parameters()`` and ``torch.func.functional_call`` see γ/β (or the modulator
network's weights) as ``modulation.layers.<key>.*``. Each hook holds its layer object and calls
it, so it reads whatever tensors functional_call has put in place: the substituted θ and the
live φ both reach the forward pass.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from metakit.meta import MetaLearner
from metakit.learners.modulation.layers import KINDS, NETWORK_KINDS
from metakit.options import require

WHERE = ("blocks", "stages", "blocks+fc", "stages+fc", "fc")
FC = "fc"  # the name that means "the input of net.fc" (the pooled feature)


def layer_key(name: str) -> str:
    """The ModuleDict key of a dotted module name ("layer1.0" → "layer1__0").

    Example:
        >>> layer_key("layer1.0")
        'layer1__0'
    """
    return name.replace(".", "__")


def check_where(where: Any, examples: list[str] | None = None) -> Any:
    """Refuse a ``where`` that is neither a name in `WHERE` nor a non-empty list of module names
    (before any net exists: the modules themselves are checked by `resolve_where`); returns it.

    Example:
        >>> check_where("blocks+fc")
        'blocks+fc'
    """
    example = examples or ["block2", FC]
    if isinstance(where, str):
        if where not in WHERE:
            raise ValueError(f"where={where!r} is unknown; use one of {WHERE} or a list of module names "
                             f"such as {example}.")
    elif not isinstance(where, (list, tuple)) or not where or not all(isinstance(n, str) and n for n in where):
        raise TypeError(f"where={where!r} must be one of {WHERE} or a non-empty list of module names, "
                        f"e.g. {example}.")
    return where


def resolve_where(net: nn.Module, where: str | Sequence[str]) -> list[str]:
    """The module names to modulate: "blocks", "stages", "...+fc", "fc", or an explicit list.

    "fc" means the input of ``net.fc`` (the pooled feature); any other name is the output of
    that module in ``net.named_modules()``.

    Example:
        >>> from metakit.models import build_model
        >>> resolve_where(build_model("digits_cnn", 10, (1, 8, 8)), "blocks+fc")
        ['block1', 'block2', 'fc']
    """
    check_where(where, examples=list(getattr(net, "block_names", []))[:2] + [FC])
    if isinstance(where, str):
        base, _, plus = where.partition("+")
        names = [] if base == FC else list(getattr(net, f"{base[:-1]}_names"))
        return names + ([FC] if FC in (base, plus) else [])
    modules = dict(net.named_modules())
    for name in where:
        if name != FC and (name not in modules or name.split(".")[0] == "modulation"):
            raise ValueError(f"where={list(where)!r}: {name!r} is not a module of {type(net).__name__}; "
                             f"use names from net.block_names={list(getattr(net, 'block_names', []))}, "
                             f"net.stage_names, or {FC!r} for the pooled feature.")
    if len(set(where)) != len(where):
        raise ValueError(f"where={list(where)!r} names a module twice; list each once.")
    return list(where)


def infer_channels(net: nn.Module, name: str) -> int:
    """The channel count C of a module's output (or of fc's input for "fc").

    Read from the module's last BatchNorm / conv / linear layer.

    Example:
        >>> from metakit.models import build_model
        >>> net = build_model("resnet32", 10)
        >>> infer_channels(net, "layer2.0"), infer_channels(net, "fc")
        (32, 64)
    """
    if name == FC:
        return int(net.fc.in_features)
    for module in reversed(list(net.get_submodule(name).modules())):
        for attr in ("num_features", "out_channels", "out_features"):
            if hasattr(module, attr):
                return int(getattr(module, attr))
    raise ValueError(f"cannot tell how many channels {name!r} outputs (no BatchNorm, conv or linear layer "
                     f"inside); modulate another module.")


class Modulation(MetaLearner):
    """The modulation layers of one net: φ of MFM, which enters the classifier's forward pass.

    Args:
        names: modulated module names (as `resolve_where` returns them).
        channels: C of each of them.
        kind: "film" (learned γ, β per channel), "net" (a `ModulatorNet` per layer) or "shared"
            (a `SharedModulatorNet` per layer: the same weights fit any width).
        hidden: hidden width of the modulator networks (kinds "net" and "shared").

    Example:
        >>> mod = Modulation(["block1"], [4])
        >>> [n for n, _ in mod.named_parameters()]
        ['layers.block1.gamma', 'layers.block1.beta']
    """

    enters = "forward"

    def __init__(self, names: Sequence[str], channels: Sequence[int], kind: str = "film", hidden: int = 32):
        super().__init__()
        require("kind", kind, object, choices=sorted(KINDS))
        self.names, self.channels, self.kind, self.hidden = list(names), [int(c) for c in channels], kind, int(hidden)
        make = (lambda c: KINDS[kind](c, hidden)) if kind in NETWORK_KINDS else KINDS[kind]
        self.layers = nn.ModuleDict({layer_key(n): make(c) for n, c in zip(self.names, self.channels)})
        self.handles: list = []
        self.enabled = True  # False: the hooks pass features through unchanged (the net computes as without φ)

    def layer(self, name: str) -> nn.Module:
        """The modulation layer of module ``name``."""
        return self.layers[layer_key(name)]


def _output_hook(layer: nn.Module, modulation: Modulation):
    def hook(module, inputs, output):
        return layer(output) if modulation.enabled else None   # None: the output is kept
    return hook


def _input_hook(layer: nn.Module, modulation: Modulation):
    def hook(module, inputs):
        return (layer(inputs[0]), *inputs[1:]) if modulation.enabled else None
    return hook


def attach(net: nn.Module, where: str | Sequence[str] = "blocks", *, kind: str = "film", hidden: int = 32,
           modulation: Modulation | None = None) -> Modulation:
    """Put modulation after the chosen modules of ``net`` (hooks; the model's code is unchanged).

    Args:
        net: a classifier with ``block_names`` / ``stage_names`` and a linear head ``fc``.
        where: "blocks" (after every residual/conv block), "stages", "blocks+fc" / "stages+fc"
            (also the pooled feature entering fc), "fc", or a list of module names.
        kind: "film" for mode 1 (γ, β per channel), "net" or "shared" for mode 2 (a modulator
            network; "shared" fits any width).
        hidden: the modulator networks' hidden width (kinds "net" and "shared").
        modulation: attach this existing `Modulation` (e.g. loaded from a file) instead of a
            new one; its names must exist in ``net`` with the same channel counts.

    Returns:
        The `Modulation`, also registered as ``net.modulation``.

    Example:
        >>> from metakit.models import build_model
        >>> net = build_model("digits_cnn", 10, (1, 8, 8)); x = torch.randn(2, 1, 8, 8)
        >>> before = net(x); mod = attach(net, "blocks+fc")
        >>> torch.equal(net(x), before), mod.names
        (True, ['block1', 'block2', 'fc'])
    """
    if hasattr(net, "modulation"):
        raise ValueError(f"{type(net).__name__} already has modulation at {net.modulation.names}; "
                         f"call detach(net) first.")
    names = resolve_where(net, where if modulation is None else modulation.names)
    channels = [infer_channels(net, n) for n in names]
    if modulation is None:
        like = next(net.parameters(), torch.zeros(()))
        modulation = Modulation(names, channels, kind, hidden).to(like.device, like.dtype)
    elif channels != modulation.channels:
        raise ValueError(f"the modulation expects channels {modulation.channels} at {names} but this "
                         f"{type(net).__name__} has {channels}; use a net of the same architecture.")
    for name in names:
        layer = modulation.layer(name)
        if name == FC:
            modulation.handles.append(net.fc.register_forward_pre_hook(_input_hook(layer, modulation)))
        else:
            modulation.handles.append(net.get_submodule(name).register_forward_hook(_output_hook(layer, modulation)))
    net.modulation = modulation
    return modulation


def detach(net: nn.Module) -> Modulation:
    """Remove the hooks and ``net.modulation``; ``net`` computes what it did before `attach`.

    Returns:
        The detached `Modulation` (its learned parameters are kept; attach it again at will).

    Example:
        >>> from metakit.models import build_model
        >>> net = build_model("digits_cnn", 10, (1, 8, 8)); _ = attach(net)
        >>> detach(net).names, hasattr(net, "modulation")
        (['block1', 'block2'], False)
    """
    if not hasattr(net, "modulation"):
        raise ValueError(f"{type(net).__name__} has no modulation to detach; attach(net, where) first.")
    modulation = net.modulation
    for handle in modulation.handles:
        handle.remove()
    modulation.handles.clear()
    del net.modulation
    return modulation


def modulation_of(net: nn.Module) -> Modulation:
    """``net.modulation``, with a clear error when none is attached."""
    if not isinstance(getattr(net, "modulation", None), Modulation):
        raise ValueError(f"{type(net).__name__} has no modulation; attach(net, where) first.")
    return net.modulation


def scale_shift_table(modulation: Modulation, net: nn.Module | None = None, x: torch.Tensor | None = None):
    """γ and β of every modulated layer, as a tidy DataFrame (layer, channel, gamma, beta).

    Kind "film" reads the parameters. Kind "net" makes per-sample γ/β, so it needs ``net``
    and a batch ``x``; the table holds their mean over the batch (the net runs in eval mode).

    Example:
        >>> scale_shift_table(Modulation(["block1"], [2])).gamma.tolist()
        [1.0, 1.0]
    """
    import pandas as pd

    inputs: dict[str, torch.Tensor] = {}
    if modulation.kind in NETWORK_KINDS:
        if net is None or x is None:
            raise ValueError("scale_shift_table of a modulator network needs net= and x= (a batch of images).")
        grab = [(modulation.layer(n).register_forward_pre_hook(lambda m, i, n=n: inputs.__setitem__(n, i[0])))
                for n in modulation.names]
        was_training = net.training
        try:
            with torch.no_grad():
                net.eval()
                net(x)
        finally:
            net.train(was_training)
            for handle in grab:
                handle.remove()
    rows = []
    with torch.no_grad():
        for name in modulation.names:
            layer = modulation.layer(name)
            h = inputs.get(name, torch.zeros(1, layer.channels, device=next(layer.parameters()).device))
            gamma, beta = (v.float().mean(0).cpu() for v in layer.scale_shift(h))
            rows += [{"layer": name, "channel": c, "gamma": float(g), "beta": float(b)}
                     for c, (g, b) in enumerate(zip(gamma, beta))]
    return pd.DataFrame(rows)
