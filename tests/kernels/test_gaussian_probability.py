import importlib

import pytest
import torch
from helpers import assert_close, compare_gradients, leaf, with_official_precisions

from stemseg_fast.kernels import instance_gaussians

instance_gaussians = with_official_precisions(instance_gaussians)

# The package exports each op under its module's name; fetch the module itself.
gaussian_probability_module = importlib.import_module("stemseg_fast.kernels.gaussian_probability")
gaussian_probability = gaussian_probability_module.gaussian_probability

# (N voxels, E dims, K instances); block sizes are BLOCK_N = 128 and BLOCK_K <= 16.
CASES = [
    pytest.param(1, 4, 1, id="one-voxel-K1"),
    pytest.param(37, 4, 0, id="K0"),
    pytest.param(0, 4, 3, id="N0"),
    pytest.param(127, 3, 1, id="K1-N127"),
    pytest.param(129, 4, 10, id="K10-N129"),
    pytest.param(301, 5, 17, id="K17-two-K-blocks-N301"),
    pytest.param(200, 2, 40, id="K40-three-K-blocks"),
    pytest.param(128, 4, 16, id="K16-N128-one-full-block"),
    pytest.param(385, 4, 3, id="K3-N385-four-blocks"),
    pytest.param(513, 8, 3, id="E8-N513-two-forward-blocks"),
    pytest.param(60, 1, 2, id="E1"),
]


@pytest.mark.parametrize("num_voxels", [255, 256, 257, 1025])
def test_backward_at_several_tiles(num_voxels, monkeypatch, device, rng):
    """64-voxel backward tiles: several tiles and partial rows, the last one partial."""
    monkeypatch.setattr(gaussian_probability_module, "_BWD_BLOCK_N", 64)
    inputs64 = make_inputs(num_voxels, 4, 3, rng)
    inputs = [leaf(x, torch.float64, device) for x in inputs64]
    reference_inputs = [leaf(x, torch.float64, "cpu") for x in inputs64]
    expected = gaussian_probability(*reference_inputs, backend="reference")
    result = gaussian_probability(*inputs, backend="triton")
    assert_close(result, expected, name="prob")
    compare_gradients(
        [result],
        [expected],
        inputs,
        reference_inputs,
        rng,
        names=["embeddings", "means", "precisions"],
    )


def make_inputs(num_voxels, num_dims, num_instances, rng):
    # Embeddings far from zero (cancellation), instances spread among them, precisions of the
    # trained magnitude (10 * exp(r), free dims 11.1) so probabilities cover (0, 1].
    embeddings = -2.3 + 0.5 * torch.randn(num_voxels, num_dims, generator=rng, dtype=torch.float64)
    means = -2.3 + 0.5 * torch.randn(num_instances, num_dims, generator=rng, dtype=torch.float64)
    precisions = 10.0 * torch.exp(
        0.5 * torch.randn(num_instances, num_dims, generator=rng, dtype=torch.float64)
    )
    return embeddings, means, precisions


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("num_voxels,num_dims,num_instances", CASES)
def test_triton_matches_float64_reference(num_voxels, num_dims, num_instances, dtype, device, rng):
    inputs64 = make_inputs(num_voxels, num_dims, num_instances, rng)
    inputs = [leaf(x, dtype, device) for x in inputs64]
    reference_inputs = [leaf(x.detach().to(dtype), torch.float64, "cpu") for x in inputs]
    expected = gaussian_probability(*reference_inputs, backend="reference")
    result = gaussian_probability(*inputs, backend="triton")
    result_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert result.dtype == result_dtype and result.shape == (num_instances, num_voxels)
    assert_close(result, expected, dtype=result_dtype, name="prob")
    compare_gradients(
        [result],
        [expected],
        inputs,
        reference_inputs,
        rng,
        names=["embeddings", "means", "precisions"],
        dtype=dtype,
    )


