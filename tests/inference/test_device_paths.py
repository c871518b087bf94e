"""Paths only a GPU runs in the pipeline (run by benchmarks/gpu_check.sh)."""
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from stemseg_fast.inference.masks import ENCODE_BATCH, MASK_CHUNK, encode_clip_masks, frame_masks
from stemseg_fast.model import PRESETS
from stemseg_fast.model.preprocessing import resized_size


@pytest.mark.gpu
def test_masks_are_encoded_on_the_gpu_as_pycocotools_would():
    config = PRESETS["tiny"]
    sizes = dict(resized=resized_size(70, 90, config.inference.min_dim, config.inference.max_dim),
                 frame_size=(70, 90), full_resolution=False)
    # A stride-4 label map of the padded input (64 x 96 for 70 x 90 frames): blobs and noise.
    generator = np.random.default_rng(0)
    labels = np.full((16, 24), -1, np.int64)
    labels[2:9, 3:12], labels[8:15, 10:22] = 4, 7
    labels[generator.random((16, 24)) > 0.9] = 11
    labels = torch.from_numpy(labels).cuda()
    track_ids = torch.unique(labels)
    track_ids = track_ids[track_ids >= 0]
    # Frames of a clip encoded together: enough frames that the masks span several batches.
    num_frames = ENCODE_BATCH // len(track_ids) + 2
    clip = labels.expand(num_frames, -1, -1)
    encoded = encode_clip_masks(clip, [track_ids.tolist()] * num_frames, **sizes)
    masks = frame_masks(labels, track_ids, **sizes).cpu().numpy().transpose(2, 1, 0)
    expected = [e["counts"] for e in mask_utils.encode(np.asfortranarray(masks))]
    assert len(track_ids) < MASK_CHUNK
    for frame in encoded:
        assert [frame[int(k)]["counts"] for k in track_ids] == expected
