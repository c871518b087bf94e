"""Per-instance Gaussian statistics from an instance-id map (official: EmbeddingLoss.forward,
modeling/losses/embedding_loss.py, the ``nonzero_mask_pts`` gathers and means).

For every instance k with member voxels S_k (``instance_ids == k``) and n_k = |S_k|:

    mean_k       = 1/n_k  sum_{i in S_k} e_i                       [K, E]
    precision_kd = 1/n_k  sum_{i in S_k} s * exp(r_id)    d < E - F  (mean *after* activation)
    precision_kd = free_dim_precision                     d >= E - F (fixed)

with s = ``precision_scale``. The model owns both numbers (official s = 10, free-dim precision
1 / 0.3^2: :mod:`stemseg_fast.model.embeddings`) and passes them in.

Embeddings carry E channels of which the first E - F have predicted log-precisions r (the
grid axes); the F free dims get the fixed precision. Gradients flow into every member voxel,
exactly as the official autograd through the gathered means does. An instance with no voxel
(n_k = 0, e.g. a mask that vanished in the 1/4 downsampling) gets zero mean and zero predicted
precision; callers select ``counts > 0``.

Memory traffic (fp32): read N * (E + (E - F)) * 4 + N * 4 bytes (ids), write K * (2E + 1)
elements: a one-pass segmented reduction. The Triton forward reduces each program's slice of the
voxels into per-program partial sums ([P, K, E], no atomics, so results are deterministic) and a
second kernel sums the P partials in a fixed order. Every tile compares its voxels with all K
ids (K * BLOCK_N compares), cheap next to the loads for the K <= 100 instances of a clip.
The backward is one gather pass: read ids and r, write the N * (2E - F) input gradients.
"""

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    check_int32_indexable,
    checked_instance_count,
    check_positive,
    check_same_device,
    check_same_size,
    check_tensor,
)
from ._launch import accumulation_dtype, ensure_contiguous


class InstanceGaussians(NamedTuple):
    means: torch.Tensor  # [K, E]
    precisions: torch.Tensor  # [K, E]
    counts: torch.Tensor  # [K] int64, member voxels per instance


def instance_gaussians_reference(
    embeddings: torch.Tensor,
    log_precisions: torch.Tensor,
    instance_ids: torch.Tensor,
    num_instances: int,
    *,
    precision_scale: float,
    free_dim_precision: float,
) -> InstanceGaussians:
    """Plain PyTorch: scatter-add the member voxels of each instance, then divide."""
    dtype = accumulation_dtype(embeddings.dtype, log_precisions.dtype)
    num_dims, num_variance_dims = embeddings.shape[1], log_precisions.shape[1]
    is_member = instance_ids >= 0  # [N]
    member_ids = instance_ids[is_member].long()  # [M]
    embeddings = embeddings[is_member].to(dtype)  # [M, E]
    precisions = precision_scale * torch.exp(log_precisions[is_member].to(dtype))  # [M, E-F]
    zeros = embeddings.new_zeros
    counts = torch.bincount(member_ids, minlength=num_instances)  # [K]
    denominators = counts.clamp(min=1).to(dtype)[:, None]  # [K, 1]
    means = zeros(num_instances, num_dims).index_add(0, member_ids, embeddings) / denominators
    predicted = zeros(num_instances, num_variance_dims).index_add(0, member_ids, precisions)
    free = torch.full(
        (num_instances, num_dims - num_variance_dims),
        free_dim_precision,
        dtype=dtype,
        device=embeddings.device,
    )
    return InstanceGaussians(means, torch.cat([predicted / denominators, free], dim=1), counts)


