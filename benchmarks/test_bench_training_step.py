"""One training step (forward, losses, backward, SGD update) of a whole STEm-Seg network:
the official per-instance losses vs the fused losses, time and peak memory.

GPU: the ytvis preset (R-101-FPN) on a clip of the ``ytvis720_T8`` preset (T = 8, input
640 x 1152, stride-4 map 160 x 288, K = 10 instances), fp32 and bf16 autocast, Triton decoder
blocks. CPU: the tiny preset on a 4 x 64 x 96 clip.
"""

import functools

import pytest
import torch
from harness import bench_device, run_benchmark
from inputs import instance_id_map
from presets import PRESETS

from stemseg_fast.model import PRESETS as MODEL_PRESETS
from stemseg_fast.model import build_stemseg
from stemseg_fast.training.datasets import ClipBatch
from stemseg_fast.training.objective import LossConfig, STEmSegObjective

ON_GPU = torch.cuda.is_available()
MODEL, CLIP = ("youtube_vis", "ytvis720_T8") if ON_GPU else ("tiny", "cpu_small")
DTYPES = {"fp32": None, "bf16": torch.bfloat16} if ON_GPU else {"fp32": None}
STRIDE = 4


@functools.lru_cache(maxsize=None)
def _built_model():
    """The network once per module (every loss variant and dtype trains the same one; the
    steps' updates do not change the work a step does)."""
    return build_stemseg(MODEL_PRESETS[MODEL], fused=ON_GPU).to(bench_device()).train()


def training_batch(preset, num_classes, device):
    """One clip: noise images, K drifting boxes as instances, a category per instance."""
    ids = instance_id_map(preset, device=device)  # [T, h, w], -1 = none
    categories = torch.arange(preset.num_instances, device=device) % (num_classes - 1) + 1
    semantic = torch.where(ids >= 0, categories[ids.clamp(min=0)], 0)
    height, width = preset.height * STRIDE, preset.width * STRIDE
    images = torch.randn(1, 3, preset.num_frames, height, width, device=device)
    return ClipBatch(
        images,
        ids[None],
        torch.zeros_like(ids, dtype=torch.uint8)[None],
        semantic[None],
        [None],
        [categories],
        [(height, width)],
        ["benchmark"],
    )


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("losses", ["reference", "fused"])
def test_training_step(benchmark, losses, dtype_name):
    device = bench_device()
    config = MODEL_PRESETS[MODEL]
    model = _built_model()
    objective = STEmSegObjective(
        LossConfig(implementation=losses), free_dim_precision=config.free_dim_precision
    )
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=1e-5, momentum=0.9, nesterov=True
    )
    batch = training_batch(PRESETS[CLIP], config.num_classes, device)
    dtype = DTYPES[dtype_name]
    benchmark.group = f"training_step-{dtype_name}-{MODEL}-{CLIP}"
    benchmark.extra_info["losses"] = losses

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            total = objective(model, batch)["total"]
        total.backward()
        optimizer.step()

    run_benchmark(benchmark, step)
