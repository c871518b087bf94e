"""Every output format of a prediction, written in one call.

Formats (under ``out_dir``):
  youtube_vis  results.json (+ results.zip for CodaLab): YouTube-VIS/OVIS results, every video
  davis        davis/<video>/00000.png ...: DAVIS palette PNGs
  kitti_mots   kitti_mots/results/<video>.txt and the official post-filter's kitti_mots/results_nms/
  overlay      overlay/<video>.mp4 at the source fps, plus results.json describing what is drawn
and always videos.json (each video's id, name, size, length, fps and input path) and, when the
model names its classes, categories.json (for ``render`` and ``eval``).

:func:`write_outputs` does it all for finished predictions. A long batch writes each video's
files as soon as it is done (:func:`write_video_outputs`) and the files over every video at the
end (:func:`write_merged_outputs`).
"""

import os
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Union

from stemseg_fast.benchmarks import DAVIS, KITTI_MOTS, YOUTUBE_VIS
from stemseg_fast.inference.prediction import VideoPrediction
from stemseg_fast.inference.predictor import VideoInput
from stemseg_fast.io.davis import davis_sequence_folder, write_davis_pngs
from stemseg_fast.io.files import (
    UnsafeOutputError,
    check_output_name,
    output_path,
    remove_partial_outputs,
    write_json,
)
from stemseg_fast.io.kitti_mots import (
    kitti_mots_detections,
    kitti_mots_sequence_path,
    postprocess_kitti_mots,
    write_kitti_mots_txt,
)
from stemseg_fast.io.video import FrameSource
from stemseg_fast.io.youtube_vis import write_youtube_vis_results, youtube_vis_predictions
from stemseg_fast.model.presets import STEmSegConfig

from .overlay import write_overlay_video

OVERLAY = "overlay"
FORMATS = (YOUTUBE_VIS, DAVIS, KITTI_MOTS, OVERLAY)
KITTI_MOTS_NUM_CLASSES = 3  # background, car, pedestrian
KITTI_RESULTS_FOLDER = ("kitti_mots", "results")
KITTI_FILTERED_FOLDER = ("kitti_mots", "results_nms")  # the official post-filter's, beside


@dataclass
class VideoOutputs:
    """What :func:`write_video_outputs` wrote for one video, and what the merged files need.

    Attributes:
        entries: the video's YouTube-VIS results entries (results.json holds every video's).
        video: its videos.json entry.
        seconds: wall time spent writing.
    """

    entries: list
    video: dict
    seconds: float


def check_format_names(formats: Sequence[str]) -> None:
    """Raises ``ValueError`` for a name that is not one of :data:`FORMATS`."""
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise ValueError(f"formats must be among {', '.join(FORMATS)}, got {unknown[0]!r}")


def check_formats(formats: Sequence[str], config: STEmSegConfig) -> None:
    """Raises ``ValueError`` for a format the model cannot produce (``config``: its
    :class:`~stemseg_fast.model.STEmSegConfig`)."""
    check_format_names(formats)
    if KITTI_MOTS in formats and (
        config.semantic_decoder is None or config.num_classes != KITTI_MOTS_NUM_CLASSES
    ):
        raise ValueError(
            f"the {KITTI_MOTS} format needs a model classifying background, car "
            f"and pedestrian (num_classes 3); preset {config.name!r} has "
            f"{config.num_classes if config.semantic_decoder else 'no'} classes"
        )
    if YOUTUBE_VIS in formats and config.semantic_decoder is None:
        raise ValueError(
            f"the {YOUTUBE_VIS} format needs a semantic head to classify tracks; "
            f"preset {config.name!r} has none (use davis or overlay)"
        )


def video_output_paths(out_dir: str, name: str, formats: Sequence[str]) -> Dict[str, str]:
    """Where each per-video format of the video ``name`` goes; raises
    :class:`~stemseg_fast.io.files.UnsafeOutputError` for a name that is not one file name, or
    for an existing folder this library did not write. Call it for every input before any work."""
    check_output_name(name, "video name")
    paths = {}
    if DAVIS in formats:
        paths[DAVIS] = davis_sequence_folder(output_path(out_dir, "davis"), name)
    if KITTI_MOTS in formats:
        results_dir = output_path(out_dir, *KITTI_RESULTS_FOLDER)
        sequence_number = name.isascii() and name.isdigit()  # "²" is a digit, not a number
        paths[KITTI_MOTS] = (
            kitti_mots_sequence_path(results_dir, int(name))
            if sequence_number
            else output_path(results_dir, f"{name}.txt")
        )
    if OVERLAY in formats:
        paths[OVERLAY] = output_path(out_dir, "overlay", f"{name}.mp4")
    return paths


def check_distinct_outputs(paths: Dict[str, Dict[str, str]]) -> None:
    """Two videos must not write one file: KITTI-MOTS numbers sequences, so "1" and "01" are
    both 0001.txt. ``paths``: video name -> its :func:`video_output_paths`."""
    owners = {}
    for name, video_paths in paths.items():
        for path in video_paths.values():
            if path in owners:
                raise UnsafeOutputError(
                    f"videos {owners[path]!r} and {name!r} would both write {path}: rename one"
                )
            owners[path] = name


def remove_debris(out_dir: str, extra_folders: Iterable[Sequence[str]] = ()) -> None:
    """Temporaries an interrupted earlier run left in the folders the writers use."""
    remove_partial_outputs(out_dir)
    for folder in (
        ("davis",),
        ("overlay",),
        KITTI_RESULTS_FOLDER,
        KITTI_FILTERED_FOLDER,
        *extra_folders,
    ):
        remove_partial_outputs(output_path(out_dir, *folder))


