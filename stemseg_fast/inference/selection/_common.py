"""What the official selection rules share: checked per-track arrays, the official tie order,
and the result every rule returns.

Rules work on plain per-track arrays, one entry per stitched track (the outlier label -1 may be
included; it is never kept):

    track_ids     [K] int    the stitched track labels
    pixel_counts  [K] int    voxels of the track over the video, at clustering resolution
    first_frames  [K] int    first frame containing the track
    last_frames   [K] int    last frame containing the track

Lifetime is ``last - first`` (official ``TrackContainer.get_track_mask_idxes``). Ties keep the
official order: its per-track dicts are filled frame by frame with ``unique()`` (ascending)
labels, so equal keys stay in (first frame, track id) order.
"""

from dataclasses import dataclass
from typing import Dict, Tuple, Union

import numpy as np
import numpy.typing as npt
import torch

from ..stitching import OUTLIER_LABEL

# Per-track values as the rules take them: arrays, tensors (any device) or sequences.
PerTrack = Union[npt.ArrayLike, torch.Tensor]


@dataclass(frozen=True)
class TrackSelection:
    """The tracks a rule keeps, in its output order. ``indices`` index the input arrays."""

    indices: np.ndarray  # [M] int64
    category_ids: np.ndarray  # [M] int64, 1-based
    scores: np.ndarray  # [M] float64


def as_array(
    values: PerTrack, what: str, dtype: npt.DTypeLike = np.int64, ndim: int = 1
) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values)
    if values.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {list(values.shape)}")
    return values.astype(dtype, copy=False)


def track_arrays(
    track_ids: PerTrack,
    first_frames: PerTrack,
    last_frames: PerTrack,
    **others: Tuple[PerTrack, int, npt.DTypeLike],
) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """Checked arrays, all of length K; ``others`` name extra per-track arrays as
    ``name=(values, ndim, dtype)``."""
    ids = as_array(track_ids, "track_ids")
    arrays = {
        "first_frames": as_array(first_frames, "first_frames"),
        "last_frames": as_array(last_frames, "last_frames"),
    }
    for what, (values, ndim, dtype) in others.items():
        arrays[what] = as_array(values, what, dtype, ndim)
    for what, values in arrays.items():
        if len(values) != len(ids):
            raise ValueError(f"{what} has {len(values)} entries, track_ids has {len(ids)}")
    if np.any(arrays["last_frames"] < arrays["first_frames"]):
        raise ValueError("last_frames must be >= first_frames for every track")
    return ids, arrays


def per_class_track_arrays(
    track_ids: PerTrack,
    pixel_counts: PerTrack,
    first_frames: PerTrack,
    last_frames: PerTrack,
    per_class: PerTrack,
    what: str,
    dtype: npt.DTypeLike,
) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """:func:`track_arrays` with pixel counts and a [K, C] per-class array named ``what``, whose
    column 0 is the background (so at least two columns)."""
    ids, arrays = track_arrays(
        track_ids,
        first_frames,
        last_frames,
        pixel_counts=(pixel_counts, 1, np.int64),
        **{what: (per_class, 2, dtype)},
    )
    if arrays[what].shape[1] < 2:
        raise ValueError(f"{what} needs a background column and at least one class")
    return ids, arrays


def official_order(track_ids: np.ndarray, first_frames: np.ndarray) -> np.ndarray:
    """Positions of the real tracks (outliers left out) in the official dict insertion order:
    first frame, then track id."""
    order = np.lexsort((track_ids, first_frames))
    return order[track_ids[order] != OUTLIER_LABEL]


def stable_sorted(positions: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``positions`` stably sorted by ``keys[positions]`` (Python ``sorted`` semantics)."""
    return positions[np.argsort(keys[positions], kind="stable")]


def check_max_tracks(max_tracks: int) -> None:
    if not isinstance(max_tracks, (int, np.integer)) or max_tracks < 0:
        raise ValueError(f"max_tracks must be an int >= 0, got {max_tracks!r}")


def by_lifetime_descending(
    track_ids: np.ndarray, first_frames: np.ndarray, last_frames: np.ndarray
) -> np.ndarray:
    return stable_sorted(official_order(track_ids, first_frames), -(last_frames - first_frames))


def relative_pixel_counts(pixel_counts: np.ndarray) -> np.ndarray:
    """Official YouTube-VIS/DAVIS score (quirk §9.11): a kept track's pixel count over the largest
    among the kept tracks, so the largest scores 1.0 (a relative size, not a confidence)."""
    counts = pixel_counts.astype(np.float64)
    if np.any(counts <= 0):
        raise ValueError("pixel_counts of kept tracks must be > 0")
    return counts / counts.max() if len(counts) else counts
