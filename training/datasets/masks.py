"""Mask codecs and image checks shared by the readers.

Annotations arrive as COCO-style RLE (compressed: ``counts`` a string; uncompressed: ``counts``
a list of run lengths), polygons (a list of flat ``[x0, y0, x1, y1, ...]`` lists) or ``None``
(instance absent in that frame). Readers keep every mask as *compressed* RLE, which pycocotools
decodes in microseconds and which keeps a whole dataset's annotations in memory cheaply (as the
official generic JSON does); dense masks exist only for the frames of the clip being loaded.
"""

import os
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from stemseg_fast.io.files import PathLike


def merge_rles(rles: Iterable[Optional[Dict[str, Any]]]) -> Optional[Dict[str, Any]]:
    """Union of compressed RLEs (None entries skipped); None if nothing is left."""
    present = [rle for rle in rles if rle is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else mask_utils.merge(present)


def rle_area(rle: Optional[Dict[str, Any]]) -> int:
    return 0 if rle is None else int(mask_utils.area(rle))


def image_size(path: PathLike) -> Tuple[int, int]:
    """(height, width) of an image file, reading only its header when Pillow is installed."""
    try:
        from PIL import Image
    except ImportError:
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"cannot read image {path}") from None
        return image.shape[:2]
    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as error:
        raise ValueError(f"cannot read image {path}: {error}") from None
    return height, width


def check_images(
    paths: Sequence[str],
    height: int,
    width: int,
    *,
    annotation_file: PathLike,
    check_sizes: str = "first",
) -> None:
    """Fail early, naming the file, when frames are missing or their size disagrees with the
    annotation.

    Args:
        paths: frame image paths of one video (or one image).
        check_sizes: "first" reads the header of the first path only (a whole video shares one
            size), "all" every path, "none" no header. Existence is always checked.
    """
    if check_sizes not in ("first", "all", "none"):
        raise ValueError(f"check_sizes must be 'first', 'all' or 'none', got {check_sizes!r}")
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"{annotation_file}: image file {path} does not exist")
    to_check = {"first": paths[:1], "all": paths, "none": []}[check_sizes]
    for path in to_check:
        found = tuple(image_size(path))
        if found != (height, width):
            raise ValueError(
                f"{annotation_file}: image {path} is {found[1]}x{found[0]} "
                f"(WxH) but the annotation says {width}x{height}"
            )


def read_image(path: str, height: int, width: int) -> np.ndarray:
    """[H, W, 3] uint8 BGR image; ValueError naming the file if unreadable or of another size."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    if image.shape[:2] != (height, width):
        raise ValueError(
            f"image {path} is {image.shape[1]}x{image.shape[0]} (WxH) but its "
            f"annotation says {width}x{height}"
        )
    return image


def read_indexed_png(path: PathLike) -> np.ndarray:
    """[H, W] uint8 palette indices of an indexed PNG (DAVIS annotations). OpenCV expands
    palettes to colours, so Pillow reads these."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise ValueError(
                    f"annotation {path} must be an indexed (palette) or grey PNG, "
                    f"got mode {image.mode}"
                )
            return np.array(image, dtype=np.uint8)
    except OSError as error:
        raise ValueError(f"cannot read annotation {path}: {error}") from None
