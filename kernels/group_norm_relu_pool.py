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
[B*G, num_splits, 3] buffer of (count, mean, M2) partials is merged in a fixed order by a
second small kernel, so the result does not depend on scheduling (deterministic, no atomics).

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
reused by the three output rows they feed).
"""
import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import FLOAT_DTYPES, check_positive, check_tensor
from ._launch import accumulation_dtype
from ._tse_common import channel_offset, check_grid, layout_strides, memory_layout, row_tiling

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


def group_norm_relu_pool_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                                   num_groups: int, eps: float = 1e-5,
                                   pool: bool = False) -> torch.Tensor:
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
    x_ptr,  # [B, C, T, H, W] (NCDHW or NDHWC memory)
    partial_ptr,  # [B*G, num_splits, 3] (count, mean, M2) per chunk
    C, G, group_channels, group_size, chunk, num_splits, stride_b, stride_c,
    CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr,
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
        if CHANNELS_LAST:  # the group is S runs of C/G contiguous channels, C apart
            offsets = (j // group_channels) * C + j % group_channels
        else:  # the group is one contiguous block of C/G channels x S voxels
            offsets = j
        x = tl.load(group_ptr + offsets, mask=valid, other=0.0).to(acc_dtype)
        tile_count = tl.sum(valid.to(acc_dtype), axis=0)
        tile_mean = tl.sum(x, axis=0) / tl.maximum(tile_count, 1.0,
                                                   propagate_nan=tl.PropagateNan.ALL)
        centred = tl.where(valid, x - tile_mean, 0.0)
        tile_m2 = tl.sum(centred * centred, axis=0)
        count, mean, m2 = _chan_merge(count, mean, m2, tile_count, tile_mean, tile_m2)
    out = partial_ptr + (bg * num_splits + split) * 3
    tl.store(out, count)
    tl.store(out + 1, mean)
    tl.store(out + 2, m2)


@triton.jit
def _group_norm_finalize_stats_kernel(
    partial_ptr,  # [B*G, num_splits, 3]
    mean_ptr,  # [B*G]
    rstd_ptr,  # [B*G]
    num_splits, eps,
):
    bg = tl.program_id(0)
    base = partial_ptr + bg * num_splits * 3
    count = tl.load(base)
    mean = tl.load(base + 1)
    m2 = tl.load(base + 2)
    for split in range(1, num_splits):  # fixed order: deterministic
        other_count = tl.load(base + split * 3)
        other_mean = tl.load(base + split * 3 + 1)
        other_m2 = tl.load(base + split * 3 + 2)
        count, mean, m2 = _chan_merge(count, mean, m2, other_count, other_mean, other_m2)
    variance = m2 / tl.maximum(count, 1.0, propagate_nan=tl.PropagateNan.ALL)
    tl.store(mean_ptr + bg, mean)
    tl.store(rstd_ptr + bg, 1.0 / tl.sqrt(variance + eps))


_STATS_BLOCK = 1024
_PROGRAMS_PER_SM = 8
_SM_COUNT_WITHOUT_CUDA = 132  # H100: keeps the split rule identical on the interpreter


def _num_streaming_multiprocessors(device):
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return _SM_COUNT_WITHOUT_CUDA


def _split_count(num_groups_total, group_size, block, device):
    """Chunks per group so that every SM gets a few programs and no chunk is under a tile."""
    wanted = triton.cdiv(_PROGRAMS_PER_SM * _num_streaming_multiprocessors(device),
                         max(num_groups_total, 1))
    return max(1, min(wanted, triton.cdiv(group_size, block)))


def _group_norm_stats(x, num_groups, eps, channels_last, *, block=_STATS_BLOCK, num_splits=None):
    """Mean and rstd per (b, g), [B*G] each in the accumulation dtype."""
    batch, channels = x.shape[:2]
    spatial = x[0, 0].numel()
    group_size = channels // num_groups * spatial
    total_groups = batch * num_groups
    dtype = accumulation_dtype(x.dtype)
    if num_splits is None:
        num_splits = _split_count(total_groups, group_size, block, x.device)
    chunk = triton.cdiv(triton.cdiv(group_size, num_splits), block) * block
    partial = torch.empty(total_groups, num_splits, 3, dtype=dtype, device=x.device)
    mean = torch.empty(total_groups, dtype=dtype, device=x.device)
    rstd = torch.empty(total_groups, dtype=dtype, device=x.device)
    stride_b, stride_c = layout_strides(x.shape, channels_last)[:2]
    _group_norm_partial_stats_kernel[(total_groups, num_splits)](
        x, partial, channels, num_groups, channels // num_groups, group_size, chunk, num_splits,
        stride_b, stride_c, CHANNELS_LAST=channels_last, BLOCK=block,
    )
    _group_norm_finalize_stats_kernel[(total_groups,)](partial, mean, rstd, num_splits, eps)
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
    mean_ptr, rstd_ptr,  # [B*G]
    weight_ptr, bias_ptr,  # [C]
    C, S, G, stride_b, stride_c, stride_s,
    BLOCK: tl.constexpr,
):
    # One (b, c) per program row of the grid: its affine is two scalars, its voxels a flat
    # run at stride_s (1 in NCDHW, C in NDHWC).
    bc = tl.program_id(1)
    b = bc // C
    c = bc % C
    scale, shift = _channel_affine(mean_ptr, rstd_ptr, weight_ptr, bias_ptr, b, c, C, G)
    base = channel_offset(b, c, stride_b, stride_c)
    acc_dtype = mean_ptr.dtype.element_ty
    s = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    valid = s < S
    offsets = s * stride_s
    x = tl.load(x_ptr + base + offsets, mask=valid, other=0.0).to(acc_dtype)
    y = _relu(x * scale + shift)
    tl.store(out_ptr + base + offsets, y.to(out_ptr.dtype.element_ty), mask=valid)


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
    mean_ptr, rstd_ptr,  # [B*G]
    weight_ptr, bias_ptr,  # [C]
    C, G, T, H, W,
    x_stride_b, x_stride_c, x_stride_t, x_stride_h, x_stride_w,
    out_stride_b, out_stride_c, out_stride_t,  # out's h and w strides are x's
    rows_per_program, num_w_tiles,
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
                row_sum += (tl.where(left_inside, _relu(x_left * scale + shift), 0.0)
                            + _relu(x_middle * scale + shift)
                            + tl.where(right_inside, _relu(x_right * scale + shift), 0.0))
        h_out = h - 1
        written = (h_out >= first_row) & (h_out < H) & (w < W)  # the first two steps fill
        total = above + centre + row_sum
        tl.store(out_columns + h_out * x_stride_h, (total / 27.0).to(out_ptr.dtype.element_ty),
                 mask=written)
        above = centre
        centre = row_sum


_APPLY_BLOCK = 1024


def _group_norm_relu_pool_fwd(x, weight, bias, num_groups, eps, pool):
    x, channels_last = memory_layout(x)
    batch, channels, frames, height, width = x.shape
    mean, rstd = _group_norm_stats(x, num_groups, eps, channels_last)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    weight, bias = weight.contiguous(), bias.contiguous()
    x_strides = layout_strides(x.shape, channels_last)
    if pool:
        out_frames = pooled_num_frames(frames)
        out = torch.empty(batch, channels, out_frames, height, width, dtype=x.dtype,
                          device=x.device, memory_format=memory_format)
        out_strides = layout_strides(out.shape, channels_last)
        block_w, num_warps, rows_per_program, row_tiles, w_tiles = row_tiling(height, width)
        grid = (row_tiles * w_tiles, out_frames, batch * channels)
        _group_norm_relu_pool_kernel[grid](
            x, out, mean, rstd, weight, bias, channels, num_groups, frames, height, width,
            *x_strides, *out_strides[:3], rows_per_program, w_tiles,
            BLOCK_W=block_w, num_warps=num_warps,
        )
    else:
        out = torch.empty_like(x, memory_format=memory_format)
        spatial = frames * height * width
        grid = (triton.cdiv(spatial, _APPLY_BLOCK), batch * channels)
        _group_norm_relu_kernel[grid](
            x, out, mean, rstd, weight, bias, channels, spatial, num_groups,
            x_strides[0], x_strides[1], x_strides[4], BLOCK=_APPLY_BLOCK,
        )
    return out, mean, rstd


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
            point = torch.zeros(x.shape, dtype=grad_out.dtype, device=x.device,
                                requires_grad=True)
            (grad_y,) = torch.autograd.grad(temporal_avg_pool(point), point, grad_out)
    else:
        grad_y = grad_out
    grouped = (batch, num_groups, -1)
    per_channel = (1, channels) + (1,) * (x.dim() - 2)
    x_hat = ((x.to(dtype).reshape(grouped) - mean.view(batch, num_groups, 1))
             * rstd.view(batch, num_groups, 1)).reshape(x.shape)
    pre_activation = x_hat * weight.to(dtype).view(per_channel) + bias.to(dtype).view(per_channel)
    grad_n = torch.where(pre_activation > 0, grad_y.to(dtype), 0.0)
    reduce_dims = [0] + list(range(2, x.dim()))
    grad_weight = (grad_n * x_hat).sum(reduce_dims)
    grad_bias = grad_n.sum(reduce_dims)
    u = (grad_n * weight.to(dtype).view(per_channel)).reshape(grouped)
    x_hat = x_hat.reshape(grouped)
    grad_x = rstd.view(batch, num_groups, 1) * (
        u - u.mean(-1, keepdim=True) - x_hat * (u * x_hat).mean(-1, keepdim=True))
    return (grad_x.reshape(x.shape).to(x.dtype), grad_weight.to(weight.dtype),
            grad_bias.to(bias.dtype))


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
            grad_out.contiguous(), x, weight, bias, mean, rstd, ctx.num_groups, ctx.pool)
        # x, weight, bias, num_groups, eps, pool
        return grad_x, grad_weight, grad_bias, None, None, None


def group_norm_relu_pool(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         num_groups: int, *, eps: float = 1e-5, pool: bool = False,
                         backend: str = "auto") -> torch.Tensor:
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
    return _GroupNormReLUPoolFunction.apply(x, weight, bias, int(num_groups), float(eps),
                                            bool(pool))

