"""The sync audit: a video through the fast path under ``set_sync_debug_mode("error")``, so any
synchronising call outside the places marked with
:func:`~stemseg_fast.inference.host_waits.expected_host_wait` (listed in the pipeline's
docstring) raises. Run by benchmarks/gpu_check.sh."""

import pytest
import torch
from helpers import fast_tiny_predictor

from stemseg_fast.inference import pipeline
from stemseg_fast.inference.host_waits import expected_host_wait
from stemseg_fast.synthetic import synthetic_clip


@pytest.mark.gpu
def test_outside_a_marked_place_a_sync_raises():
    value = torch.ones(1, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        with expected_host_wait():
            assert value.item() == 1.0
        with pytest.raises(RuntimeError):
            value.item()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _fast_tiny(full_resolution):
    predictor = fast_tiny_predictor(full_resolution=full_resolution)
    video = synthetic_clip(num_frames=13, height=64, width=96, seed=2).frames  # 3 clips
    predictor.predict(video, video_id=1)  # warm-up: compiling and autotuning wait on purpose
    return predictor, video


def _audited(predictor, video):
    torch.cuda.set_sync_debug_mode("error")
    try:
        return predictor.predict(video, video_id=1)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _allowed(method):
    def marked(*args, **kwargs):
        with expected_host_wait():
            return method(*args, **kwargs)

    return marked


@pytest.mark.gpu
@pytest.mark.parametrize("full_resolution", [False, True], ids=["stride4", "fullres"])
def test_the_pipeline_around_the_network_syncs_only_where_marked(monkeypatch, full_resolution):
    """Clustering, stitching, class statistics and masks; the network's calls allowed (its
    own syncs are the next test's)."""
    predictor, video = _fast_tiny(full_resolution)
    model = predictor.model
    monkeypatch.setattr(model, "backbone_features", _allowed(model.backbone_features))
    monkeypatch.setattr(model, "heads", _allowed(model.heads))
    monkeypatch.setattr(pipeline, "preprocess_clip", _allowed(pipeline.preprocess_clip))
    assert len(_audited(predictor, video).track_ids) > 0


@pytest.mark.gpu
def test_a_whole_video_step_syncs_only_where_marked():
    """Pre-processing, backbone and heads included (a host-made tensor copied without
    ``non_blocking`` there fails it)."""
    predictor, video = _fast_tiny(full_resolution=True)
    assert len(_audited(predictor, video).track_ids) > 0
