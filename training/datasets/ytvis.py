"""YouTube-VIS 2019/2021 and OVIS annotation JSON, read directly (no conversion step).

Format (both datasets share it): ``videos`` [{id, file_names, height, width, ...}],
``annotations`` [{video_id, category_id, iscrowd, segmentations: per frame RLE (compressed or
uncompressed), polygons or null}], ``categories`` [{id, name}]. ``file_names`` are relative to
the image root (``<root>/<video>/<frame>.jpg``). Crowd annotations become the ignore region.
"""

import os
from typing import Dict, List, Tuple

from stemseg_fast.io.files import PathLike, read_json
from stemseg_fast.io.rle import segmentation_to_rle

from .masks import check_images, merge_rles
from .samples import VideoSample


def read_ytvis(
    annotation_file: PathLike, image_root: PathLike, *, check_sizes: str = "first"
) -> Tuple[List[VideoSample], Dict[int, str]]:
    """Reads a YouTube-VIS (2019/2021) or OVIS annotation file.

    Args:
        annotation_file: path of the JSON file.
        image_root: folder that ``file_names`` are relative to.
        check_sizes: see :func:`masks.check_images` ("first", "all", "none").
    Returns:
        (videos: list[VideoSample], category_names: dict[int, str]). Videos without any
        non-crowd annotation are left out.
    Raises:
        ValueError naming the file: unreadable JSON, missing keys, missing images, sizes that
        disagree, an annotation with the wrong number of frames, or no usable video.
    """
    data = read_json(annotation_file, "annotation file")
    for key in ("videos", "annotations", "categories"):
        if key not in data:
            raise ValueError(
                f"{annotation_file}: missing key '{key}' (expected YouTube-VIS/OVIS format)"
            )
    category_names = {int(c["id"]): c.get("name", str(c["id"])) for c in data["categories"]}
    by_video = {}
    for annotation in data["annotations"]:
        by_video.setdefault(annotation["video_id"], []).append(annotation)

    videos = []
    for video in data["videos"]:
        annotations = by_video.get(video["id"], [])
        height, width = int(video["height"]), int(video["width"])
        num_frames = len(video["file_names"])
        instances, crowds = [], []
        for annotation in annotations:
            where = f"{annotation_file}: annotation {annotation.get('id')} of video {video['id']}"
            segmentations = annotation.get("segmentations")
            if segmentations is None or len(segmentations) != num_frames:
                found = "none" if segmentations is None else len(segmentations)
                raise ValueError(f"{where} has {found} segmentations for {num_frames} frames")
            if annotation.get("category_id") not in category_names:
                raise ValueError(
                    f"{where}: category_id {annotation.get('category_id')} is not in 'categories'"
                )
            rles = tuple(
                segmentation_to_rle(s, height, width, where, skip_degenerate=True)
                for s in segmentations
            )
            (crowds if annotation.get("iscrowd", 0) else instances).append(
                (int(annotation["category_id"]), rles)
            )
        if not instances:
            continue
        paths = tuple(os.path.join(image_root, name) for name in video["file_names"])
        check_images(paths, height, width, annotation_file=annotation_file, check_sizes=check_sizes)
        videos.append(
            VideoSample(
                name=str(
                    video.get("name") or os.path.dirname(video["file_names"][0]) or video["id"]
                ),
                frame_paths=paths,
                height=height,
                width=width,
                categories=tuple(category for category, _ in instances),
                segmentations=tuple(zip(*(rles for _, rles in instances))),
                ignore=tuple(
                    merge_rles([rles[f] for _, rles in crowds]) for f in range(num_frames)
                ),
            )
        )
    if not videos:
        raise ValueError(f"{annotation_file}: no video with an annotated instance")
    return videos, category_names


read_ovis = read_ytvis
