"""Whole-network timings: the backbone per frame (cached across overlapping clips at inference)
and the full network forward per clip (backbone on T frames + decoders + heads).

GPU: the real presets at their network input (YouTube-VIS 720p -> 640 x 1152, T = 8; OVIS the
same size with X-101). CPU: the tiny preset at a small clip, reference blocks only.
"""

import functools

import pytest
import torch
from harness import backends, bench_device, run_benchmark

from stemseg_fast.model import PRESETS, build_stemseg

ON_GPU = torch.cuda.is_available()
# (preset, frames, height, width)
CASES = (
    [("youtube_vis", 8, 640, 1152), ("ovis", 8, 640, 1152), ("davis", 16, 704, 1248)]
    if ON_GPU
    else [("tiny", 4, 64, 96)]
)


@functools.lru_cache(maxsize=None)
def _built_model(preset_name, backend):
    """Each network once per module: building an R-101/X-101 costs seconds of a GPU budget."""
    model = build_stemseg(
        PRESETS[preset_name],
        fused=backend == "triton",
        backend="triton" if backend == "triton" else "reference",
    )
    return model.to(bench_device()).eval()


def setup_model(preset_name, backend, dtype):
    model = _built_model(preset_name, backend)

    def autocast():
        return torch.autocast(bench_device().type, dtype=dtype, enabled=dtype is not None)

    return model, autocast


def _dtypes():
    return {"fp32": None, "bf16": torch.bfloat16} if ON_GPU else {"fp32": None}


@pytest.mark.parametrize("dtype_name", list(_dtypes()))
@pytest.mark.parametrize("preset_name,frames,height,width", CASES)
def test_backbone_per_frame(benchmark, preset_name, frames, height, width, dtype_name):
    model, autocast = setup_model(preset_name, "reference", _dtypes()[dtype_name])
    benchmark.group = f"backbone-per_frame-{dtype_name}-{preset_name}"
    frame = torch.randn(1, 3, height, width, device=bench_device())

    def forward():
        with torch.no_grad(), autocast():
            return model.backbone_features(frame)

    run_benchmark(benchmark, forward)


@pytest.mark.parametrize("dtype_name", list(_dtypes()))
@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name,frames,height,width", CASES)
def test_network_forward_per_clip(
    benchmark, preset_name, frames, height, width, backend, dtype_name
):
    model, autocast = setup_model(preset_name, backend, _dtypes()[dtype_name])
    benchmark.group = f"network-forward_per_clip-{dtype_name}-{preset_name}"
    clip = torch.randn(1, 3, frames, height, width, device=bench_device())

    def forward():
        with torch.no_grad(), autocast():
            return model(clip)

    run_benchmark(benchmark, forward)
