"""Fused STEm-Seg training losses of one clip (official: modeling/losses/embedding_loss.py:
EmbeddingLoss.forward, compute_prob_map, compute_bandwidth_smoothness_loss; _lovasz.py;
cross_entropy.py: CrossEntropyLoss.forward; model_builder.py: TrainingModel.compute_fg_loss).

Inputs of one clip, flattened over its N = T*H*W stride-4 voxels: embeddings e [N, E], raw
log-precisions r [N, E-F], seediness s [N] in (0, 1) and an instance-id map [N] (k in [0, K),
-1 = no instance) with an optional ignore mask [N]. With S_k the voxels of id k, n_k = |S_k|,
and mu_k, b_k from :func:`instance_gaussians` (mean embedding; mean of s exp(r) with
s = ``precision_scale``, free dims ``free_dim_precision``; the model's numbers, official 10 and
1 / 0.3^2):

    p_k(i)       = exp(-1/2 sum_d b_kd (e_id - mu_kd)^2)        every voxel of the clip
    lovasz_k     = Lovász hinge of the row z_k = 2 p_k - 1 with labels [i in S_k]    (3.1)
    smoothness_k = 1/(n_k (E-F)) sum_{i in S_k, d} (r_id - mean_{S_k} r_d)^2         (3.2)
    seediness_k  = 1/n_k sum_{i in S_k} (s_i - detach(p_k(i)))^2                    (3.3)
    background   = 1/n_bg sum_{i: id_i = -1, not ignored} s_i^2  (ignored voxels stay in n_bg)
    lovasz = mean_k lovasz_k,  smoothness = mean_k smoothness_k,
    seediness = (sum_k seediness_k + background) / (K + 1)

over the instances with n_k > 0. The official weights are 1 (Lovász), 10 (smoothness) and 1
(seediness), applied by :meth:`EmbeddingLossTerms.total` or the caller; across a batch the
official code divides the summed Lovász terms by the batch's instance count, the smoothness by
the batch size and the seediness sum by (instances + 1): the per-instance fields allow that.

Three implementations compute the same function:
* :func:`embedding_loss_reference`: the per-instance Python loop of the official code (gathers,
  [N, E] intermediates per instance, one sort per instance): the benchmark baseline.
* :func:`embedding_loss_batched_reference`: all instances at once in plain PyTorch; holds
  [K, N, E] tensors for autograd. The CPU path of :func:`embedding_loss`.
* the Triton path of :func:`embedding_loss`: :func:`instance_gaussians` (one segmented pass),
  then one kernel writing the hinge errors [K, N] and each voxel's own-instance probability
  (the seediness target) without a [K, N, E] tensor, ``torch.sort`` of the [K, N] errors, the
  Lovász kernels of :mod:`lovasz_hinge` with labels read from the id map (no [K, N] label
  tensor), which also write d lovasz_k / d p_k(i). Backward is the Gaussian-probability
  backward kernel driven by that stored gradient (scaled per row by the upstream gradient),
  then :func:`instance_gaussians`' backward. Smoothness and seediness are O(N (E-F)) segmented
  sums in PyTorch.
  Bytes moved (float32, E = 4): errors kernel reads N*(4E + 4) and writes 4*K*N + 4*N; sort
  ~16 per element per pass; Lovász kernels ~25 per element; backward ~4 per element + 8E per
  voxel. Memory held for backward: one [K, N] float32 tensor (4 bytes per element), against
  about (3E + 4) * 4 bytes per element for the references' autograd graphs.

Official quirks and the choices here (reference section 9, items 4 and 5):
* Lovász ignores the ignore mask: ignored background voxels are negatives of every instance.
  ``exclude_ignored_from_lovasz=False`` (default) keeps that; ``True`` drops voxels that are
  ignored and of no instance from every row (their hinge error is set to -1: sorted last,
  relu 0, so they change neither any prefix count nor the loss: exactly a removal).
* Cross-entropy ignore masking is a no-op in the official code (a scalar times the mask,
  renormalised). :func:`semantic_loss` keeps it by default
  (``exclude_ignored_from_cross_entropy=False``); ``True`` averages over non-ignored voxels.
* Instance-index shift: the official loop pairs the n-th *non-empty* instance's Gaussian with
  ``masks[n]``, so a mask that vanishes in the 1/4 downsampling shifts the Lovász targets of
  every later instance. Here every term is indexed by the id itself: an id with no voxel left
  has n_k = 0 and is skipped in all terms, and every other id keeps its own voxels. For an id
  map without vanished ids (the only case where the official code is right) both agree.
* Overlapping instance masks cannot be expressed by an id map: a voxel has one id. Build the
  map with the precedence your data needs (the official semantic target takes the max id).
* Degenerate clips: no voxel of any instance -> all terms 0 (official: the clip is skipped; a
  zero-instance batch gives 0 * sum of inputs, as here when K = 0). No background voxel -> the
  background term is 0 (official: mean of an empty tensor, NaN). E = F (no predicted
  precisions) -> smoothness 0 (official: NaN).
* Ties in the Lovász sort are broken by voxel index (stable sort), see :mod:`lovasz_hinge`.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    check_index_range,
    check_int32_indexable,
    checked_instance_count,
    check_positive,
    check_same_device,
    check_same_size,
    check_tensor,
    instance_count,
)
from ._launch import accumulation_dtype, block_size_for, ensure_contiguous, row_start
from .gaussian_probability import (
    check_register_dims,
    gaussian_probability_bwd,
    gaussian_probability_reference,
)
from .instance_gaussians import instance_gaussians_reference, instance_gaussians_triton
from .lovasz_hinge import lovasz_hinge_from_errors, lovasz_hinge_reference

# Official TRAINING.LOSSES weights (reference 3.5).
LOVASZ_WEIGHT = 1.0
SMOOTHNESS_WEIGHT = 10.0
SEEDINESS_WEIGHT = 1.0


class EmbeddingLossTerms(NamedTuple):
    lovasz: torch.Tensor  # scalar: mean over non-empty instances
    smoothness: torch.Tensor  # scalar, unweighted (official weight 10)
    seediness: torch.Tensor  # scalar: (sum of instance terms + background) / (instances + 1)
    lovasz_per_instance: torch.Tensor  # [K], 0 for empty ids
    smoothness_per_instance: torch.Tensor  # [K], 0 for empty ids
    seediness_per_instance: torch.Tensor  # [K], 0 for empty ids
    seediness_background: torch.Tensor  # scalar
    num_instances: torch.Tensor  # scalar int64: ids with at least one voxel

    def total(
        self,
        lovasz_weight: float = LOVASZ_WEIGHT,
        smoothness_weight: float = SMOOTHNESS_WEIGHT,
        seediness_weight: float = SEEDINESS_WEIGHT,
    ) -> torch.Tensor:
        """Weighted sum with the official weights (equal to the official loss of a 1-clip batch)."""
        return (
            lovasz_weight * self.lovasz
            + smoothness_weight * self.smoothness
            + seediness_weight * self.seediness
        )


class SemanticLossTerms(NamedTuple):
    cross_entropy: torch.Tensor  # scalar
    foreground: torch.Tensor  # scalar


def _excluded_from_lovasz(instance_ids, ignore_mask, exclude_ignored_from_lovasz):
    """[N] bool: voxels dropped from every Lovász row, or None."""
    if not exclude_ignored_from_lovasz or ignore_mask is None:
        return None
    return ignore_mask & (instance_ids < 0)


def _zero_touching(*tensors):
    """0 * sum of the inputs: keeps every input in the graph when a clip has no instance
    (the official zero-instance case; DDP needs every output to get a gradient)."""
    return sum(t.sum() for t in tensors) * 0.0


def embedding_loss_reference(
    embeddings: torch.Tensor,
    log_precisions: torch.Tensor,
    seediness: torch.Tensor,
    instance_ids: torch.Tensor,
    ignore_mask: torch.Tensor | None = None,
    num_instances: int | None = None,
    *,
    precision_scale: float,
    free_dim_precision: float,
    exclude_ignored_from_lovasz: bool = False,
) -> EmbeddingLossTerms:
    """The official per-instance loop, instance by instance (one gather, one [N, E] probability
    pass and one sort each), with the id map in place of the mask stack. Syncs per instance."""
    dtype = accumulation_dtype(embeddings.dtype, log_precisions.dtype, seediness.dtype)
    embeddings, log_precisions = embeddings.to(dtype), log_precisions.to(dtype)
    seediness = seediness.to(dtype)
    num_dims, num_variance_dims = embeddings.shape[1], log_precisions.shape[1]
    num_instances = instance_count(instance_ids, num_instances)
    excluded = _excluded_from_lovasz(instance_ids, ignore_mask, exclude_ignored_from_lovasz)
    free = torch.full(
        (num_dims - num_variance_dims,), free_dim_precision, dtype=dtype, device=embeddings.device
    )
    zero = embeddings.new_zeros(())
    lovasz, smoothness, seediness_terms = [], [], []
    for k in range(num_instances):
        members = instance_ids == k  # [N]
        if not bool(members.any()):  # a vanished id: skipped in every term
            for terms in (lovasz, smoothness, seediness_terms):
                terms.append(zero)
            continue
        instance_embeddings = embeddings[members]  # [n_k, E]
        instance_log_precisions = log_precisions[members]  # [n_k, E-F]
        mean = instance_embeddings.mean(dim=0)  # [E]
        precision = torch.cat(
            [(precision_scale * instance_log_precisions.exp()).mean(dim=0), free]
        )  # [E]
        prob = torch.exp(-0.5 * ((embeddings - mean).square() * precision).sum(dim=1))  # [N]
        logits = 2.0 * prob - 1.0  # [N]
        kept = slice(None) if excluded is None else ~excluded
        lovasz.append(lovasz_hinge_reference(logits[kept][None], members[kept][None])[0])
        seediness_terms.append(F.mse_loss(seediness[members], prob[members].detach()))
        if num_variance_dims:
            deviation = instance_log_precisions - instance_log_precisions.mean(dim=0)
            smoothness.append(deviation.square().mean())
        else:
            smoothness.append(zero)
    background = instance_ids < 0  # [N]
    num_background = int(background.sum())
    if num_background:
        background_seediness = seediness[background]
        if ignore_mask is not None:
            background_seediness = background_seediness.masked_fill(ignore_mask[background], 0)
        seediness_background = background_seediness.square().mean()
    else:
        seediness_background = zero
    counts = torch.bincount(instance_ids[instance_ids >= 0].long(), minlength=num_instances)
    num_valid = int((counts > 0).sum())
    stack = (lambda terms: torch.stack(terms)) if num_instances else (lambda _: zero.new_zeros(0))
    lovasz, smoothness, seediness_terms = stack(lovasz), stack(smoothness), stack(seediness_terms)
    if num_valid == 0:
        touch = _zero_touching(embeddings, log_precisions, seediness)
        return EmbeddingLossTerms(
            touch, touch, touch, lovasz, smoothness, seediness_terms, zero, counts.new_tensor(0)
        )
    return EmbeddingLossTerms(
        lovasz.sum() / num_valid,
        smoothness.sum() / num_valid,
        (seediness_terms.sum() + seediness_background) / (num_valid + 1),
        lovasz,
        smoothness,
        seediness_terms,
        seediness_background,
        counts.new_tensor(num_valid),
    )


def _combine_terms(
    lovasz_per_instance,
    own_probability,
    log_precisions,
    seediness,
    instance_ids,
    ignore_mask,
    counts,
    dtype,
):
    """Smoothness, seediness and the means over instances, batched and without host syncs.

    ``own_probability`` [N] is p_{id_i}(i) (detached; any value where id_i = -1)."""
    num_instances = counts.shape[0]
    num_variance_dims = log_precisions.shape[1]
    member = instance_ids >= 0  # [N]
    safe_ids = instance_ids.clamp(min=0).long()  # [N]
    valid = counts > 0  # [K]
    num_valid = valid.sum()
    denominators = counts.clamp(min=1).to(dtype)  # [K]
    zeros = seediness.new_zeros
    seediness = seediness.to(dtype)

    log_precisions = log_precisions.to(dtype)
    if num_instances and num_variance_dims:  # K = 0: safe_ids would index an empty table
        sums = zeros(num_instances, num_variance_dims, dtype=dtype).index_add(
            0, safe_ids, torch.where(member[:, None], log_precisions, 0.0)
        )  # [K, E-F]
        deviation = log_precisions - (sums / denominators[:, None])[safe_ids]  # [N, E-F]
        squared = torch.where(member, deviation.square().sum(dim=1), 0.0)  # [N]
        smoothness = zeros(num_instances, dtype=dtype).index_add(0, safe_ids, squared) / (
            denominators * num_variance_dims
        )  # [K]
    else:
        smoothness = zeros(num_instances, dtype=dtype)

    squared_error = torch.where(member, (seediness - own_probability.detach()).square(), 0.0)
    seediness_instance = zeros(num_instances, dtype=dtype)
    if num_instances:
        seediness_instance = seediness_instance.index_add(0, safe_ids, squared_error)
    seediness_instance = seediness_instance / denominators  # [K]
    background = ~member
    counted = background if ignore_mask is None else background & ~ignore_mask
    seediness_background = torch.where(counted, seediness.square(), 0.0).sum() / (
        background.sum().clamp(min=1).to(dtype)
    )

    lovasz_per_instance = torch.where(valid, lovasz_per_instance, 0.0)
    smoothness = torch.where(valid, smoothness, 0.0)
    seediness_instance = torch.where(valid, seediness_instance, 0.0)
    mean_denominator = num_valid.clamp(min=1).to(dtype)
    has_instances = (num_valid > 0).to(dtype)
    return EmbeddingLossTerms(
        lovasz_per_instance.sum() / mean_denominator,
        smoothness.sum() / mean_denominator,
        (seediness_instance.sum() + has_instances * seediness_background) / (num_valid + 1),
        lovasz_per_instance,
        smoothness,
        seediness_instance,
        has_instances * seediness_background,
        num_valid,
    )


def _with_zero_instances(terms, *inputs):
    touch = _zero_touching(*inputs)
    return terms._replace(
        lovasz=terms.lovasz + touch,
        smoothness=terms.smoothness + touch,
        seediness=terms.seediness + touch,
    )


def embedding_loss_batched_reference(
    embeddings: torch.Tensor,
    log_precisions: torch.Tensor,
    seediness: torch.Tensor,
    instance_ids: torch.Tensor,
    ignore_mask: torch.Tensor | None = None,
    num_instances: int | None = None,
    *,
    precision_scale: float,
    free_dim_precision: float,
    exclude_ignored_from_lovasz: bool = False,
) -> EmbeddingLossTerms:
    """All instances at once in plain PyTorch ([K, N, E] intermediates, one batched sort)."""
    dtype = accumulation_dtype(embeddings.dtype, log_precisions.dtype, seediness.dtype)
    num_instances = instance_count(instance_ids, num_instances)
    means, precisions, counts = instance_gaussians_reference(
        embeddings.to(dtype),
        log_precisions.to(dtype),
        instance_ids,
        num_instances,
        precision_scale=precision_scale,
        free_dim_precision=free_dim_precision,
    )
    prob = gaussian_probability_reference(embeddings.to(dtype), means, precisions)  # [K, N]
    logits = 2.0 * prob - 1.0  # [K, N]
    instance_range = torch.arange(num_instances, device=instance_ids.device)
    labels = instance_ids[None, :] == instance_range[:, None]  # [K, N]
    excluded = _excluded_from_lovasz(instance_ids, ignore_mask, exclude_ignored_from_lovasz)
    if excluded is not None:
        # Logit -2 on a negative gives hinge error -1: sorted last, no loss, no gradient.
        logits = torch.where(excluded[None, :], -2.0, logits)
    lovasz = lovasz_hinge_reference(logits, labels)  # [K]
    safe_ids = instance_ids.clamp(min=0).long()
    own_probability = (
        prob.detach().gather(0, safe_ids[None, :])[0]
        if num_instances
        else (prob.new_zeros(instance_ids.shape))
    )  # [N]
    terms = _combine_terms(
        lovasz, own_probability, log_precisions, seediness, instance_ids, ignore_mask, counts, dtype
    )
    if num_instances == 0:
        terms = _with_zero_instances(terms, embeddings, log_precisions, seediness)
    return terms


@triton.jit
def _embedding_loss_errors_kernel(
    emb_ptr,  # [N, E] embeddings
    means_ptr,  # [K, E]
    prec_ptr,  # [K, E]
    ids_ptr,  # [N] int32 instance ids, -1 = none
    excluded_ptr,  # [N] uint8, 1 = dropped from every Lovász row (if HAS_EXCLUDED)
    errors_ptr,  # [K, N] output: hinge errors 1 - (2p - 1) sign (-1 where excluded)
    own_prob_ptr,  # [N] output: p_{id_i}(i), 0 where id_i = -1
    N,
    K,
    E: tl.constexpr,
    HAS_EXCLUDED: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    E_PAD: tl.constexpr,
):
    pid_k = tl.program_id(1)
    n_offs = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    k_offs = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    d_offs = tl.arange(0, E_PAD)
    n_mask, k_mask, d_mask = n_offs < N, k_offs < K, d_offs < E
    acc_dtype = errors_ptr.dtype.element_ty
    emb = tl.load(
        emb_ptr + n_offs[:, None] * E + d_offs[None, :],
        mask=n_mask[:, None] & d_mask[None, :],
        other=0.0,
    ).to(acc_dtype)
    kd_mask = k_mask[:, None] & d_mask[None, :]
    means = tl.load(means_ptr + k_offs[:, None] * E + d_offs[None, :], mask=kd_mask, other=0.0)
    prec = tl.load(prec_ptr + k_offs[:, None] * E + d_offs[None, :], mask=kd_mask, other=0.0)
    difference = emb[None, :, :] - means.to(acc_dtype)[:, None, :]  # [BLOCK_K, BLOCK_N, E_PAD]
    distance = tl.sum(difference * difference * prec.to(acc_dtype)[:, None, :], axis=2)
    prob = tl.exp(-0.5 * distance)  # [BLOCK_K, BLOCK_N]
    ids = tl.load(ids_ptr + n_offs, mask=n_mask, other=-1)
    member = ids[None, :] == k_offs[:, None]
    sign = tl.where(member, 1.0, -1.0)
    errors = 1.0 - (2.0 * prob - 1.0) * sign  # as the official logits 2p - 1, then the hinge
    if HAS_EXCLUDED:
        excluded = tl.load(excluded_ptr + n_offs, mask=n_mask, other=0) != 0
        errors = tl.where(excluded[None, :], -1.0, errors)
    tl.store(
        errors_ptr + row_start(k_offs, N)[:, None] + n_offs[None, :],
        errors.to(acc_dtype),
        mask=k_mask[:, None] & n_mask[None, :],
    )
    # Each voxel's own probability comes from the one K-block holding its id; block 0 writes
    # the zeros of voxels of no instance.
    in_block = (ids >= pid_k * BLOCK_K) & (ids < pid_k * BLOCK_K + BLOCK_K)
    own = tl.sum(tl.where(member, prob, 0.0), axis=0)
    tl.store(
        own_prob_ptr + n_offs,
        tl.where(in_block, own, 0.0).to(acc_dtype),
        mask=n_mask & (in_block | ((ids < 0) & (pid_k == 0))),
    )


_BLOCK_N = 128
_MAX_BLOCK_K = 16


class _EmbeddingLovaszFunction(torch.autograd.Function):
    """(embeddings, means, precisions) -> (lovasz_k [K], own probability [N], not
    differentiable). Holds the [K, N] gradient d lovasz_k / d p_k(i) for backward."""

    @staticmethod
    @ensure_contiguous
    def forward(ctx, embeddings, means, precisions, instance_ids, excluded):
        num_voxels, num_dims = embeddings.shape
        num_instances = means.shape[0]
        dtype = accumulation_dtype(embeddings.dtype, means.dtype, precisions.dtype)
        errors = torch.empty(num_instances, num_voxels, dtype=dtype, device=embeddings.device)
        own_probability = torch.empty(num_voxels, dtype=dtype, device=embeddings.device)
        if num_voxels:
            block_k = block_size_for(num_instances, minimum=1, maximum=_MAX_BLOCK_K)
            grid = (triton.cdiv(num_voxels, _BLOCK_N), max(1, triton.cdiv(num_instances, block_k)))
            _embedding_loss_errors_kernel[grid](
                embeddings,
                means,
                precisions,
                instance_ids,
                instance_ids if excluded is None else excluded,
                errors,
                own_probability,
                num_voxels,
                num_instances,
                E=num_dims,
                HAS_EXCLUDED=excluded is not None,
                BLOCK_N=_BLOCK_N,
                BLOCK_K=block_k,
                E_PAD=triton.next_power_of_2(num_dims),
            )
        # errors = 1 - (2p - 1) sign: d error / d p = -2 sign, hence input_scale 2.
        lovasz, grad_probability = lovasz_hinge_from_errors(
            errors, instance_ids=instance_ids, input_scale=2.0
        )
        ctx.save_for_backward(embeddings, means, precisions, grad_probability)
        ctx.mark_non_differentiable(own_probability)
        return lovasz, own_probability

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_lovasz, _grad_own_probability):
        embeddings, means, precisions, grad_probability = ctx.saved_tensors
        grad_embeddings, grad_means, grad_precisions = gaussian_probability_bwd(
            embeddings, means, precisions, grad_probability, row_scale=grad_lovasz.contiguous()
        )
        # embeddings, means, precisions, instance_ids, excluded
        return (
            grad_embeddings.to(embeddings.dtype),
            grad_means.to(means.dtype),
            grad_precisions.to(precisions.dtype),
            None,
            None,
        )


def _embedding_loss_triton(
    embeddings,
    log_precisions,
    seediness,
    instance_ids,
    ignore_mask,
    num_instances,
    precision_scale,
    free_dim_precision,
    exclude_ignored_from_lovasz,
):
    dtype = accumulation_dtype(embeddings.dtype, log_precisions.dtype, seediness.dtype)
    ids32 = instance_ids.to(torch.int32)
    # Unchecked: the public op would re-check the ids (one more host sync).
    means, precisions, counts = instance_gaussians_triton(
        embeddings,
        log_precisions,
        ids32,
        num_instances,
        precision_scale=precision_scale,
        free_dim_precision=free_dim_precision,
    )
    excluded = _excluded_from_lovasz(instance_ids, ignore_mask, exclude_ignored_from_lovasz)
    lovasz, own_probability = _EmbeddingLovaszFunction.apply(
        embeddings, means, precisions, ids32, None if excluded is None else excluded.to(torch.uint8)
    )
    terms = _combine_terms(
        lovasz.to(dtype),
        own_probability,
        log_precisions,
        seediness,
        instance_ids,
        ignore_mask,
        counts,
        dtype,
    )
    if num_instances == 0:
        terms = _with_zero_instances(terms, embeddings, log_precisions, seediness)
    return terms


def _check_clip(embeddings, log_precisions, seediness, instance_ids, ignore_mask, num_instances):
    check_tensor("embeddings", embeddings, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("log_precisions", log_precisions, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("seediness", seediness, shape=(None,), dtypes=FLOAT_DTYPES)
    check_tensor("instance_ids", instance_ids, shape=(None,), dtypes=INDEX_DTYPES)
    sizes = dict(
        embeddings=embeddings.shape[0],
        log_precisions=log_precisions.shape[0],
        seediness=seediness.shape[0],
        instance_ids=instance_ids.shape[0],
    )
    devices = dict(
        embeddings=embeddings,
        log_precisions=log_precisions,
        seediness=seediness,
        instance_ids=instance_ids,
    )
    if ignore_mask is not None:
        check_tensor("ignore_mask", ignore_mask, shape=(None,), dtypes=(torch.bool,))
        sizes["ignore_mask"], devices["ignore_mask"] = ignore_mask.shape[0], ignore_mask
    check_same_size("N", **sizes)
    check_same_device(**devices)
    if log_precisions.shape[1] > embeddings.shape[1]:
        raise ValueError(
            f"log_precisions must have at most E = {embeddings.shape[1]} columns (one per "
            f"non-free embedding dim), got {log_precisions.shape[1]}"
        )
    num_instances = checked_instance_count(instance_ids, num_instances)
    return num_instances


def embedding_loss(
    embeddings: torch.Tensor,
    log_precisions: torch.Tensor,
    seediness: torch.Tensor,
    instance_ids: torch.Tensor,
    ignore_mask: torch.Tensor | None = None,
    num_instances: int | None = None,
    *,
    precision_scale: float,
    free_dim_precision: float,
    exclude_ignored_from_lovasz: bool = False,
    backend: str = "auto",
) -> EmbeddingLossTerms:
    """Lovász, variance-smoothness and seediness losses of one clip (module docstring).

    Args:
        embeddings (Tensor[N, E], float): voxel embeddings of the clip (N = T*H*W).
        log_precisions (Tensor[N, E-F], float): raw log-precisions (precision = s exp(r)).
        seediness (Tensor[N], float in (0, 1)): predicted seediness.
        instance_ids (Tensor[N], integer): instance per voxel in [0, K), -1 for none.
        ignore_mask (Tensor[N], bool, optional): True where the annotation is to be ignored.
        num_instances (int, optional): K; default ``instance_ids.max() + 1`` (syncs).
        precision_scale (float > 0): s (the model's ``PRECISION_SCALE``, official 10).
        free_dim_precision (float > 0): precision of the free dims (the model's
            ``FREE_DIM_PRECISION``, official 1 / 0.3^2).
        exclude_ignored_from_lovasz (bool): default False = official: ignored background
            voxels are negatives of every instance; True drops them from the Lovász rows.
        backend (str): ``"auto"``, ``"triton"`` or ``"reference"`` (the batched reference).

    Returns:
        EmbeddingLossTerms: scalars ``lovasz``, ``smoothness`` (unweighted), ``seediness``;
        per-instance ``lovasz_per_instance``, ``smoothness_per_instance``,
        ``seediness_per_instance`` ([K], 0 for ids without voxels); ``seediness_background``;
        ``num_instances`` (ids with voxels). float64 for float64 inputs, else float32.
        ``terms.total()`` applies the official weights 1 / 10 / 1. Differentiable in
        embeddings, log_precisions and seediness.
    """
    num_instances = _check_clip(
        embeddings, log_precisions, seediness, instance_ids, ignore_mask, num_instances
    )
    check_positive("precision_scale", precision_scale)
    check_positive("free_dim_precision", free_dim_precision)
    if resolve_backend(backend, embeddings, log_precisions, seediness) == "reference":
        return embedding_loss_batched_reference(
            embeddings,
            log_precisions,
            seediness,
            instance_ids,
            ignore_mask,
            num_instances,
            precision_scale=precision_scale,
            free_dim_precision=free_dim_precision,
            exclude_ignored_from_lovasz=exclude_ignored_from_lovasz,
        )
    check_int32_indexable("embeddings", embeddings.numel())
    check_register_dims(embeddings.shape[1])
    return _embedding_loss_triton(
        embeddings,
        log_precisions,
        seediness,
        instance_ids,
        ignore_mask,
        num_instances,
        precision_scale,
        free_dim_precision,
        exclude_ignored_from_lovasz,
    )


def semantic_loss(
    class_logits: torch.Tensor,
    foreground_logits: torch.Tensor,
    semantic_targets: torch.Tensor,
    ignore_mask: torch.Tensor | None = None,
    *,
    exclude_ignored_from_cross_entropy: bool = False,
) -> SemanticLossTerms:
    """Semantic cross-entropy and foreground BCE of one clip (reference 3.4), plain PyTorch.

    Official: ``CrossEntropyLoss.forward`` averages F.cross_entropy over *all* voxels (its
    ignore masking multiplies the scalar mean by the mask and renormalises: a no-op), and
    ``TrainingModel.compute_fg_loss`` averages the BCE of the foreground logit against
    (target > 0) over the non-ignored voxels. Each is cheap (one pass over N*C logits).

    Args:
        class_logits (Tensor[N, C], float): class logits, class 0 = background.
        foreground_logits (Tensor[N], float): class-agnostic foreground logit.
        semantic_targets (Tensor[N], integer in [0, C)): category per voxel, 0 = background.
        ignore_mask (Tensor[N], bool, optional): True where the annotation is ignored.
        exclude_ignored_from_cross_entropy (bool): default False = official (ignored voxels
            count in the cross-entropy); True averages it over non-ignored voxels only.

    Returns:
        SemanticLossTerms(cross_entropy, foreground): float32 scalars (float64 for float64
        logits). With every voxel ignored the masked means are 0 (official: 0 / 0 = NaN).
    """
    check_tensor("class_logits", class_logits, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("foreground_logits", foreground_logits, shape=(None,), dtypes=FLOAT_DTYPES)
    check_tensor("semantic_targets", semantic_targets, shape=(None,), dtypes=INDEX_DTYPES)
    sizes = dict(
        class_logits=class_logits.shape[0],
        foreground_logits=foreground_logits.shape[0],
        semantic_targets=semantic_targets.shape[0],
    )
    if ignore_mask is not None:
        check_tensor("ignore_mask", ignore_mask, shape=(None,), dtypes=(torch.bool,))
        sizes["ignore_mask"] = ignore_mask.shape[0]
    check_same_size("N", **sizes)
    check_index_range("semantic_targets", semantic_targets, 0, class_logits.shape[1])
    dtype = accumulation_dtype(class_logits.dtype, foreground_logits.dtype)
    targets = semantic_targets.long()
    kept = (
        torch.ones_like(targets, dtype=torch.bool) if ignore_mask is None else ~ignore_mask
    )  # [N]
    num_kept = kept.sum().clamp(min=1).to(dtype)
    per_voxel_ce = F.cross_entropy(class_logits.to(dtype), targets, reduction="none")  # [N]
    if exclude_ignored_from_cross_entropy:
        cross_entropy = torch.where(kept, per_voxel_ce, 0.0).sum() / num_kept
    else:
        cross_entropy = per_voxel_ce.mean()
    per_voxel_bce = F.binary_cross_entropy_with_logits(
        foreground_logits.to(dtype), (targets > 0).to(dtype), reduction="none"
    )  # [N]
    foreground = torch.where(kept, per_voxel_bce, 0.0).sum() / num_kept
    return SemanticLossTerms(cross_entropy, foreground)
