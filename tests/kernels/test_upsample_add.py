import importlib

import pytest
import torch
from helpers import assert_close, compare_gradients, leaf

upsample_add_module = importlib.import_module("stemseg_fast.kernels.upsample_add")
upsample_add = upsample_add_module.upsample_add

# (B, C, low t h w, high T H W)
UPSAMPLE_CASES = [
    pytest.param(1, 1, (1, 1, 1), (1, 1, 1), id="one-voxel"),
    pytest.param(1, 2, (1, 1, 1), (2, 3, 3), id="one-low-voxel"),
    pytest.param(2, 3, (2, 3, 5), (2, 6, 10), id="scale-1-2-2"),
    pytest.param(1, 3, (2, 3, 5), (4, 6, 10), id="scale-2-2-2"),
    pytest.param(1, 2, (3, 4, 5), (5, 9, 11), id="odd-ratios"),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("batch,channels,low_size,high_size", UPSAMPLE_CASES)
def test_upsample_add_matches_float64_reference(
    batch, channels, low_size, high_size, dtype, device, rng
):
    low = -2.3 + 0.5 * torch.randn(batch, channels, *low_size, generator=rng, dtype=torch.float64)
    high = torch.randn(batch, channels, *high_size, generator=rng, dtype=torch.float64)
    inputs = [leaf(low, dtype, device), leaf(high, dtype, device)]
    reference_inputs = [leaf(t.detach().to(dtype), torch.float64, "cpu") for t in inputs]
    expected = upsample_add(*reference_inputs, backend="reference")
    result = upsample_add(*inputs, backend="triton")
    assert result.dtype == dtype
    assert_close(result, expected, dtype=dtype, name="out")
    compare_gradients(
        [result], [expected], inputs, reference_inputs, rng, names=["low", "high"], dtype=dtype
    )


# (low t h w, high T H W): high maps of block - 1, block, block + 1 and several 1024-element
# blocks, and widths across the row tiles.
UPSAMPLE_TILING_CASES = [
    pytest.param((1, 16, 17), (1, 31, 33), id="S1023"),
    pytest.param((1, 16, 16), (1, 32, 32), id="S1024"),
    pytest.param((1, 13, 21), (1, 25, 41), id="S1025"),
    pytest.param((2, 13, 21), (3, 25, 41), id="S3075-three-blocks"),
    pytest.param((2, 3, 65), (4, 5, 129), id="W129"),
    pytest.param((1, 9, 33), (2, 37, 65), id="W65-H37"),
]


@pytest.mark.parametrize("channels_last", [False, True], ids=["ncdhw", "channels-last"])
@pytest.mark.parametrize("low_size,high_size", UPSAMPLE_TILING_CASES)
def test_upsample_add_at_real_tiling(low_size, high_size, channels_last, device, rng):
    low = torch.randn(2, 2, *low_size, generator=rng, dtype=torch.float64)
    high = torch.randn(2, 2, *high_size, generator=rng, dtype=torch.float64)
    expected = upsample_add(low, high, backend="reference")
    # float64: the test is about indexing; in float32 the in / out scales round (33 / 65), which
    # moves source coordinates by more than the fp32 tolerance in PyTorch's own kernel too
    low, high = low.to(device), high.to(device)
    if channels_last:
        low = low.contiguous(memory_format=torch.channels_last_3d)
        high = high.contiguous(memory_format=torch.channels_last_3d)
    result = upsample_add(low, high, backend="triton")
    assert_close(result, expected, name="out")


# The channels-last kernel's tiles: BLOCK_C = min(64, next power of two of C) channels
# (C = 63, 64, 65, three channel blocks), BLOCK_W = 1024 // BLOCK_C = 16 columns (W = 15, 16,
# 17, 33), row groups of 8 (H = 9). (C, low t h w, high T H W)
CHANNELS_LAST_TILING_CASES = [
    pytest.param(63, (1, 2, 8), (2, 3, 15), id="C63-W15"),
    pytest.param(64, (2, 1, 8), (3, 2, 16), id="C64-W16"),
    pytest.param(65, (1, 3, 9), (1, 9, 17), id="C65-W17-H9"),
    pytest.param(130, (1, 2, 17), (2, 3, 33), id="C130-W33-three-channel-blocks"),
]


@pytest.mark.parametrize("channels,low_size,high_size", CHANNELS_LAST_TILING_CASES)
def test_upsample_add_at_channels_last_tiling(channels, low_size, high_size, device, rng):
    low = torch.randn(1, channels, *low_size, generator=rng, dtype=torch.float64)
    high = torch.randn(1, channels, *high_size, generator=rng, dtype=torch.float64)
    expected = upsample_add(low, high, backend="reference")
    for memory_format in (torch.contiguous_format, torch.channels_last_3d):
        result = upsample_add(
            low.to(device).contiguous(memory_format=memory_format),
            high.to(device).contiguous(memory_format=memory_format),
            backend="triton",
        )
        assert result.is_contiguous(memory_format=memory_format)
        assert_close(result, expected, name=f"out ({memory_format})")


def test_upsample_add_channels_last(device, rng):
    low = torch.randn(1, 3, 2, 3, 4, generator=rng, dtype=torch.float64)
    high = torch.randn(1, 3, 4, 6, 8, generator=rng, dtype=torch.float64)
    expected = upsample_add(low, high, backend="reference")
    cl = torch.channels_last_3d
    result = upsample_add(
        low.to(device).contiguous(memory_format=cl),
        high.to(device).contiguous(memory_format=cl),
        backend="triton",
    )
    assert_close(result, expected, name="channels-last out")


def test_low_resolution_fusion_equals_official_concat_conv(rng):
    # conv1x1(cat(up(x), skip); [Wa | Wb]) == up(Wa x) + Wb skip: both maps are linear.
    x = torch.randn(1, 5, 2, 3, 4, generator=rng, dtype=torch.float64)
    skip = torch.randn(1, 3, 4, 6, 8, generator=rng, dtype=torch.float64)
    weight = torch.randn(3, 8, 1, 1, 1, generator=rng, dtype=torch.float64)
    up = torch.nn.functional.interpolate(
        x, scale_factor=(2, 2, 2), mode="trilinear", align_corners=False
    )
    official = torch.nn.functional.conv3d(torch.cat([up, skip], 1), weight)
    low = torch.nn.functional.conv3d(x, weight[:, :5])
    high = torch.nn.functional.conv3d(skip, weight[:, 5:])
    assert_close(upsample_add(low, high, backend="reference"), official, name="fusion")


def test_reference_gradcheck(rng):
    for _ in range(2):
        low = torch.randn(1, 2, 2, 2, 3, generator=rng, dtype=torch.float64, requires_grad=True)
        high = torch.randn(1, 2, 4, 4, 5, generator=rng, dtype=torch.float64, requires_grad=True)
        torch.autograd.gradcheck(upsample_add_module.upsample_add_reference, (low, high))


def test_argument_errors():
    with pytest.raises(ValueError, match="low's T, H, W must be in"):
        upsample_add(torch.randn(1, 2, 2, 4, 4), torch.randn(1, 2, 2, 3, 8))
    with pytest.raises(ValueError, match="high must have shape"):
        upsample_add(torch.randn(1, 2, 2, 4, 4), torch.randn(1, 3, 2, 8, 8))
    with pytest.raises(TypeError, match="share a dtype"):
        upsample_add(torch.randn(1, 2, 2, 4, 4), torch.randn(1, 2, 2, 8, 8, dtype=torch.float64))
