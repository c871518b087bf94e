"""Per-instance Gaussian probability of every voxel (official: EmbeddingLoss.compute_prob_map,
modeling/losses/embedding_loss.py).

For K instances with mean mu_k and (diagonal) precision b_k, and N voxel embeddings e_i:

    prob_ki = exp(-1/2 sum_d b_kd (e_id - mu_kd)^2)                       [K, N] in (0, 1]

(the squared Mahalanobis distance: the official training loss; inference uses its square root,
reference 4.2). The forward kernel evaluates exp2(sum_d q_kd (e_id - mu_kd)^2) with
q = -1/2 log2(e) b folded once per row, one row of K at a time over voxels along the lanes. The reference materialises the [K, N, E] difference as the official code does
per instance; the Triton kernels never hold more than a [BLOCK_K, BLOCK_N, E] tile.

Backward, with w_ki = g_ki * prob_ki for the upstream gradient g and delta = e_i - mu_k:

    dL/de_id  = -sum_k w_ki b_kd delta_kid
    dL/dmu_kd = +sum_i w_ki b_kd delta_kid
    dL/db_kd  = -1/2 sum_i w_ki delta_kid^2

prob is recomputed from e, mu, b instead of being saved (fewer bytes than reading it back).
The gradients of mu and b then flow on through :func:`instance_gaussians` into every member
voxel, exactly as the official autograd through the gathered means does.

Memory traffic (fp32, E dims): forward reads N*E*4 + 2*K*E*4 bytes and writes K*N*4: about
4 bytes per output element (K*N) for K >> E. Backward reads the upstream gradient K*N*4 and
N*E*4 embeddings, writes N*E*4 (times ceil(K / BLOCK_K) partial rows when K > BLOCK_K) plus
per-program partial sums [P, K, E] x 2: again about 4 bytes per (k, i) element. The reference
moves about (3E + 3) * 4 bytes per (k, i) element in each direction (difference, square,
weighted sum, exp, each written and read back, and saved for autograd).
"""
import torch
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import (FLOAT_DTYPES, check_int32_indexable, check_same_device, check_same_size,
                      check_tensor)
from ._launch import accumulation_dtype, block_size_for, ensure_contiguous, row_start


def gaussian_probability_reference(embeddings, means, precisions):
    """Plain PyTorch, as the official compute_prob_map but batched over the K instances."""
    dtype = accumulation_dtype(embeddings.dtype, means.dtype, precisions.dtype)
    difference = embeddings.to(dtype)[None, :, :] - means.to(dtype)[:, None, :]  # [K, N, E]
    distance = (difference.square() * precisions.to(dtype)[:, None, :]).sum(dim=-1)  # [K, N]
    return torch.exp(-0.5 * distance)


# exp(-1/2 d) = exp2(-1/2 log2(e) d): the constant is folded into the precisions once per row,
# so each output costs E subtractions, E multiply-adds and one ex2.
_NEG_HALF_LOG2_E = tl.constexpr(-0.5 * 1.4426950408889634)


@triton.jit
def _column(emb_ptr, n_offs, n_mask, d, E: tl.constexpr, acc_dtype: tl.constexpr):
    """Embedding column d of BLOCK_N voxels ([BLOCK_N]; zeros past E, which never count)."""
    if d < E:
        return tl.load(emb_ptr + n_offs * E + d, mask=n_mask, other=0.0).to(acc_dtype)
    return tl.zeros(n_offs.shape, dtype=acc_dtype)


@triton.jit
def _folded_term(column, means_ptr, prec_ptr, k, d, E: tl.constexpr, acc_dtype: tl.constexpr):
    """-1/2 log2(e) b_kd (e_d - mu_kd)^2 for one column (scalars b, mu of row k)."""
    mean = tl.load(means_ptr + k * E + d).to(acc_dtype)
    weight = tl.load(prec_ptr + k * E + d).to(acc_dtype) * _NEG_HALF_LOG2_E
    difference = column - mean
    return weight * difference * difference


