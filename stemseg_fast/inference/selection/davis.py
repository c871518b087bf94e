"""The DAVIS rule (official ``DavisOutputGenerator``)."""

import numpy as np

from ._common import (
    PerTrack,
    TrackSelection,
    by_lifetime_descending,
    check_max_tracks,
    relative_pixel_counts,
    track_arrays,
)

DAVIS_MAX_TRACKS = 20
DAVIS_CATEGORY_ID = 1  # DAVIS is class-agnostic


def select_davis_tracks(
    track_ids: PerTrack,
    pixel_counts: PerTrack,
    first_frames: PerTrack,
    last_frames: PerTrack,
    *,
    max_tracks: int = DAVIS_MAX_TRACKS,
) -> TrackSelection:
    """The ``max_tracks`` longest-lived tracks, longest first. Track ``n`` (0-based position) is
    painted with value ``n + 1`` and, where masks overlap, later positions win (see
    :meth:`stemseg_fast.tracks.VideoTracks.label_map`). Category 1; score as YouTube-VIS (pixel
    count relative to the largest kept track), which the PNGs do not hold but overlays show.
    """
    check_max_tracks(max_tracks)
    if max_tracks > 255:
        raise ValueError(f"max_tracks must be <= 255 for 8-bit DAVIS PNGs, got {max_tracks}")
    ids, arrays = track_arrays(
        track_ids, first_frames, last_frames, pixel_counts=(pixel_counts, 1, np.int64)
    )
    kept = by_lifetime_descending(ids, arrays["first_frames"], arrays["last_frames"])[:max_tracks]
    return TrackSelection(
        kept,
        np.full(len(kept), DAVIS_CATEGORY_ID, np.int64),
        relative_pixel_counts(arrays["pixel_counts"][kept]),
    )
