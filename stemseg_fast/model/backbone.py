"""ResNet / ResNeXt + FPN backbone as the official code builds it (official:
modeling/backbone/{backbone,resnet,fpn,make_layers}.py, maskrcnn-benchmark conventions).

* Every BatchNorm is a :class:`FrozenBatchNorm2d` with **eps = 0** (scale = w / sqrt(var)) and
  four buffers, no ``num_batches_tracked``: bit-parity with the released Mask R-CNN weights.
* Bottleneck: 1x1 -> 3x3 -> 1x1, the stride in the first 1x1 conv for ResNet
  (``stride_in_1x1=True``) and in the 3x3 for ResNeXt; projection shortcut (1x1 conv + FrozenBN,
  same stride) when the channel count changes.
* Stages res2..res5 (``layer1..layer4``) with strides 1, 2, 2, 2; ``freeze_at=2`` sets
  ``requires_grad=False`` on the stem and res2 (official FREEZE_AT_STAGE 2).
* FPN: lateral 1x1 and output 3x3 convs with bias, Kaiming-uniform(a=1) init, no norm, no
  activation; the top-down path upsamples **bilinearly** (align_corners=False; a STEm-Seg change
  from maskrcnn-benchmark's nearest). P2..P5 (strides 4, 8, 16, 32), no P6.

Module names equal the official ones (``body.stem.conv1``, ``body.layer3.22.bn2``,
``fpn.fpn_inner1`` ...), so an official backbone state dict maps by a prefix rule only.
"""

from typing import Any, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters, all buffers, and eps = 0:
    ``y = (x - running_mean) * weight / sqrt(running_var) + bias`` (maskrcnn-benchmark).

    A zero ``running_var`` gives inf, exactly as the official layer does.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * self.running_var.rsqrt()  # [C]
        shift = self.bias - self.running_mean * scale  # [C]
        return x * scale.to(x.dtype).view(1, -1, 1, 1) + shift.to(x.dtype).view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps=0"


