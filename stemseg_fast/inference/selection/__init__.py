"""Each benchmark's official rule: which stitched tracks it keeps, in which order, and with
which category and score (reference §4.3/§4.4; official ``inference/output_utils/*.py``)."""

from typing import Optional

from stemseg_fast.benchmarks import DAVIS, KITTI_MOTS, YOUTUBE_VIS

from ._common import PerTrack, TrackSelection
from .davis import DAVIS_MAX_TRACKS, select_davis_tracks
from .kitti_mots import KITTI_MOTS_MAX_TRACKS, KittiMOTSSelection, select_kitti_mots_tracks
from .youtube_vis import YOUTUBE_VIS_MAX_TRACKS, YouTubeVISSelection, select_youtube_vis_tracks

RULES = (YOUTUBE_VIS, DAVIS, KITTI_MOTS)
RULE_MAX_TRACKS = {
    YOUTUBE_VIS: YOUTUBE_VIS_MAX_TRACKS,
    DAVIS: DAVIS_MAX_TRACKS,
    KITTI_MOTS: KITTI_MOTS_MAX_TRACKS,
}

__all__ = [
    "DAVIS_MAX_TRACKS",
    "KITTI_MOTS_MAX_TRACKS",
    "RULES",
    "RULE_MAX_TRACKS",
    "YOUTUBE_VIS_MAX_TRACKS",
    "KittiMOTSSelection",
    "TrackSelection",
    "YouTubeVISSelection",
    "select_davis_tracks",
    "select_kitti_mots_tracks",
    "select_tracks",
    "select_youtube_vis_tracks",
]


def select_tracks(
    rule: str,
    track_ids: PerTrack,
    pixel_counts: PerTrack,
    first_frames: PerTrack,
    last_frames: PerTrack,
    *,
    class_logit_sums: Optional[PerTrack] = None,
    class_votes: Optional[PerTrack] = None,
    max_tracks: int,
) -> TrackSelection:
    """The selection of ``rule`` (one of :data:`RULES`) from a video's per-track arrays; the
    per-class arrays are those of the semantic head (None without one)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    arrays = (track_ids, pixel_counts, first_frames, last_frames)
    if rule == DAVIS:
        return select_davis_tracks(*arrays, max_tracks=max_tracks)
    per_class = class_logit_sums if rule == YOUTUBE_VIS else class_votes
    if per_class is None:
        raise ValueError(
            f"the {rule!r} rule classifies tracks with the semantic head; "
            f"this model has none (use rule='davis')"
        )
    if rule == YOUTUBE_VIS:
        return select_youtube_vis_tracks(*arrays, per_class, max_tracks=max_tracks)
    return select_kitti_mots_tracks(*arrays, per_class, max_tracks=max_tracks)
