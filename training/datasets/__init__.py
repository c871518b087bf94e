"""Training data: readers, clip sampling, pseudo-clips, mixing, targets and batching.

Flow: a reader (:func:`read_ytvis`/:func:`read_ovis`, :func:`read_coco`, :func:`read_davis`,
:func:`read_kitti_mots`) -> samples (:class:`VideoSample`, :class:`ImageSample`) ->
:class:`VideoClipDataset` / :class:`PseudoClipDataset` (a :class:`RawClip`, then a
:class:`TargetBuilder` makes the :class:`TrainingClip`) -> :class:`MixedClipDataset` with
:func:`mixture_counts` -> ``DataLoader(batch_sampler=StepBatchSampler(...),
collate_fn=collate_clips)`` (:mod:`stemseg_fast.training.sampler`) -> :class:`ClipBatch`.
"""

from .augmentation import (
    COCO_AUGMENTATION,
    MAPILLARY_AUGMENTATION,
    VOC_AUGMENTATION,
    PseudoClipAugmentation,
    make_pseudo_clip,
)
from .coco import read_coco
from .collate import ClipBatch, collate_clips
from .convert import convert_mask_folders
from .davis import read_davis
from .duplication import duplicate_single_instance
from .kitti_mots import read_kitti_mots
from .mixing import MIXTURES, MixedClipDataset, mixture_counts
from .pseudo_clips import PseudoClipDataset
from .samples import ImageSample, RawClip, VideoSample
from .targets import TargetBuilder, TrainingClip
from .video_clips import VideoClipDataset, clip_frame_indices, sample_video_clips
from .ytvis import read_ovis, read_ytvis

__all__ = [
    "COCO_AUGMENTATION",
    "VOC_AUGMENTATION",
    "MAPILLARY_AUGMENTATION",
    "PseudoClipAugmentation",
    "make_pseudo_clip",
    "read_coco",
    "ClipBatch",
    "collate_clips",
    "convert_mask_folders",
    "read_davis",
    "duplicate_single_instance",
    "read_kitti_mots",
    "MIXTURES",
    "MixedClipDataset",
    "mixture_counts",
    "PseudoClipDataset",
    "ImageSample",
    "RawClip",
    "VideoSample",
    "TargetBuilder",
    "TrainingClip",
    "VideoClipDataset",
    "clip_frame_indices",
    "sample_video_clips",
    "read_ovis",
    "read_ytvis",
]
