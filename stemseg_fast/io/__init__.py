"""The bottom layer's files: frame sources, every file format's reader and writer, and the
output-path safety rule every writer follows (:mod:`stemseg_fast.io.files`)."""

from .davis import DAVIS_PALETTE, davis_palette, read_davis_png, write_davis_pngs
from .files import UnsafeOutputError, atomic_output, output_path, read_json, write_json
from .kitti_mots import (
    KittiMOTSDetection,
    KittiMOTSFilter,
    filter_kitti_mots_detections,
    kitti_mots_detections,
    kitti_mots_sequence_path,
    postprocess_kitti_mots,
    read_kitti_mots_txt,
    write_kitti_mots_txt,
)
from .video import (
    ArraySource,
    CaptureSource,
    FrameSource,
    ImageFilesSource,
    IterableSource,
    VideoFileSource,
    VideoInputError,
    VideoLengthWarning,
    annotation_videos,
    expand_inputs,
    folder_source,
    open_video,
)
from .youtube_vis import (
    read_youtube_vis_results,
    write_youtube_vis_results,
    youtube_vis_predictions,
)

__all__ = [
    "DAVIS_PALETTE",
    "ArraySource",
    "CaptureSource",
    "FrameSource",
    "ImageFilesSource",
    "IterableSource",
    "KittiMOTSDetection",
    "KittiMOTSFilter",
    "UnsafeOutputError",
    "VideoFileSource",
    "VideoInputError",
    "VideoLengthWarning",
    "annotation_videos",
    "atomic_output",
    "davis_palette",
    "expand_inputs",
    "filter_kitti_mots_detections",
    "folder_source",
    "kitti_mots_detections",
    "kitti_mots_sequence_path",
    "open_video",
    "output_path",
    "postprocess_kitti_mots",
    "read_davis_png",
    "read_json",
    "read_kitti_mots_txt",
    "read_youtube_vis_results",
    "write_davis_pngs",
    "write_json",
    "write_kitti_mots_txt",
    "write_youtube_vis_results",
    "youtube_vis_predictions",
]