@triton.jit
def _instance_gaussians_partial_kernel(
    emb_ptr,  # [N, E] embeddings
    logp_ptr,  # [N, EV] raw log-precisions
    ids_ptr,  # [N] int32 instance ids, -1 = no instance
    part_emb_ptr,  # [P, K, E] per-program sums of member embeddings
    part_prec_ptr,  # [P, K, E] per-program sums of member precisions (columns >= EV unused)
    part_count_ptr,  # [P, K] per-program member counts
    N,
    K,
    chunk,
    E: tl.constexpr,
    EV: tl.constexpr,
    PRECISION_SCALE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    E_PAD: tl.constexpr,
):
    pid = tl.program_id(0)
    k_offs = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    d_offs = tl.arange(0, E_PAD)
    acc_dtype = part_emb_ptr.dtype.element_ty
    acc_emb = tl.zeros((BLOCK_K, E_PAD), dtype=acc_dtype)
    acc_prec = tl.zeros((BLOCK_K, E_PAD), dtype=acc_dtype)
    acc_count = tl.zeros((BLOCK_K,), dtype=acc_dtype)
    start = pid * chunk
    for tile_start in range(0, chunk, BLOCK_N):
        n_offs = start + tile_start + tl.arange(0, BLOCK_N)
        n_mask = (n_offs < start + chunk) & (n_offs < N)
        ids = tl.load(ids_ptr + n_offs, mask=n_mask, other=-1)
        member = ids[:, None] == k_offs[None, :]  # [BLOCK_N, BLOCK_K]
        emb = tl.load(
            emb_ptr + n_offs[:, None] * E + d_offs[None, :],
            mask=n_mask[:, None] & (d_offs[None, :] < E),
            other=0.0,
        ).to(acc_dtype)
        logp = tl.load(
            logp_ptr + n_offs[:, None] * EV + d_offs[None, :],
            mask=n_mask[:, None] & (d_offs[None, :] < EV),
            other=0.0,
        ).to(acc_dtype)
        prec = PRECISION_SCALE * tl.exp(logp)
        # where, not a product with the 0/1 mask: exp(r) may overflow to inf outside S_k.
        acc_emb += tl.sum(tl.where(member[:, :, None], emb[:, None, :], 0.0), axis=0)
        acc_prec += tl.sum(tl.where(member[:, :, None], prec[:, None, :], 0.0), axis=0)
        acc_count += tl.sum(member.to(acc_dtype), axis=0)
    k_mask = k_offs < K
    out_offs = pid * K * E + k_offs[:, None] * E + d_offs[None, :]
    out_mask = k_mask[:, None] & (d_offs[None, :] < E)
    tl.store(part_emb_ptr + out_offs, acc_emb, mask=out_mask)
    tl.store(part_prec_ptr + out_offs, acc_prec, mask=out_mask)
    tl.store(part_count_ptr + pid * K + k_offs, acc_count, mask=k_mask)


