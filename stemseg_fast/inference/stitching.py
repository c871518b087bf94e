"""Stitching per-clip clusters into video tracks (official ``OnlineChainer.process`` and
``associate_clusters``, inference/online_chainer.py; reference §4.3).

For every clip after the first, the clusters of the new clip are matched to the tracks already
stored on the frames it shares with the previous clip:

    IoU(a, b) = |A ∩ B| / |A ∪ B| over the foreground voxels of the overlapping frames,
    for every track a present there and every cluster b of the new clip (outliers -1 excluded);
    Hungarian matching (``scipy.optimize.linear_sum_assignment``) on the cost 1 - IoU.

All intersections and areas come from one joint histogram: the labels of each side compacted
to their distinct values (``torch.unique``), then one ``bincount`` of the combined index over
the overlapping voxels, a table of at most (tracks present + 1) x (clusters + 1) counts, copied
to the host once per clip. The official code loops over
label pairs with two full-size boolean passes and an ``.item()`` sync per pair.

Official semantics kept, each pinned by a test:
* Cluster k of clip i proposes track id ``k + start`` with start = (highest track id stored so
  far) + 1, the first clip starting at 1; a matched cluster takes the track's id instead.
* Every Hungarian match is accepted, even at IoU 0 (§9 item 3); ``iou_threshold`` rejects
  matches with IoU <= threshold (they become new tracks).
* The overlapping frames keep the labels stored from the earlier clip; only the new frames of a
  clip take its (renamed) labels. Clusters absent from those frames leave no track.
* Rows and columns of the cost matrix follow the official order,
  ``list(set(unique_labels) - {-1})``, so that ties in the assignment (for instance several
  IoU-0 pairs) resolve as in the official code. The IoU is float32 and the cost
  ``float32(1 - float64(iou))``, as the official ``1. - iou.item()`` stored in a float32 array.

Memory: the stitcher keeps the track labels of the previous clip's frames only (what the next
clip can overlap), plus per-track counters; the labels of older frames are handed back to the
caller as each clip is added.
"""

from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .host_waits import expected_host_wait

OUTLIER_LABEL = -1
FIRST_TRACK_ID = 1  # official OnlineChainer: next_track_label = 1 before the first clip


class ClusterMatching(NamedTuple):
    """Association of the previous tracks (rows) with the new clip's labels (columns)."""

    previous_ids: List[int]  # [R] track ids present on the overlapping frames, official order
    current_ids: List[int]  # [C] labels of the new clip present there, official order
    iou: np.ndarray  # [R, C] float32
    matches: List[Tuple[int, int]]  # accepted (previous id, current id) pairs
    match_ious: List[float]  # IoU of each accepted pair


class StitchedClip(NamedTuple):
    """What :meth:`ClipStitcher.add_clip` hands back for one clip."""

    frame_indices: List[int]  # the clip's frames not stored before, ascending
    labels: torch.Tensor  # [T_new, H, W] int64 track ids of those frames, -1 = none
    cluster_track_ids: torch.Tensor  # [K] int64 track id each cluster k became
    matching: ClusterMatching  # the association with the previous clip


class TrackStats(NamedTuple):
    """Per-track counters over the frames stored so far, in ascending track id (the arrays
    ``stemseg_fast.tracks`` selects from)."""

    track_ids: torch.Tensor  # [M] int64
    pixel_counts: torch.Tensor  # [M] int64 voxels over the video (clustering resolution)
    first_frames: torch.Tensor  # [M] int64
    last_frames: torch.Tensor  # [M] int64

    @property
    def lifetimes(self) -> torch.Tensor:
        """[M] int64: last - first frame containing the track (official lifetime)."""
        return self.last_frames - self.first_frames


def _official_order(present_sorted):
    """The official ``list(set(labels.unique().tolist()) - {OUTLIER})``: the same set built
    from the same ascending list iterates in the same order."""
    return list(set(present_sorted) - {OUTLIER_LABEL})


