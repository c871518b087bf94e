"""Tracks: the result of inference on one video, and the official rules that choose, order,
classify and score tracks for each benchmark.

Storage: a :class:`Track` keeps one COCO compressed RLE per frame it has (pycocotools, the
format every output writes), so a 720p track of 10,000 frames costs kilobytes, and decodes a
frame's mask only when asked.

Selection rules (reference §4.3/§4.4; official ``inference/output_utils/*.py``) work on plain
per-track arrays, one entry per stitched track (the outlier label -1 may be included; it is
never kept):

    track_ids     [K] int    the stitched track labels
    pixel_counts  [K] int    voxels of the track over the video, at clustering resolution
    first_frames  [K] int    first frame containing the track
    last_frames   [K] int    last frame containing the track

Lifetime is ``last - first`` (official ``TrackContainer.get_track_mask_idxes``). Ties keep the
official order: its per-track dicts are filled frame by frame with ``unique()`` (ascending)
labels, so equal keys stay in (first frame, track id) order.
"""
from dataclasses import dataclass, field

import numpy as np
import pycocotools.mask as mask_utils
import torch

from stemseg_fast.rle import decode_rle, encode_mask, to_pycocotools

OUTLIER_LABEL = -1
YOUTUBE_VIS_MAX_TRACKS = 10
DAVIS_MAX_TRACKS = 20
KITTI_MOTS_MAX_TRACKS = 1000


class Track:
    """One object over a video: id, category, score, and a compressed mask per frame.

    Args:
        track_id (int): identity, also what colours it in overlays.
        frame_size (tuple[int, int]): (height, width) of every mask.
        rles (dict[int, dict]): frame index -> COCO RLE (``counts`` bytes or str). A frame
            listed with an empty mask is kept (KITTI-MOTS writes such frames, as the official
            code does); a frame not listed has no mask.
        category_id (int or None): 1-based class id.
        score (float): confidence, as the benchmark defines it.
    """

    def __init__(self, track_id, frame_size, rles, *, category_id=None, score=1.0):
        self.track_id = int(track_id)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.category_id = None if category_id is None else int(category_id)
        self.score = float(score)
        self._rles = {}
        for frame, rle in rles.items():
            rle = to_pycocotools(rle)
            if tuple(rle["size"]) != self.frame_size:
                raise ValueError(
                    f"track {self.track_id}: the mask of frame {frame} is {rle['size']} (h, w), "
                    f"expected the frame size {list(self.frame_size)}")
            self._rles[int(frame)] = rle

    @classmethod
    def from_masks(cls, track_id, masks, *, category_id=None, score=1.0):
        """Encode masks: a dict ``frame -> [H, W]`` binary mask (every frame listed is kept), or
        an array/tensor ``[T, H, W]`` (frames with at least one pixel are kept)."""
        if isinstance(masks, dict):
            if not masks:
                raise ValueError(f"track {track_id}: masks is an empty dict, so the frame size is "
                                 f"unknown; pass an array [T, H, W] or build Track(...) directly")
            items = list(masks.items())
        else:
            if isinstance(masks, torch.Tensor):
                masks = masks.detach().cpu().numpy()
            masks = np.asarray(masks)
            if masks.ndim != 3:
                raise ValueError(f"masks must have shape [T, H, W], got {list(masks.shape)}")
            items = [(frame, masks[frame]) for frame in np.flatnonzero(masks.any(axis=(1, 2)))]
            if not items:
                return cls(track_id, masks.shape[1:], {}, category_id=category_id, score=score)
        rles = {}
        for frame, mask in items:
            if isinstance(mask, torch.Tensor):
                mask = mask.detach().cpu().numpy()
            rles[int(frame)] = encode_mask(mask)
        frame_size = next(iter(rles.values()))["size"]
        return cls(track_id, frame_size, rles, category_id=category_id, score=score)

    @property
    def frames(self):
        """Frames that have a mask, increasing."""
        return tuple(sorted(self._rles))

    def rle(self, frame):
        """The frame's RLE (``counts`` bytes), or None if the track has no mask there."""
        return self._rles.get(frame)

    def mask(self, frame):
        """The frame's mask, ``np.ndarray[H, W]`` uint8 in {0, 1} (zeros where absent)."""
        rle = self._rles.get(frame)
        if rle is None:
            return np.zeros(self.frame_size, dtype=np.uint8)
        return decode_rle(rle)

    def bbox(self, frame):
        """``(x, y, width, height)`` of the frame's mask (pycocotools ``toBbox``, from the RLE
        without decoding), ``(0, 0, 0, 0)`` if the mask is empty or absent."""
        rle = self._rles.get(frame)
        if rle is None:
            return (0, 0, 0, 0)
        return tuple(int(value) for value in mask_utils.toBbox(rle))

    def area(self, frame):
        rle = self._rles.get(frame)
        return 0 if rle is None else int(mask_utils.area(rle))

    @property
    def pixel_count(self):
        return sum(int(mask_utils.area(rle)) for rle in self._rles.values())

    @property
    def first_frame(self):
        return min(self._rles) if self._rles else None

    @property
    def last_frame(self):
        return max(self._rles) if self._rles else None

    def __repr__(self):
        return (f"Track(track_id={self.track_id}, category_id={self.category_id}, "
                f"score={self.score:.3f}, frames={len(self._rles)})")


