"""Per-instance Gaussian probability of every voxel (official: EmbeddingLoss.compute_prob_map,
modeling/losses/embedding_loss.py).

For K instances with mean mu_k and (diagonal) precision b_k, and N voxel embeddings e_i:

    prob_ki = exp(-1/2 sum_d b_kd (e_id - mu_kd)^2)                       [K, N] in (0, 1]

(the squared Mahalanobis distance: the official training loss; inference uses its square root,
reference 4.2). The forward kernel evaluates exp2(sum_d q_kd (e_id - mu_kd)^2) with
q = -1/2 log2(e) b folded once per row, one row of K at a time over voxels along the lanes (the
backward likewise). The reference materialises the [K, N, E] difference as the official code does
per instance; the Triton kernels hold E columns of BLOCK_N voxels and one instance row at a
time.

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
per-tile partial sums [N / 1024, K, E] x 2: again about 4 bytes per (k, i) element. The reference
moves about (3E + 3) * 4 bytes per (k, i) element in each direction (difference, square,
weighted sum, exp, each written and read back, and saved for autograd).
"""

import torch
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import (
    FLOAT_DTYPES,
    check_int32_indexable,
    check_same_device,
    check_same_size,
    check_tensor,
)
from ._launch import accumulation_dtype, ensure_contiguous, row_start


def gaussian_probability_reference(
    embeddings: torch.Tensor, means: torch.Tensor, precisions: torch.Tensor
) -> torch.Tensor:
    """Plain PyTorch, as the official compute_prob_map but batched over the K instances."""
    dtype = accumulation_dtype(embeddings.dtype, means.dtype, precisions.dtype)
    difference = embeddings.to(dtype)[None, :, :] - means.to(dtype)[:, None, :]  # [K, N, E]
    distance = (difference.square() * precisions.to(dtype)[:, None, :]).sum(dim=-1)  # [K, N]
    return torch.exp(-0.5 * distance)


# exp(-1/2 d) = exp2(-1/2 log2(e) d): the constant is folded into the precisions once per row,
# so each output costs E subtractions, E multiply-adds and one ex2.
_NEG_HALF_LOG2_E = tl.constexpr(-0.5 * 1.4426950408889634)


@triton.jit
def _column(emb_ptr, n_offs, n_mask, d: tl.constexpr, E: tl.constexpr, acc_dtype: tl.constexpr):
    """Embedding column d of BLOCK_N voxels ([BLOCK_N]; zeros past E, which never count)."""
    if d < E:
        return tl.load(emb_ptr + n_offs * E + d, mask=n_mask, other=0.0).to(acc_dtype)
    return tl.zeros(n_offs.shape, dtype=acc_dtype)


@triton.jit
def _folded_term(
    column, means_ptr, prec_ptr, k, d: tl.constexpr, E: tl.constexpr, acc_dtype: tl.constexpr
):
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
    N,
    K,
    E: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
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
#   grad_mu partial for this N-tile:   +sum_i w_ki b_kd delta_kid   -> [tiles, K, E]
#   grad_b partial for this N-tile:    -1/2 sum_i w_ki delta_kid^2  -> [tiles, K, E]
# Partials are summed in a fixed order afterwards (no atomics: deterministic).
@triton.jit
def _difference(column, means_ptr, k, d: tl.constexpr, E: tl.constexpr, acc_dtype: tl.constexpr):
    """delta_kd = e_d - mu_kd of BLOCK_N voxels (the zero column past E)."""
    if d < E:
        return column - tl.load(means_ptr + k * E + d).to(acc_dtype)
    return column


@triton.jit
def _precision(prec_ptr, k, d: tl.constexpr, E: tl.constexpr, acc_dtype: tl.constexpr):
    """b_kd as a scalar (0 past E)."""
    if d < E:
        return tl.load(prec_ptr + k * E + d).to(acc_dtype)
    return tl.zeros((), dtype=acc_dtype)