@triton.jit
def _gaussian_probability_fwd_kernel(
    emb_ptr,  # [N, E] embeddings
    means_ptr,  # [K, E]
    prec_ptr,  # [K, E]
    prob_ptr,  # [K, N] output
    N, K,
    E: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # BLOCK_N voxels along the lanes with their E <= 8 embedding columns in registers (loaded
    # once); then BLOCK_K instance rows one after the other (unrolled; rows past K skipped by a
    # uniform branch), each with its means and folded precisions as scalars: no [K, N, E]
    # broadcast, no padded k or d, no cross-thread reduction.
    n_offs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = n_offs < N
    acc_dtype: tl.constexpr = prob_ptr.dtype.element_ty
    c0 = _column(emb_ptr, n_offs, n_mask, 0, E, acc_dtype)
    c1 = _column(emb_ptr, n_offs, n_mask, 1, E, acc_dtype)
    c2 = _column(emb_ptr, n_offs, n_mask, 2, E, acc_dtype)
    c3 = _column(emb_ptr, n_offs, n_mask, 3, E, acc_dtype)
    c4 = _column(emb_ptr, n_offs, n_mask, 4, E, acc_dtype)
    c5 = _column(emb_ptr, n_offs, n_mask, 5, E, acc_dtype)
    c6 = _column(emb_ptr, n_offs, n_mask, 6, E, acc_dtype)
    c7 = _column(emb_ptr, n_offs, n_mask, 7, E, acc_dtype)
    for kk in tl.static_range(BLOCK_K):
        k = tl.program_id(1) * BLOCK_K + kk
        if k < K:
            exponent = _folded_term(c0, means_ptr, prec_ptr, k, 0, E, acc_dtype)
            if E > 1:
                exponent += _folded_term(c1, means_ptr, prec_ptr, k, 1, E, acc_dtype)
            if E > 2:
                exponent += _folded_term(c2, means_ptr, prec_ptr, k, 2, E, acc_dtype)
            if E > 3:
                exponent += _folded_term(c3, means_ptr, prec_ptr, k, 3, E, acc_dtype)
            if E > 4:
                exponent += _folded_term(c4, means_ptr, prec_ptr, k, 4, E, acc_dtype)
            if E > 5:
                exponent += _folded_term(c5, means_ptr, prec_ptr, k, 5, E, acc_dtype)
            if E > 6:
                exponent += _folded_term(c6, means_ptr, prec_ptr, k, 6, E, acc_dtype)
            if E > 7:
                exponent += _folded_term(c7, means_ptr, prec_ptr, k, 7, E, acc_dtype)
            tl.store(prob_ptr + row_start(k, N) + n_offs, tl.exp2(exponent), mask=n_mask)


# Backward (module docstring): w = g * row_scale_k * prob, with prob recomputed.
#   grad_e partial for this K-block:   -sum_k w_ki b_kd delta_kid   -> [KB, N, E]
#   grad_mu partial for this N-chunk:  +sum_i w_ki b_kd delta_kid   -> [P, K, E]
#   grad_b partial for this N-chunk:   -1/2 sum_i w_ki delta_kid^2  -> [P, K, E]
# Partials are summed in a fixed order afterwards (no atomics: deterministic).
@triton.jit
def _gaussian_probability_bwd_kernel(
    emb_ptr,  # [N, E]
    means_ptr,  # [K, E]
    prec_ptr,  # [K, E]
    grad_prob_ptr,  # [K, N] upstream gradient
    row_scale_ptr,  # [K] per-row factor on the upstream gradient (HAS_ROW_SCALE)
    grad_emb_ptr,  # [KB, N, E] per-K-block partial gradient of the embeddings
    part_grad_means_ptr,  # [P, K, E] per-program partial gradient of the means
    part_grad_prec_ptr,  # [P, K, E] per-program partial gradient of the precisions
    N, K, chunk,
    E: tl.constexpr, HAS_ROW_SCALE: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, E_PAD: tl.constexpr,
):
    pid = tl.program_id(0)
    pid_k = tl.program_id(1)
    k_offs = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    d_offs = tl.arange(0, E_PAD)
    k_mask, d_mask = k_offs < K, d_offs < E
    acc_dtype = part_grad_means_ptr.dtype.element_ty
    kd_mask = k_mask[:, None] & d_mask[None, :]
    means = tl.load(means_ptr + k_offs[:, None] * E + d_offs[None, :], mask=kd_mask,
                    other=0.0).to(acc_dtype)
    prec = tl.load(prec_ptr + k_offs[:, None] * E + d_offs[None, :], mask=kd_mask,
                   other=0.0).to(acc_dtype)
    if HAS_ROW_SCALE:
        row_scale = tl.load(row_scale_ptr + k_offs, mask=k_mask, other=0.0).to(acc_dtype)
    acc_means = tl.zeros((BLOCK_K, E_PAD), dtype=acc_dtype)
    acc_prec = tl.zeros((BLOCK_K, E_PAD), dtype=acc_dtype)
    start = pid * chunk
    for tile_start in range(0, chunk, BLOCK_N):
        n_offs = start + tile_start + tl.arange(0, BLOCK_N)
        n_mask = (n_offs < start + chunk) & (n_offs < N)
        emb = tl.load(emb_ptr + n_offs[:, None] * E + d_offs[None, :],
                      mask=n_mask[:, None] & d_mask[None, :], other=0.0).to(acc_dtype)
        kn_mask = k_mask[:, None] & n_mask[None, :]
        grad = tl.load(grad_prob_ptr + row_start(k_offs, N)[:, None] + n_offs[None, :],
                       mask=kn_mask, other=0.0).to(acc_dtype)
        if HAS_ROW_SCALE:
            grad = grad * row_scale[:, None]
        difference = emb[None, :, :] - means[:, None, :]  # [BLOCK_K, BLOCK_N, E_PAD]
        distance = tl.sum(difference * difference * prec[:, None, :], axis=2)
        # where, not a product: padded rows and voxels must not contribute even as 0 * inf.
        weight = tl.where(kn_mask, grad * tl.exp(-0.5 * distance), 0.0)  # [BLOCK_K, BLOCK_N]
        weighted = weight[:, :, None] * difference  # w * delta
        scaled = weighted * prec[:, None, :]  # w * b * delta
        grad_emb = -tl.sum(scaled, axis=0)  # [BLOCK_N, E_PAD]
        tl.store(grad_emb_ptr + row_start(pid_k, N * E) + n_offs[:, None] * E + d_offs[None, :],
                 grad_emb, mask=n_mask[:, None] & d_mask[None, :])
        acc_means += tl.sum(scaled, axis=1)
        acc_prec += -0.5 * tl.sum(weighted * difference, axis=1)
    out_offs = pid * K * E + k_offs[:, None] * E + d_offs[None, :]
    tl.store(part_grad_means_ptr + out_offs, acc_means, mask=kd_mask)
    tl.store(part_grad_prec_ptr + out_offs, acc_prec, mask=kd_mask)


_BLOCK_N = 128
_FWD_BLOCK_N = 512  # 4 voxels per thread, K rows unrolled per program
_MAX_FWD_DIMS = 8  # embedding columns the forward holds in registers (c0 .. c7)
_MAX_BLOCK_K = 16  # [16, 128, E_PAD <= 8] tiles: 16 K elements of registers per thread
_MAX_PROGRAMS = 512  # several waves over 132 SMs; bounds the [P, K, E] partials


def _block_k(num_instances):
    return block_size_for(num_instances, minimum=1, maximum=_MAX_BLOCK_K)


def gaussian_probability_fwd(embeddings, means, precisions):
    """Launch the forward kernel on contiguous tensors; returns prob [K, N]."""
    num_voxels, num_dims = embeddings.shape
    num_instances = means.shape[0]
    dtype = accumulation_dtype(embeddings.dtype, means.dtype, precisions.dtype)
    prob = torch.empty(num_instances, num_voxels, dtype=dtype, device=embeddings.device)
    if prob.numel() == 0:
        return prob
    block_k = _block_k(num_instances)
    grid = (triton.cdiv(num_voxels, _FWD_BLOCK_N), triton.cdiv(num_instances, block_k))
    _gaussian_probability_fwd_kernel[grid](
        embeddings, means, precisions, prob, num_voxels, num_instances,
        E=num_dims, BLOCK_N=_FWD_BLOCK_N, BLOCK_K=block_k,
    )
    return prob


def gaussian_probability_bwd(embeddings, means, precisions, grad_prob, row_scale=None):
    """Gradients of sum_ki row_scale_k * grad_prob_ki * prob_ki with respect to embeddings,
    means and precisions, without a [K, N, E] intermediate. All inputs contiguous.

    Shared with the fused embedding loss, which passes its stored Lovász gradient as
    ``grad_prob`` and the upstream gradient of the per-instance losses as ``row_scale``.
    Returns (grad_embeddings [N, E], grad_means [K, E], grad_precisions [K, E]) in the
    accumulation dtype.
    """
    num_voxels, num_dims = embeddings.shape
    num_instances = means.shape[0]
    dtype = accumulation_dtype(embeddings.dtype, means.dtype, precisions.dtype)
    device = embeddings.device
    if num_instances == 0 or num_voxels == 0:
        return (torch.zeros(num_voxels, num_dims, dtype=dtype, device=device),
                torch.zeros(num_instances, num_dims, dtype=dtype, device=device),
                torch.zeros(num_instances, num_dims, dtype=dtype, device=device))
    block_k = _block_k(num_instances)
    num_k_blocks = triton.cdiv(num_instances, block_k)
    num_programs = max(1, min(triton.cdiv(num_voxels, _BLOCK_N), _MAX_PROGRAMS))
    chunk = triton.cdiv(triton.cdiv(num_voxels, num_programs), _BLOCK_N) * _BLOCK_N
    num_programs = triton.cdiv(num_voxels, chunk)  # no program without a voxel
    grad_emb_parts = torch.empty(num_k_blocks, num_voxels, num_dims, dtype=dtype, device=device)
    part_grad_means = torch.empty(num_programs, num_instances, num_dims, dtype=dtype,
                                  device=device)
    part_grad_prec = torch.empty_like(part_grad_means)
    _gaussian_probability_bwd_kernel[(num_programs, num_k_blocks)](
        embeddings, means, precisions, grad_prob,
        grad_prob if row_scale is None else row_scale,  # unused pointer when no row scale
        grad_emb_parts, part_grad_means, part_grad_prec,
        num_voxels, num_instances, chunk,
        E=num_dims, HAS_ROW_SCALE=row_scale is not None,
        BLOCK_N=_BLOCK_N, BLOCK_K=block_k, E_PAD=triton.next_power_of_2(num_dims),
    )
    # Fixed-order sums over the partials: deterministic on every device.
    grad_embeddings = grad_emb_parts[0] if num_k_blocks == 1 else grad_emb_parts.sum(dim=0)
    return grad_embeddings, part_grad_means.sum(dim=0), part_grad_prec.sum(dim=0)


class _GaussianProbabilityFunction(torch.autograd.Function):
    @staticmethod
    @ensure_contiguous
    def forward(ctx, embeddings, means, precisions):
        ctx.save_for_backward(embeddings, means, precisions)
        return gaussian_probability_fwd(embeddings, means, precisions)

    @staticmethod
    @torch.autograd.function.once_differentiable
    @ensure_contiguous
    def backward(ctx, grad_prob):
        embeddings, means, precisions = ctx.saved_tensors
        grad_embeddings, grad_means, grad_precisions = gaussian_probability_bwd(
            embeddings, means, precisions, grad_prob)
        return (grad_embeddings.to(embeddings.dtype), grad_means.to(means.dtype),
                grad_precisions.to(precisions.dtype))


def gaussian_probability(embeddings, means, precisions, *, backend="auto"):
    """Probability of every voxel under every instance's diagonal Gaussian (unnormalised).

    Args:
        embeddings (Tensor[N, E], float): voxel embeddings.
        means (Tensor[K, E], float): instance centres (e.g. from :func:`instance_gaussians`).
        precisions (Tensor[K, E], float, >= 0): diagonal precisions (1 / sigma^2).
        backend (str): ``"auto"``, ``"triton"`` or ``"reference"``.

    Returns:
        Tensor[K, N] in [0, 1]: exp(-1/2 sum_d b_kd (e_id - mu_kd)^2); float64 for float64
        inputs, else float32. Differentiable in all three inputs.
    """
    check_tensor("embeddings", embeddings, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("means", means, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("precisions", precisions, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_same_size("E", embeddings=embeddings.shape[1], means=means.shape[1],
                    precisions=precisions.shape[1])
    check_same_size("K", means=means.shape[0], precisions=precisions.shape[0])
    check_same_device(embeddings=embeddings, means=means, precisions=precisions)
    if resolve_backend(backend, embeddings, means, precisions) == "reference":
        return gaussian_probability_reference(embeddings, means, precisions)
    check_int32_indexable("embeddings", embeddings.numel())
    if embeddings.shape[1] > _MAX_FWD_DIMS:
        raise ValueError(f"embeddings must have at most {_MAX_FWD_DIMS} dims E for the Triton "
                         f"backend (its columns live in registers), got {embeddings.shape[1]}")
    return _GaussianProbabilityFunction.apply(embeddings, means, precisions)
