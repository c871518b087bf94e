"""What every reader returns, whatever the source format.

* :class:`VideoSample`: one video, its frame paths and per-frame, per-instance compressed RLEs.
* :class:`ImageSample`: one annotated image (COCO), the source of a pseudo-clip.
* :class:`RawClip`: T loaded frames with dense masks, before resizing and normalisation; what
  augmentation and instance duplication work on, and what ``browse`` draws.
"""

from dataclasses import dataclass, replace
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np

from stemseg_fast.io.rle import decode_rle

from .masks import read_image, rle_area


@dataclass(frozen=True)
class VideoSample:
    name: str
    frame_paths: tuple  # [F] image paths
    height: int
    width: int
    categories: tuple  # [I] category id (1-based) per instance
    segmentations: tuple  # [F][I] compressed RLE dict or None (instance absent in that frame)
    ignore: tuple  # [F] compressed RLE of the ignore region or None

    def __len__(self) -> int:
        return len(self.frame_paths)

    def instances_in_frame(self, frame: int) -> int:
        return sum(rle_area(rle) > 0 for rle in self.segmentations[frame])

    def select_frames(self, frames: Iterable[int]) -> "VideoSample":
        """The same video restricted to ``frames`` (indices into this one)."""
        frames = list(frames)
        return replace(
            self,
            frame_paths=tuple(self.frame_paths[f] for f in frames),
            segmentations=tuple(self.segmentations[f] for f in frames),
            ignore=tuple(self.ignore[f] for f in frames),
        )

    def without_empty_frames(self) -> "VideoSample":
        """Drops frames with zero annotated instances (official ``filter_zero_instance_frames``)."""
        return self.select_frames(f for f in range(len(self)) if self.instances_in_frame(f))

    def load(self, frames: Sequence[int]) -> "RawClip":
        """Loads a clip: images [T, H, W, 3] uint8 BGR, masks [I, T, H, W] uint8 (all I instances
        of the video, empty where absent), ignore [T, H, W] uint8."""
        images = np.stack(
            [read_image(self.frame_paths[f], self.height, self.width) for f in frames]
        )
        masks = np.zeros((len(self.categories), len(frames), self.height, self.width), np.uint8)
        ignore = np.zeros((len(frames), self.height, self.width), np.uint8)
        for t, frame in enumerate(frames):
            for instance, rle in enumerate(self.segmentations[frame]):
                if rle is not None:
                    masks[instance, t] = decode_rle(rle)
            if self.ignore[frame] is not None:
                ignore[t] = decode_rle(self.ignore[frame])
        return RawClip(images, masks, ignore, tuple(self.categories), self.name)


@dataclass(frozen=True)
class ImageSample:
    name: str
    path: str
    height: int
    width: int
    categories: tuple  # [I]
    segmentations: tuple  # [I] compressed RLE
    ignore: Optional[dict]  # compressed RLE or None

    def load(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """image [H, W, 3] uint8 BGR, masks [I, H, W] uint8, ignore [H, W] uint8."""
        image = read_image(self.path, self.height, self.width)
        masks = np.zeros((len(self.categories), self.height, self.width), np.uint8)
        for instance, rle in enumerate(self.segmentations):
            masks[instance] = decode_rle(rle)
        ignore = (
            decode_rle(self.ignore)
            if self.ignore is not None
            else np.zeros((self.height, self.width), np.uint8)
        )
        return image, masks, ignore


@dataclass(frozen=True)
class RawClip:
    images: np.ndarray  # [T, H, W, 3] BGR; uint8, or float32 in 0..255 after a geometric warp
    masks: np.ndarray  # [I, T, H, W] uint8 in {0, 1}
    ignore: np.ndarray  # [T, H, W] uint8 in {0, 1}
    categories: tuple  # [I]
    name: str = ""

    def keep_instances(self, keep: Sequence[bool]) -> "RawClip":
        """Only the instances whose flag in ``keep`` ([I] bool) is set."""
        keep = np.asarray(keep, dtype=bool)
        return replace(
            self,
            masks=self.masks[keep],
            categories=tuple(c for c, k in zip(self.categories, keep) if k),
        )