def test_values_by_hand(device):
    # One instance at the origin with precisions (1, 4): voxel (1, 0) has squared distance 1,
    # voxel (0, 1) has 4, the origin 0 -> exp(-1/2), exp(-2), 1.
    embeddings = torch.tensor(
        [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64, device=device
    )
    means = torch.zeros(1, 2, dtype=torch.float64, device=device)
    precisions = torch.tensor([[1.0, 4.0]], dtype=torch.float64, device=device)
    expected = torch.exp(torch.tensor([[-0.5, -2.0, 0.0]], dtype=torch.float64))
    for backend in ("reference", "triton"):
        assert_close(
            gaussian_probability(embeddings, means, precisions, backend=backend),
            expected,
            name=backend,
        )


def test_reference_gradcheck(rng):
    for _ in range(3):
        inputs = [x.requires_grad_(True) for x in make_inputs(13, 3, 4, rng)]
        torch.autograd.gradcheck(lambda *xs: gaussian_probability(*xs, backend="reference"), inputs)


def test_gradients_flow_through_instance_gaussians_into_member_voxels(device, rng):
    """The chain embeddings -> (means, precisions) -> prob, both backends, every input grad."""
    num_voxels, ids = 150, torch.randint(-1, 5, (150,), generator=rng)
    embeddings = -2.3 + 0.5 * torch.randn(num_voxels, 4, generator=rng, dtype=torch.float64)
    log_precisions = 0.5 * torch.randn(num_voxels, 2, generator=rng, dtype=torch.float64)
    outputs, leaves = {}, {}
    for backend, where in (("triton", device), ("reference", "cpu")):
        leaves[backend] = [
            leaf(embeddings, torch.float64, where),
            leaf(log_precisions, torch.float64, where),
        ]
        means, precisions, _ = instance_gaussians(
            *leaves[backend], ids.to(where), 5, backend=backend
        )
        outputs[backend] = gaussian_probability(
            leaves[backend][0], means, precisions, backend=backend
        )
    compare_gradients(
        [outputs["triton"]],
        [outputs["reference"]],
        leaves["triton"],
        leaves["reference"],
        rng,
        names=["embeddings", "log_precisions"],
    )


def test_non_contiguous_inputs(device, rng):
    embeddings, means, precisions = make_inputs(70, 4, 3, rng)
    wide = torch.zeros(70, 8, dtype=torch.float64)
    wide[:, ::2] = embeddings
    strided = wide.to(device)[:, ::2]
    assert not strided.is_contiguous()
    transposed_means = means.t().contiguous().t()  # same values, column-major strides
    assert not transposed_means.is_contiguous()
    expected = gaussian_probability(embeddings, means, precisions, backend="reference")
    result = gaussian_probability(
        strided, transposed_means.to(device), precisions.to(device), backend="triton"
    )
    assert_close(result, expected, name="prob")


@pytest.mark.fixed_seed(0)
def test_poisoned_outputs_catch_a_kernel_that_writes_nothing(monkeypatch, device, rng):
    """The harness can fail: skip the forward kernel and the NaN poison must show."""
    inputs = make_inputs(40, 4, 2, rng)
    expected = gaussian_probability(*inputs, backend="reference")

    class SkippedKernel:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: None

    monkeypatch.setattr(
        gaussian_probability_module, "_gaussian_probability_fwd_kernel", SkippedKernel()
    )
    result = gaussian_probability(*(x.to(device) for x in inputs), backend="triton")
    with pytest.raises(AssertionError, match="differ"):
        assert_close(result, expected, name="prob")


@pytest.mark.fixed_seed(0)
def test_result_changes_with_input(device, rng):
    embeddings, means, precisions = (x.to(device) for x in make_inputs(30, 4, 2, rng))
    before = gaussian_probability(embeddings, means, precisions, backend="triton")
    means[1] += 0.1
    after = gaussian_probability(embeddings, means, precisions, backend="triton")
    assert torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(embeddings=torch.zeros(5)), ValueError, r"embeddings must have shape \[\*, \*\]"),
        (dict(means=torch.zeros(3, 2)), ValueError, "size E must agree"),
        (dict(precisions=torch.ones(2, 4)), ValueError, "size K must agree"),
        (
            dict(precisions=torch.ones(3, 4, dtype=torch.int64)),
            TypeError,
            "precisions must have dtype",
        ),
        (dict(means="zeros"), TypeError, "means must be a torch.Tensor"),
        (dict(backend="gpu"), ValueError, "backend must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    arguments = dict(
        embeddings=torch.zeros(5, 4), means=torch.zeros(3, 4), precisions=torch.ones(3, 4)
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        gaussian_probability(**arguments)


def test_triton_forward_takes_at_most_eight_dims():
    embeddings, means, precisions = (torch.zeros(3, 9), torch.zeros(2, 9), torch.ones(2, 9))
    with pytest.raises(ValueError, match="at most 8 dims E for the Triton backend .*, got 9"):
        gaussian_probability(embeddings, means, precisions, backend="triton")
