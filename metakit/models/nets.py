"""Image classifiers: ResNet-32 (CIFAR), ResNet-18 (CIFAR variant), WRN-28-10, small nets for digits
(the 1D nets for MNIST-1D are in `metakit.models.nets1d`). Each class's builder below it registers
its name (`metakit.models.registry.register_model`), so `build_model` builds any by name.

Every model names the places where a feature modulator may attach:
``block_names`` (after every residual/conv block) and ``stage_names`` (after each stage), as
dotted module names of ``net.named_modules()``. The classifier head is ``net.fc``.

References: He et al. 2016 (ResNet; ResNet-32 with option-A shortcuts, ~0.46 M parameters);
Zagoruyko & Komodakis 2016 (Wide ResNet).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from metakit.models.registry import register_model


class NamedStages(nn.Module):
    """Base: records the module names after which features can be modulated."""

    block_names: list[str]
    stage_names: list[str]


class BasicBlock(nn.Module):
    """3x3-3x3 residual block; ``shortcut="A"`` pads channels (ResNet-32), "B" uses a 1x1 conv."""

    def __init__(self, cin: int, cout: int, stride: int, shortcut: str = "B"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = 0
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            if shortcut == "A":
                self.pad, self.stride = (cout - cin) // 2, stride
                self.shortcut = nn.Identity()
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = self.shortcut(x)
        if self.pad:  # option A: subsample and zero-pad the channels
            short = F.pad(short[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class CifarResNet(NamedStages):
    """ResNet for 32x32 inputs: 3 stages of ``n`` blocks (16, 32, 64 channels); depth 6n+2."""

    def __init__(self, depth: int = 32, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        widths, cin, stages = (16, 32, 64), 16, []
        for s, w in enumerate(widths):
            blocks = [BasicBlock(cin if b == 0 else w, w, (2 if s > 0 and b == 0 else 1), "A") for b in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = w
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, num_classes)
        self.stage_names = ["layer1", "layer2", "layer3"]
        self.block_names = [f"layer{s + 1}.{b}" for s in range(3) for b in range(n)]
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))                                   # (B, 16, H, W)
        out = self.layer3(self.layer2(self.layer1(out)))                        # (B, 64, H/4, W/4)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))                # (B, classes)


@register_model("resnet32")
def resnet32(num_classes: int, input_shape: tuple[int, ...]) -> CifarResNet:
    """ResNet-32 (option-A shortcuts) for (C, H, W) images.

    Example:
        >>> resnet32(10, (1, 8, 8)).stage_names
        ['layer1', 'layer2', 'layer3']
    """
    return CifarResNet(32, num_classes, input_shape[0])


class ResNet18(NamedStages):
    """ResNet-18, CIFAR variant (3x3 stem, no max-pool), ~11.2 M parameters."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin, stages = 64, []
        for s, w in enumerate((64, 128, 256, 512)):
            stages.append(nn.Sequential(BasicBlock(cin, w, 1 if s == 0 else 2), BasicBlock(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)
        self.stage_names = [f"layer{s}" for s in range(1, 5)]
        self.block_names = [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))          # (B, 512, H/8, W/8)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model("resnet18")
def resnet18(num_classes: int, input_shape: tuple[int, ...]) -> ResNet18:
    """ResNet-18 (CIFAR variant) for (C, H, W) images.

    Example:
        >>> from metakit.models.registry import get_model
        >>> get_model("resnet18").build is resnet18
        True
    """
    return ResNet18(num_classes, input_shape[0])


class WideBlock(nn.Module):
    """Pre-activation wide block (BN-ReLU-conv twice), 1x1 conv shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = None if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = F.dropout(F.relu(self.bn2(out)), self.dropout, self.training)
        out = self.conv2(out)
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(NamedStages):
    """WRN-depth-k: 3 stages of (depth-4)/6 wide blocks; WRN-28-10 has ~36.5 M parameters."""

    def __init__(self, depth: int = 28, widen: int = 10, num_classes: int = 10, in_channels: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        n, widths = (depth - 4) // 6, (16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        cin, stages = 16, []
        for s, w in enumerate(widths):
            stages.append(nn.Sequential(*[WideBlock(cin if b == 0 else w, w, (1 if s == 0 or b > 0 else 2), dropout)
                                          for b in range(n)]))
            cin = w
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)
        self.stage_names = ["layer1", "layer2", "layer3"]
        self.block_names = [f"layer{s + 1}.{b}" for s in range(3) for b in range(n)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        out = F.relu(self.bn(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@register_model("wrn28_10")
def wrn28_10(num_classes: int, input_shape: tuple[int, ...]) -> WideResNet:
    """WRN-28-10 for (C, H, W) images.

    Example:
        >>> from metakit.models.registry import get_model
        >>> get_model("wrn28_10").build is wrn28_10
        True
    """
    return WideResNet(28, 10, num_classes, input_shape[0])


class DigitsCNN(NamedStages):
    """A small CNN for 8x8 digits: two conv-BN-ReLU blocks, global pooling, a 64-d feature."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                    nn.ReLU())                                   # (B, w, 8, 8)
        self.block2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * width),
                                    nn.ReLU())                                   # (B, 2w, 4, 4)
        self.fc = nn.Linear(2 * width, num_classes)
        self.block_names = ["block1", "block2"]
        self.stage_names = ["block1", "block2"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.block2(self.block1(x)), 1).flatten(1))


@register_model("digits_cnn")
def digits_cnn(num_classes: int, input_shape: tuple[int, ...]) -> DigitsCNN:
    """The small CNN for 8x8 digits, (C, H, W) images.

    Example:
        >>> digits_cnn(10, (1, 8, 8))(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    return DigitsCNN(num_classes, input_shape[0])


class MLP(NamedStages):
    """A two-hidden-layer perceptron on flattened inputs (images or signals; an architecture for transfer)."""

    def __init__(self, num_classes: int = 10, in_features: int = 64, hidden: int = 128):
        super().__init__()
        self.block1 = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.block2 = nn.Sequential(nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.fc = nn.Linear(hidden, num_classes)
        self.block_names = self.stage_names = ["block1", "block2"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block2(self.block1(x)))


@register_model("mlp", inputs="any", width="hidden")
def mlp(num_classes: int, input_shape: tuple[int, ...], hidden: int = 128) -> MLP:
    """The MLP on any input shape (flattened); ``build_model(..., width=w)`` sets its ``hidden`` units.

    Example:
        >>> mlp(10, (1, 40), hidden=16).fc.in_features
        16
    """
    return MLP(num_classes, math.prod(input_shape), hidden)
