"""Render an existing YouTube-VIS/OVIS results file onto its videos, without the model."""
from collections import defaultdict

from ..fileio import output_path, read_json, remove_partial_outputs
from ..inference.tracks import Track, VideoTracks
from ..inference.video import annotation_videos, expand_inputs
from ..rle import checked_rle
from .overlay import DEFAULT_CODECS, write_overlay_video
from .youtube_vis import read_youtube_vis_results


def _category_names(annotations):
    dataset = read_json(annotations, "annotation file")
    categories = dataset.get("categories") if isinstance(dataset, dict) else None
    names = {}
    for position, category in enumerate(categories or []):
        if not isinstance(category, dict) or isinstance(category.get("id"), bool) \
                or not isinstance(category.get("id"), int):
            raise ValueError(f"annotation file {annotations}: categories[{position}] needs an "
                             f"integer 'id'")
        names[category["id"]] = str(category.get("name", category["id"]))
    return names


def render(results_json, videos_dir, out_dir, *, annotations=None, score_threshold=0.0,
           codecs=DEFAULT_CODECS):
    """Write ``<out_dir>/<video name>.mp4`` for every video that has predictions.

    Args:
        results_json (str): a YouTube-VIS/OVIS results file.
        videos_dir (str): with ``annotations``, the frame root its ``file_names`` are relative
            to (e.g. ``valid/JPEGImages``); without, a folder of videos or frame folders named
            by ``video_id`` (``3.mp4`` or ``3/00000.jpg``).
        annotations (str or None): the dataset's annotation file: maps ``video_id`` to frames
            and gives the class names.
        score_threshold (float): predictions scoring below it are not drawn.
    Returns:
        list of the written paths.
    """
    predictions = read_youtube_vis_results(results_json)
    remove_partial_outputs(out_dir)
    if annotations is not None:
        sources = annotation_videos(annotations, image_root=videos_dir)
        category_names = _category_names(annotations)
    else:
        sources = expand_inputs([videos_dir])
        category_names = None
    by_video = defaultdict(list)
    for prediction in predictions:
        if prediction["score"] >= score_threshold:
            by_video[int(prediction["video_id"])].append(prediction)
    source_of = {}
    for source in sources:
        key = source.video_id if annotations is not None else source.name
        source_of[key] = source
    written = []
    for video_id, video_predictions in sorted(by_video.items()):
        source = source_of.get(video_id if annotations is not None else str(video_id))
        if source is None:
            where = annotations if annotations is not None else videos_dir
            raise ValueError(f"results file {results_json}: video_id {video_id} is not in "
                             f"{where}" + ("" if annotations else
                                           " (name videos by id, or pass the annotation file)"))
        tracks = []
        for number, prediction in enumerate(video_predictions, 1):
            segmentations = prediction["segmentations"]
            if len(segmentations) != len(video_predictions[0]["segmentations"]) or not (
                    segmentations):
                raise ValueError(f"results file {results_json}: the predictions for video_id "
                                 f"{video_id} need one segmentation per frame, the same number "
                                 f"each (the overlay checks it against the video's frames)")
            rles = {frame: checked_rle(rle, *source.frame_size,
                                       f"results file {results_json}: video_id {video_id} "
                                       f"frame {frame}")
                    for frame, rle in enumerate(segmentations) if rle}
            tracks.append(Track(number, source.frame_size, rles,
                                category_id=prediction["category_id"], score=prediction["score"]))
        num_frames = len(video_predictions[0]["segmentations"])
        video_tracks = VideoTracks(source.name, tracks, source.frame_size, num_frames,
                                   fps=source.fps, video_id=video_id,
                                   category_names=category_names)
        path = output_path(out_dir, f"{source.name}.mp4", what="video name")
        write_overlay_video(path, source, video_tracks, codecs=codecs)
        written.append(path)
    return written
