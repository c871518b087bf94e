"""The YouTube-VIS/OVIS rule (official ``YoutubeVISOutputGenerator``)."""

from dataclasses import dataclass

import numpy as np
import torch

from ._common import (
    PerTrack,
    TrackSelection,
    by_lifetime_descending,
    check_max_tracks,
    per_class_track_arrays,
    relative_pixel_counts,
)

YOUTUBE_VIS_MAX_TRACKS = 10


@dataclass(frozen=True)
class YouTubeVISSelection(TrackSelection):
    category_probabilities: np.ndarray  # [M, C - 1] float64, softmax over classes 1..C-1


def select_youtube_vis_tracks(
    track_ids: PerTrack,
    pixel_counts: PerTrack,
    first_frames: PerTrack,
    last_frames: PerTrack,
    class_logit_sums: PerTrack,
    *,
    max_tracks: int = YOUTUBE_VIS_MAX_TRACKS,
) -> YouTubeVISSelection:
    """Keeps the ``max_tracks`` longest-lived tracks, longest first. Category: the track's summed
    class logits without channel 0 (background), divided by its pixel count, softmax, argmax
    (lowest class on ties) -> 1-based id. Score: pixel count / the largest pixel count among kept
    tracks (quirk §9.11: relative size, not a classifier confidence).

    Args:
        class_logit_sums (array[K, C] float): per track, the per-voxel averaged class logits
            (channel 0 background) summed over the track's voxels at clustering resolution.
    """
    check_max_tracks(max_tracks)
    ids, arrays = per_class_track_arrays(
        track_ids,
        pixel_counts,
        first_frames,
        last_frames,
        class_logit_sums,
        "class_logit_sums",
        np.float64,
    )
    kept = by_lifetime_descending(ids, arrays["first_frames"], arrays["last_frames"])[:max_tracks]
    counts = arrays["pixel_counts"][kept]
    scores = relative_pixel_counts(counts)
    mean_logits = arrays["class_logit_sums"][kept, 1:] / counts[:, None].astype(np.float64)
    probabilities = torch.softmax(torch.from_numpy(mean_logits), dim=1).numpy()
    return YouTubeVISSelection(kept, probabilities.argmax(axis=1) + 1, scores, probabilities)
