"""Offline evaluation from files: video AP/AR (YouTube-VIS, OVIS with its occlusion breakdown),
HOTA/sMOTSA (KITTI-MOTS) and J&F (DAVIS unsupervised) through ``trackeval``, and a held-out
validation split of a training annotation file. Knows nothing of the model."""
from .annotations import load_ground_truth, load_results
from .video_ap import VideoAPResult, evaluate_video_ap

__all__ = ["VideoAPResult", "evaluate_video_ap", "load_ground_truth", "load_results"]
