"""gaussian_probability: prob[K, N] of every voxel under every instance, forward and
forward+backward.

Bytes (fp32): forward reads N*E*4 and writes K*N*4; backward reads the upstream K*N*4 and
N*E*4 embeddings and writes N*E*4 (the [P, K, E] partials are negligible). The reference
instead writes and reads back a [K, N, E] difference, its square and product (about
(3E + 3)*4 bytes per (k, i) in each direction) and keeps them for autograd.
"""

import pytest
import torch
from harness import backends, bench_device, presets, run_benchmark
from inputs import instance_gaussian_inputs
from presets import PRESETS

from stemseg_fast.kernels.gaussian_probability import gaussian_probability

GPU_PRESET_NAMES = ("ytvis720_T8", "davis_T16")  # also the static report's (benchmarks/compiled.py)
PRESET_NAMES = presets(GPU_PRESET_NAMES, ("cpu_small", "ytvis720_T8"))


def setup_gaussian_probability(preset_name, backend, *, requires_grad):
    preset = PRESETS[preset_name]
    embeddings, _, means, precisions = instance_gaussian_inputs(preset, device=bench_device())
    inputs = [x.detach().requires_grad_(requires_grad) for x in (embeddings, means, precisions)]

    def forward():
        return gaussian_probability(*inputs, backend=backend)

    return preset, inputs, forward


def forward_bytes(preset):
    return preset.num_voxels * preset.num_dims * 4 + preset.num_instances * preset.num_voxels * 4


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_gaussian_probability_forward(benchmark, preset_name, backend):
    preset, _, forward = setup_gaussian_probability(preset_name, backend, requires_grad=False)
    benchmark.group = f"gaussian_probability-forward-{preset_name}"
    run_benchmark(benchmark, forward, bytes_moved=forward_bytes(preset))


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_gaussian_probability_forward_backward(benchmark, preset_name, backend):
    preset, inputs, forward = setup_gaussian_probability(preset_name, backend, requires_grad=True)
    benchmark.group = f"gaussian_probability-forward_backward-{preset_name}"
    upstream = torch.ones(preset.num_instances, preset.num_voxels, device=bench_device())

    def forward_backward():
        torch.autograd.grad(forward(), inputs, upstream)

    backward = (
        2 * preset.num_voxels * preset.num_dims * 4 + preset.num_instances * preset.num_voxels * 4
    )
    run_benchmark(benchmark, forward_backward, bytes_moved=forward_bytes(preset) + backward)
