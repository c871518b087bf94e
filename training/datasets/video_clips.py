"""Training clips from annotated videos (section 5.3).

Frames with zero annotated instances are dropped first. Clip starts are drawn once, when the
dataset is built, from its seed, as the official ``create_training_subsequences``: videos with
at most ``frame_span + 1`` (remaining) frames are skipped; each kept video gets
max(1, ceil(len / total_len * num_clips)) candidate clips; a candidate starts uniformly in
[0, len - span - 1] and takes frames round(linspace(start, start + span, T)) (NumPy's round,
half to even: T=8, span 8 gives offsets 0,1,2,3,5,6,7,8); ``num_clips`` candidates are then drawn
without replacement and shuffled. Real clips are not augmented (official; ``photometric_jitter``
enables the pseudo-clip photometric step per frame); clips with exactly one instance get a
duplicate (:mod:`.duplication`).

Per-item randomness comes from ``numpy.random.default_rng([seed, index])``: an item is the same
whichever DataLoader worker loads it and after a resume.
"""

import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from .augmentation import COCO_AUGMENTATION, photometric_jitter
from .duplication import duplicate_single_instance
from .samples import RawClip, VideoSample
from .targets import TargetBuilder, TrainingClip


def clip_frame_indices(start: int, span: int, clip_length: int) -> List[int]:
    """The official frame indices: round(linspace(start, start + span, T)) (half to even)."""
    return np.round(np.linspace(start, start + span, clip_length)).astype(np.int64).tolist()


def sample_video_clips(
    lengths: Sequence[int],
    num_clips: int,
    clip_length: int,
    frame_span: int,
    rng: np.random.Generator,
) -> List[Tuple[int, List[int]]]:
    """[(video index, frame indices)] of ``num_clips`` clips, as the official sampler.

    Args:
        lengths: number of (non-empty) frames per video.
        rng: numpy Generator.
    """
    if clip_length > frame_span + 1:
        raise ValueError(
            f"clip_length ({clip_length}) must be at most frame_span + 1 ({frame_span + 1})"
        )
    if num_clips <= 0:
        raise ValueError(f"num_clips must be positive, got {num_clips}")
    eligible = [v for v, length in enumerate(lengths) if length > frame_span + 1]
    if not eligible:
        raise ValueError(
            f"no video has more than frame_span + 1 = {frame_span + 1} annotated "
            f"frames (longest: {max(lengths, default=0)})"
        )
    total = sum(lengths[v] for v in eligible)
    candidates = []
    for video in eligible:
        count = max(1, math.ceil(lengths[video] / total * num_clips))
        for _ in range(count):
            start = int(rng.integers(0, lengths[video] - frame_span))  # inclusive of len-span-1
            candidates.append((video, clip_frame_indices(start, frame_span, clip_length)))
    chosen = rng.choice(len(candidates), size=num_clips, replace=False)
    return [candidates[i] for i in chosen]  # rng.choice without replacement is already shuffled


class VideoClipDataset(Dataset):
    """Clips of ``clip_length`` frames from videos, as :class:`~.targets.TrainingClip`.

    Args:
        videos: list[VideoSample] from a reader.
        num_clips: dataset length (its share of the mixture).
        targets: a :class:`~.targets.TargetBuilder` (None: items are :class:`RawClip`).
        clip_length: T (8; 16 for DAVIS stage 2).
        frame_span: frames between first and last clip frame (8 YTVIS/KITTI, 16 DAVIS).
        category_agnostic: every instance gets category 1 (DAVIS; YouTube-VIS in the DAVIS mix).
        duplicate_single_instance: paste a copy into clips with one instance (official: on for
            YouTube-VIS and DAVIS).
        photometric_jitter: per-frame brightness/hue jitter (off in the official training).
        seed: fixes the clips and every item's randomness.
    """

    def __init__(
        self,
        videos: Sequence[VideoSample],
        num_clips: int,
        *,
        targets: Optional[TargetBuilder] = None,
        clip_length: int = 8,
        frame_span: int = 8,
        category_agnostic: bool = False,
        duplicate_single_instance: bool = True,
        photometric_jitter: bool = False,
        seed: int = 0,
        name: str = "videos",
    ) -> None:
        videos = [video.without_empty_frames() for video in videos]
        self.videos = [video for video in videos if len(video)]
        if not self.videos:
            raise ValueError(f"{name}: no video has a frame with an annotated instance")
        self.clips = sample_video_clips(
            [len(v) for v in self.videos],
            num_clips,
            clip_length,
            frame_span,
            np.random.default_rng(seed),
        )
        self.targets = targets
        self.category_agnostic = category_agnostic
        self.duplicate_single_instance = duplicate_single_instance
        self.photometric_jitter = photometric_jitter
        self.seed = seed
        self.name = name

    def __len__(self) -> int:
        return len(self.clips)

    def raw_clip(self, index: int) -> RawClip:
        rng = np.random.default_rng([self.seed, index])
        video_index, frames = self.clips[index]
        video = self.videos[video_index]
        clip = video.load(frames)
        clip = clip.keep_instances(clip.masks.reshape(len(clip.categories), -1).any(1))
        if self.category_agnostic:
            clip = RawClip(
                clip.images, clip.masks, clip.ignore, (1,) * len(clip.categories), clip.name
            )
        if self.duplicate_single_instance and len(clip.categories) == 1:
            duplicated = duplicate_single_instance(clip.images, clip.masks[0], rng)
            if duplicated is not None:
                images, masks = duplicated
                # The pasted copy is annotated: it leaves the ignore region (DAVIS ignores the
                # whole background, and the official loader derives ignore after pasting).
                ignore = np.where(masks[1].astype(bool), 0, clip.ignore).astype(clip.ignore.dtype)
                clip = RawClip(images, masks, ignore, clip.categories * 2, clip.name)
        if self.photometric_jitter:
            clip = RawClip(
                np.stack(
                    [photometric_jitter(image, rng, COCO_AUGMENTATION) for image in clip.images]
                ),
                clip.masks,
                clip.ignore,
                clip.categories,
                clip.name,
            )
        return RawClip(
            clip.images,
            clip.masks,
            clip.ignore,
            clip.categories,
            f"{video.name}:{frames[0]}-{frames[-1]}",
        )

    def __getitem__(self, index: int) -> Union[RawClip, TrainingClip]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        clip = self.raw_clip(index)
        return clip if self.targets is None else self.targets(clip)
