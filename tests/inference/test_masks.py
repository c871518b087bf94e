"""The output mask path: frames the resize rule left as they were skip the resize to the frame
size (an identity) and, at full resolution, the float maps altogether; the masks stay those of
the official path (one-hot, x4 bilinear at stride 4, crop, bilinear to the frame, > 0.5)."""

import pytest
import torch
import torch.nn.functional as F

from stemseg_fast.inference.masks import EMBEDDING_STRIDE, frame_masks


def official_masks(labels, track_ids, resized, frame_size, full_resolution):
    one_hot = (labels[None] == track_ids[:, None, None]).float()[None]
    if not full_resolution:
        one_hot = F.interpolate(
            one_hot, scale_factor=EMBEDDING_STRIDE, mode="bilinear", align_corners=False
        )
    one_hot = one_hot[:, :, : resized[0], : resized[1]]
    one_hot = F.interpolate(one_hot, size=frame_size, mode="bilinear", align_corners=False)
    return (one_hot[0] > 0.5).to(torch.uint8).transpose(1, 2)


@pytest.mark.parametrize("full_resolution", [False, True], ids=["stride4", "fullres"])
@pytest.mark.parametrize("frame_size", [(60, 90), (50, 70)], ids=["unresized", "resized"])
def test_masks_equal_the_official_path(rng, full_resolution, frame_size):
    resized, padded = (60, 90), (64, 96)  # the frame inside the padded network input
    shape = padded if full_resolution else (padded[0] // 4, padded[1] // 4)
    labels = torch.randint(-1, 7, shape, generator=rng)
    # Blobs as well as noise, so masks survive the x4 upsampling and the resize.
    labels[2:9, 3:12], labels[5:14, 10:20] = 3, 5
    track_ids = torch.arange(7)
    masks = frame_masks(
        labels, track_ids, resized=resized, frame_size=frame_size, full_resolution=full_resolution
    )
    expected = official_masks(labels, track_ids, resized, frame_size, full_resolution)
    assert masks.dtype == torch.uint8 and masks.is_contiguous()
    assert expected.sum() > 0
    assert torch.equal(masks, expected)
