"""Reading and checking YouTube-VIS / OVIS ground truth and results for the video AP.

Formats (the ``youtubevos/cocoapi`` ``YTVOS`` loader; OVIS uses the same files plus a per-frame
``occlusion`` list in each ground-truth annotation)::

    ground truth: {"videos": [{"id", "height", "width", "length" or "file_names", ...}],
                   "categories": [{"id", "name"}],
                   "annotations": [{"id", "video_id", "category_id", "iscrowd",
                                    "segmentations": [RLE or polygons or None, one per frame],
                                    "areas": [number or None, one per frame] (optional),
                                    "occlusion": ["no_occlusion" | "slight_occlusion" |
                                                  "severe_occlusion" | None, ...] (OVIS)}]}
    results: [{"video_id", "category_id", "score", "segmentations": [RLE or None, ...]}]

A segmentation is compressed RLE (``counts`` a string), uncompressed RLE (``counts`` a list of
run lengths) or COCO polygons, as ``YTVOS.annToRLE`` accepts; a falsy one (``None``, ``{}``,
``[]``) means the instance is absent from that frame (``if a:`` in the loader). Everything is
normalised to compressed RLE with ``bytes`` counts.

Checks, each a ``ValueError`` naming the video and annotation: the original loader's (every
result's video id is a ground-truth video) plus what it leaves to crash or to silently wrong
numbers: one segmentation per frame, masks of the video's size, run lengths that add up to
height x width (pycocotools 2.0.11 loops forever in ``mask.iou`` on runs that fall short),
known category ids (the original silently drops results of unknown categories), finite scores.
Absent ``iscrowd`` reads as 0 (the original raises ``KeyError``).
"""

import dataclasses
import math
from typing import Any, List

import numpy as np
from pycocotools import mask as mask_utils

from ..io.files import json_field, json_integer, naming_the_file, read_json_document
from ..io.youtube_vis import read_youtube_vis_results
from ..io.rle import segmentation_to_rle

MAX_VIDEO_EXTENT = 100_000  # frames or pixels a side; beyond it a file is damaged, not a video
OCCLUSION_SCORES = {"no_occlusion": 0.0, "slight_occlusion": 0.25, "severe_occlusion": 0.75}
"""OVIS toolkit ``OVISeval.occann2score``: per-frame occlusion label -> score."""


@dataclasses.dataclass(frozen=True)
class Video:
    id: int
    height: int
    width: int
    num_frames: int


@dataclasses.dataclass(frozen=True)
class Tube:
    """One instance through a video.

    Attributes:
        masks (tuple[dict or None]): compressed RLE per frame, ``None`` where absent.
        areas (ndarray[F] float64): pixels per frame, 0 where absent.
    """

    masks: tuple
    areas: np.ndarray

    @property
    def mean_area(self) -> float:
        """Mean area over the frames with a non-empty mask (the loader's ``avg_area``: ``[a for
        a in areas if a]``), 0 for a tube without any."""
        present = self.areas[self.areas > 0]
        return float(present.mean()) if present.size else 0.0


@dataclasses.dataclass(frozen=True)
class GroundTruthInstance:
    id: int
    video_id: int
    category_id: int
    tube: Tube
    mean_area: float
    iscrowd: bool
    occlusion_score: float | None


@dataclasses.dataclass(frozen=True)
class Detection:
    id: int
    video_id: int
    category_id: int
    score: float
    tube: Tube


@dataclasses.dataclass(frozen=True)
class VideoGroundTruth:
    """A ground-truth file, checked.

    Attributes:
        videos (dict[int, Video]), categories (dict[int, str]): by id.
        instances (list[GroundTruthInstance]): in file order.
    """

    videos: dict
    categories: dict
    instances: list


def _crowd_flag(value, where):
    if value not in (0, 1):  # True and False compare equal to 1 and 0
        raise ValueError(f"{where}: 'iscrowd' must be 0 or 1, got {value!r}")
    return bool(value)


