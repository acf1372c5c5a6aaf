"""MobileNetV2 and ShuffleNetV2 (1.0x) for 32x32 CIFAR inputs: MLR-SNet's meta-test architectures.

Both are built from torchvision's blocks (`torchvision.models.mobilenetv2.InvertedResidual`,
`torchvision.models.shufflenetv2.InvertedResidual`) with the strides changed for 32x32 inputs: a
stride-1 stem and an overall down-sampling of 8, so the last feature map is 4x4. The weights have
exactly the shapes of torchvision's ``mobilenet_v2()`` / ``shufflenet_v2_x1_0()``. Use them
(``model="mobilenetv2"`` / ``"shufflenetv2"``) to test a learned LR schedule on architectures it
was not meta-trained on; each difference from torchvision and from the MLR-SNet repository's
models is listed in docs/guide/design_notes.md.

References: Sandler et al. 2018 (MobileNetV2); Ma et al. 2018 (ShuffleNet V2); Shu et al.,
MLR-SNet (TPAMI 2022), Sec. 5 (transfer to other architectures).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual as MobileBlock
from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleBlock

from metakit.models.nets import NamedStages
from metakit.models.registry import register_model

# (expansion t, output channels c, blocks n, first block's stride s): torchvision's table with the
# 160-channel stage at stride 1 (CIFAR: down-sample by 8, not 32)
MOBILENETV2_CIFAR = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 1),
                     (6, 320, 1, 1))
SHUFFLENETV2_REPEATS = (4, 8, 4)                    # blocks of stages 2-4 (each starts at stride 2)
SHUFFLENETV2_CHANNELS = (24, 116, 232, 464, 1024)   # the 1.0x widths: stem, stages 2-4, last conv


def _init(net: nn.Module) -> None:
    """torchvision's initialisation of both models (Kaiming fan-out convs, unit BN, small linear)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def _conv_bn(cin: int, cout: int, kernel: int, act: type[nn.Module]) -> nn.Sequential:
    """Conv (stride 1, no bias) - BN - activation."""
    conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), act(inplace=True))


class MobileNetV2Cifar(NamedStages):
    """MobileNetV2 (width 1.0) for 32x32 inputs: stride-1 stem, 4x4 last feature map.

    Example:
        >>> net = MobileNetV2Cifar(10)
        >>> net(torch.zeros(2, 3, 32, 32)).shape, sum(p.numel() for p in net.parameters())
        (torch.Size([2, 10]), 2236682)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = _conv_bn(in_channels, 32, 3, nn.ReLU6)                       # (B, 32, 32, 32)
        cin, stages = 32, []
        for t, c, n, s in MOBILENETV2_CIFAR:
            stages.append(nn.Sequential(*[MobileBlock(cin if b == 0 else c, c, s if b == 0 else 1, t)
                                          for b in range(n)]))
            cin = c
        self.stages = nn.Sequential(*stages)                                     # (B, 320, 4, 4)
        self.head = _conv_bn(cin, 1280, 1, nn.ReLU6)                             # (B, 1280, 4, 4)
        self.fc = nn.Linear(1280, num_classes)
        self.stage_names = [f"stages.{s}" for s in range(len(stages))]
        self.block_names = [f"stages.{s}.{b}" for s, (_, _, n, _) in enumerate(MOBILENETV2_CIFAR) for b in range(n)]
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.stages(self.stem(x)))                               # (B, 1280, H/8, W/8)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))                 # (B, classes)


@register_model("mobilenetv2")
def mobilenetv2(num_classes: int, input_shape: tuple[int, ...]) -> MobileNetV2Cifar:
    """MobileNetV2, the CIFAR variant, for (C, H, W) images.

    Example:
        >>> mobilenetv2(10, (1, 32, 32)).stem[0].in_channels
        1
    """
    return MobileNetV2Cifar(num_classes, input_shape[0])


class ShuffleNetV2Cifar(NamedStages):
    """ShuffleNetV2 1.0x for 32x32 inputs: stride-1 stem, no max-pool, 4x4 last feature map.

    Example:
        >>> net = ShuffleNetV2Cifar(10)
        >>> net(torch.zeros(2, 3, 32, 32)).shape, sum(p.numel() for p in net.parameters())
        (torch.Size([2, 10]), 1263854)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        stem, *widths, last = SHUFFLENETV2_CHANNELS
        self.stem = _conv_bn(in_channels, stem, 3, nn.ReLU)                      # (B, 24, 32, 32)
        cin = stem
        for s, (repeats, c) in enumerate(zip(SHUFFLENETV2_REPEATS, widths), start=2):
            setattr(self, f"stage{s}", nn.Sequential(*[ShuffleBlock(cin if b == 0 else c, c, 2 if b == 0 else 1)
                                                       for b in range(repeats)]))
            cin = c                                                               # (B, c, 32/2^(s-1), ...)
        self.conv5 = _conv_bn(cin, last, 1, nn.ReLU)                             # (B, 1024, 4, 4)
        self.fc = nn.Linear(last, num_classes)
        self.stage_names = ["stage2", "stage3", "stage4"]
        self.block_names = [f"stage{s}.{b}" for s, n in zip((2, 3, 4), SHUFFLENETV2_REPEATS) for b in range(n)]
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stage4(self.stage3(self.stage2(self.stem(x))))                # (B, 464, H/8, W/8)
        return self.fc(F.adaptive_avg_pool2d(self.conv5(out), 1).flatten(1))    # (B, classes)


@register_model("shufflenetv2")
def shufflenetv2(num_classes: int, input_shape: tuple[int, ...]) -> ShuffleNetV2Cifar:
    """ShuffleNetV2 1.0x, the CIFAR variant, for (C, H, W) images.

    Example:
        >>> shufflenetv2(10, (3, 32, 32)).stage_names
        ['stage2', 'stage3', 'stage4']
    """
    return ShuffleNetV2Cifar(num_classes, input_shape[0])
