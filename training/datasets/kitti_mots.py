"""KITTI-MOTS / MOTSChallenge ``instances_txt``: one line per object and frame,
``frame object_id class_id height width rle`` (compressed RLE string). Class 1 car, 2
pedestrian; class 10 (object id 10000) marks ignore regions. Images are
``<image_root>/<sequence>/<frame:06d>.png``.

As the official loader does, a sequence is split wherever at least ``split_gap`` consecutive
frames contain no car or pedestrian, so clips never bridge long object-free stretches.
"""

import os
from typing import List, Optional, Sequence

from stemseg_fast.io.files import PathLike
from stemseg_fast.io.kitti_mots import read_kitti_mots_txt
from stemseg_fast.io.rle import checked_rle

from .masks import check_images, merge_rles
from .samples import VideoSample

IGNORE_CLASS = 10


def read_kitti_mots(
    annotation_dir: PathLike,
    image_root: PathLike,
    *,
    sequences: Optional[Sequence[str]] = None,
    split_gap: int = 6,
    check_sizes: str = "first",
) -> List[VideoSample]:
    """Reads ``<annotation_dir>/<sequence>.txt`` files.

    Args:
        annotation_dir: folder of ``<sequence>.txt`` files.
        image_root: folder holding one image folder per sequence.
        sequences: sequence names (e.g. "0002"); None reads every .txt file.
        split_gap: split sequences at runs of at least this many object-free frames; 0 never
            splits.
    Returns:
        list[VideoSample], one per (split) sequence, named ``<sequence>`` or ``<sequence>_<k>``.
    """
    if not os.path.isdir(annotation_dir):
        raise ValueError(f"KITTI-MOTS annotation folder {annotation_dir} does not exist")
    if sequences is None:
        sequences = sorted(
            os.path.splitext(f)[0] for f in os.listdir(annotation_dir) if f.endswith(".txt")
        )
    videos = []
    for sequence in sequences:
        videos += _read_sequence(
            os.path.join(annotation_dir, f"{sequence}.txt"),
            os.path.join(image_root, sequence),
            sequence,
            split_gap,
            check_sizes,
        )
    if not videos:
        raise ValueError(f"{annotation_dir}: no sequence with an annotated car or pedestrian")
    return videos


def _read_sequence(annotation_file, image_folder, sequence, split_gap, check_sizes):
    objects = {}  # object id -> (class id, {frame: rle})
    ignores = {}  # frame -> [rle]
    height = width = None
    for number, line in enumerate(read_kitti_mots_txt(annotation_file, "annotation file"), 1):
        where = f"annotation file {annotation_file} line {number}"
        if height is None:
            height, width = line.height, line.width
        elif (line.height, line.width) != (height, width):
            raise ValueError(
                f"{where}: size {line.width}x{line.height} differs from the "
                f"sequence's {width}x{height}"
            )
        rle = checked_rle({"size": [height, width], "counts": line.counts}, height, width, where)
        if line.class_id == IGNORE_CLASS:
            ignores.setdefault(line.frame, []).append(rle)
        else:
            objects.setdefault(line.track_id, (line.class_id, {}))[1][line.frame] = rle
    if not objects:
        return []
    annotated_frames = sorted({f for _, frames in objects.values() for f in frames})
    paths = {f: os.path.join(image_folder, f"{f:06d}.png") for f in range(annotated_frames[-1] + 1)}
    check_images(
        [paths[annotated_frames[0]]] + [paths[f] for f in annotated_frames],
        height,
        width,
        annotation_file=annotation_file,
        check_sizes=check_sizes,
    )
    chunks = _split_at_gaps(annotated_frames, split_gap)
    object_ids = sorted(objects)
    videos = []
    for index, (first, last) in enumerate(chunks):
        frames = [f for f in range(first, last + 1) if os.path.isfile(paths[f])]
        present = [o for o in object_ids if any(first <= f <= last for f in objects[o][1])]
        videos.append(
            VideoSample(
                name=sequence if len(chunks) == 1 else f"{sequence}_{index}",
                frame_paths=tuple(paths[f] for f in frames),
                height=height,
                width=width,
                categories=tuple(objects[o][0] for o in present),
                segmentations=tuple(tuple(objects[o][1].get(f) for o in present) for f in frames),
                ignore=tuple(merge_rles(ignores.get(f, [])) for f in frames),
            )
        )
    return videos


def _split_at_gaps(frames, split_gap):
    """[(first, last)] runs of annotated frames, broken where ``split_gap`` or more frames in
    a row are object-free."""
    chunks = [[frames[0], frames[0]]]
    for frame in frames[1:]:
        if split_gap and frame - chunks[-1][1] - 1 >= split_gap:
            chunks.append([frame, frame])
        else:
            chunks[-1][1] = frame
    return [tuple(chunk) for chunk in chunks]
