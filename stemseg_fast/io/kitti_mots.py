"""KITTI-MOTS results: one text file per sequence, one line per detection::

    frame track_id class_id height width rle_counts

``track_id = class_id * 1000 + n`` (class 1 car, 2 pedestrian; n = 1..M the track's number),
``rle_counts`` the COCO compressed RLE string of the mask at full frame size. Lines go track by
track (number order), frames increasing (official ``KittiMOTSOutputGenerator``).

The official post-filter (``kitti_mots_postprocessing.py``) then writes ``results_nms/`` beside
``results/``. Its four steps, in this order, with the official semantics:

1. per detection, mask area (pixels) >= min area (car 150, pedestrian 250);
2. per detection, area / bounding-box area (pycocotools ``toBbox`` w·h; 0 if the box is empty)
   strictly > min ratio (car 0.35, pedestrian 0.2);
3. per track (same ``track_id``, its remaining detections by frame), breaks / detections <= max
   break ratio (car 0.3, pedestrian 0.5), a break being a gap of more than one frame between
   consecutive detections;
4. per track, number of remaining detections >= min length (car 3, pedestrian 10).

Steps 1–2 drop detections of any other class; steps 3–4 take a track's class from its first
detection. Tracks come out grouped in order of first appearance, frames increasing.
"""

import glob
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import pycocotools.mask as mask_utils

from .files import PathLike, atomic_output
from .rle import to_json

CAR_CLASS_ID = 1
PEDESTRIAN_CLASS_ID = 2

if TYPE_CHECKING:  # tracks.py imports io.rle: only the checker reads this import
    from stemseg_fast.tracks import VideoTracks


@dataclass(frozen=True)
class KittiMOTSDetection:
    """One line of a KITTI-MOTS results file."""

    frame: int
    track_id: int
    class_id: int
    height: int
    width: int
    counts: str  # COCO compressed RLE counts

    @property
    def rle(self) -> Dict[str, Any]:
        return {"size": [self.height, self.width], "counts": self.counts.encode("utf-8")}

    @property
    def pixel_area(self) -> int:
        return int(mask_utils.area(self.rle))

    @property
    def pixel_box_area_ratio(self) -> float:
        _, _, width, height = mask_utils.toBbox(self.rle)
        box_area = width * height
        return 0.0 if box_area == 0 else self.pixel_area / float(box_area)

    def to_line(self) -> str:
        return (
            f"{self.frame} {self.track_id} {self.class_id} {self.height} {self.width} {self.counts}"
        )

    @classmethod
    def from_line(cls, line: str, where: str = "line") -> "KittiMOTSDetection":
        fields = line.split()
        if len(fields) != 6:
            raise ValueError(
                f"{where}: expected 'frame track_id class h w rle' (6 fields), got {len(fields)}"
            )
        try:
            frame, track_id, class_id, height, width = (int(value) for value in fields[:5])
        except ValueError:
            raise ValueError(
                f"{where}: the first five fields must be integers, got {' '.join(fields[:5])!r}"
            ) from None
        return cls(frame, track_id, class_id, height, width, fields[5])


def kitti_mots_detections(video_tracks: "VideoTracks") -> List[KittiMOTSDetection]:
    """Detections of one sequence. Track ``n`` of ``video_tracks.tracks`` (1-based position,
    order it with :func:`stemseg_fast.inference.selection.kitti_mots.select_kitti_mots_tracks`) gets
    ``track_id = category_id * 1000 + n``; every frame the track lists is written, empty masks
    included, as the official code does (the post-filter removes them)."""
    if len(video_tracks.tracks) > 999:
        raise ValueError(
            f"video {video_tracks.name!r} has {len(video_tracks.tracks)} tracks; "
            f"KITTI-MOTS ids hold at most 999 per class"
        )
    height, width = video_tracks.frame_size
    detections = []
    for number, track in enumerate(video_tracks.tracks, 1):
        if track.category_id not in (CAR_CLASS_ID, PEDESTRIAN_CLASS_ID):
            raise ValueError(
                f"video {video_tracks.name!r}: track {track.track_id} has "
                f"category_id {track.category_id}, KITTI-MOTS takes 1 (car) or 2 "
                f"(pedestrian)"
            )
        for frame in track.frames:
            detections.append(
                KittiMOTSDetection(
                    frame,
                    track.category_id * 1000 + number,
                    track.category_id,
                    height,
                    width,
                    to_json(track.rle(frame))["counts"],
                )
            )
    return detections


