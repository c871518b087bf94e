"""Folders of frames and indexed-PNG instance masks -> YouTube-VIS JSON, so users can train and
evaluate on their own videos (``stemseg-fast convert``).

Input layout (DAVIS style): ``<input>/JPEGImages/<video>/<frame>.jpg`` and
``<input>/Annotations/<video>/<frame>.png``, the PNG holding 0 for background, k for object k
and 255 for "void" (ignored). Frames without a PNG are unannotated (``null`` segmentations, as
YouTube-VIS annotates every fifth frame). Each object value of a video becomes one annotation
with per-frame compressed RLE; void pixels become one ``iscrowd`` annotation, which the readers
turn into the ignore region. ``file_names`` are relative to ``<input>/JPEGImages``.

Categories: by default one class, ``object`` (id 1). A mapping file assigns categories by name:
``{"<video>": {"<mask value>": "<name>"}, "*": {...}}`` (``"*"`` applies to every video not
listed); ids are given in order of first appearance of the names. A value without a mapping is
an error naming the video and the value.
"""

import os
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
from pycocotools import mask as mask_utils

from stemseg_fast.io.files import PathLike, check_not_an_input, read_json, write_json
from stemseg_fast.io.rle import encode_mask, to_json

from .davis import VOID_VALUE

from .masks import image_size, read_indexed_png

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _load_category_mapping(path):
    mapping = read_json(path, "category mapping")
    if not isinstance(mapping, dict) or not all(
        isinstance(values, dict)
        and all(isinstance(name, str) and name.strip() for name in values.values())
        for values in mapping.values()
    ):
        raise ValueError(
            f"category mapping {path} must map video names (or '*') to "
            f"{{mask value: category name}} objects, names non-empty strings"
        )
    return mapping


def convert_mask_folders(
    input_dir: PathLike,
    out_path: PathLike,
    *,
    categories: Optional[Union[str, Mapping[str, Any]]] = None,
) -> Dict[str, Any]:
    """Writes a YouTube-VIS JSON for ``input_dir`` to ``out_path`` (atomically).

    Args:
        input_dir: folder with ``JPEGImages/`` and ``Annotations/`` (layout above).
        out_path: the JSON file to write.
        categories: None (one class "object"), a path to a mapping file, or the mapping dict.
    Returns:
        The written dict.
    """
    image_dir = os.path.join(input_dir, "JPEGImages")
    annotation_dir = os.path.join(input_dir, "Annotations")
    target = os.path.realpath(out_path)
    for folder in (image_dir, annotation_dir):  # the frames and masks read
        if os.path.commonpath([os.path.realpath(folder), target]) == os.path.realpath(folder):
            raise ValueError(
                f"--out {out_path} lies among the input frames or masks "
                f"({folder}); write the JSON elsewhere"
            )
    check_not_an_input(out_path, [categories if isinstance(categories, str) else None], "--out")
    for folder in (image_dir, annotation_dir):
        if not os.path.isdir(folder):
            raise ValueError(f"input_dir {input_dir}: folder {folder} does not exist")
    mapping = _load_category_mapping(categories) if isinstance(categories, str) else categories
    category_ids = {} if mapping is not None else {"object": 1}

    videos, annotations = [], []
    for video_name in sorted(os.listdir(annotation_dir)):
        if not os.path.isdir(os.path.join(annotation_dir, video_name)):
            continue
        frame_dir = os.path.join(image_dir, video_name)
        if not os.path.isdir(frame_dir):
            raise ValueError(f"masks for video '{video_name}' but no frame folder {frame_dir}")
        frames = sorted(f for f in os.listdir(frame_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not frames:
            raise ValueError(f"frame folder {frame_dir} holds no image")
        height, width = image_size(os.path.join(frame_dir, frames[0]))
        label_maps = []
        for frame in frames:
            png = os.path.join(annotation_dir, video_name, os.path.splitext(frame)[0] + ".png")
            labels = read_indexed_png(png) if os.path.isfile(png) else None
            if labels is not None and labels.shape != (height, width):
                raise ValueError(
                    f"mask {png} is {labels.shape[1]}x{labels.shape[0]} but frame "
                    f"{frames[0]} is {width}x{height}"
                )
            label_maps.append(labels)
        present = [labels for labels in label_maps if labels is not None]
        if not present:
            continue
        values = sorted(set(np.unique(np.stack(present)).tolist()) - {0, VOID_VALUE})
        video_id = len(videos) + 1
        videos.append(
            {
                "id": video_id,
                "name": video_name,
                "width": width,
                "height": height,
                "length": len(frames),
                "file_names": [f"{video_name}/{frame}" for frame in frames],
            }
        )
        for value in values:
            annotations.append(
                _annotation(
                    label_maps,
                    value=value,
                    video_id=video_id,
                    category_id=_category_id(mapping, category_ids, video_name, value),
                    iscrowd=0,
                    height=height,
                    width=width,
                )
            )
        if any((labels == VOID_VALUE).any() for labels in present):
            annotations.append(
                _annotation(
                    label_maps,
                    value=VOID_VALUE,
                    video_id=video_id,
                    category_id=next(iter(category_ids.values()), 1),
                    iscrowd=1,
                    height=height,
                    width=width,
                )
            )
    if not videos:
        raise ValueError(f"input_dir {input_dir}: no video with a mask PNG under {annotation_dir}")
    for number, annotation in enumerate(annotations, 1):
        annotation["id"] = number
    result = {
        "info": {"description": f"converted from {os.path.abspath(input_dir)}"},
        "licenses": [],
        "videos": videos,
        "annotations": annotations,
        "categories": [
            {"id": i, "name": name, "supercategory": name} for name, i in category_ids.items()
        ],
    }
    write_json(out_path, result)
    return result


def _category_id(mapping, category_ids, video_name, value):
    if mapping is None:
        return 1
    per_video = mapping.get(video_name, mapping.get("*", {}))
    name = per_video.get(str(value))
    if name is None:
        raise ValueError(
            f"category mapping has no entry for mask value {value} of video '{video_name}'"
        )
    return category_ids.setdefault(name, len(category_ids) + 1)


def _annotation(label_maps, *, value, video_id, category_id, iscrowd, height, width):
    segmentations, areas, boxes = [], [], []
    for labels in label_maps:
        mask = None if labels is None else labels == value
        if mask is None or not mask.any():
            segmentations.append(None)
            areas.append(None)
            boxes.append(None)
            continue
        rle = encode_mask(mask)
        segmentations.append(to_json(rle))
        areas.append(int(mask_utils.area(rle)))
        boxes.append([float(v) for v in mask_utils.toBbox(rle)])
    return {
        "video_id": video_id,
        "category_id": category_id,
        "iscrowd": iscrowd,
        "height": height,
        "width": width,
        "length": len(label_maps),
        "segmentations": segmentations,
        "areas": areas,
        "bboxes": boxes,
    }
