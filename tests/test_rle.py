import numpy as np
import pytest

from stemseg_fast.rle import decode_rle, encode_mask, to_json, to_pycocotools


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

