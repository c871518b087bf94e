"""Pieces shared by the two fused TSE-decoder ops (:mod:`.group_norm_relu_pool`,
:mod:`.upsample_add`): the (b, c) channel base in int64, the element strides of the two memory
layouts, the row tiling of the row-tiled kernels and the launch-grid limits.

Program layout (the apply, pool and upsample kernels): one program owns one (b, c), so the
GroupNorm affine is two scalars; the pool and upsample kernels also own one output frame and
up to 8 consecutive output rows of 32, 64 or 128 columns (w along the lanes of one warp, up to
4 columns per thread), so frame and row index maths, bases and masks are scalar per program.
Offsets are int32 from a 64-bit (b, c) base, so each load costs one IMAD.WIDE.

Memory layouts: NCDHW-contiguous, or channels-last-3d (NDHWC) without a copy; anything else is
made contiguous first. Each op has one kernel per layout: NCDHW kernels put w along the lanes
(one (b, c) per program, affine scalars), channels-last kernels put c along the lanes (a block
of BLOCK_C channels of BLOCK_W pixels per program, affine vectors), so in both layouts a warp's
loads are contiguous (NDHWC read with w along the lanes would load one 2- or 4-byte element
every C elements).
"""

from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from ._checks import check_int32_indexable

MAX_ROWS_PER_PROGRAM = 8  # the pool reads (rows + 2) / rows input rows per output row
ROW_SETUP_COST = 0.8  # per-row scalar work of the row loops, in columns' work (sm_90 SASS)
MAX_GRID_DIM = 65535  # CUDA's limit on grid axes 1 and 2
MAX_CHANNEL_BLOCK = 64  # channels per channels-last tile: 128 bytes of bf16 per pixel
CHANNELS_LAST_TILE = 1024  # elements per channels-last tile (16 per thread at 2 warps)
# 2 warps: at the presets of record the static sweep (benchmarks/static_sweep.py, results in
# benchmarks/results/sm90-sweep/) estimates every channels-last launch at least as fast as at
# 4 or 8 warps: the bf16 statistics are issue-bound and take 0.57x of their 4-warp time (fewer
# threads per tile share the per-tile reductions), the rest are memory-bound at 1 to 4 warps;
# 1 warp gains at most 3 % more and takes the pool kernel to 255 registers.
CHANNELS_LAST_WARPS = 2


@triton.jit
def channel_offset(b, c, stride_b, stride_c):
    """Offset of channel (b, c) in int64: B * C * T * H * W passes 2^31 (e.g. 10 DAVIS-size
    256-channel clips in one batch); offsets inside one batch element stay int32 (checked)."""
    return b.to(tl.int64) * stride_b + c.to(tl.int64) * stride_c


def layout_strides(shape: Sequence[int], channels_last: bool) -> tuple[int, ...]:
    """Element strides (b, c, t, h, w) of a standard NCDHW or NDHWC tensor of ``shape``
    (computed from the layout: a size-1 dim's own stride can be anything)."""
    _, channels, frames, height, width = shape
    if channels_last:
        return (
            frames * height * width * channels,
            1,
            height * width * channels,
            width * channels,
            channels,
        )
    return (channels * frames * height * width, frames * height * width, height * width, width, 1)


def row_tiling(height: int, width: int) -> tuple[int, int, int, int, int]:
    """(BLOCK_W, warps, rows per program, row tiles, w tiles) of a row-tiled kernel: one warp,
    1, 2 or 4 columns per thread, at most 8 consecutive rows per program.

    The width minimises instructions per stored output: the sm_90 SASS of the row loops costs
    about 0.8 x (one column's work) per row and thread for the scalar row set-up, plus one
    column's work per column a thread holds; lanes past ``width`` are paid but not stored."""

    def cost(lanes):
        columns_per_thread = lanes // 32
        used = width / (triton.cdiv(width, lanes) * lanes)
        return (ROW_SETUP_COST + columns_per_thread) / (columns_per_thread * used)

    block_w = min((128, 64, 32), key=cost)
    rows_per_program = min(MAX_ROWS_PER_PROGRAM, height)
    return (
        block_w,
        1,
        rows_per_program,
        triton.cdiv(height, rows_per_program),
        triton.cdiv(width, block_w),
    )


def channel_tiling(channels: int, height: int, width: int) -> tuple[int, int, int, int, int, int]:
    """(BLOCK_C, BLOCK_W, rows per program, row tiles, w tiles, c tiles) of a channels-last row
    kernel: a [BLOCK_W, BLOCK_C] tile of pixels x channels (c fastest, as in memory), at most
    8 consecutive rows per program as in :func:`row_tiling`."""
    block_c = min(MAX_CHANNEL_BLOCK, triton.next_power_of_2(channels))
    block_w = min(triton.next_power_of_2(width), CHANNELS_LAST_TILE // block_c)
    rows_per_program = min(MAX_ROWS_PER_PROGRAM, height)
    return (
        block_c,
        block_w,
        rows_per_program,
        triton.cdiv(height, rows_per_program),
        triton.cdiv(width, block_w),
        triton.cdiv(channels, block_c),
    )


def check_grid(name: str, tensor: torch.Tensor) -> None:
    """B * C and T fit a CUDA grid axis each; one batch element is int32-indexable."""
    batch, channels, frames = tensor.shape[:3]
    if batch * channels > MAX_GRID_DIM or frames > MAX_GRID_DIM:
        raise ValueError(
            f"{name} must have B * C and T at most {MAX_GRID_DIM} (a CUDA grid "
            f"axis each), got shape {list(tensor.shape)}"
        )
    check_int32_indexable(f"each batch element of {name}", tensor[0].numel())


def memory_layout(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(tensor in a layout the kernels take, channels_last flag)."""
    if x.is_contiguous():
        return x, False
    if x.is_contiguous(memory_format=torch.channels_last_3d):
        return x, True
    return x.contiguous(), False
