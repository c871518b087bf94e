"""Image <-> mask alignment through every training augmentation, with frames whose content
encodes their own masks: instance k is painted in pure colour channel k (blue, red), the rest is
dark grey. Wherever the image says "all of this pixel is instance k", the mask of k must be 1;
wherever it says "none of it", the mask must be 0. That holds through flips, warps, frame
permutation, single-instance duplication and the target builder's resize, pad and stride-4
downsample, and fails for any step that moves masks but not pixels (or the reverse).

Photometric jitter and motion blur are per-pixel or image-only by design (official too), so the
geometric tests switch them off; they would blur the encoding, not the alignment.
"""

import dataclasses

import numpy as np
import pytest
import torch

from stemseg_fast.model.preprocessing import IMAGE_MEAN_BGR
from stemseg_fast.training.datasets import COCO_AUGMENTATION, TargetBuilder, make_pseudo_clip
from stemseg_fast.training.datasets.duplication import duplicate_single_instance
from stemseg_fast.training.datasets.samples import RawClip

GEOMETRIC_ONLY = dataclasses.replace(
    COCO_AUGMENTATION, brightness=0, hue_saturation=0, motion_blur_probability=0.0
)
CHANNEL_OF_INSTANCE = (0, 2)  # BGR: instance 0 blue, instance 1 red; green stays 0
# Bilinear taps with more than 80 % weight on the instance make the nearest tap (the mask's)
# lie on it too, and less than 20 % makes it lie off it.
INSIDE, OUTSIDE = 0.8, 0.2


def source_image(height=64, width=96):
    """Two asymmetric shapes (an L and a wedge, neither symmetric under a flip) and the image
    that encodes them; masks [2, H, W] uint8, image [H, W, 3] uint8."""
    masks = np.zeros((2, height, width), np.uint8)
    masks[0, 8:40, 10:18] = 1
    masks[0, 32:40, 10:36] = 1  # an L in the left half
    rows, cols = np.mgrid[:height, :width]
    masks[1] = ((rows > 20) & (rows < 56) & (cols > 50) & (cols - 50 < (rows - 20))).astype(
        np.uint8
    )  # a wedge growing downwards in the right half
    image = np.full((height, width, 3), 0, np.uint8)
    for k, channel in enumerate(CHANNEL_OF_INSTANCE):
        image[masks[k].astype(bool), channel] = 255
    return image, masks


def encoding(image_bgr, channel):
    """How much of each pixel is the instance painted in ``channel``, in [~0, 1]: the channel
    minus green (the warp's border is the mean colour, whose channel-minus-green is < 0.06)."""
    image = np.asarray(image_bgr, np.float64)
    return (image[..., channel] - image[..., 1]) / 255.0


def assert_aligned(image_bgr, masks, where=""):
    checked = 0
    for k, channel in enumerate(CHANNEL_OF_INSTANCE):
        value = encoding(image_bgr, channel)
        mask = masks[k].astype(bool)
        inside, outside = value > INSIDE, value < OUTSIDE
        assert mask[inside].all(), (
            f"{where}: instance {k}: {int((~mask[inside]).sum())} "
            f"pixels painted as the instance have mask 0"
        )
        assert not mask[outside].any(), (
            f"{where}: instance {k}: {int(mask[outside].sum())} unpainted pixels have mask 1"
        )
        checked += int(inside.sum())
    assert checked > 100, f"{where}: too few pixels to check"


def pseudo_clip(seed, clip_length=5):
    image, masks = source_image()
    ignore = np.zeros(masks.shape[1:], np.uint8)
    return make_pseudo_clip(
        image, masks, ignore, (3, 7), clip_length, np.random.default_rng(seed), GEOMETRIC_ONLY
    )


def is_flipped(clip):
    image = source_image()[0].astype(np.float32)
    return any(np.array_equal(frame, image[:, ::-1]) for frame in clip.images)


SEEDS = range(6)  # fixed: seeds 0..5 include both flipped and unflipped clips (checked)