@dataclass
class VideoTracks:
    """Everything inference found in one video.

    Attributes:
        name (str): names the outputs (DAVIS folder, overlay file).
        tracks (list[Track]): in output order (the order the selection rule returns).
        frame_size (tuple[int, int]): (height, width) of the source frames.
        num_frames (int)
        fps (float or None): of the source, kept by the overlay video.
        video_id (int or None): the dataset id for YouTube-VIS/OVIS results.
        timings (dict[str, float]): seconds per stage, e.g. ``{"network": .., "clustering": ..}``.
        category_names (dict[int, str] or None): class id -> name for drawing.
    """

    name: str
    tracks: list
    frame_size: tuple
    num_frames: int
    fps: float = None
    video_id: int = None
    timings: dict = field(default_factory=dict)
    category_names: dict = None

    def __post_init__(self):
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        for track in self.tracks:
            if track.frame_size != self.frame_size:
                raise ValueError(
                    f"video {self.name!r}: track {track.track_id} has masks of size "
                    f"{list(track.frame_size)}, the video's frames are {list(self.frame_size)}")
            if track.frames and track.last_frame >= self.num_frames:
                raise ValueError(
                    f"video {self.name!r}: track {track.track_id} has a mask in frame "
                    f"{track.last_frame}, the video has {self.num_frames} frames")

    def label_map(self, frame):
        """``np.ndarray[H, W]`` int32: 1 + the index in ``tracks`` of the track covering each
        pixel, 0 for none; where tracks overlap the later one in ``tracks`` wins (the official
        DAVIS rule)."""
        labels = np.zeros(self.frame_size, dtype=np.int32)
        for index, track in enumerate(self.tracks):
            x, y, width, height = track.bbox(frame)
            if width and height:
                box = track.mask(frame)[y:y + height, x:x + width].astype(bool)
                labels[y:y + height, x:x + width][box] = index + 1
        return labels


def tracks_from_label_maps(label_maps, *, name, background=0, categories=None, scores=None,
                           fps=None, video_id=None, category_names=None):
    """Build :class:`VideoTracks` from per-frame label maps ``[T, H, W]`` int (ground truth,
    synthetic clips, or a label volume a caller already has): one track per label other than
    ``background``, in increasing label order, ``track_id`` = the label.

    Args:
        categories (dict[int, int] or None): label -> category id.
        scores (dict[int, float] or None): label -> score (default 1.0).
    """
    if isinstance(label_maps, torch.Tensor):
        label_maps = label_maps.detach().cpu().numpy()
    label_maps = np.asarray(label_maps)
    if label_maps.ndim != 3:
        raise ValueError(f"label_maps must have shape [T, H, W], got {list(label_maps.shape)}")
    labels = [int(label) for label in np.unique(label_maps) if label != background]
    tracks = [Track.from_masks(label, label_maps == label,
                               category_id=(categories or {}).get(label),
                               score=(scores or {}).get(label, 1.0))
              for label in labels]
    return VideoTracks(name, tracks, label_maps.shape[1:], label_maps.shape[0], fps=fps,
                       video_id=video_id, category_names=category_names)


# ----------------------------------------------------------------------------------------------
# Official selection rules, on per-track arrays


def _as_array(values, what, dtype=np.int64, ndim=1):
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    values = np.asarray(values)
    if values.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D, got shape {list(values.shape)}")
    return values.astype(dtype, copy=False)


