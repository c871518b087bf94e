"""Network input and loss targets from a loaded clip (sections 1.1 and 3).

Input, by :func:`stemseg_fast.model.preprocessing.preprocess_clip` (shared with inference): BGR,
uint8 range, minus the Caffe mean ``IMAGE_MEAN_BGR``, no std; resized so the short side is
``min_dim`` unless the long side would exceed ``max_dim`` (then the long side is ``max_dim``),
bilinear (align_corners=False); zero-padded bottom/right to a multiple of 32 in the
normalised space (padding = mean colour).

Targets, as the official ``TrainingModel.resize_masks``: instance and ignore masks resized to the
resized image (bilinear, > 0.5), zero-padded like the image, then downsampled to stride 4 with
bilinear interpolation at scale 1/4 (align_corners=False) followed by a truncating cast. At that
scale every output sample averages a 2x2 input neighbourhood (input rows/columns 4i+1 and 4i+2,
weight 1/2 each), so the target is 1 only where all four taps are 1: an erosion-like downsample
that thins masks by about one input pixel at their borders.

The fused embedding loss consumes an *instance-id map* ``instance_ids`` [T, h, w] (int64, -1 =
no instance). The official loss works on per-instance binary masks, which may overlap (COCO,
YouTube-VIS polygons do): an overlapping voxel then counts in both instances' sets. An id map
holds one instance per voxel, so on overlap **the instance with the higher index wins** (as the
official pseudo-clip code condenses masks: later instances on top). This differs from the
official targets only on overlapping voxels; ``masks`` keeps the per-instance stride-4 masks for
a loss that wants exact official semantics. Instance indices are not compacted: index k is
``categories[k]``'s instance even when its mask vanished after downsampling (its id then simply
does not occur; the loss skips empty instances).

Semantic map: the category of the covering instance, the maximum category id on overlap,
0 = background.
"""

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from stemseg_fast.model.preprocessing import (
    SIZE_DIVISIBILITY,
    padded_size,
    preprocess_clip,
    resized_size,
)

from .samples import RawClip

TARGET_STRIDE = 4


@dataclass
class TrainingClip:
    images: torch.Tensor  # [3, T, Hp, Wp] float32, normalised BGR, padding 0
    instance_ids: torch.Tensor  # [T, Hp/4, Wp/4] int64, -1 = no instance
    ignore: torch.Tensor  # [T, Hp/4, Wp/4] uint8 in {0, 1}
    semantic: torch.Tensor  # [T, Hp/4, Wp/4] int64, 0 = background
    masks: torch.Tensor  # [I, T, Hp/4, Wp/4] uint8 in {0, 1}
    categories: torch.Tensor  # [I] int64
    image_size: tuple  # (height, width) of the resized frames before padding
    name: str = ""


def resize_masks(masks: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """[N, H, W] uint8 -> [N, *size] uint8: bilinear (align_corners=False), then > 0.5."""
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size))
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    resized = F.interpolate(masks[:, None].float(), size=size, mode="bilinear", align_corners=False)
    return (resized[:, 0] > 0.5).to(torch.uint8)


def downsample_targets(masks: torch.Tensor, stride: int = TARGET_STRIDE) -> torch.Tensor:
    """[N, H, W] uint8 {0,1} with H, W multiples of ``stride`` -> [N, H/s, W/s] uint8: the
    official bilinear at scale 1/s (align_corners=False) followed by a truncating cast.

    For binary masks and an even stride that equals an AND of the four taps: output (i, j)
    samples input coordinate s*i + (s-1)/2, i.e. rows/columns s*i + s/2 - 1 and s*i + s/2 with
    weight 1/2 each, and the average of four {0,1} values truncates to 1 only when all are 1.
    Computed that way (bitwise on uint8 slices, no float maps); the tests check it against
    ``F.interpolate``.
    """
    height, width = masks.shape[-2:]
    if height % stride or width % stride:
        raise ValueError(f"masks must be padded to a multiple of {stride}, got {height}x{width}")
    if stride % 2:
        raise ValueError(f"stride must be even, got {stride}")
    first, second = stride // 2 - 1, stride // 2
    return (
        masks[..., first::stride, first::stride]
        & masks[..., second::stride, first::stride]
        & masks[..., first::stride, second::stride]
        & masks[..., second::stride, second::stride]
    ).to(torch.uint8)


def instance_id_map(masks: torch.Tensor) -> torch.Tensor:
    """[I, T, h, w] {0,1} -> [T, h, w] int64: index of the covering instance, the highest index
    on overlap, -1 where none."""
    ids = torch.full(masks.shape[1:], -1, dtype=torch.int64)
    for index in range(masks.shape[0]):
        ids[masks[index].bool()] = index
    return ids


def semantic_map(masks: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
    """[I, T, h, w] {0,1}, [I] -> [T, h, w] int64: max category over covering instances."""
    if masks.shape[0] == 0:
        return torch.zeros(masks.shape[1:], dtype=torch.int64)
    return (masks.long() * categories.view(-1, 1, 1, 1)).amax(0)


class TargetBuilder:
    """Turns a :class:`~.samples.RawClip` into a :class:`TrainingClip`.

    Args:
        min_dim, max_dim: the resize rule's bounds (YouTube-VIS 640/1196, DAVIS 736/1248,
            KITTI-MOTS 736/1792; section 1.1).
        stride: target stride (4).
    """

    def __init__(self, min_dim: int, max_dim: int, *, stride: int = TARGET_STRIDE) -> None:
        if min_dim <= 0 or max_dim < min_dim:
            raise ValueError(
                f"need 0 < min_dim <= max_dim, got min_dim={min_dim}, max_dim={max_dim}"
            )
        if SIZE_DIVISIBILITY % stride:
            raise ValueError(f"stride must divide {SIZE_DIVISIBILITY}, got {stride}")
        self.min_dim, self.max_dim = min_dim, max_dim
        self.stride = stride

    def __repr__(self) -> str:
        return (
            f"TargetBuilder(min_dim={self.min_dim}, max_dim={self.max_dim}, stride={self.stride})"
        )

    def __call__(self, clip: RawClip) -> TrainingClip:
        num_frames, height, width = clip.images.shape[:3]
        size = resized_size(height, width, self.min_dim, self.max_dim)
        padded = padded_size(*size)
        padding = (0, padded[1] - size[1], 0, padded[0] - size[0])
        images = preprocess_clip(
            torch.from_numpy(np.ascontiguousarray(clip.images)), self.min_dim, self.max_dim
        ).clip  # [3, T, Hp, Wp]

        masks = torch.from_numpy(np.ascontiguousarray(clip.masks))  # [I, T, H, W]
        ignore = torch.from_numpy(np.ascontiguousarray(clip.ignore))  # [T, H, W]
        # per frame: resizing all instances of all frames at once would hold I*T float maps
        small_masks, small_ignore = [], []
        for t in range(num_frames):
            small_masks.append(
                downsample_targets(F.pad(resize_masks(masks[:, t], size), padding), self.stride)
            )
            small_ignore.append(
                downsample_targets(
                    F.pad(resize_masks(ignore[t : t + 1], size), padding), self.stride
                )[0]
            )
        small_masks = torch.stack(small_masks, 1)  # [I, T, h, w]
        categories = torch.tensor(clip.categories, dtype=torch.int64)
        return TrainingClip(
            images=images,
            instance_ids=instance_id_map(small_masks),
            ignore=torch.stack(small_ignore),
            semantic=semantic_map(small_masks, categories),
            masks=small_masks,
            categories=categories,
            image_size=size,
            name=clip.name,
        )
