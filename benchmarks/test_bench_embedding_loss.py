"""embedding_loss: Lovász + smoothness + seediness of one clip, forward and forward+backward.

Variants: ``loop_reference`` (the official per-instance loop: K gathers, K [N, E] probability
passes, K sorts), ``batched_reference`` (plain PyTorch over [K, N, E]), ``compiled`` (the
batched reference compiled by Inductor: the honest competitor; Dynamo breaks the graph at the
data-dependent boolean indexing of the instance statistics, as it would for any user),
``triton`` (fused, CUDA only).

Bytes of the Triton path (fp32, int64 id map), forward: instance_gaussians N*(4E + 4(E-F) + 8);
errors kernel N*(4E + 4 + 4) + 4*K*N; sort >= 16*K*N; Lovász kernels 12*K*N + 20*K*N (ids
gathered as int32); smoothness and seediness about N*(8(E-F) + 16). Backward: 4*K*N (held
gradient) + N*(8E) (embeddings in, gradient out) + instance_gaussians' N*(4(E-F) + 4 + 4E + 4(E-F)).
"""

import pytest
import torch
from harness import COMPILED, bench_device, compile_reference, presets, run_benchmark
from inputs import OFFICIAL_PRECISIONS, embedding_inputs, instance_id_map
from presets import PRESETS

from stemseg_fast.kernels.embedding_loss import (
    embedding_loss,
    embedding_loss_batched_reference,
    embedding_loss_reference,
)

GPU_PRESET_NAMES = ("ytvis720_T8", "davis_T16")  # also the static report's (benchmarks/compiled.py)
PRESET_NAMES = presets(GPU_PRESET_NAMES, ("cpu_small", "ytvis720_T8"))
VARIANTS = (
    ("loop_reference", "batched_reference", COMPILED, "triton")
    if torch.cuda.is_available()
    else ("loop_reference", "batched_reference", COMPILED)
)


def setup_embedding_loss(preset_name, variant, *, requires_grad):
    preset = PRESETS[preset_name]
    device = bench_device()
    inputs = [x.requires_grad_(requires_grad) for x in embedding_inputs(preset, device=device)]
    ids = instance_id_map(preset, device=device).flatten()
    ignore = torch.zeros_like(ids, dtype=torch.bool)
    ignore[: preset.width * preset.height // 10] = True  # a band of ignored voxels in frame 0

    compiled = compile_reference(embedding_loss_batched_reference) if variant == COMPILED else None

    def forward():
        if variant == "loop_reference":
            return embedding_loss_reference(
                *inputs, ids, ignore, preset.num_instances, **OFFICIAL_PRECISIONS
            )
        if compiled is not None:
            return compiled(*inputs, ids, ignore, preset.num_instances, **OFFICIAL_PRECISIONS)
        backend = "reference" if variant == "batched_reference" else "triton"
        return embedding_loss(
            *inputs, ids, ignore, preset.num_instances, backend=backend, **OFFICIAL_PRECISIONS
        )

    return preset, inputs, forward


def forward_bytes(preset):
    voxels, elements = preset.num_voxels, preset.num_voxels * preset.num_instances
    dims, variance_dims = preset.num_dims, preset.num_variance_dims
    return (
        voxels * (4 * dims + 4 * variance_dims + 8)
        + voxels * (4 * dims + 8)
        + elements * (4 + 16 + 12 + 20)
        + voxels * (8 * variance_dims + 16)
    )


def backward_bytes(preset):
    voxels, dims, variance_dims = preset.num_voxels, preset.num_dims, preset.num_variance_dims
    return (
        4 * preset.num_voxels * preset.num_instances
        + voxels * 8 * dims
        + voxels * (8 * variance_dims + 8 + 4 * dims)
    )


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_embedding_loss_forward(benchmark, preset_name, variant):
    preset, _, forward = setup_embedding_loss(preset_name, variant, requires_grad=False)
    benchmark.group = f"embedding_loss-forward-{preset_name}"
    run_benchmark(benchmark, forward, bytes_moved=forward_bytes(preset))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("preset_name", PRESET_NAMES)
def test_embedding_loss_forward_backward(benchmark, preset_name, variant):
    preset, inputs, forward = setup_embedding_loss(preset_name, variant, requires_grad=True)
    benchmark.group = f"embedding_loss-forward_backward-{preset_name}"

    def forward_backward():
        torch.autograd.grad(forward().total(), inputs)

    run_benchmark(
        benchmark, forward_backward, bytes_moved=forward_bytes(preset) + backward_bytes(preset)
    )