def _track_arrays(track_ids, first_frames, last_frames, **others):
    """Checked arrays, all of length K; ``others`` name extra per-track arrays (ndim in a
    (name, ndim, dtype) tuple)."""
    ids = _as_array(track_ids, "track_ids")
    arrays = {"first_frames": _as_array(first_frames, "first_frames"),
              "last_frames": _as_array(last_frames, "last_frames")}
    for what, (values, ndim, dtype) in others.items():
        arrays[what] = _as_array(values, what, dtype, ndim)
    for what, values in arrays.items():
        if len(values) != len(ids):
            raise ValueError(f"{what} has {len(values)} entries, track_ids has {len(ids)}")
    if np.any(arrays["last_frames"] < arrays["first_frames"]):
        raise ValueError("last_frames must be >= first_frames for every track")
    return ids, arrays


def track_lifetimes(first_frames, last_frames):
    """Official lifetime: last frame - first frame (a one-frame track lives 0)."""
    return _as_array(last_frames, "last_frames") - _as_array(first_frames, "first_frames")


def _official_order(track_ids, first_frames):
    """Positions in the official dict insertion order: first frame, then track id."""
    return np.lexsort((track_ids, first_frames))


def _stable_sorted(positions, keys):
    """``positions`` stably sorted by ``keys[positions]`` (Python ``sorted`` semantics)."""
    return positions[np.argsort(keys[positions], kind="stable")]


def _max_tracks_check(max_tracks):
    if not isinstance(max_tracks, (int, np.integer)) or max_tracks < 0:
        raise ValueError(f"max_tracks must be an int >= 0, got {max_tracks!r}")


def _by_lifetime_descending(track_ids, first_frames, last_frames):
    order = _official_order(track_ids, first_frames)
    order = order[track_ids[order] != OUTLIER_LABEL]
    return _stable_sorted(order, -(last_frames - first_frames))


@dataclass(frozen=True)
class YouTubeVISSelection:
    """Kept tracks in output order. ``indices`` index the input arrays."""

    indices: np.ndarray  # [M] int64
    category_ids: np.ndarray  # [M] int64, 1-based
    scores: np.ndarray  # [M] float64, in (0, 1], the largest track 1.0
    category_probabilities: np.ndarray  # [M, C - 1] float64, softmax over classes 1..C-1


def select_youtube_vis_tracks(track_ids, pixel_counts, first_frames, last_frames,
                              class_logit_sums, *, max_tracks=YOUTUBE_VIS_MAX_TRACKS):
    """YouTube-VIS/OVIS rule (official ``YoutubeVISOutputGenerator``).

    Keeps the ``max_tracks`` longest-lived tracks. Category: the track's summed class logits
    without channel 0 (background), divided by its pixel count, softmax, argmax (lowest class
    on ties) -> 1-based id. Score: pixel count / the largest pixel count among kept tracks
    (quirk §9.11: relative size, not a classifier confidence).

    Args:
        class_logit_sums (array[K, C] float): per track, the per-voxel averaged class logits
            (channel 0 background) summed over the track's voxels at clustering resolution.
    """
    _max_tracks_check(max_tracks)
    ids, arrays = _track_arrays(track_ids, first_frames, last_frames,
                                pixel_counts=(pixel_counts, 1, np.int64),
                                class_logit_sums=(class_logit_sums, 2, np.float64))
    if arrays["class_logit_sums"].shape[1] < 2:
        raise ValueError("class_logit_sums needs a background column and at least one class")
    kept = _by_lifetime_descending(ids, arrays["first_frames"],
                                   arrays["last_frames"])[:max_tracks]
    counts = arrays["pixel_counts"][kept].astype(np.float64)
    if np.any(counts <= 0):
        raise ValueError("pixel_counts of kept tracks must be > 0")
    mean_logits = arrays["class_logit_sums"][kept, 1:] / counts[:, None]
    probabilities = torch.softmax(torch.from_numpy(mean_logits), dim=1).numpy()
    scores = counts / counts.max() if len(kept) else counts
    return YouTubeVISSelection(kept, probabilities.argmax(axis=1) + 1, scores, probabilities)