def _tube(segmentations, video, where):
    if not isinstance(segmentations, list):
        raise ValueError(f"{where}: 'segmentations' must be a list, one entry per frame")
    if len(segmentations) != video.num_frames:
        raise ValueError(
            f"{where}: {len(segmentations)} segmentations for video {video.id} "
            f"of {video.num_frames} frames (one per frame expected)"
        )
    # a falsy entry is an absent mask, as YTVOS.loadRes tests ``if seg:``
    masks = tuple(
        segmentation_to_rle(s or None, video.height, video.width, f"{where} frame {t}")
        for t, s in enumerate(segmentations)
    )
    present = [t for t, m in enumerate(masks) if m is not None]
    areas = np.zeros(video.num_frames, dtype=np.float64)
    if present:
        areas[present] = mask_utils.area([masks[t] for t in present])
    return Tube(masks=masks, areas=areas)


def _videos(dataset):
    videos = {}
    for index, entry in enumerate(json_field(dataset, "videos", "ground truth")):
        where = f"ground truth video #{index}"
        video_id = json_integer(json_field(entry, "id", where), where, "id")
        where = f"ground truth video {video_id}"
        if video_id in videos:
            raise ValueError(f"{where}: duplicate video id")
        if "length" in entry:
            num_frames = json_integer(entry["length"], where, "length")
        elif "file_names" in entry:
            num_frames = len(entry["file_names"])
        else:
            raise ValueError(f"{where}: needs 'length' or 'file_names' to know its frame count")
        height = json_integer(json_field(entry, "height", where), where, "height")
        width = json_integer(json_field(entry, "width", where), where, "width")
        for name, value in (("height", height), ("width", width), ("length", num_frames)):
            if not 1 <= value <= MAX_VIDEO_EXTENT:
                raise ValueError(
                    f"{where}: '{name}' must be in [1, {MAX_VIDEO_EXTENT}], got {value}"
                )
        videos[video_id] = Video(id=video_id, height=height, width=width, num_frames=num_frames)
    return videos


def _occlusion_score(labels, where):
    """OVIS toolkit ``OVISeval._prepare``: the mean of the top half (``ceil(n / 2)``) of the
    per-frame occlusion scores over the frames with a label."""
    if not isinstance(labels, list):
        raise ValueError(f"{where}: 'occlusion' must be a list of per-frame labels")
    unknown = {label for label in labels if label is not None and label not in OCCLUSION_SCORES}
    if unknown:
        raise ValueError(
            f"{where}: unknown occlusion labels {sorted(map(str, unknown))}; "
            f"expected one of {list(OCCLUSION_SCORES)} or null"
        )
    scores = sorted(OCCLUSION_SCORES[label] for label in labels if label is not None)
    if not scores:
        raise ValueError(f"{where}: 'occlusion' has no labelled frame")
    top = scores[-math.ceil(len(scores) / 2) :]
    return sum(top) / len(top)


def load_ground_truth(source: Any, *, occlusion: bool = False) -> VideoGroundTruth:
    """Read and check a YouTube-VIS / OVIS ground-truth file.

    Args:
        source (str, PathLike or dict): a JSON path (or a zip holding one JSON) or the parsed
            dict.
        occlusion (bool): read each annotation's OVIS ``occlusion`` list (then required).
    Returns:
        VideoGroundTruth.
    """
    dataset = read_json_document(source, "ground truth")
    with naming_the_file(source, "ground truth file"):
        return _checked_ground_truth(dataset, occlusion)


