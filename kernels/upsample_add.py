"""Trilinear upsampling + add: the expansion step of the Temporal Squeeze-Expand (TSE) decoder at
low resolution (official: modeling/embedding_decoder.py, common.py: ``squeeze_expand_decoder``).

``upsample_add(low, high)``: the official fusion is conv1x1(cat(up(x), skip)) with weight
W = [W_a | W_b]. Both trilinear upsampling (a fixed linear map per channel) and the 1x1x1
conv (a linear map across channels at each voxel) are linear and act on different axes, so
they commute:

    conv1x1(cat(up(x), skip); [W_a | W_b]) = up(W_a x) + W_b skip     (exact up to rounding)

W_a x runs at the low resolution (1/4 or 1/8 of the voxels), and this op computes
``high + up(low)`` in one pass: read high (N), read low (N/4 or N/8, re-reads cached), write
N, instead of writing up(x) (N * C_a), the concatenation (N * (C_a + C_b)) and reading it back.
Trilinear weights follow PyTorch's ``align_corners=False`` rule: source = (dst + 0.5) *
in / out - 0.5, clamped at 0, i1 = min(i0 + 1, in - 1).

NaN follows PyTorch (every float max asks for the NaN-propagating form). The backward is
``aten``'s trilinear-upsampling backward.

Program layout (see :mod:`._tse_common`): the upsample blends the four low-resolution rows of an
output row at the program's two source columns; NCDHW with w along the lanes, channels-last
with c along the lanes.

Memory traffic (bf16, N high voxels, C channels): read high and write out (2 * 2 N C bytes),
read low (N C / 4 or / 8, re-reads from L1/L2): about 4.5 N C bytes, in either layout.
"""

import functools

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import FLOAT_DTYPES, check_tensor
from ._launch import accumulation_dtype
from ._tse_common import (
    CHANNELS_LAST_WARPS,
    channel_offset,
    channel_tiling,
    check_grid,
    layout_strides,
    memory_layout,
    row_tiling,
)


