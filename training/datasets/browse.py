"""Drawing training clips as the loader produces them (``stemseg-fast browse``).

Each clip becomes one PNG strip of its T frames side by side: the de-normalised input image
(cropped to the resized size, padding dropped) with the stride-4 instance-id map (nearest x4)
painted in per-instance colours and the ignore region darkened, so the targets the loss sees,
erosion included, can be checked by eye.
"""

import os
from typing import List

import cv2
import numpy as np
import torch

from stemseg_fast.io.files import PathLike, atomic_output
from stemseg_fast.model.preprocessing import IMAGE_MEAN_BGR

from .targets import TrainingClip

# BGR, distinct for the first instances; further instances cycle
INSTANCE_COLOURS = np.array(
    [
        [60, 60, 230],
        [60, 200, 60],
        [230, 120, 40],
        [40, 210, 230],
        [200, 60, 200],
        [230, 230, 60],
        [120, 60, 160],
        [60, 140, 255],
    ],
    np.float32,
)


def draw_clip(clip: TrainingClip) -> np.ndarray:
    """[H, T*W, 3] uint8 BGR strip of a :class:`~.targets.TrainingClip`."""
    height, width = clip.image_size
    stride = clip.images.shape[-1] // clip.instance_ids.shape[-1]
    mean = torch.tensor(IMAGE_MEAN_BGR).view(3, 1, 1, 1)
    images = (clip.images + mean).clamp(0, 255).permute(1, 2, 3, 0).numpy()  # [T, Hp, Wp, 3]
    ids = clip.instance_ids.repeat_interleave(stride, 1).repeat_interleave(stride, 2).numpy()
    ignore = clip.ignore.repeat_interleave(stride, 1).repeat_interleave(stride, 2).numpy()
    frames = []
    for t in range(images.shape[0]):
        frame = images[t].copy()
        for instance in np.unique(ids[t][ids[t] >= 0]):
            inside = ids[t] == instance
            frame[inside] = (
                0.45 * frame[inside] + 0.55 * INSTANCE_COLOURS[instance % len(INSTANCE_COLOURS)]
            )
        frame[ignore[t] > 0] *= 0.35
        frames.append(frame[:height, :width])
        frames.append(np.full((height, 2, 3), 255, np.float32))  # separator
    return np.concatenate(frames[:-1], axis=1).astype(np.uint8)


def write_clip_strips(
    dataset: torch.utils.data.Dataset, out_dir: PathLike, count: int, *, seed: int = 0
) -> List[str]:
    """Draws ``count`` items of ``dataset`` (a seeded choice) to ``out_dir/clip_<k>.png``.

    Returns:
        The written paths.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    order = np.random.default_rng(seed).permutation(len(dataset))[:count]
    paths = []
    for k, index in enumerate(order.tolist()):
        clip = dataset[index]
        path = os.path.join(out_dir, f"clip_{k:03d}.png")
        with atomic_output(path) as temporary:
            if not cv2.imwrite(temporary, draw_clip(clip)):
                raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths
