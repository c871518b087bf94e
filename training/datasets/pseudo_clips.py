"""Training clips from annotated images (section 5.4): see :mod:`.augmentation`.

Item i uses image ``order[i % len(images)]`` where ``order`` is a permutation drawn from the
seed, so every image is used before any repeats; its randomness comes from
``numpy.random.default_rng([seed, i])`` (worker- and resume-independent).
"""

from typing import Optional, Sequence, Union

import numpy as np
from torch.utils.data import Dataset

from .augmentation import COCO_AUGMENTATION, PseudoClipAugmentation, make_pseudo_clip
from .samples import ImageSample, RawClip
from .targets import TargetBuilder, TrainingClip


class PseudoClipDataset(Dataset):
    """Pseudo-clips of ``clip_length`` frames from images, as :class:`~.targets.TrainingClip`.

    Args:
        images: list[ImageSample] (e.g. from :func:`~.coco.read_coco`).
        num_clips: dataset length.
        targets: a :class:`~.targets.TargetBuilder` (None: items are :class:`RawClip`).
        augmentation: :class:`~.augmentation.PseudoClipAugmentation` (COCO, VOC, Mapillary
            presets in :mod:`.augmentation`).
        category_agnostic: every instance gets category 1.
    """

    def __init__(
        self,
        images: Sequence[ImageSample],
        num_clips: int,
        *,
        targets: Optional[TargetBuilder] = None,
        clip_length: int = 8,
        augmentation: PseudoClipAugmentation = COCO_AUGMENTATION,
        category_agnostic: bool = False,
        seed: int = 0,
        name: str = "images",
    ) -> None:
        if not images:
            raise ValueError(f"{name}: no annotated image")
        if num_clips <= 0:
            raise ValueError(f"num_clips must be positive, got {num_clips}")
        if clip_length < 1:
            raise ValueError(f"clip_length must be at least 1, got {clip_length}")
        self.images = list(images)
        self.num_clips = num_clips
        self.targets = targets
        self.clip_length = clip_length
        self.augmentation = augmentation
        self.category_agnostic = category_agnostic
        self.seed = seed
        self.name = name
        self.order = np.random.default_rng(seed).permutation(len(self.images))

    def __len__(self) -> int:
        return self.num_clips

    def raw_clip(self, index: int) -> RawClip:
        sample = self.images[self.order[index % len(self.images)]]
        image, masks, ignore = sample.load()
        categories = (1,) * len(sample.categories) if self.category_agnostic else sample.categories
        return make_pseudo_clip(
            image,
            masks,
            ignore,
            categories,
            self.clip_length,
            np.random.default_rng([self.seed, index]),
            self.augmentation,
            name=sample.name,
        )

    def __getitem__(self, index: int) -> Union[RawClip, TrainingClip]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        clip = self.raw_clip(index)
        return clip if self.targets is None else self.targets(clip)
