"""Deterministic synthetic clips: textured shapes that move, occlude each other by depth order,
and enter or leave the frame. Small enough to run the whole pipeline on a CPU in seconds.

A clip is drawn from a seed alone, so tests and the demo get the same video every time.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Sequence, Tuple

import cv2
import numpy as np

if TYPE_CHECKING:  # io/ is imported where it is used, as below
    from .io.files import PathLike

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
        corners = np.array(
            [[x, y - radius], [x - radius, y + radius], [x + radius, y + radius]], dtype=np.int32
        )
        cv2.fillPoly(mask, [corners], 1)


def synthetic_clip(
    num_frames: int = 8, height: int = 64, width: int = 96, num_objects: int = 3, *, seed: int = 0
) -> SyntheticClip:
    """Draw a clip. Objects are painted back to front, so later ones occlude earlier ones.

    Returns:
        SyntheticClip with frames [T, H, W, 3] uint8 (BGR), instance_ids [T, H, W] int64.
    """
    if num_frames < 1 or height < 8 or width < 8 or num_objects < 0:
        raise ValueError(
            f"need num_frames >= 1, height and width >= 8, num_objects >= 0; got {num_frames}, "
            f"{height}, {width}, {num_objects}"
        )
    rng = np.random.default_rng(seed)
    categories = tuple(int(c) for c in rng.integers(1, len(CLASSES) + 1, num_objects))
    radii = rng.integers(
        max(3, min(height, width) // 10), max(4, min(height, width) // 4) + 1, num_objects
    )
    starts = rng.uniform((0, 0), (width, height), (num_objects, 2))
    velocities = rng.uniform(-0.06, 0.06, (num_objects, 2)) * (width, height)
    background = rng.integers(60, 120, (height, width, 3)).astype(np.uint8)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    instance_ids = np.full((num_frames, height, width), -1, dtype=np.int64)
    for frame in range(num_frames):
        image = background.copy()
        for index in range(num_objects):
            mask = np.zeros((height, width), dtype=np.uint8)
            _draw_shape(
                mask,
                categories[index],
                starts[index] + frame * velocities[index],
                int(radii[index]),
            )
            inside = mask.astype(bool)
            colour = np.array(CLASSES[categories[index] - 1][1], dtype=np.int16)
            texture = rng.integers(-25, 26, (int(inside.sum()), 3))
            image[inside] = np.clip(colour + texture, 0, 255).astype(np.uint8)
            instance_ids[frame][inside] = index
        frames[frame] = image
    return SyntheticClip(frames, instance_ids, categories)


# ----------------------------------------------------------------------------------------------
# OVIS-like videos: objects cross the frame on intersecting paths, enter and leave it, and hide
# behind each other; the per-frame occlusion level follows the OVIS annotation labels.

OCCLUSION_LABELS = ("no_occlusion", "slight_occlusion", "severe_occlusion")
SEVERE_OCCLUSION = 0.5  # hidden fraction of the object's full shape from which it is "severe"


@dataclass(frozen=True)
class SyntheticVideo:
    frames: np.ndarray  # [T, H, W, 3] uint8, BGR
    instance_ids: np.ndarray  # [T, H, W] int64, -1 = background, else object index (visible part)
    categories: tuple  # class id (1-based) per object index
    occlusion: tuple  # per object: per frame an OCCLUSION_LABELS entry, None where not visible


def _textured(category, shape, rng):
    """Class-specific texture: noise on discs, stripes on squares, a checkerboard on triangles."""
    height, width = shape
    colour = np.array(CLASSES[category - 1][1], dtype=np.float32)
    rows, cols = np.mgrid[0:height, 0:width]
    if category == 1:
        pattern = rng.normal(0.0, 18.0, (height, width))
    elif category == 2:
        pattern = 30.0 * np.sign(np.sin(cols / 2.0))
    else:
        pattern = 30.0 * ((rows // 4 + cols // 4) % 2 * 2 - 1)
    return np.clip(colour + pattern[..., None], 0, 255)


def synthetic_video(
    num_frames: int = 16, height: int = 96, width: int = 128, num_objects: int = 4, *, seed: int = 0
) -> SyntheticVideo:
    """Draw an OVIS-like video: objects on paths through a common region of the frame (so they
    cross and occlude), some starting or ending outside it. Painted back to front in object
    order; ``instance_ids`` holds the visible part of each object."""
    if num_frames < 1 or height < 16 or width < 16 or num_objects < 1:
        raise ValueError(
            f"need num_frames >= 1, height and width >= 16, num_objects >= 1; got {num_frames}, "
            f"{height}, {width}, {num_objects}"
        )
    rng = np.random.default_rng(seed)
    categories = tuple(int(c) for c in rng.integers(1, len(CLASSES) + 1, num_objects))
    short_side = min(height, width)
    radii = rng.integers(short_side // 8, short_side // 4 + 1, num_objects)
    # Each object passes near a shared meeting point halfway through the video.
    meeting = rng.uniform((0.35 * width, 0.35 * height), (0.65 * width, 0.65 * height))
    passes = meeting + rng.normal(0.0, 0.12 * short_side, (num_objects, 2))
    speeds = rng.uniform(0.6, 1.4, num_objects) * 1.2 * max(height, width) / num_frames
    angles = rng.uniform(0, 2 * np.pi, num_objects)
    velocities = speeds[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rows, cols = np.mgrid[0:height, 0:width]
    background = (
        90
        + 40 * np.sin(cols / (7 + 5 * rng.random())) * np.cos(rows / 9)
        + rng.normal(0, 6, (height, width))
    )
    background = np.clip(np.repeat(background[..., None], 3, axis=2) * (0.8, 1.0, 0.9), 0, 255)

    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    instance_ids = np.full((num_frames, height, width), -1, dtype=np.int64)
    occlusion = [[None] * num_frames for _ in range(num_objects)]
    for frame in range(num_frames):
        image = background.copy()
        full_masks = []
        for index in range(num_objects):
            mask = np.zeros((height, width), dtype=np.uint8)
            centre = passes[index] + (frame - num_frames / 2) * velocities[index]
            _draw_shape(mask, categories[index], centre, int(radii[index]))
            inside = mask.astype(bool)
            image[inside] = _textured(categories[index], (height, width), rng)[inside]
            instance_ids[frame][inside] = index
            full_masks.append(inside)
        for index, full in enumerate(full_masks):
            full_area = int(full.sum())
            visible = int((instance_ids[frame] == index).sum())
            if visible == 0:
                continue
            hidden = 1.0 - visible / full_area
            level = 0 if hidden == 0 else (2 if hidden >= SEVERE_OCCLUSION else 1)
            occlusion[index][frame] = OCCLUSION_LABELS[level]
        frames[frame] = image.astype(np.uint8)
    return SyntheticVideo(frames, instance_ids, categories, tuple(map(tuple, occlusion)))


def synthetic_annotations(videos: Sequence[SyntheticVideo], names: Sequence[str]) -> Dict[str, Any]:
    """YouTube-VIS / OVIS annotation dict for ``videos`` stored as ``<name>/<frame:05d>.jpg``.

    Objects never visible are left out; each annotation carries the OVIS ``occlusion`` list.
    """
    from pycocotools import mask as mask_utils

    from .io.rle import encode_mask, to_json

    entries = {
        "videos": [],
        "annotations": [],
        "categories": [
            {"id": index + 1, "name": name, "supercategory": "shape"}
            for index, (name, _) in enumerate(CLASSES)
        ],
    }
    for video_id, (video, name) in enumerate(zip(videos, names), start=1):
        num_frames, height, width = video.instance_ids.shape
        entries["videos"].append(
            {
                "id": video_id,
                "width": width,
                "height": height,
                "length": num_frames,
                "file_names": [f"{name}/{frame:05d}.jpg" for frame in range(num_frames)],
            }
        )
        for index, category in enumerate(video.categories):
            masks = video.instance_ids == index
            if not masks.any():
                continue
            segmentations, areas, boxes = [], [], []
            for frame_mask in masks:
                if not frame_mask.any():
                    segmentations.append(None)
                    areas.append(None)
                    boxes.append(None)
                    continue
                rle = encode_mask(frame_mask)
                areas.append(int(mask_utils.area(rle)))
                boxes.append([float(v) for v in mask_utils.toBbox(rle)])
                segmentations.append(to_json(rle))
            entries["annotations"].append(
                {
                    "id": len(entries["annotations"]) + 1,
                    "video_id": video_id,
                    "category_id": category,
                    "iscrowd": 0,
                    "height": height,
                    "width": width,
                    "length": 1,
                    "segmentations": segmentations,
                    "areas": areas,
                    "bboxes": boxes,
                    "occlusion": list(video.occlusion[index]),
                }
            )
    return entries


def write_synthetic_dataset(
    out_dir: "PathLike",
    num_videos: int,
    *,
    split: str = "train",
    num_frames: int = 16,
    height: int = 96,
    width: int = 128,
    objects: Tuple[int, int] = (2, 5),
) -> Dict[str, Any]:
    """Write ``num_videos`` videos as JPEG folders under ``out_dir/JPEGImages`` and their
    annotations as ``out_dir/annotations.json`` (YouTube-VIS / OVIS format).

    ``split`` picks disjoint seed ranges ("train", "val", "test"), so a split is the same
    wherever it is drawn and never shares a video with another split.
    """
    from .io.files import atomic_output, write_json

    splits = {"train": 0, "val": 1_000_000, "test": 2_000_000}
    if split not in splits:
        raise ValueError(f"split must be one of {sorted(splits)}, got {split!r}")
    seed_rng = np.random.default_rng(splits[split])
    videos, names = [], []
    for number in range(num_videos):
        seed = splits[split] + number
        count = int(seed_rng.integers(objects[0], objects[1] + 1))
        video = synthetic_video(num_frames, height, width, count, seed=seed)
        name = f"{split}_{number:04d}"
        for frame, image in enumerate(video.frames):
            path = f"{out_dir}/JPEGImages/{name}/{frame:05d}.jpg"
            with atomic_output(path) as temporary:
                if not cv2.imwrite(temporary, image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                    raise OSError(f"cannot write {path}")
        videos.append(video)
        names.append(name)
    annotations = synthetic_annotations(videos, names)
    write_json(f"{out_dir}/annotations.json", annotations)
    return annotations
