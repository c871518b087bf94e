"""GroupNorm + ReLU (+ the temporal AvgPool3d) of the Temporal Squeeze-Expand (TSE) decoder in
one pass (official: modeling/embedding_decoder.py, common.py: ``squeeze_expand_decoder``).

``group_norm_relu_pool(x, weight, bias, G, pool=...)`` is the epilogue of every 3x3x3 conv of
the decoder (the conv itself stays cuDNN / ``torch.conv3d``):

    y[b, c] = relu(weight_c * (x[b, c] - mean_bg) * rstd_bg + bias_c)   g = c // (C / G)
    mean_bg, var_bg over the group's C/G channels and all T*H*W voxels; rstd = (var + eps)^-1/2
    out = AvgPool3d(kernel 3, stride (2, 1, 1), padding 1, count_include_pad=True)(y)  if pool
    out = y                                                                          else

x: [B, C, T, H, W]; out: [B, C, ceil(T/2), H, W] with pool, else [B, C, T, H, W].
Statistics are exact two-level: each tile of BLOCK elements gets its mean and centred sum of
squares in registers (two passes over the tile, one over memory), tiles and then programs are
merged with Chan's pairwise formula. No E[x^2] - E[x]^2 cancellation, so values far from zero
(conv outputs with a large bias) keep their variance.

Split reduction: at batch 1 the 32 (b, g) groups alone would give 32 programs, a quarter of an
H100's 132 SMs. Each group is cut into ``num_splits`` contiguous chunks, chosen so that
B * G * num_splits >= 8 programs per SM (and no chunk is shorter than one tile); a
[B*G, num_splits, 3] buffer of (count, mean, M2) partials is merged by a second small kernel in
a fixed tree order, so the result does not depend on scheduling (deterministic, no atomics).
Channels-last inputs are cut by voxels instead: a program reduces a chunk of whole pixels for
64 channels into per-channel summaries ([B*C, num_splits, 3], a group's C/G channels next to
each other), merged per group by the same kernel.

Memory traffic (fp32, N = B*C*T*H*W): unfused PyTorch reads x twice for GroupNorm (stats,
apply), writes y, ReLU reads and writes y (in place), the pool reads y and writes N/2:
about 4N + N/2 element moves plus the pool's window re-reads. Fused: read x for stats, read
x (window re-reads hit L1/L2) and write out: 2N (pool: 2N + ... write N/2 instead of N), a
~2x cut of DRAM traffic for a memory-bound step.

NaN follows PyTorch: a NaN input makes its group's statistics and outputs NaN, and the ReLU
keeps NaN (``F.relu(NaN) = NaN``): every float max in these kernels asks for the
NaN-propagating form, since tl.maximum's default compiles to the NaN-dropping ``max.f32``.

Backward passes use PyTorch ops, which is worth it here: GroupNorm's backward needs two
reductions per group and an elementwise pass, and the saved statistics (mean, rstd) already
skip the forward's statistics recomputation; AvgPool3d's backward is an ``aten`` kernel. A
Triton backward would save about one elementwise pass of the decoder's training step.

Program layout (see :mod:`._tse_common`): the pool walks each input row once (9 loads per
output: 3 frames x 3 columns, the +-1 columns from L1; the rows' sums are kept in registers and
reused by the three output rows they feed), with w along the lanes in NCDHW and c along the
lanes in channels-last-3d (one kernel per layout, each reading whole contiguous runs).
"""

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import FLOAT_DTYPES, check_positive, check_tensor
from ._launch import accumulation_dtype
from ._tse_common import (
    CHANNELS_LAST_TILE,
    CHANNELS_LAST_WARPS,
    MAX_CHANNEL_BLOCK,
    channel_offset,
    channel_tiling,
    check_grid,
    layout_strides,
    memory_layout,
    row_tiling,
)

POOL_KERNEL = (3, 3, 3)
POOL_STRIDE = (2, 1, 1)


def pooled_num_frames(num_frames: int) -> int:
    """T after the decoder's AvgPool3d (kernel 3, stride 2, padding 1): ceil(T / 2)."""
    return (num_frames - 1) // 2 + 1


def temporal_avg_pool(y: torch.Tensor) -> torch.Tensor:
    """The decoder's AvgPool3d(3, stride (2, 1, 1), padding 1, count_include_pad=True).

    Written as an explicit zero pad and an unpadded pool, which is the same function (padding
    counts as zeros in the 27-element average) but is also accepted by PyTorch for maps
    smaller than the kernel (a 2 x 3 map at stride 32 of a 64 x 96 input).
    """
    return F.avg_pool3d(F.pad(y, (1, 1, 1, 1, 1, 1)), POOL_KERNEL, POOL_STRIDE)


