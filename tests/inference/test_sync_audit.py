"""The sync audit: a video through the fast path under ``set_sync_debug_mode("error")``, so any
synchronising call outside the places marked with
:func:`~stemseg_fast.inference.host_waits.expected_host_wait` (listed in the pipeline's
docstring) raises. Run by benchmarks/gpu_check.sh."""
import dataclasses

import pytest
import torch

from stemseg_fast.inference import pipeline
from stemseg_fast.inference.host_waits import expected_host_wait
from stemseg_fast.inference.predictor import Predictor
from stemseg_fast.model import PRESETS, build_stemseg
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


@pytest.mark.gpu
@pytest.mark.parametrize("full_resolution", [False, True], ids=["stride4", "fullres"])
def test_a_video_step_syncs_only_where_marked(monkeypatch, full_resolution):
    preset = PRESETS["tiny"]
    config = dataclasses.replace(preset, inference=dataclasses.replace(
        preset.inference, min_seediness=0.3, cluster_at_full_resolution=full_resolution))
    torch.manual_seed(0)
    model = build_stemseg(config, fused=True, backend="triton")
    predictor = Predictor(model, device="cuda", backend="triton", precision="bf16")
    video = synthetic_clip(num_frames=13, height=64, width=96, seed=2).frames  # 3 clips
    predictor.predict(video, video_id=1)  # warm-up: compiling and autotuning wait on purpose
    prediction_of = pipeline.VideoRun._prediction

    def marked_prediction(run):  # the end of the video: the results leave the device
        with expected_host_wait():
            return prediction_of(run)

    monkeypatch.setattr(pipeline.VideoRun, "_prediction", marked_prediction)
    torch.cuda.set_sync_debug_mode("error")
    try:
        prediction = predictor.predict(video, video_id=1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(prediction.track_ids) > 0
