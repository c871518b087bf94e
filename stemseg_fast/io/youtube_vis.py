"""YouTube-VIS / OVIS results: the JSON the CodaLab servers and the ``youtubevos/cocoapi``
(``YTVOS.loadRes``, ``YTVOSeval``) read.

A list with one entry per track::

    {"video_id": int, "score": float, "category_id": int,
     "segmentations": [RLE or None, one per frame of the video]}

RLE is COCO compressed RLE ``{"size": [h, w], "counts": str}`` (pycocotools bytes decoded to
str, as JSON needs). Frames where the track has no mask: the official STEm-Seg code writes an
encoded empty mask; the loader also accepts ``None`` (``loadRes`` tests ``if seg:``) and the
evaluation gives both the same IoU, so ``absent="empty"`` (default, parity) and
``absent="none"`` (smaller files) are equivalent to the scorer.
"""

import json
import math
import os
import zipfile
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from .files import (
    PathLike,
    atomic_output,
    json_field,
    json_integer,
    naming_the_file,
    read_json_document,
)
from .rle import encode_mask, to_json

ABSENT_CHOICES = ("empty", "none")

if TYPE_CHECKING:  # tracks.py imports io.rle: only the checker reads this import
    from stemseg_fast.tracks import VideoTracks


def youtube_vis_predictions(
    video_tracks: "VideoTracks", *, video_id: Optional[int] = None, absent: str = "empty"
) -> List[Dict[str, Any]]:
    """The result entries of one video, tracks in their order.

    Args:
        video_tracks (VideoTracks): every track needs a ``category_id``.
        video_id (int or None): overrides ``video_tracks.video_id``.
        absent ("empty" | "none"): what a frame without the track's mask holds.
    Returns:
        list[dict], JSON-serialisable.
    """
    if absent not in ABSENT_CHOICES:
        raise ValueError(f"absent must be one of {ABSENT_CHOICES}, got {absent!r}")
    video_id = video_tracks.video_id if video_id is None else video_id
    if video_id is None:
        raise ValueError(
            f"video {video_tracks.name!r} has no video_id: YouTube-VIS results need the "
            f"dataset's id (pass video_id= or read the video from the annotation file)"
        )
    empty = (
        to_json(encode_mask(np.zeros(video_tracks.frame_size, dtype=np.uint8)))
        if absent == "empty"
        else None
    )
    predictions = []
    for track in video_tracks.tracks:
        if track.category_id is None:
            raise ValueError(
                f"video {video_tracks.name!r}: track {track.track_id} has no category_id"
            )
        segmentations = []
        for frame in range(video_tracks.num_frames):
            rle = track.rle(frame)
            segmentations.append(empty if rle is None else to_json(rle))
        predictions.append(
            {
                "video_id": int(video_id),
                "score": float(track.score),
                "category_id": int(track.category_id),
                "segmentations": segmentations,
            }
        )
    return predictions


def write_youtube_vis_results(
    path: PathLike, predictions: List[Dict[str, Any]], *, zip_path: Optional[PathLike] = None
) -> str:
    """Write the results list as JSON to ``path`` atomically; with ``zip_path`` also the
    archive the CodaLab servers take (one member, ``results.json``), atomically too.

    Args:
        predictions (list[dict]): entries from :func:`youtube_vis_predictions`, all videos.
    Returns:
        ``path``.
    """
    with atomic_output(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(predictions, handle)
        if zip_path is not None:
            with atomic_output(zip_path) as temporary_zip:
                with zipfile.ZipFile(temporary_zip, "w", zipfile.ZIP_DEFLATED) as archive:
                    archive.write(temporary, arcname="results.json")
    return os.fspath(path)


def _checked_entry(entry, index):
    where = f"result #{index}"
    video_id = json_integer(json_field(entry, "video_id", where), where, "video_id")
    where = f"result #{index} (video {video_id})"
    json_integer(json_field(entry, "category_id", where), where, "category_id")
    score = json_field(entry, "score", where)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ValueError(f"{where}: 'score' must be a finite number, got {score!r}")
    if not isinstance(json_field(entry, "segmentations", where), list):
        raise ValueError(f"{where}: 'segmentations' must be a list, one entry per frame")
    return entry


def read_youtube_vis_results(source: Any, what: str = "results file") -> list:
    """The entries of a results file: a JSON path, the CodaLab zip holding one JSON, or the
    already parsed list. Each entry is checked to have an integer ``video_id`` and
    ``category_id``, a finite ``score`` and a list of ``segmentations`` (their masks are checked
    where a frame size is known: evaluation, render); errors name the file and the entry
    (``result #i (video v)``)."""
    entries = read_json_document(source, what)
    if not isinstance(entries, list):
        named = f"{what} {os.fspath(source)}" if isinstance(source, (str, os.PathLike)) else what
        raise ValueError(f"{named} must hold a list of predictions, got {type(entries).__name__}")
    with naming_the_file(source, what):
        return [_checked_entry(entry, index) for index, entry in enumerate(entries)]