def upsample_add_reference(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch: ``high + trilinear_upsample(low, size=high's T, H, W)``."""
    up = F.interpolate(low, size=high.shape[2:], mode="trilinear", align_corners=False)
    return high + up  # [B, C, T, H, W]


@triton.jit
def _source_index(dst, scale, size_in):
    """PyTorch's align_corners=False source coordinate: (i0, i1, weight of i1)."""
    src = tl.maximum(
        (dst.to(scale.dtype) + 0.5) * scale - 0.5, 0.0, propagate_nan=tl.PropagateNan.ALL
    )
    i0 = src.to(tl.int32)  # src >= 0, so truncation is floor
    i1 = tl.where(i0 < size_in - 1, i0 + 1, i0)
    return i0, i1, src - i0.to(scale.dtype)


# A program owns one (b, c), one output frame t, rows_per_program consecutive output rows and
# BLOCK_W columns (w along lanes). The frame's two source frames and weight are scalars, the
# columns' two sources and weights are computed once per program, and per output row the
# rows' two sources and weight are scalars again: per output the program blends the four
# low-resolution rows (t0|t1, h0|h1) at its two columns in PyTorch's order,
# t0l (h0l (w0l x000 + w1l x001) + h1l (...)) + t1l (...), and adds high.
@triton.jit
def _upsample_add_kernel(
    low_ptr,  # [B, C, t, h, w]
    high_ptr,  # [B, C, T, H, W], same layout as low
    out_ptr,  # [B, C, T, H, W], same layout and strides as high
    scales_ptr,  # [3] in / out for t, h, w, in the accumulation dtype
    C,
    t_in,
    h_in,
    w_in,
    H,
    W,
    low_stride_b,
    low_stride_c,
    low_stride_t,
    low_stride_h,
    low_stride_w,
    high_stride_b,
    high_stride_c,
    high_stride_t,
    high_stride_h,
    high_stride_w,
    rows_per_program,
    num_w_tiles,
    BLOCK_W: tl.constexpr,
):
    tile = tl.program_id(0)
    t = tl.program_id(1)
    bc = tl.program_id(2)
    b = bc // C
    c = bc % C
    acc_dtype = scales_ptr.dtype.element_ty
    t0, t1, t1_weight = _source_index(t, tl.load(scales_ptr), t_in)
    w = (tile % num_w_tiles) * BLOCK_W + tl.arange(0, BLOCK_W)
    # Lanes past W and rows past H compute a copy of the last column / row (clamped), so every
    # load is in bounds and unmasked; only the stores are masked.
    w_inside = w < W
    w_clamped = tl.minimum(w, W - 1)
    w0, w1, w1_weight = _source_index(w_clamped, tl.load(scales_ptr + 2), w_in)
    w0_weight = 1.0 - w1_weight
    # the two source columns' pointers once per program; per row a scalar offset moves them
    low_base = low_ptr + channel_offset(b, c, low_stride_b, low_stride_c)
    column0 = low_base + w0 * low_stride_w
    column1 = low_base + w1 * low_stride_w
    frame0 = t0 * low_stride_t
    frame1 = t1 * low_stride_t
    high_offset = channel_offset(b, c, high_stride_b, high_stride_c) + t * high_stride_t
    high_columns = high_ptr + high_offset + w_clamped * high_stride_w
    out_columns = out_ptr + high_offset + w_clamped * high_stride_w
    h_scale = tl.load(scales_ptr + 1)
    first_row = (tile // num_w_tiles) * rows_per_program
    for step in range(rows_per_program):
        h = tl.minimum(first_row + step, H - 1)
        valid = w_inside & (first_row + step < H)
        h0, h1, h1_weight = _source_index(h, h_scale, h_in)
        up = tl.zeros((BLOCK_W,), dtype=acc_dtype)
        for dt in tl.static_range(2):
            frame = frame0 if dt == 0 else frame1
            t_weight = (1.0 - t1_weight) if dt == 0 else t1_weight
            frame_value = tl.zeros((BLOCK_W,), dtype=acc_dtype)
            for dh in tl.static_range(2):
                row = frame + (h0 if dh == 0 else h1) * low_stride_h
                h_weight = (1.0 - h1_weight) if dh == 0 else h1_weight
                x0 = tl.load(column0 + row).to(acc_dtype)
                x1 = tl.load(column1 + row).to(acc_dtype)
                frame_value += h_weight * (w0_weight * x0 + w1_weight * x1)
            up += t_weight * frame_value
        high = tl.load(high_columns + h * high_stride_h).to(acc_dtype)
        tl.store(
            out_columns + h * high_stride_h, (high + up).to(out_ptr.dtype.element_ty), mask=valid
        )


# The channels-last kernel: the same blend on [BLOCK_W, BLOCK_C] tiles of pixels x channels
# (c along the lanes, contiguous in memory). A program owns one batch element, one output
# frame, rows_per_program output rows, BLOCK_W columns and BLOCK_C channels; the columns'
# sources and weights are [BLOCK_W] vectors computed once, each of the four low-resolution
# rows is two tile loads at the two source columns.
@triton.jit
def _upsample_add_channels_last_kernel(
    low_ptr,  # [B, t, h, w, C] memory (channels-last-3d)
    high_ptr,  # [B, T, H, W, C] memory
    out_ptr,  # [B, T, H, W, C] memory, high's strides
    scales_ptr,  # [3] in / out for t, h, w, in the accumulation dtype
    C,
    t_in,
    h_in,
    w_in,
    H,
    W,
    low_stride_b,
    low_stride_t,
    low_stride_h,  # low's w stride is C, its c stride 1
    high_stride_b,
    high_stride_t,
    high_stride_h,  # high's w stride is C, its c stride 1
    rows_per_program,
    num_w_tiles,
    num_c_tiles,
    BLOCK_W: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    tile = tl.program_id(0)
    t = tl.program_id(1)
    b = tl.program_id(2) // num_c_tiles
    c = (tl.program_id(2) % num_c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    # lanes past C load nothing: a mask constant over aligned runs of channels, so the loads
    # stay vectorised
    c_inside = (c < C)[None, :]
    acc_dtype = scales_ptr.dtype.element_ty
    t0, t1, t1_weight = _source_index(t, tl.load(scales_ptr), t_in)
    w = (tile % num_w_tiles) * BLOCK_W + tl.arange(0, BLOCK_W)
    stored = (w < W)[:, None] & c_inside
    w_clamped = tl.minimum(w, W - 1)
    w0, w1, w1_weight = _source_index(w_clamped, tl.load(scales_ptr + 2), w_in)
    w1_weight = w1_weight[:, None]
    w0_weight = 1.0 - w1_weight
    low_base = low_ptr + b.to(tl.int64) * low_stride_b + c[None, :]
    column0 = low_base + (w0 * C)[:, None]
    column1 = low_base + (w1 * C)[:, None]
    frame0 = t0 * low_stride_t
    frame1 = t1 * low_stride_t
    high_offset = (
        b.to(tl.int64) * high_stride_b + t * high_stride_t + c[None, :] + (w_clamped * C)[:, None]
    )
    h_scale = tl.load(scales_ptr + 1)
    first_row = (tile // num_w_tiles) * rows_per_program
    for step in range(rows_per_program):
        h = tl.minimum(first_row + step, H - 1)
        valid = stored & (first_row + step < H)
        h0, h1, h1_weight = _source_index(h, h_scale, h_in)
        up = tl.zeros((BLOCK_W, BLOCK_C), dtype=acc_dtype)
        for dt in tl.static_range(2):
            frame = frame0 if dt == 0 else frame1
            t_weight = (1.0 - t1_weight) if dt == 0 else t1_weight
            frame_value = tl.zeros((BLOCK_W, BLOCK_C), dtype=acc_dtype)
            for dh in tl.static_range(2):
                row = frame + (h0 if dh == 0 else h1) * low_stride_h
                h_weight = (1.0 - h1_weight) if dh == 0 else h1_weight
                x0 = tl.load(column0 + row, mask=c_inside).to(acc_dtype)
                x1 = tl.load(column1 + row, mask=c_inside).to(acc_dtype)
                frame_value += h_weight * (w0_weight * x0 + w1_weight * x1)
            up += t_weight * frame_value
        offsets = high_offset + h * high_stride_h
        high = tl.load(high_ptr + offsets, mask=c_inside).to(acc_dtype)
        tl.store(out_ptr + offsets, (high + up).to(out_ptr.dtype.element_ty), mask=valid)


@functools.lru_cache(maxsize=64)
def _scales(sizes_in, sizes_out, dtype, device):
    """in / out per axis, rounded to the accumulation dtype as PyTorch's upsampling does; made
    once per shape and device (a host-to-device copy per call would make the host wait for the
    device at every decoder step)."""
    ratios = [size_in / size_out for size_in, size_out in zip(sizes_in, sizes_out)]
    return torch.tensor(ratios, dtype=dtype, device=device)


def _upsample_add_fwd(low, high):
    high, channels_last = memory_layout(high)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    low = low.contiguous(memory_format=memory_format)
    batch, channels, t_in, h_in, w_in = low.shape
    frames, height, width = high.shape[2:]
    out = torch.empty_like(high, memory_format=memory_format)
    scales = _scales(
        (t_in, h_in, w_in), (frames, height, width), accumulation_dtype(low.dtype), low.device
    )
    low_strides = layout_strides(low.shape, channels_last)
    high_strides = layout_strides(high.shape, channels_last)
    if channels_last:
        block_c, block_w, rows_per_program, row_tiles, w_tiles, c_tiles = channel_tiling(
            channels, height, width
        )
        _upsample_add_channels_last_kernel[(row_tiles * w_tiles, frames, batch * c_tiles)](
            low,
            high,
            out,
            scales,
            channels,
            t_in,
            h_in,
            w_in,
            height,
            width,
            low_strides[0],
            low_strides[2],
            low_strides[3],
            high_strides[0],
            high_strides[2],
            high_strides[3],
            rows_per_program,
            w_tiles,
            c_tiles,
            BLOCK_W=block_w,
            BLOCK_C=block_c,
            num_warps=CHANNELS_LAST_WARPS,
        )
        return out
    block_w, num_warps, rows_per_program, row_tiles, w_tiles = row_tiling(height, width)
    _upsample_add_kernel[(row_tiles * w_tiles, frames, batch * channels)](
        low,
        high,
        out,
        scales,
        channels,
        t_in,
        h_in,
        w_in,
        height,
        width,
        *low_strides,
        *high_strides,
        rows_per_program,
        w_tiles,
        BLOCK_W=block_w,
        num_warps=num_warps,
    )
    return out


class _UpsampleAddFunction(torch.autograd.Function):
    # out = high + U low with U the trilinear map  =>  d_high = d_out, d_low = U^T d_out.
    @staticmethod
    def forward(ctx, low, high):
        ctx.low_shape = low.shape
        ctx.low_dtype = low.dtype
        return _upsample_add_fwd(low, high)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        grad_low = torch.ops.aten.upsample_trilinear3d_backward(
            grad_out.contiguous(), list(grad_out.shape[2:]), list(ctx.low_shape), False
        )
        return grad_low.to(ctx.low_dtype), grad_out


def upsample_add(low: torch.Tensor, high: torch.Tensor, *, backend: str = "auto") -> torch.Tensor:
    """``high + trilinear_upsample(low)`` to high's size, ``align_corners=False``.

    Args:
        low (Tensor[B, C, t, h, w], float): the low-resolution summand (e.g. W_a x).
        high (Tensor[B, C, T, H, W], float): the full-resolution summand (e.g. W_b skip),
            T >= t, H >= h, W >= w.
        backend (str): ``"auto"``, ``"triton"`` or ``"reference"``.

    Returns:
        Tensor[B, C, T, H, W] in high's dtype; differentiable in both inputs.
    """
    check_tensor("low", low, shape=(None, None, None, None, None), dtypes=FLOAT_DTYPES)
    check_tensor(
        "high", high, shape=(low.shape[0], low.shape[1], None, None, None), dtypes=FLOAT_DTYPES
    )
    if low.dtype != high.dtype:
        raise TypeError(f"low and high must share a dtype, got {low.dtype} and {high.dtype}")
    if any(
        size_low < 1 or size_low > size_high
        for size_low, size_high in zip(low.shape[2:], high.shape[2:])
    ):
        raise ValueError(
            f"low's T, H, W must be in [1, high's], got low {list(low.shape)} "
            f"and high {list(high.shape)}"
        )
    if high.numel() == 0:
        raise ValueError(f"high must not be empty, got shape {list(high.shape)}")
    if resolve_backend(backend, low, high) == "reference":
        return upsample_add_reference(low, high)
    check_grid("high", high)
    return _UpsampleAddFunction.apply(low, high)
