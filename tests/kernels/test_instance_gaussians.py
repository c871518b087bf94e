import importlib

import pytest
import torch
from helpers import assert_close, compare_gradients, leaf, with_official_precisions

from stemseg_fast.kernels import instance_gaussians
from stemseg_fast.model.embeddings import FREE_DIM_PRECISION

instance_gaussians = with_official_precisions(instance_gaussians)

# The package exports the function under the module's name; fetch the module itself.
instance_gaussians_module = importlib.import_module("stemseg_fast.kernels.instance_gaussians")

# (N voxels, E dims, E-F variance dims, K instances, fraction of voxels in no instance)
CASES = [
    pytest.param(1, 4, 2, 1, 0.0, id="one-voxel-N1-K1"),
    pytest.param(37, 4, 2, 0, 1.0, id="K0-all-background"),
    pytest.param(255, 3, 3, 1, 0.3, id="K1-xyt-N255"),
    pytest.param(257, 4, 2, 17, 0.0, id="all-foreground-N257-K17"),
    pytest.param(511, 2, 0, 5, 0.5, id="ff-no-variance-dims"),
    pytest.param(1023, 5, 3, 33, 0.4, id="xytff-K33-N1023"),
    pytest.param(300, 4, 2, 6, 1.0, id="K6-all-background"),
    pytest.param(256, 4, 2, 16, 0.2, id="K16-N256-one-full-block"),
    pytest.param(769, 4, 2, 3, 0.2, id="K3-N769-four-blocks"),
]


@pytest.mark.parametrize("num_voxels", [511, 512, 513, 1300])
def test_partial_programs_loop_over_several_tiles(num_voxels, monkeypatch, device, rng):
    """Two partial-sum programs, so each walks several 256-voxel tiles of its chunk."""
    monkeypatch.setattr(instance_gaussians_module, "_MAX_PROGRAMS", 2)
    embeddings, log_precisions, ids = make_inputs(num_voxels, 4, 2, 5, 0.3, rng)
    expected = instance_gaussians(embeddings, log_precisions, ids, 5, backend="reference")
    result = instance_gaussians(
        embeddings.to(device), log_precisions.to(device), ids.to(device), 5, backend="triton"
    )
    assert_close(result.means, expected.means, name="means")
    assert_close(result.precisions, expected.precisions, name="precisions")
    assert torch.equal(result.counts.cpu(), expected.counts)


def make_inputs(num_voxels, num_dims, num_variance_dims, num_instances, background, rng):
    # Values far from zero expose cancellation; log-precisions around the trained range.
    embeddings = -2.3 + 0.5 * torch.randn(num_voxels, num_dims, generator=rng, dtype=torch.float64)
    log_precisions = torch.randn(num_voxels, num_variance_dims, generator=rng, dtype=torch.float64)
    ids = torch.randint(0, max(num_instances, 1), (num_voxels,), generator=rng)
    ids[torch.rand(num_voxels, generator=rng) < background] = -1
    if num_instances == 0:
        ids.fill_(-1)
    return embeddings, log_precisions, ids


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("num_voxels,num_dims,num_variance_dims,num_instances,background", CASES)
def test_triton_matches_float64_reference(
    num_voxels, num_dims, num_variance_dims, num_instances, background, dtype, device, rng
):
    embeddings, log_precisions, ids = make_inputs(
        num_voxels, num_dims, num_variance_dims, num_instances, background, rng
    )
    # Inputs are rounded to the test dtype first, so the reference sees the same numbers.
    inputs = [leaf(embeddings, dtype, device), leaf(log_precisions, dtype, device)]
    reference_inputs = [leaf(x.detach().to(dtype), torch.float64, "cpu") for x in inputs]
    expected = instance_gaussians(*reference_inputs, ids, num_instances, backend="reference")
    result = instance_gaussians(*inputs, ids.to(device), num_instances, backend="triton")

    result_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert result.means.dtype == result_dtype
    assert_close(result.means, expected.means, dtype=result_dtype, name="means")
    assert_close(result.precisions, expected.precisions, dtype=result_dtype, name="precisions")
    assert torch.equal(result.counts.cpu(), expected.counts)
    compare_gradients(
        list(result[:2]),
        list(expected[:2]),
        inputs,
        reference_inputs,
        rng,
        names=["embeddings", "log_precisions"],
        dtype=dtype,
    )


def test_values_by_hand(device):
    # Two instances over four voxels; voxel 2 belongs to none.
    embeddings = torch.tensor(
        [[1.0, 2.0, 0.5], [3.0, 4.0, 0.1], [9.0, 9.0, 9.0], [5.0, 0.0, 0.3]],
        dtype=torch.float64,
        device=device,
    )
    log_precisions = torch.log(
        torch.tensor(
            [[0.1, 0.2], [0.3, 0.4], [5.0, 5.0], [0.2, 0.2]], dtype=torch.float64, device=device
        )
    )
    ids = torch.tensor([0, 0, -1, 1], device=device)
    for backend in ("reference", "triton"):
        means, precisions, counts = instance_gaussians(
            embeddings, log_precisions, ids, 3, backend=backend
        )
        assert_close(
            means,
            torch.tensor([[2.0, 3.0, 0.3], [5.0, 0.0, 0.3], [0.0, 0.0, 0.0]], dtype=torch.float64),
            name=f"{backend} means",
        )
        # mean of 10*exp(r): instance 0 -> (1 + 3)/2, (2 + 4)/2; instance 1 -> 2, 2.
        free = FREE_DIM_PRECISION
        assert_close(
            precisions,
            torch.tensor(
                [[2.0, 3.0, free], [2.0, 2.0, free], [0.0, 0.0, free]], dtype=torch.float64
            ),
            name=f"{backend} precisions",
        )
        assert counts.tolist() == [2, 1, 0]