def write_kitti_mots_txt(path: PathLike, detections: Sequence[KittiMOTSDetection]) -> str:
    """Write detections, one line each, atomically. Returns ``path``."""
    with atomic_output(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.writelines(detection.to_line() + "\n" for detection in detections)
    return os.fspath(path)


def kitti_mots_sequence_path(results_dir: PathLike, sequence_id: int) -> str:
    """The official file name of a sequence: ``<results_dir>/%04d.txt``."""
    return os.path.join(results_dir, f"{int(sequence_id):04d}.txt")


def read_kitti_mots_txt(path: PathLike, what: str = "KITTI-MOTS file") -> List[KittiMOTSDetection]:
    """The detections (or ground-truth objects) of one sequence's txt file; errors name the
    file and line."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        return [
            KittiMOTSDetection.from_line(line, f"{what} {path} line {number}")
            for number, line in enumerate(handle, 1)
            if line.strip()
        ]


@dataclass(frozen=True)
class KittiMOTSFilter:
    """Thresholds of the official post-filter (its defaults)."""

    min_area_car: int = 150
    min_area_pedestrian: int = 250
    min_area_ratio_car: float = 0.35
    min_area_ratio_pedestrian: float = 0.2
    max_time_break_ratio_car: float = 0.3
    max_time_break_ratio_pedestrian: float = 0.5
    min_track_length_car: int = 3
    min_track_length_pedestrian: int = 10


def _by_track(detections):
    tracks = defaultdict(list)
    for detection in detections:
        tracks[detection.track_id].append(detection)
    return [sorted(track, key=lambda detection: detection.frame) for track in tracks.values()]


def _time_breaks(track):
    return sum(later.frame - earlier.frame > 1 for earlier, later in zip(track, track[1:]))


def filter_kitti_mots_detections(
    detections: Sequence[KittiMOTSDetection], thresholds: KittiMOTSFilter = KittiMOTSFilter()
) -> List[KittiMOTSDetection]:
    """The official post-filter (see the module docstring); returns the kept detections."""
    per_class = {
        CAR_CLASS_ID: (
            thresholds.min_area_car,
            thresholds.min_area_ratio_car,
            thresholds.max_time_break_ratio_car,
            thresholds.min_track_length_car,
        ),
        PEDESTRIAN_CLASS_ID: (
            thresholds.min_area_pedestrian,
            thresholds.min_area_ratio_pedestrian,
            thresholds.max_time_break_ratio_pedestrian,
            thresholds.min_track_length_pedestrian,
        ),
    }
    kept = [
        detection
        for detection in detections
        if detection.class_id in per_class
        and detection.pixel_area >= per_class[detection.class_id][0]
    ]
    kept = [
        detection
        for detection in kept
        if detection.pixel_box_area_ratio > per_class[detection.class_id][1]
    ]
    kept = [
        detection
        for track in _by_track(kept)
        if _time_breaks(track) / len(track) <= per_class[track[0].class_id][2]
        for detection in track
    ]
    return [
        detection
        for track in _by_track(kept)
        if len(track) >= per_class[track[0].class_id][3]
        for detection in track
    ]


def postprocess_kitti_mots(
    results_dir: PathLike,
    output_dir: Optional[PathLike] = None,
    thresholds: KittiMOTSFilter = KittiMOTSFilter(),
) -> List[str]:
    """Filter every ``*.txt`` of ``results_dir`` into ``output_dir`` (default: the official
    ``<results_dir>_nms``, i.e. ``results_nms/`` beside ``results/``), each file atomically.

    Returns:
        list of the written paths.
    """
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"KITTI-MOTS results folder {results_dir} does not exist")
    output_dir = os.path.normpath(results_dir) + "_nms" if output_dir is None else output_dir
    written = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.txt"))):
        detections = filter_kitti_mots_detections(read_kitti_mots_txt(path), thresholds)
        written.append(
            write_kitti_mots_txt(os.path.join(output_dir, os.path.basename(path)), detections)
        )
    return written
