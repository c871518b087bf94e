"""Single-instance duplication for video clips (official ``data/instance_duplicator.py``).

A clip whose video has exactly one instance gets a second instance: in every frame the
instance (optionally mirrored inside its own box) is pasted shifted by s_x = m_x (0.75 + 0.25 u)
times its box width and s_y = m_y 0.25 u' times its box height (u, u' ~ U(0, 1), drawn per
frame), then ``min(s, 0.3 * size)``: as in the official code the cap bounds only positive
shifts (a negative shift is uncapped; ``symmetric_cap=True`` caps both signs). The direction
signs m_x, m_y are fixed per clip and chosen to keep the copy in view: a wide instance (> 40 %
of the width) touching the left edge moves further left (out of view, it "continues"), touching
the right edge further right; a narrow one (< 20 %) near an edge moves away from it; otherwise
random. The same rules hold vertically; an instance touching both left and right edges is not
duplicated, touching top and bottom gets no vertical shift, touching either side is not
mirrored. The original mask loses the pixels the copy covers. Shifts are applied by bilinear
``warpAffine`` (masks: 0/1 rounded), as the official code does.
"""

from typing import Optional, Tuple

import cv2
import numpy as np


def mask_box(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """(x_min, y_min, x_max, y_max) with exclusive maxima, or None for an empty mask."""
    columns = np.flatnonzero(mask.any(0))
    if columns.size == 0:
        return None
    rows = np.flatnonzero(mask.any(1))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def _direction(low, high, size, current):
    """The sign the official rules force on one axis, or ``current`` when they say nothing."""
    extent = high - low
    if extent > 0.4 * size:
        if low == 0:
            return -1.0
        if high == size:
            return 1.0
    elif extent < 0.2 * size:
        centre = (low + high) / 2.0
        if centre < 0.25 * size:
            return 1.0
        if centre > 0.75 * size:
            return -1.0
    return current


def duplicate_single_instance(
    images: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, symmetric_cap: bool = False
) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Pastes a shifted copy of the one instance into every frame.

    Args:
        images: [T, H, W, 3] uint8 BGR.
        mask: [T, H, W] uint8 {0,1}, the single instance.
        rng: numpy Generator.
    Returns:
        (images [T, H, W, 3], masks [2, T, H, W]: original minus the copy, the copy), or None
        when duplication is not feasible (the instance spans the full width).
    """
    height, width = mask.shape[1:]
    boxes = [mask_box(m) for m in mask]
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    horizontal = vertical = None
    for x_min, y_min, x_max, y_max in present:
        horizontal = _direction(x_min, x_max, width, horizontal)
        vertical = _direction(y_min, y_max, height, vertical)
    touches_left = any(b[0] == 0 for b in present)
    touches_right = any(b[2] == width for b in present)
    touches_top = any(b[1] == 0 for b in present)
    touches_bottom = any(b[3] == height for b in present)
    if touches_left and touches_right:
        return None
    if touches_top and touches_bottom:
        vertical = 0.0
    if horizontal is None:
        horizontal = -1.0 if rng.random() < 0.5 else 1.0
    if vertical is None:
        vertical = -1.0 if rng.random() < 0.5 else 1.0
    flip = (not touches_left and not touches_right) and rng.random() < 0.5

    out_images = images.copy()
    originals = mask.copy()
    copies = np.zeros_like(mask)
    for t, box in enumerate(boxes):
        if box is None:
            continue
        x_min, y_min, x_max, y_max = box
        image, instance = images[t], mask[t]
        if flip:
            image, instance = image.copy(), instance.copy()
            image[y_min:y_max, x_min:x_max] = image[y_min:y_max, x_min:x_max][:, ::-1]
            instance[y_min:y_max, x_min:x_max] = instance[y_min:y_max, x_min:x_max][:, ::-1]
        shift_x = horizontal * (x_max - x_min) * (0.75 + 0.25 * rng.random())
        shift_y = vertical * (y_max - y_min) * 0.25 * rng.random()
        shift_x, shift_y = min(shift_x, 0.3 * width), min(shift_y, 0.3 * height)
        if symmetric_cap:
            shift_x, shift_y = max(shift_x, -0.3 * width), max(shift_y, -0.3 * height)
        matrix = np.float32([[1, 0, shift_x], [0, 1, shift_y]])
        shifted_image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (width, height))
        shifted_mask = cv2.warpAffine(np.ascontiguousarray(instance), matrix, (width, height))
        covered = shifted_mask > 0
        out_images[t][covered] = shifted_image[covered]
        copies[t] = covered
        originals[t][covered] = 0
    return out_images, np.stack([originals, copies])
