import numpy as np
import pytest

from stemseg_fast.io.rle import decode_rle, encode_mask, to_json, to_pycocotools


def test_round_trip_through_both_forms():
    rng = np.random.default_rng(0)
    mask = (rng.random((7, 11)) > 0.5).astype(np.uint8)
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], bytes)
    as_json = to_json(rle)
    assert isinstance(as_json["counts"], str) and as_json["size"] == [7, 11]
    assert to_pycocotools(as_json) == {"size": [7, 11], "counts": rle["counts"]}
    np.testing.assert_array_equal(decode_rle(as_json), mask)
    np.testing.assert_array_equal(decode_rle(rle), mask)


def test_encode_refuses_a_volume():
    with pytest.raises(ValueError, match=r"mask must have shape \[H, W\]"):
        encode_mask(np.zeros((2, 3, 4)))


def _adversarial_masks(rng, height, width):
    """Random, empty, full, one pixel (first, last, middle), alternating, stripes, blobs."""
    masks = [
        rng.random((height, width)) > 0.5,
        np.zeros((height, width), bool),
        np.ones((height, width), bool),
    ]
    for row, column in ((0, 0), (height - 1, width - 1), (height // 2, width // 2)):
        one = np.zeros((height, width), bool)
        one[row, column] = True
        masks.append(one)
    checker = (np.add.outer(np.arange(height), np.arange(width)) % 2).astype(bool)
    masks += [checker, ~checker, np.zeros((height, width), bool)]
    masks[-1][:, ::3] = True  # full columns: runs that span columns in column-major order
    blob = np.zeros((height, width), bool)
    blob[height // 4 : 3 * height // 4 + 1, width // 3 : width - 1] = True
    masks.append(blob)
    return np.stack(masks)


@pytest.mark.parametrize("height, width", [(1, 1), (1, 17), (13, 1), (31, 47), (64, 33)])
def test_masks_encoded_where_they_are_match_pycocotools_byte_for_byte(height, width, rng, device):
    import torch
    from pycocotools import mask as mask_utils

    from stemseg_fast.io.rle import encode_masks

    generator = np.random.default_rng(int(torch.randint(2**31, (1,), generator=rng)))
    masks = _adversarial_masks(generator, height, width)
    expected = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for dtype in (torch.bool, torch.uint8):
        encoded = encode_masks(torch.from_numpy(masks).to(device=device, dtype=dtype))
        assert [rle["counts"] for rle in encoded] == [rle["counts"] for rle in expected]
        assert all(rle["size"] == [height, width] for rle in encoded)


@pytest.mark.parametrize("pinned", [False, True], ids=["waited", "pinned"])
def test_runs_copied_without_waiting_encode_the_same_bytes(rng, device, pinned):
    import torch
    from pycocotools import mask as mask_utils

    from stemseg_fast.io.rle import find_mask_runs, rles_from_runs

    generator = np.random.default_rng(int(torch.randint(2**31, (1,), generator=rng)))
    masks = _adversarial_masks(generator, 37, 23)
    runs = find_mask_runs(torch.from_numpy(masks).to(device)).to_host(pinned=pinned)
    if device.type == "cuda":
        torch.cuda.current_stream().synchronize()  # a pinned copy is read once it has arrived
    expected = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    assert [rle["counts"] for rle in rles_from_runs(runs)] == [rle["counts"] for rle in expected]
    assert all(tensor.device.type == "cpu" for tensor in runs[:3])


def test_encode_masks_edges():
    import torch

    from stemseg_fast.io.rle import encode_masks

    assert encode_masks(torch.zeros(0, 5, 4, dtype=torch.bool)) == []
    with pytest.raises(ValueError, match=r"masks must have shape \[K, H, W\]"):
        encode_masks(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="at least one pixel"):
        encode_masks(torch.zeros(2, 0, 4))
