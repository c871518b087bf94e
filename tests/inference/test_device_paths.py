"""Paths only a GPU runs in the pipeline (run by benchmarks/gpu_check.sh)."""

import numpy as np
import pytest
import torch
from helpers import untrained_tiny_config
from pycocotools import mask as mask_utils

from stemseg_fast.inference import pipeline
from stemseg_fast.inference.masks import (
    ENCODE_BATCH,
    MASK_CHUNK,
    ClipMaskEncoding,
    encode_clip_masks,
    frame_masks,
)
from stemseg_fast.inference.predictor import Predictor
from stemseg_fast.model import PRESETS, build_stemseg
from stemseg_fast.model.preprocessing import resized_size
from stemseg_fast.synthetic import synthetic_clip


@pytest.mark.gpu
def test_masks_are_encoded_on_the_gpu_as_pycocotools_would():
    config = PRESETS["tiny"]
    sizes = dict(
        resized=resized_size(70, 90, config.inference.min_dim, config.inference.max_dim),
        frame_size=(70, 90),
        full_resolution=False,
    )
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


@pytest.mark.gpu
def test_masks_encoded_on_a_side_stream_wait_for_late_masks():
    """The device is kept busy before the masks are made, so a side stream that did not wait
    for them would read unwritten memory."""
    sizes = dict(resized=(64, 90), frame_size=(70, 90), full_resolution=False)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(-1, 6, (6, 16, 24), generator=generator)  # [T, h, w]
    track_ids = [sorted(set(frame.unique().tolist()) - {-1}) for frame in labels]
    expected = ClipMaskEncoding(labels, track_ids, **sizes).result()  # CPU: pycocotools
    side = torch.cuda.Stream()
    torch.cuda._sleep(200_000_000)  # ~0.1 s of device time queued before the masks
    encoding = ClipMaskEncoding(labels.cuda(), track_ids, side_stream=side, **sizes)
    assert encoding.result() == expected


@pytest.mark.gpu
def test_overlapped_mask_encoding_writes_the_bytes_of_the_synchronous_one(monkeypatch):
    torch.manual_seed(0)
    model = build_stemseg(untrained_tiny_config())
    clip = synthetic_clip(num_frames=13, height=64, width=96, seed=2)  # 3 clips, overlapping
    overlapped = Predictor(model, device="cuda", backend="reference").predict(
        clip.frames, video_id=1
    )

    class Synchronous(pipeline.ClipMaskEncoding):
        """Collected at once, on the current stream."""

        def __init__(self, *args, side_stream=None, **kwargs):
            super().__init__(*args, **kwargs)
            self._rles = super().result()

        def result(self):
            return self._rles

    monkeypatch.setattr(pipeline, "ClipMaskEncoding", Synchronous)
    synchronous = Predictor(model, device="cuda", backend="reference").predict(
        clip.frames, video_id=1
    )
    assert len(overlapped.track_ids) > 0
    assert overlapped.rles == synchronous.rles


@pytest.mark.gpu
def test_frames_uploaded_from_pinned_memory_give_the_outputs_of_a_waited_upload(monkeypatch):
    torch.manual_seed(0)
    model = build_stemseg(untrained_tiny_config())
    clip = synthetic_clip(num_frames=13, height=64, width=96, seed=5)
    frame = clip.frames[3]
    pinned = pipeline.pinned_frame(frame)
    assert pinned.is_pinned() and (pinned.numpy() == frame).all()
    uploaded = Predictor(model, device="cuda", backend="reference").predict(clip.frames, video_id=1)
    monkeypatch.setattr(pipeline, "pinned_frame", torch.from_numpy)  # pageable: waited for
    waited = Predictor(model, device="cuda", backend="reference").predict(clip.frames, video_id=1)
    assert len(uploaded.track_ids) > 0
    assert uploaded.rles == waited.rles
