"""Every classifier by name: ``build_model("resnet32", 10)``, ``build_model("resnet1d", 10, (1, 40))``.

To add a model, write its `NamedStages` class (in `nets` for images, `nets1d` for signals) and
add a branch and its name to `MODELS` here.
"""
from __future__ import annotations

import math

from torch import nn

from metakit.models.imagenet import ResNet50
from metakit.models.mobile import MobileNetV2Cifar, ShuffleNetV2Cifar
from metakit.models.nets import MLP, CifarResNet, DigitsCNN, NamedStages, ResNet18, WideResNet
from metakit.models.nets1d import CNN1D, ResNet1D

MODELS = ("resnet32", "resnet18", "wrn28_10", "digits_cnn", "mlp", "resnet1d", "cnn1d", "mobilenetv2", "shufflenetv2",
          "resnet50")
SIGNAL_MODELS = ("resnet1d", "cnn1d")  # take (C, L) signals; the MLP takes any shape, the rest images
WIDTH_MODELS = ("resnet1d", "cnn1d", "mlp")  # take a width: first-stage channels (32), the MLP's hidden units (128)


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
    channels = input_shape[0]
    one_d = {"resnet1d": ResNet1D, "cnn1d": CNN1D}
    if width is not None and name not in WIDTH_MODELS:
        raise ValueError(f"width={width} but model={name!r} has a fixed width; use one of {WIDTH_MODELS} or "
                         f"width=None.")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ValueError(f"width={width!r} must be a positive int, e.g. 64.")
    sized = {} if width is None else {"hidden" if name == "mlp" else "width": width}
    if name != "mlp" and name in MODELS:
        dims = 1 if name in SIGNAL_MODELS else 2
        if len(input_shape) != dims + 1:
            kind = "(C, L) signals" if dims == 1 else "(C, H, W) images"
            raise ValueError(f"model={name!r} takes {kind} but input_shape={tuple(input_shape)}; use a model for "
                             f"this data (MNIST-1D: resnet1d, cnn1d or mlp; images: {[m for m in MODELS if m not in SIGNAL_MODELS]}).")
    if name == "resnet32":
        return CifarResNet(32, num_classes, channels)
    if name == "resnet18":
        return ResNet18(num_classes, channels)
    if name == "wrn28_10":
        return WideResNet(28, 10, num_classes, channels)
    if name == "mobilenetv2":
        return MobileNetV2Cifar(num_classes, channels)
    if name == "shufflenetv2":
        return ShuffleNetV2Cifar(num_classes, channels)
    if name == "resnet50":
        return ResNet50(num_classes, channels)
    if name == "digits_cnn":
        return DigitsCNN(num_classes, channels)
    if name == "mlp":
        return MLP(num_classes, math.prod(input_shape), **sized)
    if name in one_d:
        return one_d[name](num_classes, channels, **sized)
    raise ValueError(f"model={name!r} is unknown; use one of {MODELS}.")


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters of ``net``.

    Example:
        >>> count_parameters(build_model("digits_cnn", 10, (1, 8, 8)))
        19562
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
