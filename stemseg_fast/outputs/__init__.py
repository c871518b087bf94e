"""Output writers: YouTube-VIS/OVIS JSON, DAVIS PNGs, KITTI-MOTS txt (+ official post-filter),
overlay videos, and rendering of existing results. Every file is written atomically."""
from .davis import DAVIS_PALETTE, davis_palette, read_davis_png, write_davis_pngs
from .kitti_mots import (KittiMOTSDetection, KittiMOTSFilter, filter_kitti_mots_detections,
                         kitti_mots_detections, kitti_mots_sequence_path, postprocess_kitti_mots,
                         read_kitti_mots_txt, write_kitti_mots_txt)
from .overlay import (DEFAULT_CODECS, draw_tracks, open_video_writer, track_colour,
                      write_overlay_video)
from .render import render
from .youtube_vis import (read_youtube_vis_results, write_youtube_vis_results,
                          youtube_vis_predictions)

__all__ = [
    "DAVIS_PALETTE", "davis_palette", "read_davis_png", "write_davis_pngs",
    "KittiMOTSDetection", "KittiMOTSFilter", "filter_kitti_mots_detections",
    "kitti_mots_detections", "kitti_mots_sequence_path", "postprocess_kitti_mots",
    "read_kitti_mots_txt", "write_kitti_mots_txt",
    "DEFAULT_CODECS", "draw_tracks", "open_video_writer", "track_colour", "write_overlay_video",
    "render",
    "read_youtube_vis_results", "write_youtube_vis_results", "youtube_vis_predictions",
]
