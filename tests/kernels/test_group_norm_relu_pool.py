import importlib

import pytest
import torch
from helpers import (
    assert_close,
    assert_within_dtype_error,
    compare_gradients,
    gradients,
    leaf,
    random_upstream,
)

group_norm_relu_pool_module = importlib.import_module("stemseg_fast.kernels.group_norm_relu_pool")
group_norm_relu_pool = group_norm_relu_pool_module.group_norm_relu_pool

# (B, C, G, T, H, W, pool)
NORM_CASES = [
    pytest.param(1, 2, 1, 1, 1, 1, False, id="one-voxel"),
    pytest.param(1, 2, 1, 1, 1, 1, True, id="one-voxel-pooled"),
    pytest.param(1, 4, 2, 5, 3, 9, False, id="B1-G2-odd"),
    pytest.param(2, 6, 3, 3, 5, 7, True, id="B2-G3-pooled-odd"),
    pytest.param(1, 4, 4, 2, 2, 3, True, id="map-smaller-than-kernel"),
]


def _norm_inputs(batch, channels, frames, height, width, rng, offset=-2.3):
    # Off zero, as conv outputs with a bias are (the statistics test below goes much further).
    x = offset + 0.5 * torch.randn(
        batch, channels, frames, height, width, generator=rng, dtype=torch.float64
    )
    weight = torch.randn(channels, generator=rng, dtype=torch.float64)
    bias = 0.3 * torch.randn(channels, generator=rng, dtype=torch.float64)
    return x, weight, bias


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("batch,channels,groups,frames,height,width,pool", NORM_CASES)
def test_group_norm_relu_pool_matches_float64_reference(
    batch, channels, groups, frames, height, width, pool, dtype, device, rng
):
    tensors = _norm_inputs(batch, channels, frames, height, width, rng)
    inputs = [leaf(t, dtype, device) for t in tensors]
    reference_inputs = [leaf(t.detach().to(dtype), torch.float64, "cpu") for t in inputs]
    expected = group_norm_relu_pool(*reference_inputs, groups, pool=pool, backend="reference")
    result = group_norm_relu_pool(*inputs, groups, pool=pool, backend="triton")
    assert result.dtype == dtype
    assert_close(result, expected, dtype=dtype, name="out")
    if dtype == torch.float64:
        compare_gradients(
            [result],
            [expected],
            inputs,
            reference_inputs,
            rng,
            names=["x", "weight", "bias"],
            dtype=dtype,
        )
        return
    # A group of few, close values has a tiny variance: its input gradient is ill-conditioned
    # (rstd amplifies rounding), so fp32 gradients are judged against PyTorch's own fp32 error.
    same_dtype_inputs = [leaf(t, dtype, "cpu") for t in inputs]
    same_dtype = group_norm_relu_pool(*same_dtype_inputs, groups, pool=pool, backend="reference")
    upstream = random_upstream([expected], rng)
    for name, grad, reference_grad, baseline_grad in zip(
        ["x", "weight", "bias"],
        gradients([result], inputs, upstream),
        gradients([expected], reference_inputs, upstream),
        gradients([same_dtype], same_dtype_inputs, upstream),
    ):
        assert_within_dtype_error(
            grad, reference_grad, baseline_grad, name=f"grad of {name}", atol=1e-5
        )


# Real tiling: the flat 1024-element blocks of the statistics and apply kernels at block - 1,
# block, block + 1 and several blocks, and map widths across the 32/64/128-lane row tiles and
# row groups, in both layouts. (B, C, G, T, H, W, pool)
TILING_CASES = [
    pytest.param(1, 2, 1, 1, 31, 33, False, id="S1023"),
    pytest.param(1, 2, 2, 1, 32, 32, False, id="S1024"),
    pytest.param(1, 2, 1, 1, 25, 41, False, id="S1025"),
    pytest.param(1, 2, 1, 3, 25, 41, False, id="S3075-three-blocks"),
    pytest.param(1, 2, 2, 2, 31, 33, True, id="pooled-S1023"),
    pytest.param(1, 2, 1, 2, 32, 32, True, id="pooled-S1024"),
    pytest.param(1, 2, 2, 3, 25, 41, True, id="pooled-S2050-two-blocks"),
    pytest.param(2, 2, 1, 5, 9, 129, True, id="pooled-W129-T5"),
    pytest.param(1, 2, 1, 2, 37, 65, True, id="pooled-W65-H37"),
    pytest.param(1, 2, 2, 1, 3, 127, False, id="W127"),
]