def joint_histogram(
    previous_labels: torch.Tensor,
    current_labels: torch.Tensor,
    *,
    foreground: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Counts of every (previous, current) label pair over the voxels (where ``foreground``).

    Labels are compacted first (``torch.unique``), so the table is [P, C] for the P and C
    distinct labels present (-1 included), whatever the ids' magnitude: track ids only grow
    along a video, and a table indexed by the ids themselves would grow with their square.
    One bincount of a combined index, on the labels' device.

    Returns:
        (counts [P, C] int64, previous values [P], current values [C]), values ascending.
    """
    if foreground is not None:
        previous_labels, current_labels = previous_labels[foreground], current_labels[foreground]
    previous_values, previous_index = torch.unique(previous_labels.flatten(), return_inverse=True)
    current_values, current_index = torch.unique(current_labels.flatten(), return_inverse=True)
    num_previous, num_current = len(previous_values), len(current_values)
    counts = torch.bincount(
        previous_index * num_current + current_index, minlength=num_previous * num_current
    )
    return counts.view(num_previous, num_current), previous_values, current_values


def match_clusters(
    previous_labels: torch.Tensor,
    current_labels: torch.Tensor,
    *,
    foreground: Optional[torch.Tensor] = None,
    iou_threshold: Optional[float] = None,
) -> ClusterMatching:
    """Hungarian matching of two labellings of the same voxels by IoU (official
    ``associate_clusters``).

    Args:
        previous_labels (Tensor[...], integer): stored track ids, -1 = none.
        current_labels (Tensor[...], integer): the new clip's labels on the same voxels, -1 =
            none. The two labellings share no id other than -1.
        foreground (Tensor[...], bool, optional): the voxels taking part (official: the
            foreground voxels of the overlapping frames). Default: all.
        iou_threshold (float, optional): accept only matches with IoU > threshold. Default
            None: every match, even IoU 0 (official).

    Returns:
        ClusterMatching.
    """
    if previous_labels.shape != current_labels.shape:
        raise ValueError(
            f"previous_labels and current_labels must have one shape, got "
            f"{list(previous_labels.shape)} and {list(current_labels.shape)}"
        )
    if foreground is not None and foreground.shape != previous_labels.shape:
        raise ValueError(
            f"foreground must have shape {list(previous_labels.shape)}, got "
            f"{list(foreground.shape)}"
        )
    _label_bound("previous_labels", previous_labels)
    _label_bound("current_labels", current_labels)
    with expected_host_wait():  # the Hungarian matching runs on the host, on these counts
        counts, previous_values, current_values = joint_histogram(
            previous_labels.long(), current_labels.long(), foreground=foreground
        )
        counts = counts.cpu().numpy()
        previous_values, current_values = previous_values.tolist(), current_values.tolist()
    previous_area, current_area = counts.sum(1), counts.sum(0)  # [P], [C]
    previous_ids = _official_order(previous_values)  # ascending in, official set order out
    current_ids = _official_order(current_values)
    if set(previous_ids) & set(current_ids):
        raise ValueError(
            "previous_labels and current_labels must use disjoint ids, both hold "
            f"{sorted(set(previous_ids) & set(current_ids))}"
        )
    rows = np.array([previous_values.index(i) for i in previous_ids], dtype=np.int64)
    columns = np.array([current_values.index(i) for i in current_ids], dtype=np.int64)
    intersection = counts[np.ix_(rows, columns)]  # [R, C]
    union = previous_area[rows][:, None] + current_area[columns][None, :] - intersection
    iou = intersection.astype(np.float32) / np.maximum(union, 1).astype(np.float32)
    cost = (1.0 - iou.astype(np.float64)).astype(np.float32)
    matched_rows, matched_columns = linear_sum_assignment(cost)
    matches, match_ious = [], []
    for row, column in zip(matched_rows.tolist(), matched_columns.tolist()):
        if iou_threshold is None or iou[row, column] > iou_threshold:
            matches.append((previous_ids[row], current_ids[column]))
            match_ious.append(float(iou[row, column]))
    return ClusterMatching(previous_ids, current_ids, iou, matches, match_ious)


def _label_bound(name, labels):
    """1 + the largest label, checking every label is >= -1 (one sync)."""
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {labels.dtype}")
    if labels.numel() == 0:
        return 0
    with expected_host_wait():  # the clip's cluster count sizes the id lookup
        smallest, largest = (int(v) for v in torch.aminmax(labels))
    if smallest < OUTLIER_LABEL:
        raise ValueError(f"{name} must hold labels >= -1, got {smallest}")
    return largest + 1


class ClipStitcher:
    """Links the clusters of consecutive clips into tracks, clip by clip (official
    ``OnlineChainer``), holding only the previous clip's labels.

    Args:
        iou_threshold (float, optional): a Hungarian match is accepted only when its IoU is
            above this; None (official) accepts every match, even IoU 0.
        first_track_id (int): id proposed for the first clip's cluster 0 (official 1).
        track_statistics (bool): keep the per-track counters of :meth:`track_stats`; streams
            turn them off, as they grow with every track a video ever had.

    Example::

        stitcher = ClipStitcher()
        for frames, clip_labels, clip_foreground in clips:      # labels [T, H, W], -1 = none
            stitched = stitcher.add_clip(clip_labels, frames, foreground=clip_foreground)
            write(stitched.frame_indices, stitched.labels)         # each frame once, in order
        stats = stitcher.track_stats()
    """

    def __init__(self, *, iou_threshold=None, first_track_id=FIRST_TRACK_ID, track_statistics=True):
        if iou_threshold is not None and not 0.0 <= iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be None or in [0, 1), got {iou_threshold}")
        if first_track_id < 0:
            raise ValueError(f"first_track_id must be >= 0, got {first_track_id}")
        self.iou_threshold = iou_threshold
        self._highest_track_id = first_track_id - 1  # official TrackContainer: 0
        self._stored_frames = set()
        self._previous_frames = {}  # frame index -> [H, W] track ids of the previous clip
        self._pixel_counts = self._first_frames = self._last_frames = None
        self._track_statistics = track_statistics

    @property
    def next_track_id(self) -> int:
        """The id the next clip's cluster 0 proposes: highest stored track id + 1."""
        return self._highest_track_id + 1

    def add_clip(
        self,
        cluster_labels: torch.Tensor,
        frame_indices: Sequence[int],
        *,
        foreground: Optional[torch.Tensor] = None,
    ) -> StitchedClip:
        """Stitch one clip; returns the track labels of its frames not stored before.

        Args:
            cluster_labels (Tensor[T, H, W], integer): cluster k >= 0 of this clip (as
                :func:`stemseg_fast.kernels.greedy_cluster` numbers them, 0-based), -1 = none.
            frame_indices (sequence of T ints): the video frame of each slice, strictly
                increasing; frames shared with the previous clip come first or anywhere, and
                every other frame must be new to the video.
            foreground (Tensor[T, H, W], bool, optional): the clip's foreground voxels; the
                IoUs count only these (official). Default: every voxel.
        """
        frame_indices = [int(t) for t in frame_indices]
        if cluster_labels.dim() != 3 or cluster_labels.shape[0] != len(frame_indices):
            raise ValueError(
                f"cluster_labels must have shape [T={len(frame_indices)}, H, W], "
                f"got {list(cluster_labels.shape)}"
            )
        if foreground is not None and (
            foreground.shape != cluster_labels.shape or foreground.dtype != torch.bool
        ):
            raise ValueError(
                f"foreground must be a bool tensor of shape "
                f"{list(cluster_labels.shape)}, got {foreground.dtype} "
                f"{list(foreground.shape)}"
            )
        if any(b <= a for a, b in zip(frame_indices, frame_indices[1:])):
            raise ValueError(f"frame_indices must be strictly increasing, got {frame_indices}")
        overlapping = [t for t in frame_indices if t in self._previous_frames]
        reused = [
            t for t in frame_indices if t in self._stored_frames and t not in self._previous_frames
        ]
        if reused:
            raise ValueError(
                f"frame_indices {reused} were stored by a clip before the previous "
                "one; a clip may share frames with the previous clip only"
            )
        num_clusters = _label_bound("cluster_labels", cluster_labels)
        start = self.next_track_id
        proposals = torch.where(
            cluster_labels >= 0,
            cluster_labels.long() + start,
            torch.full_like(cluster_labels, OUTLIER_LABEL, dtype=torch.long),
        )
        matching = self._match_overlap(proposals, frame_indices, overlapping, foreground)
        # Lookup table over cluster k + 1 (slot 0: the outliers stay -1).
        cluster_track_ids = torch.arange(start, start + num_clusters, dtype=torch.long)
        for track_id, proposal in matching.matches:
            cluster_track_ids[proposal - start] = track_id
        # Host-made index tensors go over without waiting: a blocking copy syncs the device.
        lookup = torch.cat([torch.tensor([OUTLIER_LABEL]), cluster_track_ids]).to(
            cluster_labels.device, non_blocking=True
        )
        new_positions = [i for i, t in enumerate(frame_indices) if t not in self._previous_frames]
        new_frames = [frame_indices[i] for i in new_positions]
        position_index = torch.tensor(new_positions, dtype=torch.long).to(
            cluster_labels.device, non_blocking=True
        )
        new_labels = lookup[cluster_labels.index_select(0, position_index).long() + 1]
        self._update_stats(new_labels, new_frames)
        self._remember(frame_indices, new_frames, new_labels)
        return StitchedClip(new_frames, new_labels, cluster_track_ids, matching)

    def _match_overlap(self, proposals, frame_indices, overlapping, foreground):
        if not overlapping:
            return ClusterMatching([], [], np.zeros((0, 0), np.float32), [], [])
        positions = [frame_indices.index(t) for t in overlapping]
        stored = torch.stack([self._previous_frames[t] for t in overlapping])  # [O, H, W]
        if stored.shape[1:] != proposals.shape[1:]:
            raise ValueError(
                f"cluster_labels frames must be {list(stored.shape[1:])} like the "
                f"previous clip's, got {list(proposals.shape[1:])}"
            )
        current = proposals[positions]  # [O, H, W]
        mask = None if foreground is None else foreground[positions]
        return match_clusters(stored, current, foreground=mask, iou_threshold=self.iou_threshold)

    def _remember(self, frame_indices, new_frames, new_labels):
        """Keep the track labels of this clip's frames (the next clip's overlap candidates)."""
        frames = dict(zip(new_frames, new_labels.unbind(0)))
        self._previous_frames = {
            t: frames.get(t, self._previous_frames.get(t)) for t in frame_indices
        }
        self._stored_frames.update(new_frames)

    def _update_stats(self, new_labels, new_frames):
        """Pixel counts and first/last frame per track id, from one histogram over the new
        frames; syncs once (the highest id)."""
        if not new_frames:
            return
        with expected_host_wait():  # the next clip's proposed ids start above it
            highest_new = int(new_labels.max())
        if not self._track_statistics:
            self._highest_track_id = max(self._highest_track_id, highest_new)
            return
        device = new_labels.device
        width = max(self._highest_track_id, highest_new) + 2  # ids -1 .. highest
        frame_slot = torch.arange(len(new_frames), device=device).view(-1, 1, 1)
        combined = frame_slot * width + new_labels + 1  # [T_new, H, W]
        # index_add_ into a table of known size: bincount would read the largest index first
        combined = combined.flatten()
        counts = torch.zeros(len(new_frames) * width, dtype=torch.long, device=device)
        counts.index_add_(0, combined, torch.ones_like(combined))
        counts = counts.view(len(new_frames), width)[:, 1:]  # [T_new, ids 0 .. width - 2]
        self._grow(width - 1, device)
        frames = torch.tensor(new_frames, dtype=torch.long).to(device, non_blocking=True)
        frames = frames.view(-1, 1)
        present = counts > 0
        never = torch.iinfo(torch.long).max
        self._pixel_counts += counts.sum(0)
        self._first_frames = torch.minimum(
            self._first_frames, torch.where(present, frames, never).amin(0)
        )
        self._last_frames = torch.maximum(
            self._last_frames, torch.where(present, frames, -1).amax(0)
        )
        self._highest_track_id = width - 2

    def _grow(self, size, device):
        if self._pixel_counts is None:
            self._pixel_counts = torch.zeros(0, dtype=torch.long, device=device)
            self._first_frames = torch.zeros(0, dtype=torch.long, device=device)
            self._last_frames = torch.zeros(0, dtype=torch.long, device=device)
        extra = size - self._pixel_counts.numel()
        if extra > 0:
            never = torch.iinfo(torch.long).max
            self._pixel_counts = torch.cat(
                [self._pixel_counts, self._pixel_counts.new_zeros(extra)]
            )
            self._first_frames = torch.cat(
                [self._first_frames, self._first_frames.new_full((extra,), never)]
            )
            self._last_frames = torch.cat(
                [self._last_frames, self._last_frames.new_full((extra,), -1)]
            )

    def live_track_ids(self) -> set:
        """Ids of the tracks on the previous clip's frames: the only ones a later clip can
        continue (every other track has ended)."""
        if not self._previous_frames:
            return set()
        with expected_host_wait():  # streams forget the tracks that ended
            labels = torch.unique(torch.stack(list(self._previous_frames.values())))
            return set(labels[labels >= 0].tolist())

    def track_stats(self) -> TrackStats:
        """Counters of every track with at least one stored voxel, ascending id."""
        if not self._track_statistics:
            raise RuntimeError("this stitcher keeps no track statistics (track_statistics=False)")
        if self._pixel_counts is None:
            empty = torch.zeros(0, dtype=torch.long)
            return TrackStats(empty, empty, empty, empty)
        track_ids = torch.nonzero(self._pixel_counts).squeeze(1)
        return TrackStats(
            track_ids,
            self._pixel_counts[track_ids],
            self._first_frames[track_ids],
            self._last_frames[track_ids],
        )