def input_location(source: FrameSource) -> Optional[str]:
    """Where ``render`` finds the video again: its file, frame folder or stream URL."""
    if hasattr(source, "path"):
        return os.path.abspath(source.path)
    if hasattr(source, "paths"):
        folders = {os.path.dirname(os.path.abspath(path)) for path in source.paths}
        return folders.pop() if len(folders) == 1 else None
    target = getattr(source, "target", None)
    return target if isinstance(target, str) else None


def write_video_outputs(
    prediction: VideoPrediction,
    formats: Sequence[str],
    paths: Dict[str, str],
    *,
    source: Optional[VideoInput] = None,
    json_rule: Optional[str] = None,
    min_score: Optional[float] = None,
) -> VideoOutputs:
    """The per-video files of one :class:`~stemseg_fast.inference.prediction.VideoPrediction`
    at ``paths`` (from :func:`video_output_paths`).

    Args:
        source: the video's frames, for the overlay (anything ``open_video`` takes).
        json_rule: the rule of results.json and overlays (default: youtube_vis when that format
            is written, else the prediction's own).
        min_score: results.json and overlays drop tracks scoring below it.
    """
    start = time.perf_counter()
    if json_rule is None:
        json_rule = YOUTUBE_VIS if YOUTUBE_VIS in formats else prediction.rule
    entries = []
    if DAVIS in formats:
        folder = paths[DAVIS]
        write_davis_pngs(
            os.path.dirname(folder), prediction.select(DAVIS), sequence=os.path.basename(folder)
        )
    if KITTI_MOTS in formats:
        write_kitti_mots_txt(
            paths[KITTI_MOTS], kitti_mots_detections(prediction.select(KITTI_MOTS))
        )
    if YOUTUBE_VIS in formats or OVERLAY in formats:
        tracks = prediction.select(json_rule, min_score=min_score)
        entries = youtube_vis_predictions(tracks)
        if OVERLAY in formats:
            if source is None:
                raise ValueError("the overlay format draws on the video: pass source=")
            write_overlay_video(paths[OVERLAY], source, tracks)
    height, width = prediction.frame_size
    video = {
        "id": prediction.video_id,
        "name": prediction.name,
        "length": prediction.num_frames,
        "height": height,
        "width": width,
        "fps": prediction.fps,
        "path": None if source is None else input_location(source),
    }
    return VideoOutputs(entries, video, time.perf_counter() - start)


def write_merged_outputs(
    out_dir: str,
    formats: Sequence[str],
    videos: Sequence[VideoOutputs],
    category_names: Optional[dict],
) -> List[str]:
    """results.json (+ zip), the KITTI-MOTS post-filter, videos.json and categories.json over
    every finished video; returns the written paths."""
    written = []
    if YOUTUBE_VIS in formats or OVERLAY in formats:
        path = output_path(out_dir, "results.json")
        zip_path = output_path(out_dir, "results.zip") if YOUTUBE_VIS in formats else None
        write_youtube_vis_results(
            path, [entry for video in videos for entry in video.entries], zip_path=zip_path
        )
        written += [path] + ([zip_path] if zip_path else [])
    if KITTI_MOTS in formats and os.path.isdir(output_path(out_dir, *KITTI_RESULTS_FOLDER)):
        postprocess_kitti_mots(output_path(out_dir, *KITTI_RESULTS_FOLDER))
        written.append(output_path(out_dir, "kitti_mots"))
    for format_name, folder in ((DAVIS, "davis"), (OVERLAY, "overlay")):
        if format_name in formats:
            written.append(output_path(out_dir, folder))
    videos_path = output_path(out_dir, "videos.json")
    write_json(videos_path, [video.video for video in videos], indent=1)
    written.append(videos_path)
    if category_names:  # class names for render and eval, in the annotation files' form
        categories_path = output_path(out_dir, "categories.json")
        write_json(
            categories_path,
            {
                "categories": [
                    {"id": int(category_id), "name": name}
                    for category_id, name in sorted(category_names.items())
                ]
            },
            indent=1,
        )
        written.append(categories_path)
    return written


def write_outputs(
    predictions: Union[VideoPrediction, Sequence[VideoPrediction]],
    formats: Sequence[str],
    out_dir: str,
    *,
    sources: Union[VideoInput, Sequence[VideoInput], None] = None,
    min_score: Optional[float] = None,
) -> List[str]:
    """Write finished predictions in every format asked for; returns the written paths.

    Args:
        predictions: one :class:`~stemseg_fast.inference.prediction.VideoPrediction` or a list.
        formats: among :data:`FORMATS`.
        sources: the videos (one per prediction, anything ``open_video`` takes), needed for the
            overlay format and recorded in videos.json.
        min_score: results.json and overlays drop tracks scoring below it.
    """
    if not isinstance(predictions, (list, tuple)):
        predictions, sources = [predictions], None if sources is None else [sources]
    sources = [None] * len(predictions) if sources is None else list(sources)
    if len(sources) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions but {len(sources)} sources")
    check_format_names(formats)
    paths = {
        prediction.name: video_output_paths(out_dir, prediction.name, formats)
        for prediction in predictions
    }
    check_distinct_outputs(paths)
    os.makedirs(out_dir, exist_ok=True)
    remove_debris(out_dir)
    videos = [
        write_video_outputs(
            prediction, formats, paths[prediction.name], source=source, min_score=min_score
        )
        for prediction, source in zip(predictions, sources)
    ]
    category_names = next((p.category_names for p in predictions if p.category_names), None)
    return write_merged_outputs(out_dir, formats, videos, category_names)