@pytest.mark.parametrize("channels_last", [False, True], ids=["ncdhw", "channels-last"])
@pytest.mark.parametrize("batch,channels,groups,frames,height,width,pool", TILING_CASES)
def test_group_norm_relu_pool_at_real_tiling(
    batch, channels, groups, frames, height, width, pool, channels_last, device, rng
):
    x, weight, bias = _norm_inputs(batch, channels, frames, height, width, rng)
    expected = group_norm_relu_pool(x, weight, bias, groups, pool=pool, backend="reference")
    x = x.float().to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    result = group_norm_relu_pool(
        x, weight.float().to(device), bias.float().to(device), groups, pool=pool, backend="triton"
    )
    assert_close(result, expected, dtype=torch.float32, name="out")


# The channels-last kernels' own tiles: BLOCK_C = min(64, next power of two of C) channels per
# program (C = 63, 64, 65 and three channel blocks), BLOCK_W = 1024 // BLOCK_C = 16 columns
# (W = 15, 16, 17, 33), BLOCK_S = 16 voxels per apply tile, and statistics tiles of whole
# pixels with padded group and channel axes (C / G = 21, 13, 2; G = 3, 5, 32, 10).
# (B, C, G, T, H, W, pool)
CHANNELS_LAST_TILING_CASES = [
    pytest.param(1, 63, 3, 1, 2, 15, False, id="C63-W15"),
    pytest.param(2, 64, 32, 2, 1, 16, False, id="C64-G32-S32"),
    pytest.param(1, 65, 5, 1, 1, 17, False, id="C65-two-channel-blocks-S17"),
    pytest.param(1, 130, 10, 1, 3, 11, False, id="C130-three-channel-blocks"),
    pytest.param(1, 63, 3, 3, 2, 15, True, id="pooled-C63-W15"),
    pytest.param(1, 64, 32, 2, 3, 17, True, id="pooled-C64-W17"),
    pytest.param(2, 65, 5, 3, 9, 33, True, id="pooled-C65-W33-H9"),
]


@pytest.mark.parametrize(
    "batch,channels,groups,frames,height,width,pool", CHANNELS_LAST_TILING_CASES
)
def test_group_norm_relu_pool_at_channels_last_tiling(
    batch, channels, groups, frames, height, width, pool, device, rng
):
    x, weight, bias = _norm_inputs(batch, channels, frames, height, width, rng)
    expected = group_norm_relu_pool(x, weight, bias, groups, pool=pool, backend="reference")
    for memory_format in (torch.contiguous_format, torch.channels_last_3d):
        result = group_norm_relu_pool(
            x.float().to(device).contiguous(memory_format=memory_format),
            weight.float().to(device),
            bias.float().to(device),
            groups,
            pool=pool,
            backend="triton",
        )
        assert result.is_contiguous(memory_format=memory_format)
        assert_close(result, expected, dtype=torch.float32, name=f"out ({memory_format})")


@pytest.mark.parametrize("pool", [False, True])
def test_group_norm_relu_pool_channels_last(pool, device, rng):
    x, weight, bias = _norm_inputs(2, 4, 3, 4, 5, rng)
    expected = group_norm_relu_pool(x, weight, bias, 2, pool=pool, backend="reference")
    x_cl = x.to(device).contiguous(memory_format=torch.channels_last_3d)
    result = group_norm_relu_pool(
        x_cl, weight.to(device), bias.to(device), 2, pool=pool, backend="triton"
    )
    assert result.is_contiguous(memory_format=torch.channels_last_3d)
    assert_close(result, expected, name="channels-last out")


@pytest.mark.parametrize("num_splits", [1, 2, 3, 7])
def test_split_statistics_merge(num_splits, device, rng):
    # Tiles of 16 and several chunks per group exercise both levels of the Chan merge.
    x = 1000.0 + torch.randn(2, 4, 2, 5, 7, generator=rng, dtype=torch.float64)
    mean, rstd = group_norm_relu_pool_module._group_norm_stats(
        x.to(device), 2, 1e-5, False, block=16, num_splits=num_splits
    )
    grouped = x.reshape(4, -1)
    assert_close(mean, grouped.mean(1), name="mean")
    assert_close(rstd, (grouped.var(1, unbiased=False) + 1e-5).rsqrt(), name="rstd")