def test_pseudo_clip_frames_encode_their_own_masks():
    flips = []
    for seed in SEEDS:
        clip = pseudo_clip(seed)
        flips.append(is_flipped(clip))
        for t in range(clip.images.shape[0]):
            assert_aligned(clip.images[t], clip.masks[:, t], f"seed {seed} frame {t}")
    assert any(flips) and not all(flips)


def test_the_alignment_check_can_fail():
    """Masks flipped without the image, or frames permuted differently from their masks."""
    clip = pseudo_clip(0)
    with pytest.raises(AssertionError, match="instance"):
        assert_aligned(clip.images[0], clip.masks[:, 0, :, ::-1])
    with pytest.raises(AssertionError, match="instance"):
        for t in range(clip.images.shape[0]):
            assert_aligned(clip.images[t], clip.masks[:, (t + 1) % clip.images.shape[0]])


@pytest.mark.parametrize("seed", SEEDS)
def test_targets_at_stride_4_match_the_normalised_padded_images(seed):
    """TargetBuilder on frames that encode their masks exactly (shifted copies of the source;
    a warped frame blends its image at mask borders): a 64 x 96 clip resized to 48 x 72 (scale
    0.75, bilinear), padded to 64 x 96, targets downsampled x1/4. Resizing is linear and the background is 0, so the
    resized image's encoding *is* the resized mask: a target voxel (rows and columns 4i + 1,
    4i + 2 of the padded input, all > 0.5) is 1 exactly where the image says so at its taps."""
    image, masks = source_image()
    shifts = np.random.default_rng(seed).integers(-9, 10, size=(3, 2))
    images = np.stack([np.roll(image, tuple(s), axis=(0, 1)) for s in shifts])
    clip = RawClip(
        images,
        np.stack([np.roll(masks, tuple(s), axis=(1, 2)) for s in shifts], 1),
        np.zeros(images.shape[:3], np.uint8),
        (3, 7),
    )
    built = TargetBuilder(min_dim=48, max_dim=96)(clip)
    mean = torch.tensor(IMAGE_MEAN_BGR, dtype=torch.float32).view(3, 1, 1, 1)
    images = (built.images + mean).permute(1, 2, 3, 0).numpy()  # [T, Hp, Wp, 3] 0..255
    assert built.image_size == (48, 72) and images.shape[1:3] == (64, 96)
    checked = 0
    for t in range(images.shape[0]):
        for k, channel in enumerate(CHANNEL_OF_INSTANCE):
            taps = encoding(images[t], channel).reshape(16, 4, 24, 4)[:, 1:3, :, 1:3]
            weakest = taps.min(axis=(1, 3))  # [16, 24]
            target = built.masks[k, t].numpy().astype(bool)
            assert target[weakest > 0.52].all() and not target[weakest < 0.48].any(), (t, k)
            checked += int((weakest > 0.52).sum())
            np.testing.assert_array_equal(built.instance_ids[t].numpy() == k, target)
    assert checked > 50


@pytest.mark.parametrize("seed", SEEDS)
def test_duplicated_instance_is_painted_where_its_mask_is(seed):
    """Single-instance duplication pastes the instance's pixels and its mask with the same
    shift (and optional flip inside its box); the original loses the covered pixels."""
    image, masks = source_image()
    frames = np.stack([image, np.roll(image, 3, axis=1), np.roll(image, 6, axis=1)])
    instance = np.stack([masks[0], np.roll(masks[0], 3, axis=1), np.roll(masks[0], 6, axis=1)])
    frames[..., 2] = 0  # one instance only: the blue L
    result = duplicate_single_instance(frames, instance, np.random.default_rng(seed))
    assert result is not None
    out_images, (originals, copies) = result
    for t in range(3):
        value = encoding(out_images[t], 0)
        union = (originals[t] | copies[t]).astype(bool)
        assert union[value > INSIDE].all() and not union[value < OUTSIDE].any(), t
        # each mask covers pixels that carry the instance (copies: blended at its border)
        assert (value[copies[t].astype(bool)] > 0.4).all(), t
        assert (value[originals[t].astype(bool)] > 0.99).all(), t
        assert copies[t].sum() > 50 and not (originals[t] & copies[t]).any()