def group_norm_relu_pool_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    num_groups: int,
    eps: float = 1e-5,
    pool: bool = False,
) -> torch.Tensor:
    """Plain PyTorch: ``GroupNorm -> ReLU [-> AvgPool3d]`` exactly as the official decoder."""
    y = F.relu(F.group_norm(x, num_groups, weight, bias, eps))  # [B, C, T, H, W]
    if pool:
        y = temporal_avg_pool(y)
    return y  # [B, C, T', H, W]


# ------------------------------------------------------------------------------------------
# GroupNorm statistics


@triton.jit
def _chan_merge(count, mean, m2, other_count, other_mean, other_m2):
    """Chan et al.'s pairwise merge of two (count, mean, sum of squared deviations) summaries:
    exact in the number of elements, no E[x^2] - E[x]^2 cancellation."""
    total = count + other_count
    delta = other_mean - mean
    weight = other_count / tl.maximum(total, 1.0, propagate_nan=tl.PropagateNan.ALL)
    return total, mean + delta * weight, m2 + other_m2 + delta * delta * count * weight


@triton.jit
def _group_norm_partial_stats_kernel(
    x_ptr,  # [B, C, T, H, W] (NCDHW memory: a group is one contiguous run)
    partial_ptr,  # [B*G, num_splits, 3] (count, mean, M2) per chunk
    G,
    group_channels,
    group_size,
    chunk,
    num_splits,
    stride_b,
    stride_c,
    BLOCK: tl.constexpr,
):
    bg = tl.program_id(0)
    split = tl.program_id(1)
    b = bg // G
    first_channel = (bg % G) * group_channels
    group_ptr = x_ptr + channel_offset(b, first_channel, stride_b, stride_c)
    acc_dtype = partial_ptr.dtype.element_ty
    zero_tile = tl.zeros((BLOCK,), dtype=acc_dtype)
    count = tl.sum(zero_tile, axis=0)
    mean = tl.sum(zero_tile, axis=0)
    m2 = tl.sum(zero_tile, axis=0)
    start = split * chunk
    for tile_start in range(0, chunk, BLOCK):
        j = start + tile_start + tl.arange(0, BLOCK)  # element index inside the group
        valid = (j < start + chunk) & (j < group_size)
        x = tl.load(group_ptr + j, mask=valid, other=0.0).to(acc_dtype)
        tile_count = tl.sum(valid.to(acc_dtype), axis=0)
        tile_mean = tl.sum(x, axis=0) / tl.maximum(
            tile_count, 1.0, propagate_nan=tl.PropagateNan.ALL
        )
        centred = tl.where(valid, x - tile_mean, 0.0)
        tile_m2 = tl.sum(centred * centred, axis=0)
        count, mean, m2 = _chan_merge(count, mean, m2, tile_count, tile_mean, tile_m2)
    out = partial_ptr + (bg * num_splits + split) * 3
    tl.store(out, count)
    tl.store(out + 1, mean)
    tl.store(out + 2, m2)


