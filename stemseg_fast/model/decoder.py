"""Temporal Squeeze-Expand (TSE) decoder (official: modeling/embedding_decoder.py,
seediness_decoder.py, semseg_decoder.py, common.py ``squeeze_expand_decoder``).

Four branches over the stacked FPN volumes P2..P5 ([B, C, T, H/s, W/s]); C3 = Conv3d 3x3x3 with
bias, GN = GroupNorm(32), R = ReLU, P = AvgPool3d(3, stride (2, 1, 1), padding 1,
count_include_pad=True) or nothing, by T (``temporal_schedule``):

    block_32x (P5): C3(C -> c32)-GN-R-P1, C3(c32 -> c32)-GN-R-P2, C3(c32 -> c32)-GN-R-P3
    block_16x (P4): C3(C -> c16)-GN-R-P1, C3(c16 -> c16)-GN-R-P2
    block_8x  (P3): C3(C -> c8)-GN-R-P1
    block_4x  (P2): C3(C -> c4)-GN-R

    x = conv_16(cat(up(x32, (s0, 2, 2)), x16))    1x1x1, no bias
    x = conv_8(cat(up(x, (s1, 2, 2)), x8))
    x = conv_4(cat(up(x, (s2, 2, 2)), x4))        -> [B, c4, T, H/4, W/4]

up = trilinear, align_corners=False. Parameter names and ``nn.Sequential`` positions are the
official ones (``block_32x.4.weight`` is the second conv), in both modes:

* ``fused=False``: the official sequence in plain PyTorch (the reference).
* ``fused=True``: each GN-R(-P) is one :func:`group_norm_relu_pool` call, and each fusion is
  computed at low resolution, ``up(W_a x) + W_b skip`` (:func:`upsample_add`), equal to the
  official ``conv(cat(up(x), skip))`` up to rounding. The kernels run through ``backend``
  (``"auto"``: Triton on CUDA, PyTorch on CPU).
"""

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stemseg_fast.kernels.group_norm_relu_pool import group_norm_relu_pool, temporal_avg_pool
from stemseg_fast.kernels.upsample_add import upsample_add

BRANCH_DEPTHS = {"block_32x": 3, "block_16x": 2, "block_8x": 1, "block_4x": 1}
SUPPORTED_NUM_FRAMES = (2, 4, 8, 16, 24, 32)


class TemporalSchedule(NamedTuple):
    """Which pooling layers are active (P1, P2, P3) and the upsampling t-scales (s0, s1, s2)."""

    pool_active: tuple
    time_scales: tuple


def temporal_schedule(num_frames: int) -> TemporalSchedule:
    """The official schedule (``get_pooling_layer_creator``, ``get_temporal_scales``)."""
    if num_frames == 2:
        return TemporalSchedule((False, False, False), (1, 1, 1))
    if num_frames == 4:
        return TemporalSchedule((True, False, False), (1, 1, 2))
    if num_frames == 8:
        return TemporalSchedule((True, True, False), (1, 2, 2))
    if num_frames in (16, 24, 32):
        return TemporalSchedule((True, True, True), (2, 2, 2))
    raise ValueError(
        f"num_frames (T) must be one of {SUPPORTED_NUM_FRAMES} for the TSE "
        f"decoder, got {num_frames}"
    )


def _conv_gn_relu_pool(in_channels, out_channels, num_groups, with_pool):
    layers = [
        nn.Conv3d(in_channels, out_channels, 3, padding=1),
        nn.GroupNorm(num_groups, out_channels),
        nn.ReLU(inplace=True),
    ]
    if with_pool:
        layers.append(TemporalAvgPool3d())
    return layers


