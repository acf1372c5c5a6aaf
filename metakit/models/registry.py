"""Every classifier by name: ``build_model("resnet32", 10)``, ``build_model("resnet1d", 10, (1, 40))``.

A model file registers its builders with `register_model`, next to the class (torchvision's
``register_model`` pattern); `metakit.models` imports every model file, so adding a model is one
new file and one import line there. Copy `metakit.models.nets1d` (a class, then its builder).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from torch import nn

if TYPE_CHECKING:
    from metakit.models.nets import NamedStages

INPUTS = ("images", "signals", "any")   # (C, H, W) images, (C, L) signals, or any shape (flattened)


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder: ``build(num_classes, input_shape, **{width: w})`` returns the model."""

    build: Callable[..., NamedStages]
    inputs: str
    width: str | None   # the builder's keyword for a width (e.g. "width", "hidden"); None: a fixed width


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, inputs: str = "images", width: str | None = None) -> Callable:
    """Function decorator: register ``build(num_classes, input_shape[, <width>=w])`` as ``build_model(name, ...)``.

    Args:
        name: the model's name (``Config.model``).
        inputs: what it reads: "images" (C, H, W), "signals" (C, L) or "any" (flattened).
        width: the keyword under which the builder takes ``build_model(..., width=w)``; None: the
            model has a fixed width and refuses one.

    Example:
        >>> @register_model("tiny_mlp", inputs="any", width="hidden")
        ... def tiny_mlp(num_classes, input_shape, hidden=4):
        ...     from metakit.models.nets import MLP
        ...     import math
        ...     return MLP(num_classes, math.prod(input_shape), hidden)
        >>> build_model("tiny_mlp", 3, (2, 5), width=6).fc.in_features
        6
        >>> del _REGISTRY["tiny_mlp"]
    """
    if inputs not in INPUTS:
        raise ValueError(f"inputs={inputs!r} is unknown; use one of {INPUTS}.")

    def add(build: Callable[..., NamedStages]) -> Callable[..., NamedStages]:
        if name in _REGISTRY:
            raise ValueError(f"model={name!r} is registered twice (by {_REGISTRY[name].build.__module__} and "
                             f"{build.__module__}); give the new one another name.")
        _REGISTRY[name] = ModelEntry(build, inputs, width)
        return build
    return add


def model_names(inputs: str | None = None, *, sized: bool = False) -> tuple[str, ...]:
    """The registered names, in registration order; only those that read ``inputs``, or take a width.

    Example:
        >>> model_names("signals"), model_names(sized=True)
        (('resnet1d', 'cnn1d'), ('mlp', 'resnet1d', 'cnn1d'))
    """
    return tuple(n for n, e in _REGISTRY.items()
                 if (inputs is None or e.inputs == inputs) and (not sized or e.width is not None))


def __getattr__(name: str) -> Any:
    """``MODELS``, ``SIGNAL_MODELS``, ``WIDTH_MODELS``: the registered names, read when asked."""
    lists = {"MODELS": model_names, "SIGNAL_MODELS": lambda: model_names("signals"),
             "WIDTH_MODELS": lambda: model_names(sized=True)}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_model(name: str) -> ModelEntry:
    """The entry registered as ``name`` (its builder, inputs, width keyword), or a clear error listing the names.

    Example:
        >>> get_model("cnn1d").inputs, get_model("cnn1d").build(10, (1, 40)).fc.in_features
        ('signals', 32)
    """
    if name not in _REGISTRY:
        raise ValueError(f"model={name!r} is unknown; use one of {model_names()}.")
    return _REGISTRY[name]


def build_model(name: str, num_classes: int, input_shape: tuple[int, ...] = (3, 32, 32),
                width: int | None = None) -> NamedStages:
    """Build a classifier by name.

    Args:
        name: one of ``MODELS``; ``resnet1d`` and ``cnn1d`` take (C, L) signals, the MLP any shape,
            the rest (C, H, W) images: ``mobilenetv2`` and ``shufflenetv2`` are the CIFAR (32x32)
            variants of `metakit.models.mobile`, ``resnet50`` is torchvision's ImageNet model.
        num_classes: output classes.
        input_shape: one input without the batch axis: (1, 8, 8) for digits, (1, 40) for MNIST-1D.
        width: the first stage's channels (``resnet1d``, ``cnn1d``; default 32) or the MLP's hidden
            units (default 128); the models of fixed width refuse it. None: the model's own.

    Example:
        >>> net = build_model("resnet32", 10)
        >>> sum(p.numel() for p in net.parameters())
        464154
        >>> import torch
        >>> build_model("resnet1d", 10, (1, 40))(torch.zeros(2, 1, 40)).shape
        torch.Size([2, 10])
        >>> build_model("resnet1d", 10, (1, 40), width=16).fc.in_features
        64
        >>> count_parameters(build_model("shufflenetv2", 10))       # torchvision's shufflenet_v2_x1_0 count
        1263854
    """
    if width is not None and (name not in _REGISTRY or _REGISTRY[name].width is None):   # checked before the name
        raise ValueError(f"width={width} but model={name!r} has a fixed width; use one of {model_names(sized=True)} "
                         f"or width=None.")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ValueError(f"width={width!r} must be a positive int, e.g. 64.")
    entry = get_model(name)
    if entry.inputs != "any":
        dims = 1 if entry.inputs == "signals" else 2
        if len(input_shape) != dims + 1:
            kind = "(C, L) signals" if dims == 1 else "(C, H, W) images"
            signals, flat = ", ".join(model_names("signals")), " or ".join(model_names("any"))
            images = [m for m in model_names() if m not in model_names("signals")]
            raise ValueError(f"model={name!r} takes {kind} but input_shape={tuple(input_shape)}; use a model for "
                             f"this data (MNIST-1D: {signals} or {flat}; images: {images}).")
    return entry.build(num_classes, tuple(input_shape), **({} if width is None else {entry.width: width}))


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters of ``net``.

    Example:
        >>> count_parameters(build_model("digits_cnn", 10, (1, 8, 8)))
        19562
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