@triton.jit
def _instance_gaussians_finalize_kernel(
    part_emb_ptr,  # [P, K, E]
    part_prec_ptr,  # [P, K, E]
    part_count_ptr,  # [P, K]
    means_ptr,  # [K, E]
    precisions_ptr,  # [K, E]
    counts_ptr,  # [K] int64
    P,
    K,
    free_dim_precision,
    E: tl.constexpr,
    EV: tl.constexpr,
    BLOCK_K: tl.constexpr,
    E_PAD: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    # BLOCK_P partials per step as one [BLOCK_P, BLOCK_K, E_PAD] tile reduced over P: P / BLOCK_P
    # steps instead of a serial walk over all P; the tile shape fixes the order of the sums, so
    # the result does not depend on scheduling.
    k_offs = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    d_offs = tl.arange(0, E_PAD)
    k_mask = k_offs < K
    kd_offs = k_offs[:, None] * E + d_offs[None, :]
    kd_mask = k_mask[:, None] & (d_offs[None, :] < E)
    acc_dtype = means_ptr.dtype.element_ty
    sum_emb = tl.zeros((BLOCK_K, E_PAD), dtype=acc_dtype)
    sum_prec = tl.zeros((BLOCK_K, E_PAD), dtype=acc_dtype)
    count = tl.zeros((BLOCK_K,), dtype=acc_dtype)
    for p_start in range(0, P, BLOCK_P):
        p_offs = p_start + tl.arange(0, BLOCK_P)
        p_mask = p_offs < P
        pkd_offs = p_offs[:, None, None] * K * E + kd_offs[None, :, :]
        pkd_mask = p_mask[:, None, None] & kd_mask[None, :, :]
        sum_emb += tl.sum(tl.load(part_emb_ptr + pkd_offs, mask=pkd_mask, other=0.0), axis=0)
        sum_prec += tl.sum(tl.load(part_prec_ptr + pkd_offs, mask=pkd_mask, other=0.0), axis=0)
        count += tl.sum(
            tl.load(
                part_count_ptr + p_offs[:, None] * K + k_offs[None, :],
                mask=p_mask[:, None] & k_mask[None, :],
                other=0.0,
            ),
            axis=0,
        )
    denominator = tl.maximum(count, 1.0, propagate_nan=tl.PropagateNan.ALL)[:, None]
    precisions = tl.where(d_offs[None, :] < EV, sum_prec / denominator, free_dim_precision)
    tl.store(means_ptr + kd_offs, sum_emb / denominator, mask=kd_mask)
    tl.store(precisions_ptr + kd_offs, precisions, mask=kd_mask)
    tl.store(counts_ptr + k_offs, count.to(tl.int64), mask=k_mask)


# Backward. With n_k the member count of instance k = id_i:
#   mean_k = 1/n_k sum_{i in S_k} e_i          =>  dL/de_i  = dL/dmean_k / n_k
#   prec_kd = 1/n_k sum_{i in S_k} 10 exp(r_id) =>  dL/dr_id = dL/dprec_kd * 10 exp(r_id) / n_k
# and zero for voxels of no instance. The free-dim precisions are constants.
@triton.jit
def _instance_gaussians_bwd_kernel(
    grad_means_ptr,  # [K, E]
    grad_prec_ptr,  # [K, E] (columns >= EV are ignored)
    counts_ptr,  # [K] int64
    logp_ptr,  # [N, EV]
    ids_ptr,  # [N] int32
    grad_emb_ptr,  # [N, E]
    grad_logp_ptr,  # [N, EV]
    N,
    E: tl.constexpr,
    EV: tl.constexpr,
    PRECISION_SCALE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    E_PAD: tl.constexpr,
):
    n_offs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    d_offs = tl.arange(0, E_PAD)
    n_mask = n_offs < N
    ids = tl.load(ids_ptr + n_offs, mask=n_mask, other=-1)
    member = ids >= 0
    safe_ids = tl.where(member, ids, 0)
    acc_dtype = grad_means_ptr.dtype.element_ty
    count = tl.load(counts_ptr + safe_ids, mask=n_mask & member, other=1).to(acc_dtype)
    safe_count = tl.maximum(count, 1.0, propagate_nan=tl.PropagateNan.ALL)
    inv_count = tl.where(member, 1.0 / safe_count, 0.0)[:, None]
    emb_mask = (n_mask & member)[:, None] & (d_offs[None, :] < E)
    grad_mean = tl.load(
        grad_means_ptr + safe_ids[:, None] * E + d_offs[None, :], mask=emb_mask, other=0.0
    )
    store_emb = n_mask[:, None] & (d_offs[None, :] < E)
    tl.store(
        grad_emb_ptr + n_offs[:, None] * E + d_offs[None, :],
        (grad_mean * inv_count).to(grad_emb_ptr.dtype.element_ty),
        mask=store_emb,
    )
    logp_mask = (n_mask & member)[:, None] & (d_offs[None, :] < EV)
    grad_prec = tl.load(
        grad_prec_ptr + safe_ids[:, None] * E + d_offs[None, :], mask=logp_mask, other=0.0
    )
    logp = tl.load(logp_ptr + n_offs[:, None] * EV + d_offs[None, :], mask=logp_mask, other=0.0).to(
        acc_dtype
    )
    grad_logp = tl.where(logp_mask, grad_prec * PRECISION_SCALE * tl.exp(logp) * inv_count, 0.0)
    store_logp = n_mask[:, None] & (d_offs[None, :] < EV)
    tl.store(
        grad_logp_ptr + n_offs[:, None] * EV + d_offs[None, :],
        grad_logp.to(grad_logp_ptr.dtype.element_ty),
        mask=store_logp,
    )


_BLOCK_N = 256
_BLOCK_K = 16
_MAX_PROGRAMS = 512  # enough to fill 132 SMs several times; bounds the [P, K, E] partials
_FINALIZE_BLOCK_P = 64  # [64, 16, E_PAD] tiles: the 512 partials in 8 steps


def _instance_gaussians_fwd(
    embeddings, log_precisions, instance_ids, num_instances, precision_scale, free_dim_precision
):
    num_voxels, num_dims = embeddings.shape
    num_variance_dims = log_precisions.shape[1]
    dtype = accumulation_dtype(embeddings.dtype, log_precisions.dtype)
    device = embeddings.device
    means = torch.empty(num_instances, num_dims, dtype=dtype, device=device)
    precisions = torch.empty(num_instances, num_dims, dtype=dtype, device=device)
    counts = torch.empty(num_instances, dtype=torch.int64, device=device)
    if num_instances == 0:
        return means, precisions, counts
    num_programs = max(1, min(triton.cdiv(num_voxels, _BLOCK_N), _MAX_PROGRAMS))
    chunk = triton.cdiv(triton.cdiv(max(num_voxels, 1), num_programs), _BLOCK_N) * _BLOCK_N
    part_emb = torch.empty(num_programs, num_instances, num_dims, dtype=dtype, device=device)
    part_prec = torch.empty_like(part_emb)
    part_count = torch.empty(num_programs, num_instances, dtype=dtype, device=device)
    e_pad = triton.next_power_of_2(num_dims)
    grid = (num_programs, triton.cdiv(num_instances, _BLOCK_K))
    _instance_gaussians_partial_kernel[grid](
        embeddings,
        log_precisions,
        instance_ids,
        part_emb,
        part_prec,
        part_count,
        num_voxels,
        num_instances,
        chunk,
        E=num_dims,
        EV=num_variance_dims,
        PRECISION_SCALE=precision_scale,
        BLOCK_N=_BLOCK_N,
        BLOCK_K=_BLOCK_K,
        E_PAD=e_pad,
    )
    _instance_gaussians_finalize_kernel[(triton.cdiv(num_instances, _BLOCK_K),)](
        part_emb,
        part_prec,
        part_count,
        means,
        precisions,
        counts,
        num_programs,
        num_instances,
        float(free_dim_precision),
        E=num_dims,
        EV=num_variance_dims,
        BLOCK_K=_BLOCK_K,
        E_PAD=e_pad,
        BLOCK_P=_FINALIZE_BLOCK_P,
    )
    return means, precisions, counts


def _instance_gaussians_bwd(
    grad_means,
    grad_precisions,
    counts,
    log_precisions,
    instance_ids,
    embeddings_dtype,
    precision_scale,
):
    num_voxels, num_variance_dims = log_precisions.shape
    num_dims = grad_means.shape[1]
    grad_embeddings = torch.empty(
        num_voxels, num_dims, dtype=embeddings_dtype, device=log_precisions.device
    )
    grad_log_precisions = torch.empty_like(log_precisions)
    if num_voxels == 0:
        return grad_embeddings, grad_log_precisions
    _instance_gaussians_bwd_kernel[(triton.cdiv(num_voxels, _BLOCK_N),)](
        grad_means,
        grad_precisions,
        counts,
        log_precisions,
        instance_ids,
        grad_embeddings,
        grad_log_precisions,
        num_voxels,
        E=num_dims,
        EV=num_variance_dims,
        PRECISION_SCALE=precision_scale,
        BLOCK_N=_BLOCK_N,
        E_PAD=triton.next_power_of_2(num_dims),
    )
    return grad_embeddings, grad_log_precisions


class _InstanceGaussiansFunction(torch.autograd.Function):
    @staticmethod
    @ensure_contiguous
    def forward(
        ctx,
        embeddings,
        log_precisions,
        instance_ids,
        num_instances,
        precision_scale,
        free_dim_precision,
    ):
        means, precisions, counts = _instance_gaussians_fwd(
            embeddings,
            log_precisions,
            instance_ids,
            num_instances,
            precision_scale,
            free_dim_precision,
        )
        ctx.save_for_backward(counts, log_precisions, instance_ids)
        ctx.embeddings_dtype = embeddings.dtype
        ctx.precision_scale = precision_scale
        ctx.mark_non_differentiable(counts)
        return means, precisions, counts

    @staticmethod
    @torch.autograd.function.once_differentiable
    @ensure_contiguous
    def backward(ctx, grad_means, grad_precisions, _grad_counts):
        counts, log_precisions, instance_ids = ctx.saved_tensors
        if grad_means is None:
            grad_means = torch.zeros_like(grad_precisions)
        if grad_precisions is None:
            grad_precisions = torch.zeros_like(grad_means)
        grad_embeddings, grad_log_precisions = _instance_gaussians_bwd(
            grad_means,
            grad_precisions,
            counts,
            log_precisions,
            instance_ids,
            ctx.embeddings_dtype,
            ctx.precision_scale,
        )
        # embeddings, log_precisions, instance_ids, num_instances, precision_scale,
        # free_dim_precision
        return grad_embeddings, grad_log_precisions, None, None, None, None


def instance_gaussians_triton(
    embeddings: torch.Tensor,
    log_precisions: torch.Tensor,
    instance_ids: torch.Tensor,
    num_instances: int,
    *,
    precision_scale: float,
    free_dim_precision: float,
) -> InstanceGaussians:
    """The Triton path of :func:`instance_gaussians` without its argument checks, for fused ops
    that have checked the same inputs already (the id range check syncs with the device).
    ``instance_ids`` must be int32; differentiable like :func:`instance_gaussians`."""
    means, precisions, counts = _InstanceGaussiansFunction.apply(
        embeddings,
        log_precisions,
        instance_ids,
        num_instances,
        float(precision_scale),
        float(free_dim_precision),
    )
    return InstanceGaussians(means, precisions, counts)


def instance_gaussians(
    embeddings: torch.Tensor,
    log_precisions: torch.Tensor,
    instance_ids: torch.Tensor,
    num_instances: int | None = None,
    *,
    precision_scale: float,
    free_dim_precision: float,
    backend: str = "auto",
) -> InstanceGaussians:
    """Mean embedding and mean precision of every instance of a clip.

    Args:
        embeddings (Tensor[N, E], float): voxel embeddings (N = T*H*W of the clip).
        log_precisions (Tensor[N, E-F], float): raw log-precisions of the first E-F dims.
        instance_ids (Tensor[N], integer): instance index per voxel in [0, K), -1 for none.
        num_instances (int, optional): K. Default: ``instance_ids.max() + 1`` (syncs with the
            device); pass it so instances whose voxels all vanished still get a row.
        precision_scale (float > 0): s in precision = s * exp(r) (the model's
            ``PRECISION_SCALE``, official 10).
        free_dim_precision (float > 0): precision of the F free dims (the model's
            ``FREE_DIM_PRECISION``, official 1 / 0.3^2).
        backend (str): ``"auto"``, ``"triton"`` or ``"reference"``.

    Returns:
        InstanceGaussians: ``means`` (Tensor[K, E]), ``precisions`` (Tensor[K, E], > 0 where
        ``counts > 0``), ``counts`` (Tensor[K], int64). Float64 inputs give float64 outputs,
        other float dtypes float32. Differentiable in ``embeddings`` and ``log_precisions``.
    """
    check_tensor("embeddings", embeddings, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("log_precisions", log_precisions, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("instance_ids", instance_ids, shape=(None,), dtypes=INDEX_DTYPES)
    check_same_size(
        "N",
        embeddings=embeddings.shape[0],
        log_precisions=log_precisions.shape[0],
        instance_ids=instance_ids.shape[0],
    )
    check_same_device(
        embeddings=embeddings, log_precisions=log_precisions, instance_ids=instance_ids
    )
    if log_precisions.shape[1] > embeddings.shape[1]:
        raise ValueError(
            f"log_precisions must have at most E = {embeddings.shape[1]} columns (one per "
            f"non-free embedding dim), got {log_precisions.shape[1]}"
        )
    check_positive("precision_scale", precision_scale)
    check_positive("free_dim_precision", free_dim_precision)
    num_instances = checked_instance_count(instance_ids, num_instances)
    if resolve_backend(backend, embeddings, log_precisions) == "reference":
        return instance_gaussians_reference(
            embeddings,
            log_precisions,
            instance_ids,
            num_instances,
            precision_scale=precision_scale,
            free_dim_precision=free_dim_precision,
        )
    check_int32_indexable("embeddings", embeddings.numel())
    return instance_gaussians_triton(
        embeddings,
        log_precisions,
        instance_ids.to(torch.int32),
        num_instances,
        precision_scale=precision_scale,
        free_dim_precision=free_dim_precision,
    )
