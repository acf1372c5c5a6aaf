"""1D classifiers for MNIST-1D signals (B, C, L): a 1D ResNet (the ResNet-32 analogue) and a plain 1D CNN.

The ResNet keeps ResNet-32's shape at 1D scale: a 3-tap stem, three stages of basic blocks whose
width doubles as the length halves, global average pooling and a linear head ``fc``. Like every
model of `metakit.models.nets` it names its modulation points (``block_names``, ``stage_names``).
The CNN is the MNIST-1D paper's baseline shape (three strided convolutions), a second
architecture for transfer; the MLP of `nets` is the third.

A model file in full: each class, then its builder, which `register_model` makes
``build_model(name)``; a new model is a copy of this file plus its import in `metakit.models`.

References: He et al. 2016 (ResNet); Greydanus 2020 (MNIST-1D, its ConvBase baseline).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from metakit.models.nets import NamedStages
from metakit.models.registry import register_model


class Block1D(nn.Module):
    """3-3 residual block on signals; a 1x1 convolution shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))                                   # (B, cout, L / stride)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet1D(NamedStages):
    """ResNet for 1D signals: 3 stages of ``blocks`` basic blocks (``width``, 2x, 4x channels).

    Args:
        num_classes: output classes.
        in_channels: signal channels (1 for MNIST-1D).
        width: channels of the first stage.
        blocks: basic blocks per stage (ResNet-32 has 5 on images; 1 keeps a CPU epoch at ~1.8 s
            for 12,406 signals on one thread, 2 doubles it).

    Example:
        >>> net = ResNet1D(10)
        >>> net(torch.zeros(3, 1, 40)).shape, net.stage_names
        (torch.Size([3, 10]), ['layer1', 'layer2', 'layer3'])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32, blocks: int = 1):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        cin, stages = width, []
        for s, w in enumerate((width, 2 * width, 4 * width)):
            stages.append(nn.Sequential(*[Block1D(cin if b == 0 else w, w, 2 if s > 0 and b == 0 else 1)
                                          for b in range(blocks)]))
            cin = w
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(cin, num_classes)
        self.stage_names = ["layer1", "layer2", "layer3"]
        self.block_names = [f"layer{s + 1}.{b}" for s in range(3) for b in range(blocks)]
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))                                   # (B, w, L)
        out = self.layer3(self.layer2(self.layer1(out)))                        # (B, 4w, L/4)
        return self.fc(out.mean(-1))                                            # (B, classes)


@register_model("resnet1d", inputs="signals", width="width")
def resnet1d(num_classes: int, input_shape: tuple[int, ...], width: int = 32) -> ResNet1D:
    """The 1D ResNet for (C, L) signals; ``width``: the first stage's channels.

    Example:
        >>> resnet1d(10, (1, 40), width=16).fc.in_features
        64
    """
    return ResNet1D(num_classes, input_shape[0], width)


class CNN1D(NamedStages):
    """Three strided conv-BN-ReLU blocks (5 taps), global pooling, a linear head.

    Example:
        >>> CNN1D(10)(torch.zeros(2, 1, 40)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32):
        super().__init__()
        layers, cin = [], in_channels
        for _ in range(3):
            layers.append(nn.Sequential(nn.Conv1d(cin, width, 5, 2, 2, bias=False), nn.BatchNorm1d(width), nn.ReLU()))
            cin = width
        self.block1, self.block2, self.block3 = layers                         # (B, w, L/2), L/4, L/8
        self.fc = nn.Linear(width, num_classes)
        self.block_names = self.stage_names = ["block1", "block2", "block3"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block3(self.block2(self.block1(x))).mean(-1))


@register_model("cnn1d", inputs="signals", width="width")
def cnn1d(num_classes: int, input_shape: tuple[int, ...], width: int = 32) -> CNN1D:
    """The 1D CNN for (C, L) signals; ``width``: every block's channels.

    Example:
        >>> cnn1d(10, (1, 40), width=8).fc.in_features
        8
    """
    return CNN1D(num_classes, input_shape[0], width)
