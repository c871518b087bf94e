"""DAVIS 2017: ``JPEGImages/480p/<seq>/*.jpg`` and ``Annotations/480p/<seq>/*.png`` (indexed
PNG: 0 background, k > 0 object k, 255 void).

Unsupervised DAVIS labels only the salient objects, so by default the background (value 0) and
void (255) are the ignore region (section 5.2, ``background_as_ignore``); every object is
category 1 (class-agnostic). Masks are decoded once, when the dataset is built, into compressed
RLE (about 4k PNGs for DAVIS 2017 train: seconds).
"""

import os
from typing import List, Optional, Sequence

import numpy as np

from stemseg_fast.io.files import PathLike
from stemseg_fast.io.rle import encode_mask

from .masks import check_images, read_indexed_png
from .samples import VideoSample

VOID_VALUE = 255


def read_davis(
    root: PathLike,
    *,
    sequences: Optional[Sequence[str]] = None,
    resolution: str = "480p",
    background_as_ignore: bool = True,
    annotation_folder: str = "Annotations",
    check_sizes: str = "first",
) -> List[VideoSample]:
    """Reads DAVIS-layout folders.

    Args:
        root: folder holding ``JPEGImages/<resolution>`` and ``Annotations/<resolution>``.
        sequences: names to read (e.g. from ``ImageSets/2017/train.txt``); None reads every
            folder under ``Annotations/<resolution>``.
        background_as_ignore: background and void pixels form the ignore region (official
            DAVIS training); False makes only void (255) ignored.
        annotation_folder: ``Annotations`` (DAVIS 2017) or e.g. ``Annotations_unsupervised``.
    Returns:
        list[VideoSample].
    """
    image_dir = os.path.join(root, "JPEGImages", resolution)
    annotation_dir = os.path.join(root, annotation_folder, resolution)
    if not os.path.isdir(annotation_dir):
        raise ValueError(f"DAVIS root {root}: folder {annotation_dir} does not exist")
    if sequences is None:
        sequences = sorted(
            name
            for name in os.listdir(annotation_dir)
            if os.path.isdir(os.path.join(annotation_dir, name))
        )
    videos = [
        read_mask_folder(
            os.path.join(image_dir, name),
            os.path.join(annotation_dir, name),
            name=name,
            background_as_ignore=background_as_ignore,
            check_sizes=check_sizes,
        )
        for name in sequences
    ]
    videos = [video for video in videos if video is not None]
    if not videos:
        raise ValueError(f"DAVIS root {root}: no sequence with an annotated object")
    return videos


def read_mask_folder(
    image_folder: PathLike,
    annotation_folder: PathLike,
    *,
    name: str,
    background_as_ignore: bool,
    check_sizes: str = "first",
) -> Optional[VideoSample]:
    """One video from a folder of frames and a folder of indexed PNGs (same stems). Frames
    without a PNG are left out. Returns None when no frame has an object."""
    if not os.path.isdir(annotation_folder):
        raise ValueError(f"annotation folder {annotation_folder} does not exist")
    stems = sorted(
        os.path.splitext(f)[0] for f in os.listdir(annotation_folder) if f.lower().endswith(".png")
    )
    if not stems:
        return None
    frame_paths = tuple(_frame_path(image_folder, stem) for stem in stems)
    label_maps = [
        read_indexed_png(os.path.join(annotation_folder, stem + ".png")) for stem in stems
    ]
    height, width = label_maps[0].shape
    for stem, labels in zip(stems, label_maps):
        if labels.shape != (height, width):
            raise ValueError(
                f"annotation {os.path.join(annotation_folder, stem + '.png')} is "
                f"{labels.shape[1]}x{labels.shape[0]}, the first frame's is "
                f"{width}x{height}"
            )
    check_images(
        frame_paths, height, width, annotation_file=annotation_folder, check_sizes=check_sizes
    )
    object_values = sorted(set(np.unique(np.stack(label_maps)).tolist()) - {0, VOID_VALUE})
    if not object_values:
        return None
    segmentations, ignore = [], []
    for labels in label_maps:
        segmentations.append(
            tuple(
                encode_mask(labels == value) if (labels == value).any() else None
                for value in object_values
            )
        )
        ignored = (labels == VOID_VALUE) | ((labels == 0) if background_as_ignore else False)
        ignore.append(encode_mask(ignored) if ignored.any() else None)
    return VideoSample(
        name=name,
        frame_paths=frame_paths,
        height=height,
        width=width,
        categories=(1,) * len(object_values),
        segmentations=tuple(segmentations),
        ignore=tuple(ignore),
    )


def _frame_path(image_folder, stem):
    for extension in (".jpg", ".jpeg", ".png"):
        path = os.path.join(image_folder, stem + extension)
        if os.path.isfile(path):
            return path
    raise ValueError(
        f"no image for annotation frame '{stem}' in {image_folder} (looked for .jpg, .jpeg, .png)"
    )