@pytest.mark.parametrize("num_splits", [1, 2, 5])
def test_channels_last_split_statistics_merge(num_splits, device, rng):
    # Tiles of 2 voxels and several chunks per batch element: both merge levels, all groups
    # of a pixel in one tile.
    x = 1000.0 + torch.randn(2, 6, 2, 5, 7, generator=rng, dtype=torch.float64)
    x_cl = x.to(device).contiguous(memory_format=torch.channels_last_3d)
    mean, rstd = group_norm_relu_pool_module._group_norm_stats(
        x_cl, 3, 1e-5, True, block=2, num_splits=num_splits
    )
    grouped = x.reshape(6, -1)
    assert_close(mean, grouped.mean(1), name="mean")
    assert_close(rstd, (grouped.var(1, unbiased=False) + 1e-5).rsqrt(), name="rstd")


def test_float32_statistics_survive_a_large_offset(device):
    # mean 1000, variance 1: one-pass E[x^2] - E[x]^2 in fp32 loses the variance to rounding
    # (1e6 - 1e6 with ulp 0.06); the tile-wise two-pass + Chan merge keeps it. A fixed seed:
    # how far the one-pass result lands off depends on the draw (3e-4 on some seeds).
    rng = torch.Generator().manual_seed(20201204)
    x = (1000.0 + torch.randn(1, 2, 4, 25, 41, generator=rng, dtype=torch.float64)).float()
    grouped = x.double().reshape(1, -1)
    truth = grouped.var(1, unbiased=False)
    _, rstd = group_norm_relu_pool_module._group_norm_stats(x.to(device), 1, 0.0, False)
    assert abs(float(rstd.cpu().double().pow(-2)) / float(truth) - 1) < 1e-4
    one_pass = x.reshape(1, -1).pow(2).mean(1) - x.reshape(1, -1).mean(1).pow(2)
    assert abs(float(one_pass) / float(truth) - 1) > 1e-3  # the test can tell the two apart


def test_split_count_fills_the_device():
    cpu = torch.device("cpu")
    # Batch 1, 32 groups of 128 channels x 8 x 160 x 288: 32 * 33 programs >= 8 per SM.
    split_count = group_norm_relu_pool_module._split_count
    assert split_count(32, 128 * 8 * 160 * 288, 1024, cpu) == 33
    assert split_count(32, 100, 1024, cpu) == 1  # never below one tile per chunk


def test_reference_gradcheck(rng):
    for _ in range(2):
        x, weight, bias = (t.requires_grad_(True) for t in _norm_inputs(1, 4, 2, 3, 3, rng))
        torch.autograd.gradcheck(
            lambda *a: group_norm_relu_pool_module.group_norm_relu_pool_reference(
                *a, 2, 1e-5, True
            ),
            (x, weight, bias),
        )


@pytest.mark.slow
def test_triton_backward_gradcheck(device, rng):
    x, weight, bias = (leaf(t, torch.float64, device) for t in _norm_inputs(1, 2, 3, 2, 3, rng))
    torch.autograd.gradcheck(
        lambda *a: group_norm_relu_pool(*a, 1, pool=True, backend="triton"), (x, weight, bias)
    )


@pytest.mark.fixed_seed(0)
def test_comparison_can_fail(device, rng):
    x, weight, bias = _norm_inputs(1, 4, 3, 3, 4, rng)
    expected = group_norm_relu_pool(x, weight, bias, 2, backend="reference")
    # A shift far above any normalised value: the ReLU cannot hide it (a small change to the
    # weight of a channel whose outputs are all negative left the output unchanged).
    changed_bias = bias.clone()
    changed_bias[1] += 100.0
    result = group_norm_relu_pool(
        x.to(device), weight.to(device), changed_bias.to(device), 2, backend="triton"
    )
    with pytest.raises(AssertionError, match="elements differ"):
        assert_close(result, expected, name="out")


def test_argument_errors():
    x = torch.randn(1, 6, 2, 3, 3)
    weight, bias = torch.ones(6), torch.zeros(6)
    with pytest.raises(ValueError, match="num_groups must divide the 6 channels"):
        group_norm_relu_pool(x, weight, bias, 4)
    with pytest.raises(ValueError, match=r"weight must have shape \[6\]"):
        group_norm_relu_pool(x, torch.ones(5), bias, 2)
    with pytest.raises(ValueError, match="x must have shape"):
        group_norm_relu_pool(x[0], weight, bias, 2)