def select_davis_tracks(track_ids, first_frames, last_frames, *, max_tracks=DAVIS_MAX_TRACKS):
    """DAVIS rule (official ``DavisOutputGenerator``): the ``max_tracks`` longest-lived tracks,
    longest first. Track ``n`` (0-based position) is painted with value ``n + 1`` and, where
    masks overlap, later positions win (see :meth:`VideoTracks.label_map`).

    Returns:
        np.ndarray[M] int64, indices into the inputs, in output order.
    """
    _max_tracks_check(max_tracks)
    if max_tracks > 255:
        raise ValueError(f"max_tracks must be <= 255 for 8-bit DAVIS PNGs, got {max_tracks}")
    ids, arrays = _track_arrays(track_ids, first_frames, last_frames)
    return _by_lifetime_descending(ids, arrays["first_frames"], arrays["last_frames"])[:max_tracks]


@dataclass(frozen=True)
class KittiMOTSSelection:
    """Kept tracks in output order: position ``n`` (0-based) is written as number ``n + 1``,
    i.e. track id ``class_id * 1000 + n + 1``."""

    indices: np.ndarray  # [M] int64 into the inputs
    class_ids: np.ndarray  # [M] int64: 1 car, 2 pedestrian
    overlap_priorities: np.ndarray  # [M] int64: the original track ids; the larger wins a pixel

    @property
    def output_track_ids(self):
        return self.class_ids * 1000 + np.arange(1, len(self.indices) + 1)


def select_kitti_mots_tracks(track_ids, pixel_counts, first_frames, last_frames, class_votes, *,
                             max_tracks=KITTI_MOTS_MAX_TRACKS):
    """KITTI-MOTS rule (official ``KittiMOTSOutputGenerator``).

    Keeps the ``max_tracks`` largest tracks by pixel count, then orders them by **increasing**
    lifetime (stable) and numbers them 1..M. Class: majority vote of the per-voxel argmax
    semantic labels, background (0) ignored, the lower class on ties (car if no votes).
    Pixels claimed by several tracks go to the largest *original* track id (quirk §9.6: the
    official comment says longest lifetime, the code uses the id): use
    ``overlap_priorities`` with :func:`resolve_overlaps`.

    The official code raises when no track is kept; here the selection is empty and the
    sequence's file is written empty.

    Args:
        class_votes (array[K, C] int): per track, voxel counts per argmax label (0 = bg).
    """
    _max_tracks_check(max_tracks)
    ids, arrays = _track_arrays(track_ids, first_frames, last_frames,
                                pixel_counts=(pixel_counts, 1, np.int64),
                                class_votes=(class_votes, 2, np.int64))
    if arrays["class_votes"].shape[1] < 2:
        raise ValueError("class_votes needs a background column and at least one class")
    order = _official_order(ids, arrays["first_frames"])
    order = order[ids[order] != OUTLIER_LABEL]
    kept = _stable_sorted(order, -arrays["pixel_counts"])[:max_tracks]
    kept = _stable_sorted(kept, arrays["last_frames"] - arrays["first_frames"])
    class_ids = arrays["class_votes"][kept, 1:].argmax(axis=1) + 1
    return KittiMOTSSelection(kept, class_ids, ids[kept])


def resolve_overlaps(masks, priorities):
    """Give each pixel to one track: the one with the highest priority among those whose mask
    covers it.

    Args:
        masks (Tensor or array [M, H, W] bool): one frame's masks of M tracks.
        priorities (Tensor or array [M] int): distinct values.
    Returns:
        Same type as ``masks``: [H, W] int64, the index (0..M-1) of the owning track, -1 where
        no mask covers the pixel.
    """
    as_numpy = not isinstance(masks, torch.Tensor)
    masks = torch.as_tensor(np.asarray(masks) if as_numpy else masks).bool()
    priorities = torch.as_tensor(priorities, device=masks.device).long()
    if masks.ndim != 3 or priorities.shape != masks.shape[:1]:
        raise ValueError(
            f"masks must be [M, H, W] and priorities [M], got {list(masks.shape)} and "
            f"{list(priorities.shape)}")
    if len(masks) == 0:
        owner = torch.full(masks.shape[1:], -1, dtype=torch.long, device=masks.device)
    else:
        rank = torch.empty_like(priorities)
        rank[priorities.argsort()] = torch.arange(1, len(priorities) + 1, device=masks.device)
        best, owner = (masks.long() * rank[:, None, None]).max(dim=0)
        owner = torch.where(best > 0, owner, -1)
    return owner.numpy() if as_numpy else owner
