"""A prediction's outputs: every format in one call (:func:`write_outputs`), resumable batches
(:func:`run_batch`), overlay videos, and rendering of existing results files. The formats'
readers and writers themselves are :mod:`stemseg_fast.io`."""

from .batch import BatchResult, run_batch
from .overlay import (
    DEFAULT_CODECS,
    DEFAULT_FPS,
    draw_tracks,
    open_video_writer,
    track_colour,
    write_overlay_video,
)
from .render import render
from .writing import FORMATS, VideoOutputs, write_merged_outputs, write_outputs, write_video_outputs

__all__ = [
    "DEFAULT_CODECS",
    "DEFAULT_FPS",
    "FORMATS",
    "BatchResult",
    "VideoOutputs",
    "draw_tracks",
    "open_video_writer",
    "render",
    "run_batch",
    "track_colour",
    "write_merged_outputs",
    "write_outputs",
    "write_overlay_video",
    "write_video_outputs",
]
