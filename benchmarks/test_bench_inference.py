"""End-to-end inference: ``Predictor.predict`` on an in-memory video (decode excluded by
construction), per stage, reference path vs fast path on the same device, and peak memory.

Paths:
  reference  float32 network with the PyTorch reference decoder blocks, reference clustering
  fast       bf16 autocast, fused Triton decoder blocks, Triton clustering (GPU only)

GPU: the OVIS input (frames 640 x 1152, no resize, clips of 8 overlapping by 4) with the R-101
(``ytvis``) and X-101 (``ovis``) networks at random init, clustering at full resolution as the
presets do. Random weights give seediness near 0.5, below the 0.8 seed threshold: the benchmark
sets ``min_seediness=0`` so every clip makes its 20 clusters (the clustering's worst case).
CPU: the tiny preset on a small video, reference path only (keeps ``make bench`` short).

``extra_info`` holds the frames, the per-stage seconds of one run and frames per second.

Steady state (``test_inference_steady_state``): the fast path (reference on CPU) over a video of
:data:`STEADY_FRAMES` frames, long enough that per-clip costs are not overcounted by a short
video, at :data:`TRACK_COUNTS` tracks per clip (5 realistic, 20 the worst case;
``max_instances_per_clip`` caps the clusters random weights make). The wall time of whole
predictions is timed (host work included: hiding it behind the device is the point), not
device events. ``extra_info``: fps per stage (the pipeline's stage timer) and overall (frames /
median wall time) and, on a GPU, ``gpu_busy_fraction``: the union of the device's kernel and
copy intervals in a ``torch.profiler`` trace of one more prediction over its wall time (the
profiler's host overhead makes it a lower bound). On a GPU it runs with and without
``cuda_graphs`` (heads and clustering replayed as CUDA graphs), ``extra_info["cuda_graphs"]``.
"""

import dataclasses
import time

import pytest
import torch
from harness import bench_device, run_benchmark

from stemseg_fast.inference.pipeline import STAGES
from stemseg_fast.inference.predictor import Predictor
from stemseg_fast.model import PRESETS, build_stemseg
from stemseg_fast.synthetic import synthetic_video

ON_GPU = torch.cuda.is_available()
# (preset, frames, height, width)
CASES = (
    [("youtube_vis", 16, 640, 1152), ("ovis", 16, 640, 1152)] if ON_GPU else [("tiny", 8, 64, 96)]
)
PATHS = ("reference", "fast") if ON_GPU else ("reference",)


STEADY_FRAMES = 64
TRACK_COUNTS = (5, 20)
STEADY_CASES = [("ovis", 640, 1152)] if ON_GPU else [("tiny", 64, 96)]
STEADY_PATH = "fast" if ON_GPU else "reference"
STEADY_ROUNDS = 3 if ON_GPU else 1
GRAPH_MODES = (False, True) if ON_GPU else (False,)


def setup_inference(
    preset_name, path, frames, height, width, max_instances=None, cuda_graphs=False
):
    preset = PRESETS[preset_name]
    inference = dataclasses.replace(preset.inference, min_seediness=0.0)
    if max_instances is not None:
        inference = dataclasses.replace(inference, max_instances_per_clip=max_instances)
    config = dataclasses.replace(preset, inference=inference)
    fast = path == "fast"
    torch.manual_seed(0)
    model = build_stemseg(config, fused=fast, backend="triton" if fast else "reference")
    predictor = Predictor(
        model,
        device=bench_device(),
        backend="triton" if fast else "reference",
        precision="bf16" if fast else "fp32",
        cuda_graphs=cuda_graphs,
    )
    video = synthetic_video(num_frames=frames, height=height, width=width, seed=0).frames
    return predictor, video


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("preset_name,frames,height,width", CASES)
def test_inference_end_to_end(benchmark, preset_name, frames, height, width, path):
    predictor, video = setup_inference(preset_name, path, frames, height, width)
    benchmark.group = f"inference-end_to_end-{preset_name}-{frames}x{height}x{width}"
    last = {}

    def predict():
        last["prediction"] = predictor.predict(video, video_id=1)

    run_benchmark(benchmark, predict)
    timings = last["prediction"].timings
    info = benchmark.extra_info
    info["frames"] = frames
    info["path"] = path
    info["num_tracks"] = int(len(last["prediction"].track_ids))
    for stage in (*STAGES, "total"):
        info[f"seconds_{stage}"] = timings[stage]
        if timings[stage] > 0:
            info[f"fps_{stage}"] = frames / timings[stage]


def _busy_seconds(intervals):
    """Length of the union of ``(start, end)`` intervals (microseconds in, seconds out)."""
    busy, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy / 1e6


def gpu_busy_fraction(fn):
    """Fraction of ``fn()``'s wall time with a kernel or copy running on the device."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as trace:
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        wall = time.perf_counter() - start
    intervals = [
        (event.time_range.start, event.time_range.end)
        for event in trace.events()
        if event.device_type == DeviceType.CUDA
    ]
    return _busy_seconds(intervals) / wall


@pytest.mark.parametrize("cuda_graphs", GRAPH_MODES, ids=lambda on: "graphs" if on else "eager")
@pytest.mark.parametrize("tracks", TRACK_COUNTS)
@pytest.mark.parametrize("preset_name,height,width", STEADY_CASES)
def test_inference_steady_state(benchmark, preset_name, height, width, tracks, cuda_graphs):
    predictor, video = setup_inference(
        preset_name,
        STEADY_PATH,
        STEADY_FRAMES,
        height,
        width,
        max_instances=tracks,
        cuda_graphs=cuda_graphs,
    )
    benchmark.group = (
        f"inference-steady_state-{preset_name}-{STEADY_FRAMES}x{height}x{width}-{tracks}_tracks"
    )
    last = {}

    def predict():
        last["prediction"] = predictor.predict(video, video_id=1)

    predict()  # compiling and autotuning stay out of the rounds
    benchmark.pedantic(predict, rounds=STEADY_ROUNDS, warmup_rounds=0)
    prediction = last["prediction"]
    info = benchmark.extra_info
    info.update(
        device=str(bench_device()),
        frames=STEADY_FRAMES,
        path=STEADY_PATH,
        max_instances_per_clip=tracks,
        cuda_graphs=cuda_graphs,
        graph_counts=predictor.clip_steps.counts(),
        num_tracks=int(len(prediction.track_ids)),
    )
    for stage in (*STAGES, "total"):
        info[f"seconds_{stage}"] = prediction.timings[stage]
        if prediction.timings[stage] > 0:
            info[f"fps_{stage}"] = STEADY_FRAMES / prediction.timings[stage]
    info["fps_overall"] = STEADY_FRAMES / benchmark.stats.stats.median
    if ON_GPU:
        info["gpu_busy_fraction"] = gpu_busy_fraction(predict)
