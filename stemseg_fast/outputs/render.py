"""Render an existing YouTube-VIS/OVIS results file onto its videos, without the model."""

import os
from collections import defaultdict
from typing import List, Optional, Sequence, Union

from ..categories import read_category_names
from ..io.files import check_not_an_input, output_path, read_json, remove_partial_outputs
from ..io.rle import checked_rle
from ..io.video import annotation_videos, expand_inputs, open_video
from ..io.youtube_vis import read_youtube_vis_results
from ..tracks import Track, VideoTracks
from .overlay import DEFAULT_CODECS, write_overlay_video


def _recorded_videos(videos_json):
    """``video_id -> (name, input path or None)`` from the videos.json ``infer`` writes."""
    entries = read_json(videos_json, "videos file")
    if not isinstance(entries, list):
        raise ValueError(f"videos file {videos_json} must hold a list of videos")
    videos = {}
    for position, entry in enumerate(entries):
        where = f"videos file {videos_json}: entry {position}"
        if (
            not isinstance(entry, dict)
            or isinstance(entry.get("id"), bool)
            or not isinstance(entry.get("id"), int)
            or not isinstance(entry.get("name"), str)
        ):
            raise ValueError(f"{where} needs an integer 'id' and a 'name'")
        path = entry.get("path")
        if path is not None and not isinstance(path, str):
            raise ValueError(f"{where}: 'path' must be a string")
        if entry["name"] in {name for name, _ in videos.values()}:
            raise ValueError(
                f"{where}: a second video named {entry['name']!r} (names must be "
                f"unique: they name the overlays)"
            )
        videos[entry["id"]] = (entry["name"], path)
    return videos


def _sources_by_id(results_json, videos_dir, annotations):
    """``video_id -> frame source`` and where the ids were looked up (for errors)."""
    if annotations is not None:
        return (
            {
                source.video_id: source
                for source in annotation_videos(annotations, image_root=videos_dir)
            },
            annotations,
        )
    videos_json = os.path.join(os.path.dirname(os.path.abspath(results_json)), "videos.json")
    if os.path.isfile(videos_json):  # written by infer beside its results
        found = (
            {source.name: source for source in expand_inputs([videos_dir])} if videos_dir else {}
        )
        sources = {}
        for video_id, (name, path) in _recorded_videos(videos_json).items():
            if videos_dir is not None:
                if name in found:
                    sources[video_id] = found[name]
            elif path is not None and os.path.exists(path):
                sources[video_id] = open_video(path, name=name)
        return sources, videos_dir or videos_json
    if videos_dir is None:
        raise ValueError(
            f"results file {results_json}: no videos.json beside it: pass "
            f"--videos (a folder of videos named by video_id) or --annotations"
        )
    return (
        {
            int(source.name): source
            for source in expand_inputs([videos_dir])
            if source.name.isascii() and source.name.isdigit()
        },
        videos_dir,
    )


def _recorded_category_names(results_json):
    path = os.path.join(os.path.dirname(os.path.abspath(results_json)), "categories.json")
    return read_category_names(path, "categories file") if os.path.isfile(path) else None


def render(
    results_json: Union[str, os.PathLike],
    videos_dir: Optional[str] = None,
    out_dir: str = "render_output",
    *,
    annotations: Optional[str] = None,
    score_threshold: float = 0.0,
    codecs: Sequence[str] = DEFAULT_CODECS,
) -> List[str]:
    """Write ``<out_dir>/<video name>.mp4`` for every video that has predictions.

    The videos are found, in this order: through ``annotations`` (its ``file_names`` under
    ``videos_dir``); through the ``videos.json`` that ``infer`` writes beside its results (by
    name in ``videos_dir`` if given, else at the input path it recorded); or, without either, in
    ``videos_dir`` named by ``video_id`` (``3.mp4`` or ``3/00000.jpg``). Class names come from
    ``annotations`` or from the ``categories.json`` beside the results.

    Args:
        results_json (str): a YouTube-VIS/OVIS results file.
        videos_dir (str or None): see above.
        annotations (str or None): the dataset's annotation file.
        score_threshold (float): predictions scoring below it are not drawn.
    Returns:
        list of the written paths.
    """
    predictions = read_youtube_vis_results(results_json)
    sources, where = _sources_by_id(results_json, videos_dir, annotations)
    category_names = (
        read_category_names(annotations)
        if annotations is not None
        else _recorded_category_names(results_json)
    )
    remove_partial_outputs(out_dir)
    by_video = defaultdict(list)
    for prediction in predictions:
        if prediction["score"] >= score_threshold:
            by_video[int(prediction["video_id"])].append(prediction)
    missing = sorted(set(by_video) - set(sources))
    if missing:
        raise ValueError(
            f"results file {results_json}: video_id {missing[0]} is not found through {where}"
        )
    # Every video is checked before the first overlay is written: a bad one leaves no output.
    jobs = []
    for video_id, video_predictions in sorted(by_video.items()):
        source = sources[video_id]
        path = output_path(out_dir, f"{source.name}.mp4", what="video name")
        check_not_an_input(path, [getattr(source, "path", None)], "overlay")
        jobs.append(
            (
                path,
                source,
                _video_tracks(results_json, video_id, video_predictions, source, category_names),
            )
        )
    names = [path for path, _, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError(
            f"results file {results_json}: two videos have the same name, so their "
            f"overlays would overwrite each other"
        )
    for path, source, video_tracks in jobs:
        write_overlay_video(path, source, video_tracks, codecs=codecs)
    return names


def _video_tracks(results_json, video_id, predictions, source, category_names):
    """The predictions of one video as tracks numbered 1, 2, ... in file order."""
    num_frames = len(predictions[0]["segmentations"])
    tracks = []
    for number, prediction in enumerate(predictions, 1):
        segmentations = prediction["segmentations"]
        if len(segmentations) != num_frames or not segmentations:
            raise ValueError(
                f"results file {results_json}: the predictions for video_id "
                f"{video_id} need one segmentation per frame, the same number "
                f"each (the overlay checks it against the video's frames)"
            )
        rles = {
            frame: checked_rle(
                rle,
                *source.frame_size,
                f"results file {results_json}: video_id {video_id} frame {frame}",
            )
            for frame, rle in enumerate(segmentations)
            if rle
        }
        tracks.append(
            Track(
                number,
                source.frame_size,
                rles,
                category_id=prediction["category_id"],
                score=prediction["score"],
            )
        )
    return VideoTracks(
        source.name,
        tracks,
        source.frame_size,
        num_frames,
        fps=source.fps,
        video_id=video_id,
        category_names=category_names,
    )
