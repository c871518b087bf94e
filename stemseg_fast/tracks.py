"""Tracks: the result of inference on one video, the type every output writer, overlay and
evaluation reader shares.

Storage: a :class:`Track` keeps one COCO compressed RLE per frame it has (pycocotools, the
format every output writes), so a 720p track of 10,000 frames costs kilobytes, and decodes a
frame's mask only when asked. Which tracks a benchmark keeps, and how it orders, classifies and
scores them, is :mod:`stemseg_fast.inference.selection`.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
import torch

from stemseg_fast.io.rle import decode_rle, encode_mask, to_pycocotools


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

    def __init__(
        self,
        track_id: int,
        frame_size: Sequence[int],
        rles: Mapping[int, Dict[str, Any]],
        *,
        category_id: Optional[int] = None,
        score: float = 1.0,
    ) -> None:
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
                    f"expected the frame size {list(self.frame_size)}"
                )
            self._rles[int(frame)] = rle

    @classmethod
    def from_masks(
        cls,
        track_id: int,
        masks: Union[Mapping[int, Union[np.ndarray, torch.Tensor]], np.ndarray, torch.Tensor],
        *,
        category_id: Optional[int] = None,
        score: float = 1.0,
    ) -> "Track":
        """Encode masks: a dict ``frame -> [H, W]`` binary mask (every frame listed is kept), or
        an array/tensor ``[T, H, W]`` (frames with at least one pixel are kept)."""
        if isinstance(masks, dict):
            if not masks:
                raise ValueError(
                    f"track {track_id}: masks is an empty dict, so the frame size is "
                    f"unknown; pass an array [T, H, W] or build Track(...) directly"
                )
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
    def frames(self) -> Tuple[int, ...]:
        """Frames that have a mask, increasing."""
        return tuple(sorted(self._rles))

    def rle(self, frame: int) -> Optional[Dict[str, Any]]:
        """The frame's RLE (``counts`` bytes), or None if the track has no mask there."""
        return self._rles.get(frame)

    def mask(self, frame: int) -> np.ndarray:
        """The frame's mask, ``np.ndarray[H, W]`` uint8 in {0, 1} (zeros where absent)."""
        rle = self._rles.get(frame)
        if rle is None:
            return np.zeros(self.frame_size, dtype=np.uint8)
        return decode_rle(rle)

    def bbox(self, frame: int) -> Tuple[int, int, int, int]:
        """``(x, y, width, height)`` of the frame's mask (pycocotools ``toBbox``, from the RLE
        without decoding), ``(0, 0, 0, 0)`` if the mask is empty or absent."""
        rle = self._rles.get(frame)
        if rle is None:
            return (0, 0, 0, 0)
        return tuple(int(value) for value in mask_utils.toBbox(rle))

    def area(self, frame: int) -> int:
        rle = self._rles.get(frame)
        return 0 if rle is None else int(mask_utils.area(rle))

    @property
    def pixel_count(self) -> int:
        return sum(int(mask_utils.area(rle)) for rle in self._rles.values())

    @property
    def first_frame(self) -> Optional[int]:
        return min(self._rles) if self._rles else None

    @property
    def last_frame(self) -> Optional[int]:
        return max(self._rles) if self._rles else None

    def __repr__(self) -> str:
        return (
            f"Track(track_id={self.track_id}, category_id={self.category_id}, "
            f"score={self.score:.3f}, frames={len(self._rles)})"
        )


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

    def __post_init__(self) -> None:
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        for track in self.tracks:
            if track.frame_size != self.frame_size:
                raise ValueError(
                    f"video {self.name!r}: track {track.track_id} has masks of size "
                    f"{list(track.frame_size)}, the video's frames are {list(self.frame_size)}"
                )
            if track.frames and track.last_frame >= self.num_frames:
                raise ValueError(
                    f"video {self.name!r}: track {track.track_id} has a mask in frame "
                    f"{track.last_frame}, the video has {self.num_frames} frames"
                )

    def label_map(self, frame: int) -> np.ndarray:
        """``np.ndarray[H, W]`` int32: 1 + the index in ``tracks`` of the track covering each
        pixel, 0 for none; where tracks overlap the later one in ``tracks`` wins (the official
        DAVIS rule)."""
        labels = np.zeros(self.frame_size, dtype=np.int32)
        for index, track in enumerate(self.tracks):
            x, y, width, height = track.bbox(frame)
            if width and height:
                box = track.mask(frame)[y : y + height, x : x + width].astype(bool)
                labels[y : y + height, x : x + width][box] = index + 1
        return labels


def tracks_from_label_maps(
    label_maps: Union[np.ndarray, torch.Tensor],
    *,
    name: str,
    background: int = 0,
    categories: Optional[Mapping[int, int]] = None,
    scores: Optional[Mapping[int, float]] = None,
    fps: Optional[float] = None,
    video_id: Optional[int] = None,
    category_names: Optional[Mapping[int, str]] = None,
) -> VideoTracks:
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
    tracks = [
        Track.from_masks(
            label,
            label_maps == label,
            category_id=(categories or {}).get(label),
            score=(scores or {}).get(label, 1.0),
        )
        for label in labels
    ]
    return VideoTracks(
        name,
        tracks,
        label_maps.shape[1:],
        label_maps.shape[0],
        fps=fps,
        video_id=video_id,
        category_names=category_names,
    )
