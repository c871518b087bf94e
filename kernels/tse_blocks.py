"""Fused blocks of the Temporal Squeeze-Expand (TSE) decoder (official:
modeling/embedding_decoder.py, common.py: ``squeeze_expand_decoder``).

Two ops, each the fused form of a sequence the decoder repeats:

1. ``group_norm_relu_pool(x, weight, bias, G, pool=...)``: the epilogue of every 3x3x3 conv
   (the conv itself stays cuDNN / ``torch.conv3d``):

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
   B * G * num_splits >= 4 programs per SM (and no chunk is shorter than one tile); a
   [B*G, num_splits, 3] buffer of (count, mean, M2) partials is merged in a fixed order by a
   second small kernel, so the result does not depend on scheduling (deterministic, no atomics).

   Memory traffic (fp32, N = B*C*T*H*W): unfused PyTorch reads x twice for GroupNorm (stats,
   apply), writes y, ReLU reads and writes y (in place), the pool reads y and writes N/2:
   about 4N + N/2 element moves plus the pool's window re-reads. Fused: read x for stats, read
   x (window re-reads hit L1/L2) and write out: 2N (pool: 2N + ... write N/2 instead of N), a
   ~2x cut of DRAM traffic for a memory-bound step.

2. ``upsample_add(low, high)``: the expansion step at low resolution. The official fusion is
   conv1x1(cat(up(x), skip)) with weight W = [W_a | W_b]. Both trilinear upsampling (a fixed
   linear map per channel) and the 1x1x1 conv (a linear map across channels at each voxel) are
   linear and act on different axes, so they commute:

       conv1x1(cat(up(x), skip); [W_a | W_b]) = up(W_a x) + W_b skip     (exact up to rounding)

   W_a x runs at the low resolution (1/4 or 1/8 of the voxels), and this op computes
   ``high + up(low)`` in one pass: read high (N), read low (N/4 or N/8, re-reads cached), write
   N, instead of writing up(x) (N * C_a), the concatenation (N * (C_a + C_b)) and reading it back.
   Trilinear weights follow PyTorch's ``align_corners=False`` rule: source = (dst + 0.5) *
   in / out - 0.5, clamped at 0, i1 = min(i0 + 1, in - 1).

NaN follows PyTorch: a NaN input makes its group's statistics and outputs NaN, and the ReLU
keeps NaN (``F.relu(NaN) = NaN``): every float max in these kernels asks for the
NaN-propagating form, since tl.maximum's default compiles to the NaN-dropping ``max.f32``.

Backward passes use PyTorch ops, which is worth it here: GroupNorm's backward needs two
reductions per group and an elementwise pass, and the saved statistics (mean, rstd) already
skip the forward's statistics recomputation; AvgPool3d and trilinear upsampling backward are
``aten`` kernels. A Triton backward would save about one elementwise pass of the decoder's
training step.

Memory layouts: NCDHW-contiguous, or channels-last-3d (NDHWC) without a copy (the kernels take
a layout flag; channels-last loads are strided per channel, so NCDHW is the fast layout);
anything else is made contiguous first.
"""
import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import FLOAT_DTYPES, check_positive, check_tensor
from ._launch import accumulation_dtype

POOL_KERNEL = (3, 3, 3)
POOL_STRIDE = (2, 1, 1)


def pooled_num_frames(num_frames):
    """T after the decoder's AvgPool3d (kernel 3, stride 2, padding 1): ceil(T / 2)."""
    return (num_frames - 1) // 2 + 1


def temporal_avg_pool(y):
    """The decoder's AvgPool3d(3, stride (2, 1, 1), padding 1, count_include_pad=True).

    Written as an explicit zero pad and an unpadded pool, which is the same function (padding
    counts as zeros in the 27-element average) but is also accepted by PyTorch for maps
    smaller than the kernel (a 2 x 3 map at stride 32 of a 64 x 96 input).
    """
    return F.avg_pool3d(F.pad(y, (1, 1, 1, 1, 1, 1)), POOL_KERNEL, POOL_STRIDE)


