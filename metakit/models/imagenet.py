"""ResNet-50 for ImageNet (224x224 inputs): torchvision's, unchanged, with metakit's stage names.

The model is ``torchvision.models.resnet50(weights=None, num_classes=...)`` itself: its modules are
adopted as they are, so the state dict has torchvision's keys and a torchvision checkpoint loads
into it. ``in_channels`` other than 3 swaps only the stem convolution.

Reference: He et al. 2016 (ResNet; ResNet-50 has 25,557,032 parameters at 1,000 classes).
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet50 as torchvision_resnet50

from metakit.models.nets import NamedStages
from metakit.models.registry import register_model

RESNET50_BLOCKS = (3, 4, 6, 3)   # bottleneck blocks of layer1..layer4


class ResNet50(NamedStages):
    """torchvision's ResNet-50 (bottleneck blocks 3-4-6-3, 7x7/2 stem and max-pool), random init.

    Example:
        >>> net = ResNet50(num_classes=1000)
        >>> sum(p.numel() for p in net.parameters()), net(torch.zeros(1, 3, 64, 64)).shape
        (25557032, torch.Size([1, 1000]))
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        tv = torchvision_resnet50(weights=None, num_classes=num_classes)
        if in_channels != 3:
            tv.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
            nn.init.kaiming_normal_(tv.conv1.weight, mode="fan_out", nonlinearity="relu")
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"):
            setattr(self, name, getattr(tv, name))
        self.stage_names = [f"layer{s}" for s in range(1, 5)]
        self.block_names = [f"layer{s}.{b}" for s, n in enumerate(RESNET50_BLOCKS, start=1) for b in range(n)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))                   # (B, 64, H/4, W/4)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))            # (B, 2048, H/32, W/32)
        return self.fc(self.avgpool(out).flatten(1))                             # (B, classes)


@register_model("resnet50")
def resnet50(num_classes: int, input_shape: tuple[int, ...]) -> ResNet50:
    """torchvision's ResNet-50 for (C, H, W) images (any size; 224x224 on ImageNet).

    Example:
        >>> from metakit.models.registry import get_model
        >>> get_model("resnet50").build is resnet50
        True
    """
    return ResNet50(num_classes, input_shape[0])
