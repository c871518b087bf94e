"""The KITTI-MOTS rule (official ``KittiMOTSOutputGenerator``)."""

from dataclasses import dataclass

import numpy as np

from ._common import (
    PerTrack,
    TrackSelection,
    check_max_tracks,
    official_order,
    per_class_track_arrays,
    stable_sorted,
)

KITTI_MOTS_MAX_TRACKS = 1000


@dataclass(frozen=True)
class KittiMOTSSelection(TrackSelection):
    """Position ``n`` (0-based) is written as number ``n + 1``, i.e. track id
    ``category_id * 1000 + n + 1``; categories 1 car, 2 pedestrian; every score 1."""

    @property
    def output_track_ids(self) -> np.ndarray:
        return self.category_ids * 1000 + np.arange(1, len(self.indices) + 1)


def select_kitti_mots_tracks(
    track_ids: PerTrack,
    pixel_counts: PerTrack,
    first_frames: PerTrack,
    last_frames: PerTrack,
    class_votes: PerTrack,
    *,
    max_tracks: int = KITTI_MOTS_MAX_TRACKS,
) -> KittiMOTSSelection:
    """Keeps the ``max_tracks`` largest tracks by pixel count, then orders them by **increasing**
    lifetime (stable) and numbers them 1..M. Class: majority vote of the per-voxel argmax
    semantic labels, background (0) ignored, the lower class on ties (car if no votes).

    The official code then gives pixels claimed by several tracks to the largest original track
    id (quirk §9.6). Nothing here needs that step: each track's mask is its bilinearly resized
    one-hot map thresholded at 0.5, and the one-hot maps of a frame sum to at most 1 at every
    pixel, so no two masks can both pass the threshold.

    The official code raises when no track is kept; here the selection is empty and the
    sequence's file is written empty.

    Args:
        class_votes (array[K, C] int): per track, voxel counts per argmax label (0 = bg).
    """
    check_max_tracks(max_tracks)
    ids, arrays = per_class_track_arrays(
        track_ids, pixel_counts, first_frames, last_frames, class_votes, "class_votes", np.int64
    )
    kept = stable_sorted(official_order(ids, arrays["first_frames"]), -arrays["pixel_counts"])
    kept = stable_sorted(kept[:max_tracks], arrays["last_frames"] - arrays["first_frames"])
    category_ids = arrays["class_votes"][kept, 1:].argmax(axis=1) + 1
    return KittiMOTSSelection(kept, category_ids, np.ones(len(kept)))