def group_norm_relu_pool_reference(x, weight, bias, num_groups, eps=1e-5, pool=False):
    """Plain PyTorch: ``GroupNorm -> ReLU [-> AvgPool3d]`` exactly as the official decoder."""
    y = F.relu(F.group_norm(x, num_groups, weight, bias, eps))  # [B, C, T, H, W]
    if pool:
        y = temporal_avg_pool(y)
    return y  # [B, C, T', H, W]


def upsample_add_reference(low, high):
    """Plain PyTorch: ``high + trilinear_upsample(low, size=high's T, H, W)``."""
    up = F.interpolate(low, size=high.shape[2:], mode="trilinear", align_corners=False)
    return high + up  # [B, C, T, H, W]


# ------------------------------------------------------------------------------------------
# GroupNorm statistics


@triton.jit
def _element_offset(b, c, s, C, S, CHANNELS_LAST: tl.constexpr):
    """Memory offset of element (b, c, flat spatial s) of a [B, C, S] tensor in either layout,
    in int64: B * C * S passes 2^31 (e.g. 10 DAVIS-size 256-channel clips in one batch)."""
    b = b.to(tl.int64)
    if CHANNELS_LAST:
        return (b * S + s) * C + c
    else:
        return (b * C + c) * S + s


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
    C, S, G, group_size, chunk, num_splits,
    CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr,
):
    bg = tl.program_id(0)
    split = tl.program_id(1)
    b = bg // G
    first_channel = (bg % G) * (C // G)
    acc_dtype = partial_ptr.dtype.element_ty
    zero_tile = tl.zeros((BLOCK,), dtype=acc_dtype)
    count = tl.sum(zero_tile, axis=0)
    mean = tl.sum(zero_tile, axis=0)
    m2 = tl.sum(zero_tile, axis=0)
    start = split * chunk
    for tile_start in range(0, chunk, BLOCK):
        j = start + tile_start + tl.arange(0, BLOCK)  # element index inside the group
        valid = (j < start + chunk) & (j < group_size)
        offsets = _element_offset(b, first_channel + j // S, j % S, C, S, CHANNELS_LAST)
        x = tl.load(x_ptr + offsets, mask=valid, other=0.0).to(acc_dtype)
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
_PROGRAMS_PER_SM = 4
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
    _group_norm_partial_stats_kernel[(total_groups, num_splits)](
        x, partial, channels, spatial, num_groups, group_size, chunk, num_splits,
        CHANNELS_LAST=channels_last, BLOCK=block,
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
def _channel_affine(mean_ptr, rstd_ptr, weight_ptr, bias_ptr, C, G):
    """This program's (batch, channel) and the GroupNorm affine of its channel folded into one
    scale and shift: y = x * scale + shift."""
    bc = tl.program_id(0)
    b = bc // C
    c = bc % C
    bg = b * G + c // (C // G)
    acc_dtype = mean_ptr.dtype.element_ty
    scale = tl.load(rstd_ptr + bg) * tl.load(weight_ptr + c).to(acc_dtype)
    shift = tl.load(bias_ptr + c).to(acc_dtype) - tl.load(mean_ptr + bg) * scale
    return b, c, scale, shift


@triton.jit
def _group_norm_relu_kernel(
    x_ptr,  # [B, C, T, H, W]
    out_ptr,  # [B, C, T, H, W], same layout
    mean_ptr, rstd_ptr,  # [B*G]
    weight_ptr, bias_ptr,  # [C]
    C, S, G,
    CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr,
):
    b, c, scale, shift = _channel_affine(mean_ptr, rstd_ptr, weight_ptr, bias_ptr, C, G)
    acc_dtype = mean_ptr.dtype.element_ty
    s = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    valid = s < S
    offsets = _element_offset(b, c, s, C, S, CHANNELS_LAST)
    x = tl.load(x_ptr + offsets, mask=valid, other=0.0).to(acc_dtype)
    y = _relu(x * scale + shift)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=valid)


@triton.jit
def _group_norm_relu_pool_kernel(
    x_ptr,  # [B, C, T, H, W]
    out_ptr,  # [B, C, T_out, H, W], same layout
    mean_ptr, rstd_ptr,  # [B*G]
    weight_ptr, bias_ptr,  # [C]
    C, G, T, H, W, T_out,
    CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr,
):
    b, c, scale, shift = _channel_affine(mean_ptr, rstd_ptr, weight_ptr, bias_ptr, C, G)
    acc_dtype = mean_ptr.dtype.element_ty
    s_out = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    valid = s_out < T_out * H * W
    t_out = s_out // (H * W)
    h = (s_out // W) % H
    w = s_out % W
    total = tl.zeros((BLOCK,), dtype=acc_dtype)
    for dt in tl.static_range(3):
        t_in = 2 * t_out - 1 + dt
        for dh in tl.static_range(3):
            h_in = h - 1 + dh
            for dw in tl.static_range(3):
                w_in = w - 1 + dw
                inside = (valid & (t_in >= 0) & (t_in < T) & (h_in >= 0) & (h_in < H)
                          & (w_in >= 0) & (w_in < W))
                s_in = (t_in * H + h_in) * W + w_in
                offsets = _element_offset(b, c, s_in, C, T * H * W, CHANNELS_LAST)
                x = tl.load(x_ptr + offsets, mask=inside, other=0.0).to(acc_dtype)
                # Padding contributes zeros to the sum (count_include_pad=True), not relu(shift).
                total += tl.where(inside, _relu(x * scale + shift), 0.0)
    out_offsets = _element_offset(b, c, s_out, C, T_out * H * W, CHANNELS_LAST)
    tl.store(out_ptr + out_offsets, (total / 27.0).to(out_ptr.dtype.element_ty), mask=valid)


_APPLY_BLOCK = 1024


def _memory_layout(x):
    """(tensor in a layout the kernels take, channels_last flag)."""
    if x.is_contiguous():
        return x, False
    if x.is_contiguous(memory_format=torch.channels_last_3d):
        return x, True
    return x.contiguous(), False


def _group_norm_relu_pool_fwd(x, weight, bias, num_groups, eps, pool):
    x, channels_last = _memory_layout(x)
    batch, channels, frames, height, width = x.shape
    mean, rstd = _group_norm_stats(x, num_groups, eps, channels_last)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    weight, bias = weight.contiguous(), bias.contiguous()
    if pool:
        out_frames = pooled_num_frames(frames)
        out = torch.empty(batch, channels, out_frames, height, width, dtype=x.dtype,
                          device=x.device, memory_format=memory_format)
        grid = (batch * channels, triton.cdiv(out_frames * height * width, _APPLY_BLOCK))
        _group_norm_relu_pool_kernel[grid](
            x, out, mean, rstd, weight, bias, channels, num_groups, frames, height, width,
            out_frames, CHANNELS_LAST=channels_last, BLOCK=_APPLY_BLOCK,
        )
    else:
        out = torch.empty_like(x, memory_format=memory_format)
        spatial = frames * height * width
        grid = (batch * channels, triton.cdiv(spatial, _APPLY_BLOCK))
        _group_norm_relu_kernel[grid](
            x, out, mean, rstd, weight, bias, channels, spatial, num_groups,
            CHANNELS_LAST=channels_last, BLOCK=_APPLY_BLOCK,
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


def group_norm_relu_pool(x, weight, bias, num_groups, *, eps=1e-5, pool=False, backend="auto"):
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
    return _GroupNormReLUPoolFunction.apply(x, weight, bias, int(num_groups), float(eps),
                                            bool(pool))


# ------------------------------------------------------------------------------------------
# Trilinear upsampling + add


@triton.jit
def _source_index(dst, scale, size_in):
    """PyTorch's align_corners=False source coordinate: (i0, i1, weight of i1)."""
    src = tl.maximum((dst.to(scale.dtype) + 0.5) * scale - 0.5, 0.0,
                     propagate_nan=tl.PropagateNan.ALL)
    i0 = src.to(tl.int32)  # src >= 0, so truncation is floor
    i1 = tl.where(i0 < size_in - 1, i0 + 1, i0)
    return i0, i1, src - i0.to(scale.dtype)


@triton.jit
def _upsample_add_kernel(
    low_ptr,  # [B, C, t, h, w]
    high_ptr,  # [B, C, T, H, W], same layout as low
    out_ptr,  # [B, C, T, H, W], same layout
    scales_ptr,  # [3] in / out for t, h, w, in the accumulation dtype
    C, t_in, h_in, w_in, T, H, W,
    CHANNELS_LAST: tl.constexpr, BLOCK: tl.constexpr,
):
    bc = tl.program_id(0)
    b = bc // C
    c = bc % C
    s = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    valid = s < T * H * W
    t = s // (H * W)
    h = (s // W) % H
    w = s % W
    t0, t1, lt = _source_index(t, tl.load(scales_ptr), t_in)
    h0, h1, lh = _source_index(h, tl.load(scales_ptr + 1), h_in)
    w0, w1, lw = _source_index(w, tl.load(scales_ptr + 2), w_in)
    low_spatial = t_in * h_in * w_in
    up = tl.zeros((BLOCK,), dtype=scales_ptr.dtype.element_ty)
    # The 8 corners: offset d in {0, 1} per axis picks i0 or i1 and weight 1 - l or l.
    for dt in tl.static_range(2):
        ti = t0 + dt * (t1 - t0)
        wt = (1.0 - lt) + dt * (2.0 * lt - 1.0)
        for dh in tl.static_range(2):
            hi = h0 + dh * (h1 - h0)
            wh = (1.0 - lh) + dh * (2.0 * lh - 1.0)
            for dw in tl.static_range(2):
                wi = w0 + dw * (w1 - w0)
                ww = (1.0 - lw) + dw * (2.0 * lw - 1.0)
                offsets = _element_offset(b, c, (ti * h_in + hi) * w_in + wi, C, low_spatial,
                                          CHANNELS_LAST)
                value = tl.load(low_ptr + offsets, mask=valid, other=0.0)
                up += wt * wh * ww * value.to(up.dtype)
    offsets = _element_offset(b, c, s, C, T * H * W, CHANNELS_LAST)
    high = tl.load(high_ptr + offsets, mask=valid, other=0.0).to(up.dtype)
    tl.store(out_ptr + offsets, (high + up).to(out_ptr.dtype.element_ty), mask=valid)


_UPSAMPLE_BLOCK = 1024


def _upsample_add_fwd(low, high):
    high, channels_last = _memory_layout(high)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    low = low.contiguous(memory_format=memory_format)
    batch, channels, t_in, h_in, w_in = low.shape
    frames, height, width = high.shape[2:]
    out = torch.empty_like(high, memory_format=memory_format)
    # in / out per axis, rounded to the accumulation dtype as PyTorch's upsampling does.
    scales = torch.tensor([t_in / frames, h_in / height, w_in / width],
                          dtype=accumulation_dtype(low.dtype), device=low.device)
    grid = (batch * channels, triton.cdiv(frames * height * width, _UPSAMPLE_BLOCK))
    _upsample_add_kernel[grid](
        low, high, out, scales, channels, t_in, h_in, w_in, frames, height, width,
        CHANNELS_LAST=channels_last, BLOCK=_UPSAMPLE_BLOCK,
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
            grad_out.contiguous(), list(grad_out.shape[2:]), list(ctx.low_shape), False)
        return grad_low.to(ctx.low_dtype), grad_out


def upsample_add(low, high, *, backend="auto"):
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
    check_tensor("high", high, shape=(low.shape[0], low.shape[1], None, None, None),
                 dtypes=FLOAT_DTYPES)
    if low.dtype != high.dtype:
        raise TypeError(f"low and high must share a dtype, got {low.dtype} and {high.dtype}")
    if any(size_low < 1 or size_low > size_high
           for size_low, size_high in zip(low.shape[2:], high.shape[2:])):
        raise ValueError(f"low's T, H, W must be in [1, high's], got low {list(low.shape)} "
                         f"and high {list(high.shape)}")
    if high.numel() == 0:
        raise ValueError(f"high must not be empty, got shape {list(high.shape)}")
    if resolve_backend(backend, low, high) == "reference":
        return upsample_add_reference(low, high)
    return _UpsampleAddFunction.apply(low, high)
