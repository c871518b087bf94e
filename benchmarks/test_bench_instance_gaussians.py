"""instance_gaussians: per-instance mean embedding and precision, forward and forward+backward.

Bytes: read N*(E + (E-F)) floats and N ids, write K*(2E+1); backward reads ids, r and the tiny
[K, E] gradients and writes N*(2E-F) floats.
"""

import pytest
import torch
from harness import backends, bench_device, presets, run_benchmark
from inputs import OFFICIAL_PRECISIONS, embedding_inputs, instance_id_map
from presets import PRESETS

from stemseg_fast.kernels import instance_gaussians

GPU_PRESET_NAMES = ("ytvis720_T8", "davis_T16")  # also the static report's (benchmarks/compiled.py)
PRESET_NAMES = presets(GPU_PRESET_NAMES, ("cpu_small", "ytvis720_T8"))


def setup_instance_gaussians(preset_name, backend, *, requires_grad):
    preset = PRESETS[preset_name]
    device = bench_device()
    embeddings, log_precisions, _ = embedding_inputs(preset, device=device)
    embeddings.requires_grad_(requires_grad)
    log_precisions.requires_grad_(requires_grad)
    ids = instance_id_map(preset, device=device).flatten()

    def forward():
        return instance_gaussians(
            embeddings,
            log_precisions,
            ids,
            preset.num_instances,
            backend=backend,
            **OFFICIAL_PRECISIONS,
        )

    return preset, embeddings, log_precisions, forward


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_instance_gaussians_forward(benchmark, preset_name, backend):
    preset, _, _, forward = setup_instance_gaussians(preset_name, backend, requires_grad=False)
    benchmark.group = f"instance_gaussians-forward-{preset_name}"
    read = preset.num_voxels * ((preset.num_dims + preset.num_variance_dims) * 4 + 8)
    run_benchmark(benchmark, forward, bytes_moved=read)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_instance_gaussians_forward_backward(benchmark, preset_name, backend):
    preset, embeddings, log_precisions, forward = setup_instance_gaussians(
        preset_name, backend, requires_grad=True
    )
    benchmark.group = f"instance_gaussians-forward_backward-{preset_name}"

    def forward_backward():
        means, precisions, _ = forward()
        torch.autograd.grad(means.sum() + precisions.sum(), [embeddings, log_precisions])

    floats = preset.num_dims + preset.num_variance_dims
    # forward reads, backward reads ids + r and writes both gradients
    moved = preset.num_voxels * (floats * 4 + 8) * 2 + preset.num_voxels * floats * 4
    run_benchmark(benchmark, forward_backward, bytes_moved=moved)
