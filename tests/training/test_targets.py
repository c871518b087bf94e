"""Targets: the official 1/4 rule, id and semantic maps, the TargetBuilder end to end."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stemseg_fast.model.preprocessing import IMAGE_MEAN_BGR
from stemseg_fast.training.datasets import RawClip, TargetBuilder
from stemseg_fast.training.datasets.targets import downsample_targets, instance_id_map, semantic_map


def test_quarter_rule_is_one_only_where_all_four_taps_are_one():
    # at scale 1/4 (align_corners=False) output (i, j) samples rows 4i+1, 4i+2, cols 4j+1, 4j+2
    mask = torch.zeros(1, 8, 8, dtype=torch.uint8)
    mask[0, 1:3, 1:3] = 1  # the four taps of output (0, 0): kept
    mask[0, 1:3, 5] = 1  # only two taps of output (0, 1): dropped by the truncating cast
    mask[0, 5, 5:7] = 1
    mask[0, 6, 5] = 1  # three of the four taps of output (1, 1): dropped
    mask[0, 4, 0:4] = 1
    mask[0, 7, 0:4] = 1  # row 4 and 7 are never tapped: output (1, 0) stays 0
    expected = torch.tensor([[[1, 0], [0, 0]]], dtype=torch.uint8)
    assert torch.equal(downsample_targets(mask), expected)
    mask[0, 6, 6] = 1  # now all four taps of (1, 1)
    assert downsample_targets(mask)[0, 1, 1] == 1


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_tap_rule_matches_the_official_bilinear_cast_on_random_masks(rng, stride):
    masks = (torch.rand(3, 24, 40, generator=rng) > 0.3).to(torch.uint8)
    tap = stride // 2 - 1
    masks[0, tap : tap + 2, tap : tap + 2] = 1

    def official(m):  # bilinear at 1/stride, then the truncating cast
        return F.interpolate(
            m[:, None].float(), scale_factor=1 / stride, mode="bilinear", align_corners=False
        )[:, 0].to(torch.uint8)

    assert torch.equal(downsample_targets(masks, stride), official(masks))
    # the comparison can fail: removing one tap of a kept output changes the result
    broken = masks.clone()
    broken[0, tap, tap] = 0
    assert not torch.equal(downsample_targets(broken, stride), official(masks))


def test_downsample_requires_padded_masks():
    with pytest.raises(ValueError, match="multiple of 4, got 6x8"):
        downsample_targets(torch.zeros(1, 6, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="stride must be even"):
        downsample_targets(torch.zeros(1, 6, 6, dtype=torch.uint8), stride=3)


def test_id_map_highest_index_wins_and_semantic_takes_max_category():
    masks = torch.zeros(3, 1, 2, 3, dtype=torch.uint8)
    masks[0, 0, :, :2] = 1
    masks[1, 0, :, 1:] = 1  # overlaps instance 0 in column 1
    categories = torch.tensor([5, 2, 9])
    ids = instance_id_map(masks)
    assert ids.tolist() == [[[0, 1, 1], [0, 1, 1]]]
    assert semantic_map(masks, categories).tolist() == [[[5, 5, 2], [5, 5, 2]]]
    assert instance_id_map(masks[:0]).tolist() == [[[-1] * 3] * 2]
    assert semantic_map(masks[:0], categories[:0]).tolist() == [[[0] * 3] * 2]


def test_target_builder_shapes_normalisation_and_padding():
    frames, height, width = 2, 30, 50
    images = np.full((frames, height, width, 3), 200, np.uint8)
    masks = np.zeros((2, frames, height, width), np.uint8)
    masks[0, :, 4:20, 8:40] = 1
    masks[1, 1, 10:26, 20:48] = 1
    ignore = np.zeros((frames, height, width), np.uint8)
    ignore[:, :8, :8] = 1
    clip = TargetBuilder(min_dim=60, max_dim=200)(RawClip(images, masks, ignore, (3, 7), "c"))
    # resize: short side 30 -> 60, long side 100 <= 200; padded to 64 x 128
    assert clip.image_size == (60, 100)
    assert clip.images.shape == (3, frames, 64, 128) and clip.images.dtype == torch.float32
    expected = 200 - torch.tensor(IMAGE_MEAN_BGR)
    torch.testing.assert_close(clip.images[:, 0, 10, 10], expected)
    assert clip.images[:, :, 60:].abs().max() == 0 and clip.images[:, :, :, 100:].abs().max() == 0
    assert clip.instance_ids.shape == clip.ignore.shape == clip.semantic.shape == (frames, 16, 32)
    assert clip.masks.shape == (2, frames, 16, 32)
    # instance 0 at rows 8..40, cols 16..80 of the resized frame -> stride-4 rows 2..9, cols 4..19
    assert clip.masks[0, 0, 2:10, 4:20].all() and clip.masks[0, 0].sum() == 8 * 16
    assert clip.semantic[1].max() == 7 and clip.instance_ids[1].max() == 1
    assert clip.ignore[:, :4, :4].all() and clip.ignore.sum() == frames * 16
    assert clip.categories.tolist() == [3, 7]
    with pytest.raises(ValueError, match="min_dim"):
        TargetBuilder(min_dim=100, max_dim=50)
