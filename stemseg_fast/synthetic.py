"""Deterministic synthetic clips: textured shapes that move, occlude each other by depth order,
and enter or leave the frame. Small enough to run the whole pipeline on a CPU in seconds.

A clip is drawn from a seed alone, so tests and the demo get the same video every time.
"""
from dataclasses import dataclass

import cv2
import numpy as np

# (name, BGR colour) per object class; class ids are 1-based, 0 is background.
CLASSES = (
    ("disc", (40, 40, 220)),
    ("square", (40, 200, 40)),
    ("triangle", (220, 120, 30)),
)


@dataclass(frozen=True)
class SyntheticClip:
    frames: np.ndarray  # [T, H, W, 3] uint8, BGR
    instance_ids: np.ndarray  # [T, H, W] int64, -1 = background, else object index
    categories: tuple  # class id (1-based) per object index


def _draw_shape(mask, category, centre, radius):
    x, y = int(round(centre[0])), int(round(centre[1]))
    if category == 1:
        cv2.circle(mask, (x, y), radius, 1, thickness=-1)
    elif category == 2:
        cv2.rectangle(mask, (x - radius, y - radius), (x + radius, y + radius), 1, thickness=-1)
    else:
        corners = np.array([[x, y - radius], [x - radius, y + radius], [x + radius, y + radius]],
                           dtype=np.int32)
        cv2.fillPoly(mask, [corners], 1)


def synthetic_clip(num_frames=8, height=64, width=96, num_objects=3, *, seed=0):
    """Draw a clip. Objects are painted back to front, so later ones occlude earlier ones.

    Returns:
        SyntheticClip with frames [T, H, W, 3] uint8 (BGR), instance_ids [T, H, W] int64.
    """
    if num_frames < 1 or height < 8 or width < 8 or num_objects < 0:
        raise ValueError(
            f"need num_frames >= 1, height and width >= 8, num_objects >= 0; got {num_frames}, "
            f"{height}, {width}, {num_objects}")
    rng = np.random.default_rng(seed)
    categories = tuple(int(c) for c in rng.integers(1, len(CLASSES) + 1, num_objects))
    radii = rng.integers(max(3, min(height, width) // 10), max(4, min(height, width) // 4) + 1,
                         num_objects)
    starts = rng.uniform((0, 0), (width, height), (num_objects, 2))
    velocities = rng.uniform(-0.06, 0.06, (num_objects, 2)) * (width, height)
    background = rng.integers(60, 120, (height, width, 3)).astype(np.uint8)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    instance_ids = np.full((num_frames, height, width), -1, dtype=np.int64)
    for frame in range(num_frames):
        image = background.copy()
        for index in range(num_objects):
            mask = np.zeros((height, width), dtype=np.uint8)
            _draw_shape(mask, categories[index], starts[index] + frame * velocities[index],
                        int(radii[index]))
            inside = mask.astype(bool)
            colour = np.array(CLASSES[categories[index] - 1][1], dtype=np.int16)
            texture = rng.integers(-25, 26, (int(inside.sum()), 3))
            image[inside] = np.clip(colour + texture, 0, 255).astype(np.uint8)
            instance_ids[frame][inside] = index
        frames[frame] = image
    return SyntheticClip(frames, instance_ids, categories)
