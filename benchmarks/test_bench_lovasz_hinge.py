"""lovasz_hinge: Berman's flat binary hinge per row of [K, N] logits, forward and
forward+backward (the gradient is computed in the forward; backward scales it per row).

Bytes (fp32 logits, bool labels), Triton: errors pass K*N*(4 + 1 + 4); torch.sort at least
K*N*(4 + 4 + 8) (read keys, write sorted keys and int64 indices, one pass; radix sorts make
several); chunk pass K*N*(8 + 1); gradient pass K*N*(4 + 8 + 1 + 4): about 51 bytes per
element. Backward reads the held K*N*4 gradient and writes K*N*4. The reference moves several
times more (gather, two cumsums, division, difference, product, each a [K, N] pass).
"""

import pytest
import torch
from harness import backends, bench_device, presets, run_benchmark
from inputs import instance_gaussian_inputs
from presets import PRESETS

from stemseg_fast.kernels.gaussian_probability import gaussian_probability_reference
from stemseg_fast.kernels.lovasz_hinge import lovasz_hinge

GPU_PRESET_NAMES = ("ytvis720_T8", "davis_T16")  # also the static report's (benchmarks/compiled.py)
PRESET_NAMES = presets(GPU_PRESET_NAMES, ("cpu_small", "ytvis720_T8"))


def setup_lovasz_hinge(preset_name, backend, *, requires_grad):
    """Logits 2p - 1 of the preset's instances (the embedding loss's real input) and labels."""
    preset = PRESETS[preset_name]
    device = bench_device()
    embeddings, ids, means, precisions = instance_gaussian_inputs(preset, device=device)
    logits = 2.0 * gaussian_probability_reference(embeddings, means, precisions) - 1.0
    logits = logits.detach().requires_grad_(requires_grad)
    labels = ids[None, :] == torch.arange(preset.num_instances, device=device)[:, None]

    def forward():
        return lovasz_hinge(logits, labels, backend=backend)

    return preset, logits, forward


def forward_bytes(preset):
    return preset.num_instances * preset.num_voxels * (9 + 16 + 9 + 17)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_lovasz_hinge_forward(benchmark, preset_name, backend):
    preset, _, forward = setup_lovasz_hinge(preset_name, backend, requires_grad=False)
    benchmark.group = f"lovasz_hinge-forward-{preset_name}"
    run_benchmark(benchmark, forward, bytes_moved=forward_bytes(preset))


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_lovasz_hinge_forward_backward(benchmark, preset_name, backend):
    preset, logits, forward = setup_lovasz_hinge(preset_name, backend, requires_grad=True)
    benchmark.group = f"lovasz_hinge-forward_backward-{preset_name}"

    def forward_backward():
        torch.autograd.grad(forward().sum(), [logits])

    backward = preset.num_instances * preset.num_voxels * 8
    run_benchmark(benchmark, forward_backward, bytes_moved=forward_bytes(preset) + backward)
