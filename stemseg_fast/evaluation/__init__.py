"""Offline evaluation from files: video AP/AR (YouTube-VIS, OVIS with its occlusion breakdown),
HOTA/sMOTSA (KITTI-MOTS) and J&F (DAVIS unsupervised) through ``trackeval``, and a held-out
validation split of a training annotation file. Knows nothing of the model.

``trackeval`` is imported only when a KITTI-MOTS or DAVIS evaluation runs.
"""

from .annotations import load_ground_truth, load_results
from .split import held_out_video_ids, split_annotations, write_split
from .trackeval_adapters import (
    KITTI_MOTS_VAL_SEQUENCES,
    DavisResult,
    MOTSClassResult,
    MOTSResult,
    evaluate_davis,
    evaluate_kitti_mots,
)
from .video_ap import VideoAPResult, evaluate_video_ap

__all__ = [
    "DavisResult",
    "KITTI_MOTS_VAL_SEQUENCES",
    "MOTSClassResult",
    "MOTSResult",
    "VideoAPResult",
    "evaluate_davis",
    "evaluate_kitti_mots",
    "evaluate_video_ap",
    "held_out_video_ids",
    "load_ground_truth",
    "load_results",
    "split_annotations",
    "write_split",
]