def _checked_ground_truth(dataset, occlusion):
    if not isinstance(dataset, dict):
        raise ValueError(
            f"ground truth: expected a JSON object with 'videos', 'categories' and "
            f"'annotations', got {type(dataset).__name__}"
        )
    videos = _videos(dataset)
    categories = {}
    for index, entry in enumerate(json_field(dataset, "categories", "ground truth")):
        where = f"ground truth category #{index}"
        category_id = json_integer(json_field(entry, "id", where), where, "id")
        if category_id in categories:
            raise ValueError(f"ground truth category {category_id}: duplicate category id")
        categories[category_id] = str(entry.get("name", category_id))
    instances = []
    seen_ids = set()
    for index, entry in enumerate(json_field(dataset, "annotations", "ground truth")):
        where = f"ground truth annotation #{index}"
        annotation_id = json_integer(json_field(entry, "id", where), where, "id")
        video_id = json_integer(json_field(entry, "video_id", where), where, "video_id")
        where = f"ground truth annotation {annotation_id} (video {video_id})"
        if annotation_id in seen_ids:
            raise ValueError(f"{where}: duplicate annotation id")
        seen_ids.add(annotation_id)
        if video_id not in videos:
            raise ValueError(f"{where}: unknown video id {video_id}")
        category_id = json_integer(json_field(entry, "category_id", where), where, "category_id")
        if category_id not in categories:
            raise ValueError(f"{where}: unknown category id {category_id}")
        video = videos[video_id]
        tube = _tube(json_field(entry, "segmentations", where), video, where)
        mean_area = tube.mean_area
        if entry.get("areas") is not None:
            # The loader takes the file's areas for the ground truth (its own for results).
            areas = entry["areas"]
            if (
                not isinstance(areas, list)
                or len(areas) != video.num_frames
                or not all(
                    a is None
                    or (
                        isinstance(a, (int, float))
                        and not isinstance(a, bool)
                        and math.isfinite(a)
                        and a >= 0
                    )
                    for a in areas
                )
            ):
                raise ValueError(
                    f"{where}: 'areas' must hold one finite number >= 0 or null per frame"
                )
            present = [a for a in areas if a]
            mean_area = float(np.mean(present)) if present else 0.0
        occlusion_score = None
        if occlusion:
            occlusion_score = _occlusion_score(json_field(entry, "occlusion", where), where)
        instances.append(
            GroundTruthInstance(
                id=annotation_id,
                video_id=video_id,
                category_id=category_id,
                tube=tube,
                mean_area=mean_area,
                iscrowd=_crowd_flag(entry.get("iscrowd", 0), where),
                occlusion_score=occlusion_score,
            )
        )
    return VideoGroundTruth(videos=videos, categories=categories, instances=instances)


def load_results(source: Any, ground_truth: VideoGroundTruth) -> List[Detection]:
    """Read and check a YouTube-VIS / OVIS results file against its ground truth.

    Args:
        source (str, PathLike or list): a JSON path (or the CodaLab zip holding one JSON) or
            the parsed list (see :func:`stemseg_fast.io.youtube_vis.read_youtube_vis_results`).
        ground_truth (VideoGroundTruth).
    Returns:
        list[Detection]: in file order, ids 1, 2, ... as ``YTVOS.loadRes`` numbers them.
    """
    entries = read_youtube_vis_results(source)
    with naming_the_file(source, "results file"):
        return _checked_results(entries, ground_truth)


def _checked_results(entries, ground_truth):
    detections = []
    for index, entry in enumerate(entries):
        video_id, category_id = entry["video_id"], entry["category_id"]
        where = f"result #{index} (video {video_id})"
        if video_id not in ground_truth.videos:
            raise ValueError(f"{where}: video id {video_id} is not in the ground truth")
        if category_id not in ground_truth.categories:
            raise ValueError(
                f"{where}: unknown category id {category_id} (ground truth has "
                f"{sorted(ground_truth.categories)})"
            )
        tube = _tube(entry["segmentations"], ground_truth.videos[video_id], where)
        detections.append(
            Detection(
                id=index + 1,
                video_id=int(video_id),
                category_id=int(category_id),
                score=float(entry["score"]),
                tube=tube,
            )
        )
    return detections