def test_reference_gradcheck(rng):
    for _ in range(3):
        embeddings, log_precisions, ids = make_inputs(23, 4, 2, 3, 0.3, rng)
        embeddings.requires_grad_(True)
        log_precisions.requires_grad_(True)
        torch.autograd.gradcheck(
            lambda e, r: tuple(instance_gaussians(e, r, ids, 3, backend="reference")[:2]),
            (embeddings, log_precisions),
        )


def test_non_contiguous_inputs(device, rng):
    embeddings, log_precisions, ids = make_inputs(101, 4, 2, 4, 0.2, rng)
    wide = torch.randn(101, 8, dtype=torch.float64, generator=rng)
    wide[:, ::2] = embeddings
    strided = wide[:, ::2].to(device)  # non-contiguous view
    assert not strided.is_contiguous()
    result = instance_gaussians(
        strided, log_precisions.to(device), ids.to(device), 4, backend="triton"
    )
    expected = instance_gaussians(embeddings, log_precisions, ids, 4, backend="reference")
    assert_close(result.means, expected.means, name="means")


def test_overflowing_precision_outside_the_instance_does_not_leak(device):
    # exp(1000) = inf on a voxel of no instance must not turn other instances' sums into NaN.
    embeddings = torch.zeros(5, 4, dtype=torch.float64)
    log_precisions = torch.zeros(5, 2, dtype=torch.float64)
    log_precisions[4] = 1000.0
    ids = torch.tensor([0, 0, 1, 1, -1])
    for backend in ("reference", "triton"):
        _, precisions, _ = instance_gaussians(
            embeddings.to(device), log_precisions.to(device), ids.to(device), 2, backend=backend
        )
        assert torch.isfinite(precisions).all(), backend


@pytest.mark.fixed_seed(0)
def test_poisoned_outputs_catch_a_kernel_that_writes_nothing(monkeypatch, device, rng):
    """The harness can fail: skip the finalize kernel and the NaN poison must show."""
    embeddings, log_precisions, ids = make_inputs(64, 4, 2, 3, 0.0, rng)
    expected = instance_gaussians(embeddings, log_precisions, ids, 3, backend="reference")

    class SkippedKernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: None

    monkeypatch.setattr(
        instance_gaussians_module, "_instance_gaussians_finalize_kernel", SkippedKernel()
    )
    result = instance_gaussians(
        embeddings.to(device), log_precisions.to(device), ids.to(device), 3, backend="triton"
    )
    with pytest.raises(AssertionError, match="differ"):
        assert_close(result.means, expected.means, name="means")


@pytest.mark.fixed_seed(0)
def test_result_changes_with_input(device, rng):
    embeddings, log_precisions, ids = (x.to(device) for x in make_inputs(50, 4, 2, 2, 0.0, rng))
    before = instance_gaussians(embeddings, log_precisions, ids, 2, backend="triton").means
    embeddings[ids == 1] += 1.0
    after = instance_gaussians(embeddings, log_precisions, ids, 2, backend="triton").means
    assert torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])


def test_num_instances_defaults_to_max_id_plus_one():
    ids = torch.tensor([2, -1, 0])
    result = instance_gaussians(torch.zeros(3, 4), torch.zeros(3, 2), ids, backend="reference")
    assert result.means.shape == (3, 4)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(embeddings=torch.zeros(5)), ValueError, r"embeddings must have shape \[\*, \*\]"),
        (dict(log_precisions=torch.zeros(5, 5)), ValueError, "at most E = 4"),
        (dict(instance_ids=torch.zeros(4, dtype=torch.long)), ValueError, "size N must agree"),
        (dict(instance_ids=torch.zeros(5)), TypeError, "instance_ids must have dtype"),
        (dict(instance_ids=torch.tensor([0, 1, 2, 3, 3])), ValueError, r"values in \[-1, 3\)"),
        (
            dict(embeddings=torch.zeros(5, 4, dtype=torch.int32)),
            TypeError,
            "embeddings must have dtype",
        ),
        (dict(free_dim_precision=0.0), ValueError, "free_dim_precision must be > 0"),
        (dict(backend="cuda"), ValueError, "backend must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = dict(
        embeddings=torch.zeros(5, 4),
        log_precisions=torch.zeros(5, 2),
        instance_ids=torch.zeros(5, dtype=torch.long),
        num_instances=3,
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        instance_gaussians(**arguments)


@pytest.mark.parametrize("finalize_block", [1, 2, 4])
def test_finalize_reduces_the_partials_in_several_tiles(finalize_block, monkeypatch, device, rng):
    """1300 voxels give 6 partial programs; tiles of 1, 2 or 4 partials take 6, 3, 2 steps."""
    monkeypatch.setattr(instance_gaussians_module, "_FINALIZE_BLOCK_P", finalize_block)
    embeddings, log_precisions, ids = make_inputs(1300, 4, 2, 5, 0.3, rng)
    expected = instance_gaussians(embeddings, log_precisions, ids, 5, backend="reference")
    result = instance_gaussians(
        embeddings.to(device), log_precisions.to(device), ids.to(device), 5, backend="triton"
    )
    assert_close(result.means, expected.means, name="means")
    assert_close(result.precisions, expected.precisions, name="precisions")
    assert torch.equal(result.counts.cpu(), expected.counts)