class Stem(nn.Module):
    """7x7/2 conv (no bias) -> FrozenBN -> ReLU -> 3x3/2 max-pool."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, out_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class Bottleneck(nn.Module):
    """maskrcnn-benchmark bottleneck: 1x1 -> 3x3 (groups) -> 1x1, FrozenBN after each.

    Args:
        in_channels: channels entering the block.
        bottleneck_channels: width of the 3x3 conv (groups * width per group).
        out_channels: channels leaving the block.
        num_groups: groups of the 3x3 conv (1 for ResNet, 32 for ResNeXt-32x8d).
        stride_in_1x1: put the stride in the first 1x1 conv (ResNet) or in the 3x3 (ResNeXt).
        stride: spatial stride of the block (2 in the first block of res3..res5).
    """

    def __init__(
        self,
        in_channels: int,
        bottleneck_channels: int,
        out_channels: int,
        *,
        num_groups: int,
        stride_in_1x1: bool,
        stride: int,
    ) -> None:
        super().__init__()
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                FrozenBatchNorm2d(out_channels),
            )
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, bottleneck_channels, 1, stride=stride_1x1, bias=False)
        self.bn1 = FrozenBatchNorm2d(bottleneck_channels)
        self.conv2 = nn.Conv2d(
            bottleneck_channels,
            bottleneck_channels,
            3,
            stride=stride_3x3,
            padding=1,
            groups=num_groups,
            bias=False,
        )
        self.bn2 = FrozenBatchNorm2d(bottleneck_channels)
        self.conv3 = nn.Conv2d(bottleneck_channels, out_channels, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu_(self.bn1(self.conv1(x)))
        out = F.relu_(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu_(out + identity)


class ResNetBody(nn.Module):
    """Stem + res2..res5 returning C2..C5 (strides 4, 8, 16, 32).

    Args:
        blocks_per_stage: bottlenecks in res2..res5, e.g. (3, 4, 23, 3) for 101 layers.
        num_groups: 3x3 conv groups (1 ResNet, 32 ResNeXt).
        width_per_group: 3x3 width per group in res2 (64 ResNet, 8 ResNeXt-32x8d).
        stride_in_1x1: True for ResNet, False for ResNeXt (maskrcnn-benchmark settings).
        stem_channels: stem output channels (64).
        res2_out_channels: res2 output channels (256); every later stage doubles them, as it
            doubles the bottleneck width.
        freeze_at: 0 trains everything, 1 freezes the stem, k >= 2 also res2..res{k}.
    """

    def __init__(
        self,
        blocks_per_stage: Sequence[int],
        *,
        num_groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = True,
        stem_channels: int = 64,
        res2_out_channels: int = 256,
        freeze_at: int = 2,
    ) -> None:
        super().__init__()
        if len(blocks_per_stage) != 4:
            raise ValueError(f"blocks_per_stage must list 4 stages, got {list(blocks_per_stage)}")
        self.stem = Stem(stem_channels)
        in_channels = stem_channels
        bottleneck_channels = num_groups * width_per_group
        out_channels = res2_out_channels
        self.out_channels = []
        for index, num_blocks in enumerate(blocks_per_stage):
            blocks = []
            for block_index in range(num_blocks):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(
                    Bottleneck(
                        in_channels,
                        bottleneck_channels,
                        out_channels,
                        num_groups=num_groups,
                        stride_in_1x1=stride_in_1x1,
                        stride=stride,
                    )
                )
                in_channels = out_channels
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
            self.out_channels.append(out_channels)
            bottleneck_channels *= 2
            out_channels *= 2
        self.freeze_at = freeze_at
        stages = [self.stem] + [getattr(self, f"layer{i}") for i in range(1, 5)]
        for module in stages[:freeze_at]:
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        features = []
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
            features.append(x)
        return features  # C2, C3, C4, C5


def _kaiming_uniform_conv(in_channels, out_channels, kernel_size):
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    nn.init.kaiming_uniform_(conv.weight, a=1)
    nn.init.zeros_(conv.bias)
    return conv


class FPN(nn.Module):
    """Feature pyramid over C2..C5 with bilinear top-down upsampling; returns P2..P5.

    Args:
        in_channels: channels of C2..C5.
        out_channels: channels of every P level (256).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.num_levels = len(in_channels)
        for level, channels in enumerate(in_channels, start=1):
            self.add_module(f"fpn_inner{level}", _kaiming_uniform_conv(channels, out_channels, 1))
            self.add_module(
                f"fpn_layer{level}", _kaiming_uniform_conv(out_channels, out_channels, 3)
            )

    def forward(self, features: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        top = self.num_levels
        last_inner = getattr(self, f"fpn_inner{top}")(features[-1])
        results = [getattr(self, f"fpn_layer{top}")(last_inner)]
        for level in range(top - 1, 0, -1):
            lateral = getattr(self, f"fpn_inner{level}")(features[level - 1])
            top_down = F.interpolate(
                last_inner, size=lateral.shape[-2:], mode="bilinear", align_corners=False
            )
            last_inner = lateral + top_down
            results.insert(0, getattr(self, f"fpn_layer{level}")(last_inner))
        return results


class Backbone(nn.Module):
    """ResNet body + FPN: images [N, 3, H, W] (H, W multiples of 32) -> P2..P5, each
    [N, fpn_channels, H/s, W/s] for s = 4, 8, 16, 32."""

    def __init__(self, body: ResNetBody, fpn: FPN) -> None:
        super().__init__()
        self.body = body
        self.fpn = fpn

    @property
    def out_channels(self) -> int:
        return self.fpn.fpn_layer1.out_channels

    def forward(self, images: torch.Tensor) -> List[torch.Tensor]:
        return self.fpn(self.body(images))


def build_backbone(
    blocks_per_stage: Sequence[int],
    *,
    num_groups: int = 1,
    width_per_group: int = 64,
    stride_in_1x1: bool = True,
    stem_channels: int = 64,
    res2_out_channels: int = 256,
    fpn_channels: int = 256,
    freeze_at: int = 2,
) -> Backbone:
    """A :class:`Backbone`; see :class:`ResNetBody` and :class:`FPN` for the arguments."""
    body = ResNetBody(
        blocks_per_stage,
        num_groups=num_groups,
        width_per_group=width_per_group,
        stride_in_1x1=stride_in_1x1,
        stem_channels=stem_channels,
        res2_out_channels=res2_out_channels,
        freeze_at=freeze_at,
    )
    return Backbone(body, FPN(body.out_channels, fpn_channels))


def resnet50_fpn(**kwargs: Any) -> Backbone:
    """R-50-FPN (3-4-6-3 blocks, stride in the 1x1 conv)."""
    return build_backbone((3, 4, 6, 3), **kwargs)


def resnet101_fpn(**kwargs: Any) -> Backbone:
    """R-101-FPN (3-4-23-3 blocks), the official backbone."""
    return build_backbone((3, 4, 23, 3), **kwargs)


def resnext101_32x8d_fpn(**kwargs: Any) -> Backbone:
    """X-101-32x8d-FPN (maskrcnn-benchmark settings: 32 groups of 8, stride in the 3x3)."""
    return build_backbone(
        (3, 4, 23, 3), num_groups=32, width_per_group=8, stride_in_1x1=False, **kwargs
    )
