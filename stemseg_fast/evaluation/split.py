"""A held-out validation split of a training annotation file, by video.

YouTube-VIS and OVIS give no public validation ground truth (their val sets are scored on
CodaLab), so local validation needs some training videos held out. Which videos go to
validation depends only on the seed and the video ids: each video is ranked by the SHA-256 of
``"{seed}:{video id}"`` and the first ``round(fraction x videos)`` in that ranking are held out.
The ranking needs no random generator, so it is the same on every platform and NumPy version
and whatever the order of the videos in the file.

Files: YouTube-VIS / OVIS (``videos`` + ``annotations`` by ``video_id``, ``categories`` and any
other keys copied to both halves) and STEm-Seg's generic format (``sequences`` by ``id``,
``meta`` copied).
"""

import hashlib
import os
from typing import Any, Dict, Hashable, Sequence, Set, Tuple

from ..io.files import PathLike, check_not_an_input, read_json, write_json


def _rank(seed, video_id):
    return hashlib.sha256(f"{seed}:{video_id}".encode("utf-8")).hexdigest()


def held_out_video_ids(
    video_ids: Sequence[Hashable], *, val_fraction: float = 0.1, seed: int = 0
) -> Set[Hashable]:
    """The ids of the videos held out for validation.

    Args:
        video_ids (list): every video id, at least 2, unique.
        val_fraction (float in (0, 1)): share of the videos held out, at least one video and
            at least one left for training.
        seed (int).
    Returns:
        set: the validation video ids.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(video_ids) < 2:
        raise ValueError(f"a split needs at least 2 videos, the file has {len(video_ids)}")
    if len(set(video_ids)) != len(video_ids):
        raise ValueError("video ids must be unique to split by video")
    num_val = min(max(round(val_fraction * len(video_ids)), 1), len(video_ids) - 1)
    ranked = sorted(video_ids, key=lambda video_id: _rank(seed, video_id))
    return set(ranked[:num_val])


def split_annotations(
    dataset: Dict[str, Any], *, val_fraction: float = 0.1, seed: int = 0
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Split an annotation dict into training and validation halves by video.

    Args:
        dataset (dict): YouTube-VIS / OVIS (``videos``, ``annotations``) or STEm-Seg generic
            (``sequences``).
        val_fraction (float in (0, 1)), seed (int): see :func:`held_out_video_ids`.
    Returns:
        (train, val): two dicts of the input's format, videos in the input's order.
    """
    if not isinstance(dataset, dict):
        raise ValueError(f"annotations: expected a JSON object, got {type(dataset).__name__}")
    if "videos" in dataset:
        videos = dataset["videos"]
        if not all(isinstance(v, dict) and "id" in v for v in videos):
            raise ValueError("annotations: every entry of 'videos' needs an 'id'")
        val_ids = held_out_video_ids(
            [v["id"] for v in videos], val_fraction=val_fraction, seed=seed
        )
        annotations = dataset.get("annotations", [])
        unknown = {a.get("video_id") for a in annotations} - {v["id"] for v in videos}
        if unknown:
            raise ValueError(
                f"annotations: video ids {sorted(map(str, unknown))} of "
                f"'annotations' are not in 'videos'"
            )
        halves = []
        for keep in (
            lambda video_id: video_id not in val_ids,
            lambda video_id: video_id in val_ids,
        ):
            half = dict(dataset)
            half["videos"] = [v for v in videos if keep(v["id"])]
            if "annotations" in dataset:
                half["annotations"] = [a for a in annotations if keep(a["video_id"])]
            halves.append(half)
        return tuple(halves)
    if "sequences" in dataset:
        sequences = dataset["sequences"]
        if not all(isinstance(s, dict) and "id" in s for s in sequences):
            raise ValueError("annotations: every entry of 'sequences' needs an 'id'")
        val_ids = held_out_video_ids(
            [s["id"] for s in sequences], val_fraction=val_fraction, seed=seed
        )
        train = dict(dataset, sequences=[s for s in sequences if s["id"] not in val_ids])
        val = dict(dataset, sequences=[s for s in sequences if s["id"] in val_ids])
        return train, val
    raise ValueError(
        "annotations: expected a YouTube-VIS/OVIS file ('videos') or a STEm-Seg "
        "generic file ('sequences')"
    )


def write_split(
    annotations_path: PathLike,
    train_path: PathLike,
    val_path: PathLike,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Tuple[int, int]:
    """Read a training annotation file and write its two halves, each atomically (a temporary
    file beside the target, then ``os.replace``).

    Returns:
        (num_train_videos, num_val_videos).
    """
    if not os.path.isfile(annotations_path):
        raise ValueError(f"annotations: no such file: {annotations_path}")
    if os.path.abspath(train_path) == os.path.abspath(val_path):
        raise ValueError(f"the train and val outputs are the same file: {train_path}")
    check_not_an_input(train_path, [annotations_path], "--train-out")
    check_not_an_input(val_path, [annotations_path], "--val-out")
    dataset = read_json(annotations_path, "annotations")
    train, val = split_annotations(dataset, val_fraction=val_fraction, seed=seed)
    write_json(train_path, train)
    write_json(val_path, val)
    key = "videos" if "videos" in dataset else "sequences"
    return len(train[key]), len(val[key])
