"""Pseudo-clip augmentation: masks stay aligned with images, borders are the mean colour,
overlapping masks survive, the source frame is in the clip, items are deterministic."""

import numpy as np
import pytest
from dataset_fixtures import make_coco

from stemseg_fast.model.preprocessing import IMAGE_MEAN_BGR
from stemseg_fast.synthetic import synthetic_clip
from stemseg_fast.training.datasets import (
    COCO_AUGMENTATION,
    PseudoClipDataset,
    TargetBuilder,
    make_pseudo_clip,
    read_coco,
)
from stemseg_fast.training.datasets.augmentation import (
    adjust_brightness,
    adjust_hue_saturation,
    motion_blur_kernel,
    photometric_jitter,
    random_homography,
    warp_image,
    warp_masks,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _mask_and_encoding_image(seed):
    clip = synthetic_clip(1, 60, 80, num_objects=3, seed=seed)
    mask = (clip.instance_ids[0] >= 0).astype(np.uint8)
    return mask, np.repeat((mask * 200)[..., None], 3, axis=2).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_warped_masks_stay_aligned_with_warped_images(seed):
    mask, image = _mask_and_encoding_image(seed)
    rng = np.random.default_rng(seed)
    homography = random_homography(60, 80, rng, COCO_AUGMENTATION)
    warped_image = warp_image(image, homography)[..., 0]
    warped_mask = warp_masks(mask[None], homography)[0]
    inside = warped_image > 199.5  # bilinear taps all on the object
    outside = warped_image < 0.5  # all taps on (non-border) background
    assert inside.sum() > 50 and (inside | outside).mean() > 0.5
    assert warped_mask[inside].all() and not warped_mask[outside].any()
    # the check can fail: a mask warped with a matrix shifted by 3 pixels disagrees
    shifted = homography.copy()
    shifted[0] += 3 * shifted[2]
    misaligned = warp_masks(mask[None], shifted)[0]
    assert not (misaligned[inside].all() and not misaligned[outside].any())


def test_outside_pixels_are_the_mean_colour_and_zero_after_normalisation():
    image = np.full((16, 24, 3), 17, np.uint8)
    translation = np.array([[1.0, 0, 10], [0, 1, 0], [0, 0, 1]])
    warped = warp_image(image, translation)
    np.testing.assert_allclose(
        warped[:, :10], np.broadcast_to(IMAGE_MEAN_BGR, (16, 10, 3)), rtol=0, atol=1e-4
    )
    np.testing.assert_array_equal(warped[:, 11:], 17)
    masks = np.ones((1, 16, 24), np.uint8)
    assert not warp_masks(masks, translation)[0, :, :10].any()


def test_bit_packed_warp_keeps_overlapping_masks_exactly():
    rng = np.random.default_rng(0)
    masks = (rng.random((37, 20, 30)) > 0.5).astype(np.uint8)  # 37 masks: 5 bytes, 2 calls
    identity = np.eye(3)
    np.testing.assert_array_equal(warp_masks(masks, identity), masks)
    shift = np.array([[1.0, 0, 2], [0, 1, 1], [0, 0, 1]])
    warped = warp_masks(masks, shift)
    np.testing.assert_array_equal(warped[:, 1:, 2:], masks[:, :-1, :-2])
    assert not warped[:, 0].any() and not warped[:, :, :2].any()
    assert warp_masks(masks[:0], shift).shape == (0, 20, 30)


def test_photometric_steps():
    image = np.full((4, 4, 3), 250, np.uint8)
    assert adjust_brightness(image, 40).max() == 255 and adjust_brightness(image, -40).max() == 210
    colourful = synthetic_clip(1, 16, 16, 2, seed=1).frames[0]
    np.testing.assert_array_equal(
        adjust_hue_saturation(colourful, 0),
        adjust_hue_saturation(adjust_hue_saturation(colourful, 0), 0),
    )
    assert not np.array_equal(
        adjust_hue_saturation(colourful, 5), adjust_hue_saturation(colourful, 0)
    )
    rng = np.random.default_rng(0)
    outputs = [photometric_jitter(colourful, rng) for _ in range(5)]
    assert all(o.dtype == np.uint8 and o.shape == colourful.shape for o in outputs)
    assert any(not np.array_equal(o, colourful) for o in outputs)


@pytest.mark.parametrize("size", [9, 11])
def test_motion_blur_kernel_is_normalised(size):
    for direction in (-1.0, 0.0, 0.7):
        kernel = motion_blur_kernel(size, 33.0, direction)
        assert kernel.shape == (size, size) and kernel.min() >= 0
        assert abs(kernel.sum() - 1) < 1e-5


def test_pseudo_clip_contains_the_source_and_aligned_masks():
    source = _mask_and_encoding_image(5)[1]
    mask = (source[..., 0] > 0).astype(np.uint8)
    ignore = np.zeros_like(mask)
    ignore[:5, :5] = 1
    clip = make_pseudo_clip(source, mask[None], ignore, (4,), 6, np.random.default_rng(0))
    assert clip.images.shape == (6, 60, 80, 3) and clip.masks.shape == (1, 6, 60, 80)
    assert clip.ignore.shape == (6, 60, 80) and clip.categories == (4,)
    sources = [
        t
        for t in range(6)
        if np.array_equal(clip.images[t], source) or np.array_equal(clip.images[t], source[:, ::-1])
    ]
    assert len(sources) == 1
    for t in range(6):  # every frame: mask where the image encodes it (photometric only shifts)
        frame_value = clip.images[t][..., 0]
        on_object = clip.masks[0, t].astype(bool)
        assert on_object.sum() > 50
        background = ~on_object & (clip.ignore[t] == 0)
        assert frame_value[on_object].mean() > frame_value[background].mean() + 100


def test_pseudo_clip_dataset_is_deterministic_and_uses_every_image(tmp_path):
    path, image_root = make_coco(str(tmp_path), num_images=3)
    images, _ = read_coco(path, image_root)
    targets = TargetBuilder(min_dim=48, max_dim=96)
    dataset = PseudoClipDataset(images, 5, targets=targets, clip_length=3, seed=1)
    first, again = dataset[4], dataset[4]
    assert np.array_equal(first.images.numpy(), again.images.numpy())
    assert first.images.shape[:2] == (3, 3) and first.instance_ids.shape[0] == 3
    assert sorted(dataset.order.tolist()) == [0, 1, 2]
    other = PseudoClipDataset(images, 5, targets=targets, clip_length=3, seed=2)
    assert not all(
        np.array_equal(other[i].images.numpy(), dataset[i].images.numpy()) for i in range(2)
    )
    with pytest.raises(IndexError):
        dataset[5]
    with pytest.raises(ValueError, match="no annotated image"):
        PseudoClipDataset([], 5)
