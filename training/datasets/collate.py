"""Batching :class:`~.targets.TrainingClip` items for the trainer.

Clips of one batch may differ in size (aspect ratios differ between videos and images): images
are zero-padded (normalised space: mean colour) and target maps padded with background
(instance id -1, semantic 0, ignore 0) to the largest padded size in the batch.
"""

from dataclasses import dataclass, fields
from typing import Sequence, Union

import torch
import torch.nn.functional as F

from .targets import TrainingClip


@dataclass
class ClipBatch:
    images: torch.Tensor  # [B, 3, T, H, W] float32
    instance_ids: torch.Tensor  # [B, T, H/4, W/4] int64, -1 = no instance
    ignore: torch.Tensor  # [B, T, H/4, W/4] uint8
    semantic: torch.Tensor  # [B, T, H/4, W/4] int64
    masks: list  # B x [I_b, T, H/4, W/4] uint8
    categories: list  # B x [I_b] int64
    image_sizes: list  # B x (height, width) before padding
    names: list  # B x str

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> "ClipBatch":
        moved = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, torch.Tensor):
                value = value.to(device, non_blocking=non_blocking)
            elif field.name in ("masks", "categories"):
                value = [v.to(device, non_blocking=non_blocking) for v in value]
            moved[field.name] = value
        return ClipBatch(**moved)

    def pin_memory(self) -> "ClipBatch":
        """Called by ``DataLoader(pin_memory=True)`` on custom batch types."""
        return ClipBatch(
            self.images.pin_memory(),
            self.instance_ids.pin_memory(),
            self.ignore.pin_memory(),
            self.semantic.pin_memory(),
            [m.pin_memory() for m in self.masks],
            [c.pin_memory() for c in self.categories],
            self.image_sizes,
            self.names,
        )


def _pad_to(tensor, height, width, value):
    return F.pad(tensor, (0, width - tensor.shape[-1], 0, height - tensor.shape[-2]), value=value)


def collate_clips(clips: Sequence[TrainingClip]) -> ClipBatch:
    """list[TrainingClip] -> :class:`ClipBatch` (a module-level function: picklable for workers)."""
    if not clips:
        raise ValueError("cannot collate an empty list of clips")
    lengths = {clip.images.shape[1] for clip in clips}
    if len(lengths) != 1:
        raise ValueError(f"clips of one batch must have the same length T, got {sorted(lengths)}")
    height = max(clip.images.shape[-2] for clip in clips)
    width = max(clip.images.shape[-1] for clip in clips)
    stride = clips[0].images.shape[-2] // clips[0].instance_ids.shape[-2]
    small_height, small_width = height // stride, width // stride
    return ClipBatch(
        images=torch.stack([_pad_to(c.images, height, width, 0.0) for c in clips]),
        instance_ids=torch.stack(
            [_pad_to(c.instance_ids, small_height, small_width, -1) for c in clips]
        ),
        ignore=torch.stack([_pad_to(c.ignore, small_height, small_width, 0) for c in clips]),
        semantic=torch.stack([_pad_to(c.semantic, small_height, small_width, 0) for c in clips]),
        masks=[_pad_to(c.masks, small_height, small_width, 0) for c in clips],
        categories=[c.categories for c in clips],
        image_sizes=[c.image_size for c in clips],
        names=[c.name for c in clips],
    )
