"""Offsets past 2^31 elements: row starts and TSE element offsets are computed in int64, and the
extents still indexed with int32 lanes are checked with a clear error. Tested without
allocating 2^31 elements: the offset helpers the kernels use run in a small kernel on index
values whose products overflow int32, and the limits are checked on meta tensors."""

import importlib

import pytest
import torch
import triton
import triton.language as tl

from stemseg_fast.kernels import _launch, _tse_common
from stemseg_fast.kernels._checks import check_int32_indexable

group_norm_relu_pool_module = importlib.import_module("stemseg_fast.kernels.group_norm_relu_pool")
upsample_add_module = importlib.import_module("stemseg_fast.kernels.upsample_add")
gaussian_probability_module = importlib.import_module("stemseg_fast.kernels.gaussian_probability")
lovasz_hinge_module = importlib.import_module("stemseg_fast.kernels.lovasz_hinge")


@triton.jit
def _row_start_kernel(out_ptr, row_length):
    row = tl.program_id(0)
    tl.store(out_ptr + row, _launch.row_start(row, row_length))


def test_row_start_passes_two_to_the_31(device):
    # K = 10 rows of 300 M voxels: rows 8 and 9 start beyond 2^31.
    row_length = 300_000_000
    out = torch.empty(10, dtype=torch.int64, device=device)
    _row_start_kernel[(10,)](out, row_length)
    assert out.tolist() == [row * row_length for row in range(10)]
    assert out[-1] >= 2**31


@triton.jit
def _channel_offset_kernel(out_ptr, b_ptr, c_ptr, stride_b, stride_c):
    i = tl.arange(0, 4)
    offset = _tse_common.channel_offset(tl.load(b_ptr + i), tl.load(c_ptr + i), stride_b, stride_c)
    tl.store(out_ptr + i, offset)


@pytest.mark.parametrize("channels_last", [False, True])
def test_tse_channel_offset_passes_two_to_the_31(channels_last, device):
    # 11 DAVIS-size clips (T = 16, 176 x 312) of 256 channels: the last clip starts at 2.25e9.
    shape = (11, 256, 16, 176, 312)
    stride_b, stride_c = _tse_common.layout_strides(shape, channels_last)[:2]
    b = torch.tensor([0, 3, 10, 10], dtype=torch.int32)
    c = torch.tensor([5, 255, 0, 255], dtype=torch.int32)
    out = torch.empty(4, dtype=torch.int64, device=device)
    _channel_offset_kernel[(1,)](out, b.to(device), c.to(device), stride_b, stride_c)
    expected = [bi * stride_b + ci * stride_c for bi, ci in zip(b.tolist(), c.tolist())]
    assert out.tolist() == expected
    assert max(expected) >= 2**31
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    probe = torch.empty(1, 256, 16, 176, 312, device="meta", memory_format=memory_format)
    assert _tse_common.layout_strides(probe.shape, channels_last)[1:] == probe.stride()[1:]


def test_int32_extent_check_names_the_argument():
    check_int32_indexable("embeddings", 2**31 - 1)
    with pytest.raises(
        ValueError,
        match=r"embeddings has 2147483648 elements; .* fewer than "
        r"2\*\*31",
    ):
        check_int32_indexable("embeddings", 2**31)


def test_ops_refuse_extents_past_int32_before_launching():
    # Meta tensors: the shapes of a too-large input without its memory.
    meta = torch.device("meta")
    embeddings = torch.empty(2**29, 4, device=meta)
    means = torch.empty(3, 4, device=meta)
    with pytest.raises(ValueError, match="embeddings has 2147483648 elements"):
        gaussian_probability_module.gaussian_probability(embeddings, means, means, backend="triton")
    logits = torch.empty(2, 2**31, device=meta)
    with pytest.raises(ValueError, match="each row of logits has 2147483648 voxels"):
        lovasz_hinge_module.lovasz_hinge(logits, logits.bool(), backend="triton")
    x = torch.empty(2, 256, 32, 512, 512, device=meta)  # 2^31 elements per batch element
    channel = torch.empty(256, device=meta)
    with pytest.raises(ValueError, match="each batch element of x has 2147483648 elements"):
        group_norm_relu_pool_module.group_norm_relu_pool(x, channel, channel, 32, backend="triton")
    with pytest.raises(ValueError, match="B \\* C and T at most 65535"):
        upsample_add_module.upsample_add(
            torch.empty(1, 70000, 1, 1, 1, device=meta),
            torch.empty(1, 70000, 2, 2, 2, device=meta),
            backend="triton",
        )