# Channels-last statistics. In NDHWC a group is S runs of C/G channels, C apart: a program
# per group would read C/G of every C elements (half of each 32-byte sector at 8 bf16
# channels per group). So a program owns a chunk of voxels of one batch element and BLOCK_C
# channels: [BLOCK_S, BLOCK_C] tiles of whole pixel runs, contiguous in memory, give one
# (count, mean, M2) summary per channel, merged across tiles as above. The finalize kernel then
# merges a group's C/G channels x num_splits summaries, which lie next to each other.
@triton.jit
def _group_norm_partial_stats_channels_last_kernel(
    x_ptr,  # [B, T, H, W, C] memory (channels-last-3d)
    partial_ptr,  # [B*C, num_splits, 3] (count, mean, M2) per channel and chunk
    C,
    S,
    chunk,
    num_splits,
    stride_b,
    num_c_tiles,
    BLOCK_S: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    split = tl.program_id(0)
    b = tl.program_id(1) // num_c_tiles
    c = (tl.program_id(1) % num_c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_inside = c < C
    batch_ptr = x_ptr + b.to(tl.int64) * stride_b
    acc_dtype = partial_ptr.dtype.element_ty
    count = tl.zeros((BLOCK_C,), dtype=acc_dtype)
    mean = tl.zeros((BLOCK_C,), dtype=acc_dtype)
    m2 = tl.zeros((BLOCK_C,), dtype=acc_dtype)
    start = split * chunk
    for tile_start in range(0, chunk, BLOCK_S):
        s = start + tile_start + tl.arange(0, BLOCK_S)  # voxel index
        s_valid = ((s < start + chunk) & (s < S))[:, None]
        valid = s_valid & c_inside[None, :]
        x = tl.load(batch_ptr + s[:, None] * C + c[None, :], mask=valid, other=0.0).to(acc_dtype)
        tile_count = tl.sum(s_valid.to(acc_dtype), axis=0)  # [1], the same for every channel
        tile_mean = tl.sum(x, axis=0) / tl.maximum(
            tile_count, 1.0, propagate_nan=tl.PropagateNan.ALL
        )
        centred = tl.where(valid, x - tile_mean[None, :], 0.0)
        tile_m2 = tl.sum(centred * centred, axis=0)
        count, mean, m2 = _chan_merge(count, mean, m2, tile_count, tile_mean, tile_m2)
    out = partial_ptr + ((b * C + c) * num_splits + split) * 3
    tl.store(out, count, mask=c_inside)
    tl.store(out + 1, mean, mask=c_inside)
    tl.store(out + 2, m2, mask=c_inside)


# A group's summaries are one run of `run` (count, mean, M2) triples (num_splits in NCDHW,
# C/G x num_splits in channels-last). BLOCK_P of them at a time are merged by a fixed-shape
# tree (tl.reduce with Chan's merge), the blocks in order: deterministic, and a run of 1056
# chunk summaries takes ten steps instead of 1056 dependent merges.
@triton.jit
def _group_norm_finalize_stats_kernel(
    partial_ptr,  # [B*G, run, 3]
    mean_ptr,  # [B*G]
    rstd_ptr,  # [B*G]
    run,
    eps,
    BLOCK_P: tl.constexpr,
):
    bg = tl.program_id(0)
    base = partial_ptr + bg.to(tl.int64) * run * 3
    acc_dtype = mean_ptr.dtype.element_ty
    count = tl.sum(tl.zeros((BLOCK_P,), dtype=acc_dtype), axis=0)
    mean = count
    m2 = count
    for block_start in range(0, run, BLOCK_P):
        p = block_start + tl.arange(0, BLOCK_P)
        inside = p < run
        block_count, block_mean, block_m2 = tl.reduce(
            (
                tl.load(base + p * 3, mask=inside, other=0.0),
                tl.load(base + p * 3 + 1, mask=inside, other=0.0),
                tl.load(base + p * 3 + 2, mask=inside, other=0.0),
            ),
            0,
            _chan_merge,
        )
        count, mean, m2 = _chan_merge(count, mean, m2, block_count, block_mean, block_m2)
    variance = m2 / tl.maximum(count, 1.0, propagate_nan=tl.PropagateNan.ALL)
    tl.store(mean_ptr + bg, mean)
    tl.store(rstd_ptr + bg, 1.0 / tl.sqrt(variance + eps))


_STATS_BLOCK = 1024
_FINALIZE_BLOCK = 128
_PROGRAMS_PER_SM = 8
_SM_COUNT_WITHOUT_CUDA = 132  # H100: keeps the split rule identical on the interpreter


def _num_streaming_multiprocessors(device):
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return _SM_COUNT_WITHOUT_CUDA


def _split_count(num_programs_per_split, work, block, device):
    """Chunks of ``work`` elements (one group, or one batch element's voxels in channels-last)
    so that every SM gets a few programs and no chunk is under a tile."""
    wanted = triton.cdiv(
        _PROGRAMS_PER_SM * _num_streaming_multiprocessors(device), max(num_programs_per_split, 1)
    )
    return max(1, min(wanted, triton.cdiv(work, block)))


def _group_norm_stats(x, num_groups, eps, channels_last, *, block=None, num_splits=None):
    """Mean and rstd per (b, g), [B*G] each in the accumulation dtype. ``block``: elements
    per NCDHW tile, or voxels per channels-last tile."""
    batch, channels = x.shape[:2]
    spatial = x[0, 0].numel()
    group_channels = channels // num_groups
    total_groups = batch * num_groups
    dtype = accumulation_dtype(x.dtype)
    stride_b, stride_c = layout_strides(x.shape, channels_last)[:2]
    if channels_last:
        block_c = min(MAX_CHANNEL_BLOCK, triton.next_power_of_2(channels))
        c_tiles = triton.cdiv(channels, block_c)
        block = block or CHANNELS_LAST_TILE // block_c
        num_splits = num_splits or _split_count(batch * c_tiles, spatial, block, x.device)
        chunk = triton.cdiv(triton.cdiv(spatial, num_splits), block) * block
    else:
        block = block or _STATS_BLOCK
        group_size = group_channels * spatial
        num_splits = num_splits or _split_count(total_groups, group_size, block, x.device)
        chunk = triton.cdiv(triton.cdiv(group_size, num_splits), block) * block
    # per group one run of summaries: [B*G, run, 3]
    run = num_splits * (group_channels if channels_last else 1)
    partial = torch.empty(total_groups, run, 3, dtype=dtype, device=x.device)
    mean = torch.empty(total_groups, dtype=dtype, device=x.device)
    rstd = torch.empty(total_groups, dtype=dtype, device=x.device)
    if channels_last:
        _group_norm_partial_stats_channels_last_kernel[(num_splits, batch * c_tiles)](
            x,
            partial,
            channels,
            spatial,
            chunk,
            num_splits,
            stride_b,
            c_tiles,
            BLOCK_S=block,
            BLOCK_C=block_c,
            num_warps=CHANNELS_LAST_WARPS,
        )
    else:
        _group_norm_partial_stats_kernel[(total_groups, num_splits)](
            x,
            partial,
            num_groups,
            group_channels,
            group_size,
            chunk,
            num_splits,
            stride_b,
            stride_c,
            BLOCK=block,
        )
    _group_norm_finalize_stats_kernel[(total_groups,)](
        partial, mean, rstd, run, eps, BLOCK_P=_FINALIZE_BLOCK
    )
    return mean, rstd


# ------------------------------------------------------------------------------------------
# Normalise + affine + ReLU (+ pool)


@triton.jit
def _relu(x):
    # F.relu(NaN) = NaN: a conv output gone NaN stays visible. tl.maximum's default compiles to
    # the NaN-dropping max.f32 on a GPU (the interpreter keeps NaN either way).
    return tl.maximum(x, 0.0, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _channel_affine(mean_ptr, rstd_ptr, weight_ptr, bias_ptr, b, c, C, G):
    """The GroupNorm affine of channel (b, c) folded into one scale and shift:
    y = x * scale + shift."""
    bg = b * G + c // (C // G)
    acc_dtype = mean_ptr.dtype.element_ty
    scale = tl.load(rstd_ptr + bg) * tl.load(weight_ptr + c).to(acc_dtype)
    shift = tl.load(bias_ptr + c).to(acc_dtype) - tl.load(mean_ptr + bg) * scale
    return scale, shift


@triton.jit
def _group_norm_relu_kernel(
    x_ptr,  # [B, C, T, H, W]
    out_ptr,  # [B, C, T, H, W], same layout
    mean_ptr,
    rstd_ptr,  # [B*G]
    weight_ptr,
    bias_ptr,  # [C]
    C,
    S,
    G,
    stride_b,
    stride_c,
    BLOCK: tl.constexpr,
):
    # One (b, c) per program row of the grid: its affine is two scalars, its voxels one
    # contiguous run.
    bc = tl.program_id(1)
    b = bc // C
    c = bc % C
    scale, shift = _channel_affine(mean_ptr, rstd_ptr, weight_ptr, bias_ptr, b, c, C, G)
    base = channel_offset(b, c, stride_b, stride_c)
    acc_dtype = mean_ptr.dtype.element_ty
    s = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = s < S
    x = tl.load(x_ptr + base + s, mask=valid, other=0.0).to(acc_dtype)
    y = _relu(x * scale + shift)
    tl.store(out_ptr + base + s, y.to(out_ptr.dtype.element_ty), mask=valid)


@triton.jit
def _group_norm_relu_channels_last_kernel(
    x_ptr,  # [B, T, H, W, C] memory (channels-last-3d)
    out_ptr,  # same shape and memory
    mean_ptr,
    rstd_ptr,  # [B*G]
    weight_ptr,
    bias_ptr,  # [C]
    C,
    S,
    G,
    stride_b,
    num_c_tiles,
    BLOCK_S: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    # A [BLOCK_S voxels, BLOCK_C channels] tile, c along the lanes as in memory; the affine is
    # one scale and shift vector over the tile's channels.
    b = tl.program_id(1) // num_c_tiles
    c = (tl.program_id(1) % num_c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    scale, shift = _channel_affine(
        mean_ptr, rstd_ptr, weight_ptr, bias_ptr, b, tl.minimum(c, C - 1), C, G
    )
    acc_dtype = mean_ptr.dtype.element_ty
    s = tl.program_id(0) * BLOCK_S + tl.arange(0, BLOCK_S)
    valid = (s < S)[:, None] & (c < C)[None, :]
    offsets = b.to(tl.int64) * stride_b + (s[:, None] * C + c[None, :])
    x = tl.load(x_ptr + offsets, mask=valid, other=0.0).to(acc_dtype)
    y = _relu(x * scale[None, :] + shift[None, :])
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=valid)


# The pool kernel. A program owns one (b, c), one output frame t_out, rows_per_program
# consecutive output rows and BLOCK_W columns (w along lanes). It walks its rows + 2 input rows
# once: per input row it sums the ReLU of the 3 frames x 3 column taps (9 loads; the +-1
# columns hit L1), keeps the last three row sums in registers and writes output row h - 1 =
# (sum of rows h - 2, h - 1, h) / 27. Frame, row and base offsets and the frame / row masks are
# scalars; only w, its three column masks and the values are per lane.
@triton.jit
def _group_norm_relu_pool_kernel(
    x_ptr,  # [B, C, T, H, W]
    out_ptr,  # [B, C, T_out, H, W], same layout
    mean_ptr,
    rstd_ptr,  # [B*G]
    weight_ptr,
    bias_ptr,  # [C]
    C,
    G,
    T,
    H,
    W,
    x_stride_b,
    x_stride_c,
    x_stride_t,
    x_stride_h,
    x_stride_w,
    out_stride_b,
    out_stride_c,
    out_stride_t,  # out's h and w strides are x's
    rows_per_program,
    num_w_tiles,
    BLOCK_W: tl.constexpr,
):
    tile = tl.program_id(0)
    t_out = tl.program_id(1)
    bc = tl.program_id(2)
    b = bc // C
    c = bc % C
    scale, shift = _channel_affine(mean_ptr, rstd_ptr, weight_ptr, bias_ptr, b, c, C, G)
    acc_dtype = mean_ptr.dtype.element_ty
    x_base = x_ptr + channel_offset(b, c, x_stride_b, x_stride_c)
    out_base = out_ptr + channel_offset(b, c, out_stride_b, out_stride_c) + t_out * out_stride_t
    w = (tile % num_w_tiles) * BLOCK_W + tl.arange(0, BLOCK_W)
    # Taps outside the map read a clamped (in-bounds) element and are then zeroed by a select,
    # so no load is masked; only the stores are.
    left_inside = (w >= 1) & (w <= W)  # column w - 1 is in the map
    right_inside = w + 1 < W
    # the three tap columns' pointers once per program; per row a scalar offset moves them
    left = x_base + tl.minimum(tl.maximum(w - 1, 0), W - 1) * x_stride_w
    middle = x_base + tl.minimum(w, W - 1) * x_stride_w
    right = x_base + tl.minimum(w + 1, W - 1) * x_stride_w
    out_columns = out_base + tl.minimum(w, W - 1) * x_stride_w
    first_row = (tile // num_w_tiles) * rows_per_program
    above = tl.zeros((BLOCK_W,), dtype=acc_dtype)  # row sum of input row h - 2
    centre = tl.zeros((BLOCK_W,), dtype=acc_dtype)  # row sum of input row h - 1
    for step in range(rows_per_program + 2):
        h = first_row + step - 1  # input row
        row_inside = (h >= 0) & (h < H)
        h_clamped = tl.minimum(tl.maximum(h, 0), H - 1)
        row_sum = tl.zeros((BLOCK_W,), dtype=acc_dtype)
        for dt in tl.static_range(3):
            t_in = 2 * t_out - 1 + dt
            # Padding contributes zeros (count_include_pad=True), not relu(shift): a padded
            # frame or row is skipped by a branch (uniform over the program), a padded column
            # is zeroed by a select; lanes past W compute garbage that is never stored.
            if row_inside & (t_in >= 0) & (t_in < T):
                row_offset = t_in * x_stride_t + h_clamped * x_stride_h
                x_left = tl.load(left + row_offset).to(acc_dtype)
                x_middle = tl.load(middle + row_offset).to(acc_dtype)
                x_right = tl.load(right + row_offset).to(acc_dtype)
                row_sum += (
                    tl.where(left_inside, _relu(x_left * scale + shift), 0.0)
                    + _relu(x_middle * scale + shift)
                    + tl.where(right_inside, _relu(x_right * scale + shift), 0.0)
                )
        h_out = h - 1
        written = (h_out >= first_row) & (h_out < H) & (w < W)  # the first two steps fill
        total = above + centre + row_sum
        tl.store(
            out_columns + h_out * x_stride_h,
            (total / 27.0).to(out_ptr.dtype.element_ty),
            mask=written,
        )
        above = centre
        centre = row_sum


# The channels-last pool kernel: the same row walk as above on [BLOCK_W, BLOCK_C] tiles of
# pixels x channels (c along the lanes, contiguous in memory). A program owns one batch
# element, one output frame, rows_per_program output rows, BLOCK_W columns and BLOCK_C
# channels; the three column taps are three tile loads (the +-1 columns hit L1), the affine a
# scale and shift vector over the channels.
@triton.jit
def _group_norm_relu_pool_channels_last_kernel(
    x_ptr,  # [B, T, H, W, C] memory (channels-last-3d)
    out_ptr,  # [B, T_out, H, W, C] memory
    mean_ptr,
    rstd_ptr,  # [B*G]
    weight_ptr,
    bias_ptr,  # [C]
    C,
    G,
    T,
    H,
    W,
    x_stride_b,
    x_stride_t,
    x_stride_h,  # x's w stride is C, its c stride 1
    out_stride_b,
    out_stride_t,  # out's h, w and c strides are x's
    rows_per_program,
    num_w_tiles,
    num_c_tiles,
    BLOCK_W: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    tile = tl.program_id(0)
    t_out = tl.program_id(1)
    b = tl.program_id(2) // num_c_tiles
    c = (tl.program_id(2) % num_c_tiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    # lanes past C load nothing (a mask constant over aligned runs of channels, so loads stay
    # vectorised) and take the last channel's affine
    c_inside = (c < C)[None, :]
    scale, shift = _channel_affine(
        mean_ptr, rstd_ptr, weight_ptr, bias_ptr, b, tl.minimum(c, C - 1), C, G
    )
    scale = scale[None, :]
    shift = shift[None, :]
    acc_dtype = mean_ptr.dtype.element_ty
    x_base = x_ptr + b.to(tl.int64) * x_stride_b + c[None, :]
    out_base = out_ptr + b.to(tl.int64) * out_stride_b + t_out * out_stride_t + c[None, :]
    w = (tile % num_w_tiles) * BLOCK_W + tl.arange(0, BLOCK_W)
    # Taps outside the map read a clamped (in-bounds) column and are then zeroed by a select,
    # so loads are masked by channel only.
    left_inside = ((w >= 1) & (w <= W))[:, None]  # column w - 1 is in the map
    right_inside = (w + 1 < W)[:, None]
    left = x_base + (tl.minimum(tl.maximum(w - 1, 0), W - 1) * C)[:, None]
    middle = x_base + (tl.minimum(w, W - 1) * C)[:, None]
    right = x_base + (tl.minimum(w + 1, W - 1) * C)[:, None]
    out_columns = out_base + (tl.minimum(w, W - 1) * C)[:, None]
    stored = (w < W)[:, None] & c_inside
    first_row = (tile // num_w_tiles) * rows_per_program
    above = tl.zeros((BLOCK_W, BLOCK_C), dtype=acc_dtype)  # row sum of input row h - 2
    centre = tl.zeros((BLOCK_W, BLOCK_C), dtype=acc_dtype)  # row sum of input row h - 1
    for step in range(rows_per_program + 2):
        h = first_row + step - 1  # input row
        row_inside = (h >= 0) & (h < H)
        h_clamped = tl.minimum(tl.maximum(h, 0), H - 1)
        row_sum = tl.zeros((BLOCK_W, BLOCK_C), dtype=acc_dtype)
        for dt in tl.static_range(3):
            t_in = 2 * t_out - 1 + dt
            # padding contributes zeros (count_include_pad=True), as in the NCDHW kernel
            if row_inside & (t_in >= 0) & (t_in < T):
                row_offset = t_in * x_stride_t + h_clamped * x_stride_h
                x_left = tl.load(left + row_offset, mask=c_inside).to(acc_dtype)
                x_middle = tl.load(middle + row_offset, mask=c_inside).to(acc_dtype)
                x_right = tl.load(right + row_offset, mask=c_inside).to(acc_dtype)
                row_sum += (
                    tl.where(left_inside, _relu(x_left * scale + shift), 0.0)
                    + _relu(x_middle * scale + shift)
                    + tl.where(right_inside, _relu(x_right * scale + shift), 0.0)
                )
        h_out = h - 1
        written = stored & (h_out >= first_row) & (h_out < H)  # the first two steps fill
        total = above + centre + row_sum
        tl.store(
            out_columns + h_out * x_stride_h,
            (total / 27.0).to(out_ptr.dtype.element_ty),
            mask=written,
        )
        above = centre
        centre = row_sum


_APPLY_BLOCK = 1024


def _group_norm_relu_pool_fwd(x, weight, bias, num_groups, eps, pool):
    x, channels_last = memory_layout(x)
    mean, rstd = _group_norm_stats(x, num_groups, eps, channels_last)
    weight, bias = weight.contiguous(), bias.contiguous()
    launch = _group_norm_relu_pool_channels_last if channels_last else _group_norm_relu_pool_ncdhw
    return launch(x, weight, bias, mean, rstd, num_groups, pool), mean, rstd


def _group_norm_relu_pool_ncdhw(x, weight, bias, mean, rstd, num_groups, pool):
    """The apply / pool launch of an NCDHW-contiguous ``x``; out in the same layout."""
    batch, channels, frames, height, width = x.shape
    x_strides = layout_strides(x.shape, False)
    if not pool:
        out = torch.empty_like(x)
        spatial = frames * height * width
        _group_norm_relu_kernel[(triton.cdiv(spatial, _APPLY_BLOCK), batch * channels)](
            x,
            out,
            mean,
            rstd,
            weight,
            bias,
            channels,
            spatial,
            num_groups,
            x_strides[0],
            x_strides[1],
            BLOCK=_APPLY_BLOCK,
        )
        return out
    out_frames = pooled_num_frames(frames)
    out = torch.empty(batch, channels, out_frames, height, width, dtype=x.dtype, device=x.device)
    out_strides = layout_strides(out.shape, False)
    block_w, num_warps, rows_per_program, row_tiles, w_tiles = row_tiling(height, width)
    _group_norm_relu_pool_kernel[(row_tiles * w_tiles, out_frames, batch * channels)](
        x,
        out,
        mean,
        rstd,
        weight,
        bias,
        channels,
        num_groups,
        frames,
        height,
        width,
        *x_strides,
        *out_strides[:3],
        rows_per_program,
        w_tiles,
        BLOCK_W=block_w,
        num_warps=num_warps,
    )
    return out


def _group_norm_relu_pool_channels_last(x, weight, bias, mean, rstd, num_groups, pool):
    """The apply / pool launch of a channels-last-3d ``x``; out in the same layout."""
    batch, channels, frames, height, width = x.shape
    x_strides = layout_strides(x.shape, True)
    block_c, block_w, rows_per_program, row_tiles, w_tiles, c_tiles = channel_tiling(
        channels, height, width
    )
    if not pool:
        out = torch.empty_like(x, memory_format=torch.channels_last_3d)
        spatial = frames * height * width
        block_s = CHANNELS_LAST_TILE // block_c
        _group_norm_relu_channels_last_kernel[(triton.cdiv(spatial, block_s), batch * c_tiles)](
            x,
            out,
            mean,
            rstd,
            weight,
            bias,
            channels,
            spatial,
            num_groups,
            x_strides[0],
            c_tiles,
            BLOCK_S=block_s,
            BLOCK_C=block_c,
            num_warps=CHANNELS_LAST_WARPS,
        )
        return out
    out_frames = pooled_num_frames(frames)
    out = torch.empty(
        batch,
        channels,
        out_frames,
        height,
        width,
        dtype=x.dtype,
        device=x.device,
        memory_format=torch.channels_last_3d,
    )
    out_strides = layout_strides(out.shape, True)
    _group_norm_relu_pool_channels_last_kernel[(row_tiles * w_tiles, out_frames, batch * c_tiles)](
        x,
        out,
        mean,
        rstd,
        weight,
        bias,
        channels,
        num_groups,
        frames,
        height,
        width,
        x_strides[0],
        x_strides[2],
        x_strides[3],
        out_strides[0],
        out_strides[2],
        rows_per_program,
        w_tiles,
        c_tiles,
        BLOCK_W=block_w,
        BLOCK_C=block_c,
        num_warps=CHANNELS_LAST_WARPS,
    )
    return out


# Backward (PyTorch ops). With x̂ = (x - mean) * rstd, n = weight * x̂ + bias, y = relu(n):
#   dy  = AvgPool3d^T(d_out) if pool else d_out
#   dn  = dy * [n > 0]
#   d_weight_c = sum_{b, voxels} dn * x̂       d_bias_c = sum_{b, voxels} dn
#   with u = dn * weight, per group (b, g) over its M = C/G * T*H*W elements:
#   dx  = rstd * (u - mean_M(u) - x̂ * mean_M(u * x̂))
def _group_norm_relu_pool_bwd(grad_out, x, weight, bias, mean, rstd, num_groups, pool):
    batch, channels = x.shape[:2]
    dtype = mean.dtype
    if pool:  # the pool is linear: its VJP does not depend on the point, zeros will do
        with torch.enable_grad():
            point = torch.zeros(x.shape, dtype=grad_out.dtype, device=x.device, requires_grad=True)
            (grad_y,) = torch.autograd.grad(temporal_avg_pool(point), point, grad_out)
    else:
        grad_y = grad_out
    grouped = (batch, num_groups, -1)
    per_channel = (1, channels) + (1,) * (x.dim() - 2)
    x_hat = (
        (x.to(dtype).reshape(grouped) - mean.view(batch, num_groups, 1))
        * rstd.view(batch, num_groups, 1)
    ).reshape(x.shape)
    pre_activation = x_hat * weight.to(dtype).view(per_channel) + bias.to(dtype).view(per_channel)
    grad_n = torch.where(pre_activation > 0, grad_y.to(dtype), 0.0)
    reduce_dims = [0] + list(range(2, x.dim()))
    grad_weight = (grad_n * x_hat).sum(reduce_dims)
    grad_bias = grad_n.sum(reduce_dims)
    u = (grad_n * weight.to(dtype).view(per_channel)).reshape(grouped)
    x_hat = x_hat.reshape(grouped)
    grad_x = rstd.view(batch, num_groups, 1) * (
        u - u.mean(-1, keepdim=True) - x_hat * (u * x_hat).mean(-1, keepdim=True)
    )
    return (
        grad_x.reshape(x.shape).to(x.dtype),
        grad_weight.to(weight.dtype),
        grad_bias.to(bias.dtype),
    )


class _GroupNormReLUPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, num_groups, eps, pool):
        out, mean, rstd = _group_norm_relu_pool_fwd(x, weight, bias, num_groups, eps, pool)
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        ctx.num_groups, ctx.pool = num_groups, pool
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, weight, bias, mean, rstd = ctx.saved_tensors
        grad_x, grad_weight, grad_bias = _group_norm_relu_pool_bwd(
            grad_out.contiguous(), x, weight, bias, mean, rstd, ctx.num_groups, ctx.pool
        )
        # x, weight, bias, num_groups, eps, pool
        return grad_x, grad_weight, grad_bias, None, None, None


def group_norm_relu_pool(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    num_groups: int,
    *,
    eps: float = 1e-5,
    pool: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """GroupNorm, ReLU and (optionally) the decoder's temporal AvgPool3d in one pass.

    Args:
        x (Tensor[B, C, T, H, W], float): a 3x3x3 conv's output (NCDHW or channels-last-3d).
        weight, bias (Tensor[C], float): the GroupNorm affine parameters.
        num_groups (int): G, dividing C (the decoder uses 32).
        eps (float >= 0): added to the variance (``nn.GroupNorm`` default 1e-5).
        pool (bool): apply AvgPool3d(3, stride (2, 1, 1), padding 1, count_include_pad=True).
        backend (str): ``"auto"``, ``"triton"`` or ``"reference"``.

    Returns:
        Tensor[B, C, T', H, W] in x's dtype, T' = ceil(T / 2) with ``pool`` else T.
        Differentiable in x, weight and bias.
    """
    check_tensor("x", x, shape=(None, None, None, None, None), dtypes=FLOAT_DTYPES)
    channels = x.shape[1]
    check_tensor("weight", weight, shape=(channels,), dtypes=FLOAT_DTYPES)
    check_tensor("bias", bias, shape=(channels,), dtypes=FLOAT_DTYPES)
    check_positive("num_groups", num_groups)
    if channels % num_groups:
        raise ValueError(f"num_groups must divide the {channels} channels of x, got {num_groups}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if x.numel() == 0:
        raise ValueError(f"x must not be empty, got shape {list(x.shape)}")
    if resolve_backend(backend, x, weight, bias) == "reference":
        return group_norm_relu_pool_reference(x, weight, bias, num_groups, eps, pool)
    check_grid("x", x)
    return _GroupNormReLUPoolFunction.apply(
        x, weight, bias, int(num_groups), float(eps), bool(pool)
    )
