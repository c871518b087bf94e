"""CUDA graphs of the clip step (``cuda_graphs``): replays equal the direct calls bit for bit,
one capture per input signature and predictor, failures fall back with a warning, and a
replayed video syncs only where marked. The GPU tests run in benchmarks/gpu_check.sh."""

import pytest
import torch
from helpers import fast_tiny_predictor

from stemseg_fast.inference.graphs import CapturedCalls
from stemseg_fast.inference.predictor import Predictor
from stemseg_fast.model import PRESETS, build_stemseg
from stemseg_fast.synthetic import synthetic_clip


def test_off_the_gpu_the_function_is_called_directly():
    calls = []
    captured = CapturedCalls(lambda x: calls.append(x) or x * 2, name="double")
    value = torch.arange(3.0)
    assert torch.equal(captured(value), value * 2) and len(calls) == 1
    assert captured.counts == {"captures": 0, "replays": 0, "eager": 0}


def test_graphs_need_a_cuda_device_and_the_triton_backend():
    model = build_stemseg(PRESETS["tiny"])
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device and the triton"):
        Predictor(model, device="cpu", cuda_graphs=True)


@pytest.mark.gpu
def test_a_replay_recomputes_from_the_new_inputs_and_each_signature_has_its_graph():
    captured = CapturedCalls(lambda x, y: (x * y + 1).sum(0), name="affine", max_graphs=2)
    for shape in [(5, 3), (5, 3), (7, 3), (5, 3), (4, 2), (7, 3)]:
        x, y = torch.randn(shape, device="cuda"), torch.randn(shape, device="cuda")
        assert torch.equal(captured(x, y), (x * y + 1).sum(0))
    # every call replays (a capture records, the replay after it computes); (5, 3) and (7, 3)
    # captured, (4, 2) evicts the least recently used (7, 3), which is then captured again
    assert captured.counts == {"captures": 4, "replays": 6, "eager": 0}


@pytest.mark.gpu
def test_a_capture_that_syncs_warns_and_runs_eagerly():
    captured = CapturedCalls(lambda x: x * float(x.sum()), name="syncing")
    x = torch.ones(4, device="cuda")
    with pytest.warns(RuntimeWarning, match="syncing: CUDA graph capture failed"):
        assert torch.equal(captured(x), x * 4)
    assert torch.equal(captured(2 * x), 2 * x * 8)
    assert captured.counts == {"captures": 0, "replays": 0, "eager": 2}


def _same_prediction(actual, expected):
    assert actual.rles == expected.rles
    for field in ("track_ids", "pixel_counts", "first_frames", "last_frames"):
        assert (getattr(actual, field) == getattr(expected, field)).all(), field
    for field in ("class_logit_sums", "class_votes"):
        if getattr(expected, field) is None:
            assert getattr(actual, field) is None, field
        else:
            assert (getattr(actual, field) == getattr(expected, field)).all(), field


@pytest.mark.gpu
@pytest.mark.parametrize("full_resolution", [False, True], ids=["stride4", "fullres"])
def test_graph_replays_give_the_direct_calls_outputs(full_resolution):
    direct = fast_tiny_predictor(full_resolution=full_resolution)
    graphed = fast_tiny_predictor(full_resolution=full_resolution, cuda_graphs=True)
    # 13 frames: regular clips and an end-aligned one; 3 frames: a left-padded short clip
    videos = [synthetic_clip(num_frames=n, height=64, width=96, seed=n).frames for n in (13, 3)]
    for video in videos + videos:  # the second round replays graphs captured in the first
        expected = direct.predict(video, video_id=1)
        _same_prediction(graphed.predict(video, video_id=1), expected)
        assert len(expected.track_ids) > 0
    counts = graphed.clip_steps.counts()
    for step in ("heads", "clustering"):
        assert counts[step]["eager"] == 0 and counts[step]["replays"] > 0, counts
        assert counts[step]["captures"] <= 3, counts  # one per clip signature, kept over videos
    streamed = [frame for frame in graphed.stream(videos[0])]
    assert len(streamed) == 13


@pytest.mark.gpu
def test_a_replayed_video_syncs_only_where_marked():
    predictor = fast_tiny_predictor(cuda_graphs=True)
    video = synthetic_clip(num_frames=13, height=64, width=96, seed=2).frames
    predictor.predict(video, video_id=1)  # captures: they wait on purpose, once per shape
    torch.cuda.set_sync_debug_mode("error")
    try:
        prediction = predictor.predict(video, video_id=1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(prediction.track_ids) > 0
    assert predictor.clip_steps.counts()["heads"]["replays"] >= 3
