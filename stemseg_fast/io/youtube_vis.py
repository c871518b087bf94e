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

import numpy as np

from .files import atomic_output, read_json
from .rle import encode_mask, to_json

ABSENT_CHOICES = ("empty", "none")


def youtube_vis_predictions(video_tracks, *, video_id=None, absent="empty"):
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
            f"dataset's id (pass video_id= or read the video from the annotation file)")
    empty = (to_json(encode_mask(np.zeros(video_tracks.frame_size, dtype=np.uint8)))
             if absent == "empty" else None)
    predictions = []
    for track in video_tracks.tracks:
        if track.category_id is None:
            raise ValueError(f"video {video_tracks.name!r}: track {track.track_id} has no "
                             f"category_id")
        segmentations = []
        for frame in range(video_tracks.num_frames):
            rle = track.rle(frame)
            segmentations.append(empty if rle is None else to_json(rle))
        predictions.append({"video_id": int(video_id), "score": float(track.score),
                            "category_id": int(track.category_id),
                            "segmentations": segmentations})
    return predictions


def write_youtube_vis_results(path, predictions, *, zip_path=None):
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


def read_youtube_vis_results(path):
    """Load a results file and check its shape; returns the list of entries."""
    predictions = read_json(path, "results file")
    if not isinstance(predictions, list):
        raise ValueError(f"results file {path} must hold a list of predictions, got "
                         f"{type(predictions).__name__}")
    for position, entry in enumerate(predictions):
        where = f"results file {path}: entry {position}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object, got {type(entry).__name__}")
        missing = {"video_id", "score", "category_id", "segmentations"} - set(entry)
        if missing:
            raise ValueError(f"{where} lacks {sorted(missing)}")
        for key in ("video_id", "category_id"):
            if isinstance(entry[key], bool) or not isinstance(entry[key], int):
                raise ValueError(f"{where}: '{key}' must be an integer, got {entry[key]!r}")
        score = entry["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) \
                or not math.isfinite(score):
            raise ValueError(f"{where}: 'score' must be a finite number, got {score!r}")
        if not isinstance(entry["segmentations"], list):
            raise ValueError(f"{where}: 'segmentations' must be a list, one entry per frame")
    return predictions