class TemporalAvgPool3d(nn.Module):
    """AvgPool3d(3, stride (2, 1, 1), padding 1, count_include_pad=True); see
    :func:`stemseg_fast.kernels.group_norm_relu_pool.temporal_avg_pool`. Skipped when inactive
    for T."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_avg_pool(x)


class TSEDecoder(nn.Module):
    """The TSE decoder body: four FPN volumes -> one stride-4 volume with c4 channels.

    Args:
        in_channels: channels of the FPN volumes (256).
        widths: (c32, c16, c8, c4), e.g. (256, 256, 128, 128).
        num_groups: GroupNorm groups (32).
        fused: use the fused blocks (same parameters, same function up to rounding).
        backend: kernel backend for the fused blocks: ``"auto"``, ``"triton"``, ``"reference"``.
        channels_last: run the 3-D convs and fused blocks on channels-last-3d tensors.
    """

    def __init__(
        self,
        in_channels: int = 256,
        widths: Sequence[int] = (256, 256, 128, 128),
        *,
        num_groups: int = 32,
        fused: bool = False,
        backend: str = "auto",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"widths must be (c32, c16, c8, c4), got {list(widths)}")
        for width in widths:
            if width % num_groups:
                raise ValueError(
                    f"every decoder width must be a multiple of num_groups="
                    f"{num_groups}, got widths {list(widths)}"
                )
        self.widths = tuple(widths)
        self.fused = fused
        self.backend = backend
        self.channels_last = channels_last
        for (name, depth), width in zip(BRANCH_DEPTHS.items(), widths):
            layers = []
            for index in range(depth):
                layers += _conv_gn_relu_pool(
                    in_channels if index == 0 else width,
                    width,
                    num_groups,
                    with_pool=name != "block_4x",
                )
            self.add_module(name, nn.Sequential(*layers))
        c32, c16, c8, c4 = widths
        self.conv_16 = nn.Conv3d(c32 + c16, c16, 1, bias=False)
        self.conv_8 = nn.Conv3d(c16 + c8, c8, 1, bias=False)
        self.conv_4 = nn.Conv3d(c8 + c4, c4, 1, bias=False)

    @property
    def out_channels(self) -> int:
        return self.widths[3]

    def _branch(self, name, x, pool_active):
        block = getattr(self, name)
        layers_per_stage = 3 if name == "block_4x" else 4  # conv, norm, relu[, pool]
        for index in range(BRANCH_DEPTHS[name]):
            first = index * layers_per_stage
            conv, norm = block[first], block[first + 1]
            active = layers_per_stage == 4 and pool_active[index]
            x = conv(x)
            if self.fused:
                x = group_norm_relu_pool(
                    x,
                    norm.weight,
                    norm.bias,
                    norm.num_groups,
                    eps=norm.eps,
                    pool=active,
                    backend=self.backend,
                )
            else:
                x = block[first + 2](norm(x))
                if active:
                    x = block[first + 3](x)
        return x

    def _fuse(self, conv: nn.Conv3d, x, skip, time_scale):
        if self.fused:
            low_channels = x.shape[1]
            low = F.conv3d(x, conv.weight[:, :low_channels])  # W_a x at low resolution
            high = F.conv3d(skip, conv.weight[:, low_channels:])  # W_b skip
            return upsample_add(low.to(high.dtype), high, backend=self.backend)
        x = F.interpolate(x, scale_factor=(time_scale, 2, 2), mode="trilinear", align_corners=False)
        return conv(torch.cat([x.to(skip.dtype), skip], dim=1))

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """features: [P2, P3, P4, P5] volumes [B, C, T, H/s, W/s]; returns [B, c4, T, H/4, W/4]."""
        if len(features) != 4:
            raise ValueError(f"features must hold 4 FPN volumes (P2..P5), got {len(features)}")
        num_frames = features[0].shape[2]
        schedule = temporal_schedule(num_frames)
        if self.channels_last:
            features = [f.contiguous(memory_format=torch.channels_last_3d) for f in features]
        p2, p3, p4, p5 = features
        x32 = self._branch("block_32x", p5, schedule.pool_active)
        x16 = self._branch("block_16x", p4, schedule.pool_active)
        x8 = self._branch("block_8x", p3, schedule.pool_active)
        x4 = self._branch("block_4x", p2, schedule.pool_active)
        s0, s1, s2 = schedule.time_scales
        x = self._fuse(self.conv_16, x32, x16, s0)
        x = self._fuse(self.conv_8, x, x8, s1)
        return self._fuse(self.conv_4, x, x4, s2)