@triton.jit
def _column_backward(
    grad_column,
    difference,
    weight,
    precision,
    part_means_ptr,
    part_prec_ptr,
    kd_offset,
    d: tl.constexpr,
    E: tl.constexpr,
):
    """One column's share: this tile's sums for grad_mu_kd and grad_b_kd (stored), and
    -w b_kd delta_kd added to the voxels' gradient column."""
    if d < E:
        weighted = weight * difference  # w * delta
        tl.store(part_means_ptr + kd_offset + d, precision * tl.sum(weighted, axis=0))
        tl.store(part_prec_ptr + kd_offset + d, -0.5 * tl.sum(weighted * difference, axis=0))
        grad_column -= precision * weighted
    return grad_column


@triton.jit
def _store_column(grad_emb_ptr, grad_column, n_offs, n_mask, d: tl.constexpr, E: tl.constexpr):
    if d < E:
        tl.store(grad_emb_ptr + n_offs * E + d, grad_column, mask=n_mask)


@triton.jit
def _gaussian_probability_bwd_kernel(
    emb_ptr,  # [N, E]
    means_ptr,  # [K, E]
    prec_ptr,  # [K, E]
    grad_prob_ptr,  # [K, N] upstream gradient
    row_scale_ptr,  # [K] per-row factor on the upstream gradient (HAS_ROW_SCALE)
    grad_emb_ptr,  # [KB, N, E] per-K-block partial gradient of the embeddings
    part_grad_means_ptr,  # [tiles, K, E] per-tile partial gradient of the means
    part_grad_prec_ptr,  # [tiles, K, E] per-tile partial gradient of the precisions
    N,
    K,
    E: tl.constexpr,
    HAS_ROW_SCALE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    # As the forward: BLOCK_N voxels along the lanes, their E <= 8 columns and gradient columns
    # in registers, the BLOCK_K rows unrolled (rows past K skipped by a uniform branch); per row
    # and column two tile sums (grad_mu, grad_b), stored per tile. No [K, N, E] broadcast.
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    n_offs = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_mask = n_offs < N
    acc_dtype: tl.constexpr = part_grad_means_ptr.dtype.element_ty
    c0 = _column(emb_ptr, n_offs, n_mask, 0, E, acc_dtype)
    c1 = _column(emb_ptr, n_offs, n_mask, 1, E, acc_dtype)
    c2 = _column(emb_ptr, n_offs, n_mask, 2, E, acc_dtype)
    c3 = _column(emb_ptr, n_offs, n_mask, 3, E, acc_dtype)
    c4 = _column(emb_ptr, n_offs, n_mask, 4, E, acc_dtype)
    c5 = _column(emb_ptr, n_offs, n_mask, 5, E, acc_dtype)
    c6 = _column(emb_ptr, n_offs, n_mask, 6, E, acc_dtype)
    c7 = _column(emb_ptr, n_offs, n_mask, 7, E, acc_dtype)
    g0 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    g1 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    g2 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    g3 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    g4 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    g5 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    g6 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    g7 = tl.zeros((BLOCK_N,), dtype=acc_dtype)
    for kk in tl.static_range(BLOCK_K):
        k = pid_k * BLOCK_K + kk
        if k < K:
            d0 = _difference(c0, means_ptr, k, 0, E, acc_dtype)
            d1 = _difference(c1, means_ptr, k, 1, E, acc_dtype)
            d2 = _difference(c2, means_ptr, k, 2, E, acc_dtype)
            d3 = _difference(c3, means_ptr, k, 3, E, acc_dtype)
            d4 = _difference(c4, means_ptr, k, 4, E, acc_dtype)
            d5 = _difference(c5, means_ptr, k, 5, E, acc_dtype)
            d6 = _difference(c6, means_ptr, k, 6, E, acc_dtype)
            d7 = _difference(c7, means_ptr, k, 7, E, acc_dtype)
            b0 = _precision(prec_ptr, k, 0, E, acc_dtype)
            b1 = _precision(prec_ptr, k, 1, E, acc_dtype)
            b2 = _precision(prec_ptr, k, 2, E, acc_dtype)
            b3 = _precision(prec_ptr, k, 3, E, acc_dtype)
            b4 = _precision(prec_ptr, k, 4, E, acc_dtype)
            b5 = _precision(prec_ptr, k, 5, E, acc_dtype)
            b6 = _precision(prec_ptr, k, 6, E, acc_dtype)
            b7 = _precision(prec_ptr, k, 7, E, acc_dtype)
            distance = b0 * d0 * d0
            if E > 1:
                distance += b1 * d1 * d1
            if E > 2:
                distance += b2 * d2 * d2
            if E > 3:
                distance += b3 * d3 * d3
            if E > 4:
                distance += b4 * d4 * d4
            if E > 5:
                distance += b5 * d5 * d5
            if E > 6:
                distance += b6 * d6 * d6
            if E > 7:
                distance += b7 * d7 * d7
            grad = tl.load(grad_prob_ptr + row_start(k, N) + n_offs, mask=n_mask, other=0.0).to(
                acc_dtype
            )
            if HAS_ROW_SCALE:
                grad = grad * tl.load(row_scale_ptr + k).to(acc_dtype)
            # where, not a product: padded voxels must not contribute even as 0 * inf.
            weight = tl.where(n_mask, grad * tl.exp2(_NEG_HALF_LOG2_E * distance), 0.0)
            kd_offset = (pid_n * K + k) * E
            g0 = _column_backward(
                g0, d0, weight, b0, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 0, E
            )
            g1 = _column_backward(
                g1, d1, weight, b1, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 1, E
            )
            g2 = _column_backward(
                g2, d2, weight, b2, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 2, E
            )
            g3 = _column_backward(
                g3, d3, weight, b3, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 3, E
            )
            g4 = _column_backward(
                g4, d4, weight, b4, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 4, E
            )
            g5 = _column_backward(
                g5, d5, weight, b5, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 5, E
            )
            g6 = _column_backward(
                g6, d6, weight, b6, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 6, E
            )
            g7 = _column_backward(
                g7, d7, weight, b7, part_grad_means_ptr, part_grad_prec_ptr, kd_offset, 7, E
            )
    grad_emb_ptr += row_start(pid_k, N * E)
    _store_column(grad_emb_ptr, g0, n_offs, n_mask, 0, E)
    _store_column(grad_emb_ptr, g1, n_offs, n_mask, 1, E)
    _store_column(grad_emb_ptr, g2, n_offs, n_mask, 2, E)
    _store_column(grad_emb_ptr, g3, n_offs, n_mask, 3, E)
    _store_column(grad_emb_ptr, g4, n_offs, n_mask, 4, E)
    _store_column(grad_emb_ptr, g5, n_offs, n_mask, 5, E)
    _store_column(grad_emb_ptr, g6, n_offs, n_mask, 6, E)
    _store_column(grad_emb_ptr, g7, n_offs, n_mask, 7, E)


_FWD_BLOCK_N = 512  # 4 voxels per thread, K rows unrolled per program
# 8 voxels per thread: each tile sum (2 E per row and tile) costs about 20 instructions per
# thread, spread over 8 outputs (sm_90 static report: 512 voxels leave the kernel issue-bound
# at 12.9 us for ytvis720_T8, 1024 bring it to 9.2 us against 8.9 us of memory time); the
# [tiles, K, E] partials stay under 1 % of the [K, N] gradient read
_BWD_BLOCK_N = 1024
_MAX_DIMS = 8  # embedding columns both kernels hold in registers (c0 .. c7)
_MAX_BLOCK_K = 16  # rows unrolled per program


def check_register_dims(num_dims: int) -> None:
    """The Triton kernels hold the E embedding columns in registers (c0 .. c7)."""
    if num_dims > _MAX_DIMS:
        raise ValueError(
            f"embeddings must have at most {_MAX_DIMS} dims E for the Triton "
            f"backend (its columns live in registers), got {num_dims}"
        )


def _block_k(num_instances):
    """Rows unrolled per program: K rounded up to a multiple of 4 (K = 10 unrolls 12 rows, 2
    skipped by their branch), at most 16: four compiled variants whatever K a clip has."""
    return min(_MAX_BLOCK_K, triton.cdiv(max(num_instances, 1), 4) * 4)


def gaussian_probability_fwd(
    embeddings: torch.Tensor, means: torch.Tensor, precisions: torch.Tensor
) -> torch.Tensor:
    """Launch the forward kernel on contiguous tensors; returns prob [K, N]."""
    num_voxels, num_dims = embeddings.shape
    check_register_dims(num_dims)
    num_instances = means.shape[0]
    dtype = accumulation_dtype(embeddings.dtype, means.dtype, precisions.dtype)
    prob = torch.empty(num_instances, num_voxels, dtype=dtype, device=embeddings.device)
    if prob.numel() == 0:
        return prob
    block_k = _block_k(num_instances)
    grid = (triton.cdiv(num_voxels, _FWD_BLOCK_N), triton.cdiv(num_instances, block_k))
    _gaussian_probability_fwd_kernel[grid](
        embeddings,
        means,
        precisions,
        prob,
        num_voxels,
        num_instances,
        E=num_dims,
        BLOCK_N=_FWD_BLOCK_N,
        BLOCK_K=block_k,
    )
    return prob


def gaussian_probability_bwd(
    embeddings: torch.Tensor,
    means: torch.Tensor,
    precisions: torch.Tensor,
    grad_prob: torch.Tensor,
    row_scale: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
        return (
            torch.zeros(num_voxels, num_dims, dtype=dtype, device=device),
            torch.zeros(num_instances, num_dims, dtype=dtype, device=device),
            torch.zeros(num_instances, num_dims, dtype=dtype, device=device),
        )
    check_register_dims(num_dims)
    block_k = _block_k(num_instances)
    num_k_blocks = triton.cdiv(num_instances, block_k)
    num_tiles = triton.cdiv(num_voxels, _BWD_BLOCK_N)
    grad_emb_parts = torch.empty(num_k_blocks, num_voxels, num_dims, dtype=dtype, device=device)
    part_grad_means = torch.empty(num_tiles, num_instances, num_dims, dtype=dtype, device=device)
    part_grad_prec = torch.empty_like(part_grad_means)
    _gaussian_probability_bwd_kernel[(num_tiles, num_k_blocks)](
        embeddings,
        means,
        precisions,
        grad_prob,
        grad_prob if row_scale is None else row_scale,  # unused pointer when no row scale
        grad_emb_parts,
        part_grad_means,
        part_grad_prec,
        num_voxels,
        num_instances,
        E=num_dims,
        HAS_ROW_SCALE=row_scale is not None,
        BLOCK_N=_BWD_BLOCK_N,
        BLOCK_K=block_k,
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
            embeddings, means, precisions, grad_prob
        )
        return (
            grad_embeddings.to(embeddings.dtype),
            grad_means.to(means.dtype),
            grad_precisions.to(precisions.dtype),
        )


def gaussian_probability(
    embeddings: torch.Tensor,
    means: torch.Tensor,
    precisions: torch.Tensor,
    *,
    backend: str = "auto",
) -> torch.Tensor:
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
    check_same_size(
        "E", embeddings=embeddings.shape[1], means=means.shape[1], precisions=precisions.shape[1]
    )
    check_same_size("K", means=means.shape[0], precisions=precisions.shape[0])
    check_same_device(embeddings=embeddings, means=means, precisions=precisions)
    if resolve_backend(backend, embeddings, means, precisions) == "reference":
        return gaussian_probability_reference(embeddings, means, precisions)
    check_int32_indexable("embeddings", embeddings.numel())
    check_register_dims(embeddings.shape[1])
    return _GaussianProbabilityFunction.apply(embeddings, means, precisions)
