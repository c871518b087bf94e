"""Greedy seeded clustering of one clip's foreground voxels (official:
SequentialClustering._process, inference/clusterers.py), on the device with a fixed launch
sequence and no host synchronisation.

The official algorithm, on the M foreground voxels of a clip (voxel order kept):

    labels <- -1
    for k in 0 .. max_instances-1:
        A_k  = {i : labels_i == -1}                     (stop if empty: no secondary step)
        s    = argmax_{i in A_k} seediness_i            (lowest index among equal values)
        stop if seediness_s < min_seediness
        c_k, b_k = embeddings_s, precisions_s           (the seed voxel alone, no averaging)
        d_ik = sqrt(sum_e b_ke (x_ie - c_ke)^2)  for i in A_k,   d_ik = 1e8 otherwise
        labels_i <- k  where i in A_k and exp(-d_ik / 2) > prob_threshold
    secondary (only if a cluster exists and A was non-empty):
        for i in A (the mask of the *last executed* iteration: stale after max_instances
        iterations, so the voxels assigned in the last iteration are candidates again):
            j = argmax_k d_ik  (the *farthest* cluster, first k among equal distances)
            labels_i <- j  if exp(-d_ij / 2) > secondary_threshold

Quirks kept by default (reference §4.2, §9 items 1-2) and the options that fix them:
* ``distance_rule="official"``: p = exp(-d/2) with d the square *root* of the Mahalanobis form
  (so p > 0.5 <=> d^2 < (2 ln 2)^2 ~ 1.92); ``"paper"``: p = exp(-d^2/2), as in training.
* ``secondary_rule="official"``: the farthest cluster (``max`` over distances in a variable the
  official code names "min") and the stale mask; ``"nearest"``: the nearest cluster, over the
  voxels still unassigned after the loop (the intended rule).
* The 1e8 sentinel stored for voxels assigned before cluster k never decides anything: a
  secondary candidate was available in every executed iteration (availability only shrinks, and
  the stale mask is the one of the last iteration), so all its distances are real, and every
  other voxel is excluded by the mask. The reference keeps the sentinel to show it.

NaN follows PyTorch, as the official code runs: ``torch.argmax`` ranks NaN above every number
(the first NaN wins), ``NaN < min_seediness`` is false, so a NaN seediness is the next seed and
does not stop the loop; ``max``/``min`` over the stacked distances propagate NaN, so a voxel with
a NaN distance to any cluster gets no secondary label; ``NaN < limit`` is false, so a NaN
distance never assigns. The kernels reduce an int32 key ordered like ``torch.argmax`` orders
float32 (NaN above +inf, -0 equal to +0) instead of the floats, because a float ``max`` drops
NaN on the GPU (``max.f32``) but keeps it in the interpreter: integer keys behave the same on
both.

Every decision is taken on distances, never on probabilities: p > t <=> d < -2 ln t, with the
limit -2 ln t rounded once to float32. Both backends therefore agree bit for bit; against the
official code they can differ only for a voxel whose float32 exp(-d/2) rounds across the
threshold (one ulp). Arithmetic is float32 as in the official code (which asserts float32
embeddings): d^2 accumulates ((x_e - c_e)^2 * b_e) over e = 0, 1, ... in order, d = sqrt
correctly rounded, and the Triton kernels are compiled without fused multiply-adds.

Memory traffic per seed (Triton): one pass reads the 1-byte voxel state of all N voxels and, for
the still-available voxels only, E float32 embeddings and the seediness (the next seed's arg-max
is reduced in the same pass), and writes the state of the newly assigned voxels: at most N * (1
+ 4E + 4) bytes, N * (1 + 0.3 (4E + 4)) at 30 % foreground before any voxel is assigned. A last
pass evaluates the K <= max_instances Gaussians again for the secondary candidates (K*E centres
and bandwidths are a few hundred bytes) instead of carrying a running best through every seed
pass (that would add 2 * 8 bytes per available voxel per seed), and writes the N int64 labels.
No [N, K] buffer, no compaction. The loop is a fixed sequence of 2 + 2 * max_instances launches:
each "select seed" launch reduces the per-block arg-max partials in one program (one tile of up
to 8,192 partials: the 5,760 at OVIS input resolution in one load and one reduction) and writes
a stop flag in device memory that every later launch reads (kernels then exit without touching
memory), so the whole loop can be captured in a CUDA graph.

Layouts: the embeddings and precisions are read through their strides (element (n, e) at
n * stride(0) + e * stride(1), 64-bit offsets), so the row-major [N, E] tensors and the
transposed views of channel-first [E, T, H, W] volumes (``volume.flatten(1).t()``, strides
(1, N), in which each embedding column is read coalesced) are both read in place. A caller
holding channel-first volumes needs no [N, E] copy of them: at OVIS input resolution (N ~ 5.9 M,
E = 4) each copy would read and write 2 * 4 * N * E ~ 0.19 GB before the first seed. Only a float
dtype other than float32 is converted (one copy). With ``free_dim_precision`` the precisions hold
only the P predicted dims (a [P, T, H, W] volume viewed the same way) and the seed launch writes
the constant into the bandwidth of dims P..E-1 itself: no constant [E - P, T, H, W] block and no
concatenation (4 N (E - P) written, then 4 N E read and written: ~0.24 GB at OVIS input
resolution with P = 2). The kernels read the precisions only at the seed voxels (P floats each).

The official code runs 20 iterations each compacting the N x E arrays (read N*E*4 + write), an
arg-max, a distance pass and host syncs, and stacks an [N, K] float32 matrix: at OVIS input
resolution (N ~ 5.9 M, 30 % foreground, 20 seeds) several GB of traffic and 40+ host round trips.
"""

import math
import numbers

import torch
import triton
import triton.language as tl
from torch import nn

from ._backend import resolve_backend
from ._checks import FLOAT_DTYPES, check_same_device, check_same_size, check_tensor

DISTANCE_RULES = ("official", "paper")
SECONDARY_RULES = ("official", "nearest")
# Distance stored by the official code for voxels that were not available when cluster k was
# made (a Mahalanobis distance no real voxel reaches; exp(-1e8/2) = 0).
ASSIGNED_DISTANCE_SENTINEL = 1e8


def distance_limit(probability_threshold: float) -> float:
    """The "distance" below which p > ``probability_threshold``: -2 ln t for both rules.

    ``official``: p = exp(-d/2) > t  <=>  d < -2 ln t (d = square root of the Mahalanobis form).
    ``paper``:    p = exp(-d^2/2) > t <=>  d^2 < -2 ln t, so the "distance" there is d^2.
    """
    return -2.0 * math.log(probability_threshold)


def _voxel_distance_reference(embeddings, centre, bandwidth, distance_rule):
    """[M] float32: d (official) or d^2 (paper) of every voxel to one Gaussian, summed over the
    E dims in order so the Triton kernel can reproduce each rounding."""
    squared = torch.zeros(embeddings.shape[0], dtype=torch.float32, device=embeddings.device)
    for dim in range(embeddings.shape[1]):
        difference = embeddings[:, dim] - centre[dim]  # [M]
        squared = squared + difference * difference * bandwidth[dim]
    return squared.sqrt() if distance_rule == "official" else squared


def greedy_cluster_reference(
    embeddings: torch.Tensor,
    precisions: torch.Tensor,
    seediness: torch.Tensor,
    foreground: torch.Tensor,
    *,
    min_seediness: float,
    prob_threshold: float,
    secondary_threshold: float,
    max_instances: int,
    distance_rule: str,
    secondary_rule: str,
    free_dim_precision: float | None = None,
) -> torch.Tensor:
    """SequentialClustering._process step by step, with its host syncs, on the foreground
    voxels. Arguments as :func:`greedy_cluster`; returns labels [N] int64."""
    num_voxels = embeddings.shape[0]
    device = embeddings.device
    labels = torch.full((num_voxels,), -1, dtype=torch.int64, device=device)
    foreground_index = foreground.nonzero().squeeze(1)  # [M], the official input voxels
    if foreground_index.numel() == 0:
        return labels
    fg_embeddings = embeddings[foreground_index].float()  # [M, E]
    fg_precisions = precisions[foreground_index].float()  # [M, P], P = E without free dims
    if free_dim_precision is not None:
        # the official full precisions: dims P..E-1 filled with the constant (in float32)
        free = fg_precisions.new_full(
            (foreground_index.numel(), embeddings.shape[1] - precisions.shape[1]),
            free_dim_precision,
        )  # [M, E - P]
        fg_precisions = torch.cat([fg_precisions, free], dim=1)  # [M, E]
    fg_seediness = seediness[foreground_index].float()  # [M]
    fg_labels = torch.full_like(foreground_index, -1)  # [M]

    def float32_scalar(value):
        return torch.tensor(value, dtype=torch.float32, device=device)

    min_seed = float32_scalar(min_seediness)
    primary_limit = float32_scalar(distance_limit(prob_threshold))
    secondary_limit = float32_scalar(distance_limit(secondary_threshold))
    farthest = secondary_rule == "official"
    # Running best over clusters of the stacked [M, K] distances (max: farthest, min: nearest);
    # strict comparisons keep the first k among equal distances (and the first NaN), as
    # torch.max(dim=1) does.
    best_distance = best_cluster = None
    run_secondary = False
    available = fg_labels == -1  # [M]
    for cluster in range(max_instances):
        available = fg_labels == -1
        available_index = available.nonzero().squeeze(1)  # [A]
        if available_index.numel() == 0:
            run_secondary = False
            break
        # first of equal maxima; NaN ranks above every number and does not stop the loop
        seed = available_index[fg_seediness[available_index].argmax()]
        if fg_seediness[seed] < min_seed:
            run_secondary = cluster > 0
            break
        run_secondary = True
        distance = _voxel_distance_reference(
            fg_embeddings, fg_embeddings[seed], fg_precisions[seed], distance_rule
        )  # [M]
        distance = torch.where(available, distance, float32_scalar(ASSIGNED_DISTANCE_SENTINEL))
        if best_distance is None:
            best_distance, best_cluster = distance, torch.zeros_like(fg_labels)
        else:
            # NaN propagates as in torch.max / torch.min over the stacked distances
            better = (distance > best_distance if farthest else distance < best_distance) | (
                distance.isnan() & ~best_distance.isnan()
            )
            best_distance = torch.where(better, distance, best_distance)
            best_cluster = torch.where(better, cluster, best_cluster)
        fg_labels = torch.where(available & (distance < primary_limit), cluster, fg_labels)
    if run_secondary:
        # official: the mask of the last executed iteration (stale after max_instances of them)
        candidates = available if farthest else fg_labels == -1
        accepted = candidates & (best_distance < secondary_limit)
        fg_labels = torch.where(accepted, best_cluster, fg_labels)
    labels[foreground_index] = fg_labels
    return labels


# Voxel states (int8, -2 and -1 are below every cluster index):
_BACKGROUND = -2
_AVAILABLE = -1
# control[4] int32, in device memory: stop flag, clusters made, "stopped because no voxel was
# left" (the official loop then skips the secondary step), unused.
_STOP, _NUM_CLUSTERS, _NONE_LEFT = 0, 1, 2


@triton.jit
def _element_offsets(voxels, dims, stride_n, stride_e):
    # Offsets of elements (n, e) of an [N, E] tensor read through its strides, in 64 bits: N * E
    # of a big clip passes 2^31, and so does e * N, the stride of a transposed volume.
    return tl.cast(voxels, tl.int64) * stride_n + tl.cast(dims, tl.int64) * stride_e


@triton.jit
def _voxel_distance(
    emb_ptr,
    emb_stride_n,
    emb_stride_e,
    n_offs,
    mask,
    centres_ptr,
    bandwidths_ptr,
    cluster,
    E: tl.constexpr,
    OFFICIAL_DISTANCE: tl.constexpr,
):
    # d (official) or d^2 (paper) of BLOCK voxels to Gaussian `cluster`; the E terms are added
    # in order, one column at a time, to round exactly as the reference does.
    squared = tl.zeros(n_offs.shape, dtype=tl.float32)
    for dim in tl.static_range(E):
        offsets = _element_offsets(n_offs, dim, emb_stride_n, emb_stride_e)
        x = tl.load(emb_ptr + offsets, mask=mask, other=0.0)
        centre = tl.load(centres_ptr + cluster * E + dim)
        bandwidth = tl.load(bandwidths_ptr + cluster * E + dim)
        difference = x - centre
        squared = squared + difference * difference * bandwidth
    if OFFICIAL_DISTANCE:
        return tl.sqrt_rn(squared)
    return squared


# Seediness keys (constexpr: read inside the kernels)
_NO_KEY = tl.constexpr(-(2**31))  # below the key of every float32, -inf included: "no voxel"
_NAN_KEY = tl.constexpr(2**31 - 1)  # above the key of +inf


def seediness_order_key(value: float) -> int:
    """The int32 key of ``value`` rounded to float32, under torch.argmax's order (see
    :func:`_order_key`); a NaN threshold gives the lowest key, as ``s < NaN`` never stops."""
    value = float(value)
    if math.isnan(value):
        return _NO_KEY.value
    bits = int(torch.tensor(value + 0.0, dtype=torch.float32).view(torch.int32))  # -0 -> +0
    return bits ^ 0x7FFFFFFF if bits < 0 else bits


@triton.jit
def _order_key(values):
    # float32 -> int32 with the order torch.argmax uses: a float's bits order positive values
    # as integers; negative values (sign bit set, negative as int32) are reversed by flipping
    # the magnitude bits; -0 is made +0 first (they compare equal) and every NaN is the largest.
    values = tl.where(values == 0.0, 0.0, values)
    bits = values.to(tl.int32, bitcast=True)
    keys = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return tl.where(values != values, _NAN_KEY, keys)


@triton.jit
def _block_argmax(seediness, available, n_offs, N):
    # Largest seediness key among available voxels and the lowest index holding it (torch's
    # argmax: the first NaN, else the first of equal maxima); (_NO_KEY, N) for a block without
    # available voxels. Integer reductions: no NaN handling differs between GPU and interpreter.
    keys = tl.where(available, _order_key(seediness), _NO_KEY)
    best = tl.max(keys, axis=0)
    index = tl.min(tl.where(available & (keys == best), n_offs, N), axis=0)
    return best, index


@triton.jit
def _greedy_cluster_init_kernel(
    foreground_ptr,  # [N] uint8
    seediness_ptr,  # [N] float32
    state_ptr,  # [N] int8 voxel state (written)
    part_key_ptr,  # [P] int32 per-block max seediness key
    part_index_ptr,  # [P] int32 per-block arg-max
    N,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    n_offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_range = n_offs < N
    foreground = tl.load(foreground_ptr + n_offs, mask=in_range, other=0) != 0
    tl.store(state_ptr + n_offs, tl.where(foreground, -1, -2).to(tl.int8), mask=in_range)
    seediness = tl.load(seediness_ptr + n_offs, mask=foreground, other=0.0)
    best, index = _block_argmax(seediness, foreground, n_offs, N)
    tl.store(part_key_ptr + pid, best)
    tl.store(part_index_ptr + pid, index)


@triton.jit
def _partials_argmax(part_key_ptr, part_index_ptr, start, P, N, running, BLOCK_P: tl.constexpr):
    p_offs = start + tl.arange(0, BLOCK_P)
    p_mask = (p_offs < P) & running
    keys = tl.load(part_key_ptr + p_offs, mask=p_mask, other=_NO_KEY)
    indices = tl.load(part_index_ptr + p_offs, mask=p_mask, other=N)
    best = tl.max(keys, axis=0)
    return best, tl.min(tl.where(keys == best, indices, N), axis=0)


@triton.jit
def _greedy_cluster_select_seed_kernel(
    part_key_ptr,  # [P] int32
    part_index_ptr,  # [P] int32
    emb_ptr,  # [N, E] float32, element (n, e) at n * emb_stride_n + e * emb_stride_e
    prec_ptr,  # [N, PREDICTED_DIMS] float32, likewise through prec_stride_n, prec_stride_e
    centres_ptr,  # [max_instances, E] float32 (row num_clusters written)
    bandwidths_ptr,  # [max_instances, E] float32 (row num_clusters written)
    control_ptr,  # [4] int32
    emb_stride_n,
    emb_stride_e,
    prec_stride_n,
    prec_stride_e,
    P,
    N,
    min_seediness_key,
    free_dim_precision,  # float32 bandwidth of dims PREDICTED_DIMS..E-1
    E: tl.constexpr,
    PREDICTED_DIMS: tl.constexpr,
    E_PAD: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    running = tl.load(control_ptr + 0) == 0
    num_clusters = tl.load(control_ptr + 1)
    best, index = _partials_argmax(part_key_ptr, part_index_ptr, 0, P, N, running, BLOCK_P)
    for start in range(BLOCK_P, P, BLOCK_P):  # in order: ties keep the lowest voxel index
        chunk_best, chunk_index = _partials_argmax(
            part_key_ptr, part_index_ptr, start, P, N, running, BLOCK_P
        )
        take = (chunk_best > best) | ((chunk_best == best) & (chunk_index < index))
        best = tl.where(take, chunk_best, best)
        index = tl.where(take, chunk_index, index)
    found = index < N
    # official `seediness < min_seediness` stops; keys order like floats, NaN's key is largest
    new_seed = running & found & (best >= min_seediness_key)
    tl.store(control_ptr + 0, 1, mask=running & (new_seed == 0))
    tl.store(control_ptr + 2, 1, mask=running & (index >= N))
    d_offs = tl.arange(0, E_PAD)
    d_mask = (d_offs < E) & new_seed
    predicted = d_offs < PREDICTED_DIMS
    seed = tl.where(new_seed, index, 0)
    centre = tl.load(
        emb_ptr + _element_offsets(seed, d_offs, emb_stride_n, emb_stride_e),
        mask=d_mask,
        other=0.0,
    )
    bandwidth = tl.load(
        prec_ptr + _element_offsets(seed, d_offs, prec_stride_n, prec_stride_e),
        mask=d_mask & predicted,
        other=0.0,
    )
    bandwidth = tl.where(predicted, bandwidth, free_dim_precision)
    tl.store(centres_ptr + num_clusters * E + d_offs, centre, mask=d_mask)
    tl.store(bandwidths_ptr + num_clusters * E + d_offs, bandwidth, mask=d_mask)
    tl.store(control_ptr + 1, num_clusters + 1, mask=new_seed)


@triton.jit
def _greedy_cluster_assign_kernel(
    emb_ptr,  # [N, E] float32, element (n, e) at n * emb_stride_n + e * emb_stride_e
    seediness_ptr,  # [N] float32
    state_ptr,  # [N] int8 (newly assigned voxels written)
    centres_ptr,  # [max_instances, E] float32
    bandwidths_ptr,  # [max_instances, E] float32
    control_ptr,  # [4] int32
    part_key_ptr,  # [P] int32 (written: next seed's partial arg-max key)
    part_index_ptr,  # [P] int32
    emb_stride_n,
    emb_stride_e,
    N,
    primary_limit,
    E: tl.constexpr,
    OFFICIAL_DISTANCE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    running = tl.load(control_ptr + 0) == 0
    cluster = tl.maximum(tl.load(control_ptr + 1) - 1, 0)  # clamped: read even when stopped
    n_offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_range = (n_offs < N) & running
    state = tl.load(state_ptr + n_offs, mask=in_range, other=-2)
    available = state == -1
    distance = _voxel_distance(
        emb_ptr,
        emb_stride_n,
        emb_stride_e,
        n_offs,
        available,
        centres_ptr,
        bandwidths_ptr,
        cluster,
        E,
        OFFICIAL_DISTANCE,
    )
    assigned = available & (distance < primary_limit)
    tl.store(state_ptr + n_offs, tl.zeros((BLOCK,), tl.int8) + cluster.to(tl.int8), mask=assigned)
    still_available = available & (assigned == 0)
    seediness = tl.load(seediness_ptr + n_offs, mask=still_available, other=0.0)
    best, index = _block_argmax(seediness, still_available, n_offs, N)
    tl.store(part_key_ptr + pid, best, mask=running)
    tl.store(part_index_ptr + pid, index, mask=running)


@triton.jit
def _greedy_cluster_finalize_kernel(
    emb_ptr,  # [N, E] float32, element (n, e) at n * emb_stride_n + e * emb_stride_e
    state_ptr,  # [N] int8
    centres_ptr,  # [max_instances, E] float32
    bandwidths_ptr,  # [max_instances, E] float32
    control_ptr,  # [4] int32
    labels_ptr,  # [N] int64 (written)
    emb_stride_n,
    emb_stride_e,
    N,
    max_instances,
    secondary_limit,
    E: tl.constexpr,
    OFFICIAL_DISTANCE: tl.constexpr,
    FARTHEST: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    completed = tl.load(control_ptr + 0) == 0  # the loop ran all max_instances iterations
    num_clusters = tl.load(control_ptr + 1)
    run_secondary = (num_clusters > 0) & (tl.load(control_ptr + 2) == 0)
    n_offs = pid * BLOCK + tl.arange(0, BLOCK)
    in_range = n_offs < N
    state = tl.load(state_ptr + n_offs, mask=in_range, other=-2).to(tl.int32)
    labels = tl.where(state >= 0, state, -1)
    candidates = in_range & run_secondary & (state == -1)
    if FARTHEST:
        # official stale mask: after max_instances iterations the voxels of the last cluster
        # are offered again; the farthest cluster wins
        candidates = candidates | (
            in_range & run_secondary & completed & (state == num_clusters - 1)
        )
        best_distance = tl.full((BLOCK,), float("-inf"), tl.float32)
    else:
        best_distance = tl.full((BLOCK,), float("inf"), tl.float32)
    best_cluster = tl.zeros((BLOCK,), dtype=tl.int32)
    for cluster in range(0, max_instances):
        active = candidates & (cluster < num_clusters)
        distance = _voxel_distance(
            emb_ptr,
            emb_stride_n,
            emb_stride_e,
            n_offs,
            active,
            centres_ptr,
            bandwidths_ptr,
            cluster,
            E,
            OFFICIAL_DISTANCE,
        )
        # strict: first cluster among ties; a NaN distance sticks (torch.max/min propagate it)
        # and then fails the limit below
        if FARTHEST:
            better = distance > best_distance
        else:
            better = distance < best_distance
        better = active & (better | ((distance != distance) & (best_distance == best_distance)))
        best_distance = tl.where(better, distance, best_distance)
        best_cluster = tl.where(better, cluster, best_cluster)
    accepted = candidates & (best_distance < secondary_limit)
    labels = tl.where(accepted, best_cluster, labels)
    tl.store(labels_ptr + n_offs, labels.to(tl.int64), mask=in_range)


_BLOCK = 1024
# Seed selection reduces all P = N / 1024 partials in one tile up to this many (5,760 at OVIS
# input resolution: one load, one reduction, instead of a serial walk over chunks); 8 warps
# keep it at 32 partials per thread.
_BLOCK_P = 8192
_SELECT_SEED_WARPS = 8
# Triton launch option: no fused multiply-adds, so each product and sum rounds like PyTorch's.
_EXACT_ROUNDING = dict(enable_fp_fusion=False)


def _greedy_cluster_triton(
    embeddings,
    precisions,
    seediness,
    foreground,
    *,
    min_seediness,
    prob_threshold,
    secondary_threshold,
    max_instances,
    distance_rule,
    secondary_rule,
    free_dim_precision,
):
    num_voxels, num_dims = embeddings.shape
    device = embeddings.device
    # Read in place through their strides whatever the layout (row-major, a transposed
    # channel-first volume, a slice); only another float dtype is converted, once.
    embeddings = embeddings.float()
    precisions = precisions.float()
    seediness = seediness.float().contiguous()
    foreground = foreground.contiguous().view(torch.uint8)
    labels = torch.empty(num_voxels, dtype=torch.int64, device=device)
    if num_voxels == 0:
        return labels
    num_blocks = triton.cdiv(num_voxels, _BLOCK)
    state = torch.empty(num_voxels, dtype=torch.int8, device=device)
    part_key = torch.empty(num_blocks, dtype=torch.int32, device=device)
    part_index = torch.empty(num_blocks, dtype=torch.int32, device=device)
    # zeros: rows of clusters never made are read (and masked out) by the finalize pass
    centres = torch.zeros(max(max_instances, 1), num_dims, dtype=torch.float32, device=device)
    bandwidths = torch.zeros_like(centres)
    control = torch.zeros(4, dtype=torch.int32, device=device)
    official_distance = distance_rule == "official"
    grid = (num_blocks,)
    _greedy_cluster_init_kernel[grid](
        foreground, seediness, state, part_key, part_index, num_voxels, BLOCK=_BLOCK
    )
    primary_limit = distance_limit(prob_threshold)
    block_p = min(triton.next_power_of_2(num_blocks), _BLOCK_P)
    # Without free_dim_precision every dim is predicted and the constant is never selected.
    predicted_dims = num_dims if free_dim_precision is None else precisions.shape[1]
    free_bandwidth = 0.0 if free_dim_precision is None else free_dim_precision
    for _ in range(max_instances):  # fixed launches, no sync: the stop flag lives on the device
        _greedy_cluster_select_seed_kernel[(1,)](
            part_key,
            part_index,
            embeddings,
            precisions,
            centres,
            bandwidths,
            control,
            *embeddings.stride(),
            *precisions.stride(),
            num_blocks,
            num_voxels,
            seediness_order_key(min_seediness),
            free_bandwidth,
            E=num_dims,
            PREDICTED_DIMS=predicted_dims,
            E_PAD=triton.next_power_of_2(num_dims),
            BLOCK_P=block_p,
            num_warps=_SELECT_SEED_WARPS,
        )
        _greedy_cluster_assign_kernel[grid](
            embeddings,
            seediness,
            state,
            centres,
            bandwidths,
            control,
            part_key,
            part_index,
            *embeddings.stride(),
            num_voxels,
            primary_limit,
            E=num_dims,
            OFFICIAL_DISTANCE=official_distance,
            BLOCK=_BLOCK,
            **_EXACT_ROUNDING,
        )
    _greedy_cluster_finalize_kernel[grid](
        embeddings,
        state,
        centres,
        bandwidths,
        control,
        labels,
        *embeddings.stride(),
        num_voxels,
        max_instances,
        distance_limit(secondary_threshold),
        E=num_dims,
        OFFICIAL_DISTANCE=official_distance,
        FARTHEST=secondary_rule == "official",
        BLOCK=_BLOCK,
        **_EXACT_ROUNDING,
    )
    return labels


def _check_probability(name, value):
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a probability in (0, 1), got {value}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _float32_bandwidth(name, value):
    """``value`` rounded to float32, as a float32 tensor filled with it holds it (the kernel
    takes it as a float32 argument), checked finite and > 0 after the rounding."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number or None, got {type(value).__name__}")
    rounded = float(torch.tensor(float(value), dtype=torch.float32))
    if not (math.isfinite(rounded) and rounded > 0.0):
        raise ValueError(f"{name} must be finite and > 0 in float32, got {value}")
    return rounded


@torch.compiler.disable
@torch.no_grad()
def greedy_cluster(
    embeddings: torch.Tensor,
    precisions: torch.Tensor,
    seediness: torch.Tensor,
    foreground: torch.Tensor,
    *,
    min_seediness: float = 0.8,
    prob_threshold: float = 0.5,
    secondary_threshold: float = 0.3,
    max_instances: int = 20,
    distance_rule: str = "official",
    secondary_rule: str = "official",
    free_dim_precision: float | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Greedy seeded clustering of one clip (official ``SequentialClustering``), see the module
    docstring for the algorithm, the official quirks kept by default and the fixes offered.

    ``embeddings`` and ``precisions`` are read in place through their strides: row-major
    [N, E] tensors and transposed channel-first volumes (``volume.flatten(1).t()``) alike;
    only a float dtype other than float32 is converted (one copy).

    Args:
        embeddings (Tensor[N, E], float): voxel embeddings of the clip (N = T*H*W).
        precisions (Tensor[N, E] or Tensor[N, P], float, > 0): per-voxel precisions
            (bandwidths), the predicted dims already activated (10 * exp(r)). Without
            ``free_dim_precision``: all E dims, the free dims filled by the caller; with it: the
            P < E predicted dims only. Only the seed voxels' rows are read.
        seediness (Tensor[N], float): seed score per voxel, usually in (0, 1); NaN ranks
            above every number, as in ``torch.argmax`` (module docstring).
        foreground (Tensor[N], bool): voxels taking part; the others get -1.
        min_seediness (float): stop when the best remaining seediness is below it (official 0.8,
            KITTI-MOTS 0.95).
        prob_threshold (float in (0, 1)): primary assignment, p > threshold (official 0.5).
        secondary_threshold (float in (0, 1)): secondary assignment (official 0.3).
        max_instances (int >= 0): seeds per clip (official 20).
        distance_rule (str): ``"official"`` p = exp(-d/2) or ``"paper"`` p = exp(-d^2/2).
        secondary_rule (str): ``"official"`` (farthest cluster, stale mask) or ``"nearest"``.
        free_dim_precision (float > 0 or None): the bandwidth of dims P..E-1 when
            ``precisions`` holds only the first P (official 1 / 0.3^2 for "xyff" embeddings),
            rounded to float32: the labels equal those of the [N, E] precisions filled with it
            (``new_full``). None: ``precisions`` holds all E dims.
        backend (str): ``"auto"``, ``"triton"`` or ``"reference"``.

    Returns:
        Tensor[N] int64: cluster k (0-based, in seed order) or -1 (background or outlier). Seeds
        with equal seediness are taken lowest voxel index first in both backends, so they agree
        exactly. Computed in float32 whatever the input float dtype; no gradient.
    """
    check_tensor("embeddings", embeddings, shape=(None, None), dtypes=FLOAT_DTYPES)
    num_voxels, num_dims = embeddings.shape
    if free_dim_precision is None:
        check_tensor("precisions", precisions, shape=(num_voxels, num_dims), dtypes=FLOAT_DTYPES)
    else:
        free_dim_precision = _float32_bandwidth("free_dim_precision", free_dim_precision)
        check_tensor("precisions", precisions, shape=(num_voxels, None), dtypes=FLOAT_DTYPES)
        if precisions.shape[1] >= num_dims:
            raise ValueError(
                f"precisions must have fewer than E = {num_dims} columns when "
                f"free_dim_precision is given (it fills the rest), got {precisions.shape[1]}"
            )
    check_tensor("seediness", seediness, shape=(None,), dtypes=FLOAT_DTYPES)
    check_tensor("foreground", foreground, shape=(None,), dtypes=(torch.bool,))
    check_same_size(
        "N",
        embeddings=embeddings.shape[0],
        seediness=seediness.shape[0],
        foreground=foreground.shape[0],
    )
    check_same_device(
        embeddings=embeddings, precisions=precisions, seediness=seediness, foreground=foreground
    )
    _check_probability("prob_threshold", prob_threshold)
    _check_probability("secondary_threshold", secondary_threshold)
    if not isinstance(max_instances, int) or not 0 <= max_instances <= 127:
        raise ValueError(f"max_instances must be an int in [0, 127], got {max_instances!r}")
    _check_choice("distance_rule", distance_rule, DISTANCE_RULES)
    _check_choice("secondary_rule", secondary_rule, SECONDARY_RULES)
    if embeddings.shape[0] >= 2**31 - 1:
        raise ValueError(
            f"embeddings must have fewer than 2**31 - 1 voxels, got {embeddings.shape[0]}"
        )
    options = dict(
        min_seediness=float(min_seediness),
        prob_threshold=float(prob_threshold),
        secondary_threshold=float(secondary_threshold),
        max_instances=max_instances,
        distance_rule=distance_rule,
        secondary_rule=secondary_rule,
        free_dim_precision=free_dim_precision,
    )
    if resolve_backend(backend, embeddings, precisions, seediness, foreground) == "reference":
        return greedy_cluster_reference(embeddings, precisions, seediness, foreground, **options)
    return _greedy_cluster_triton(embeddings, precisions, seediness, foreground, **options)


class GreedyCluster(nn.Module):
    """Clustering with fixed hyper-parameters. See :func:`greedy_cluster`."""

    def __init__(
        self,
        *,
        min_seediness: float = 0.8,
        prob_threshold: float = 0.5,
        secondary_threshold: float = 0.3,
        max_instances: int = 20,
        distance_rule: str = "official",
        secondary_rule: str = "official",
        free_dim_precision: float | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.min_seediness = min_seediness
        self.prob_threshold = prob_threshold
        self.secondary_threshold = secondary_threshold
        self.max_instances = max_instances
        self.distance_rule = distance_rule
        self.secondary_rule = secondary_rule
        self.free_dim_precision = free_dim_precision
        self.backend = backend

    def forward(
        self,
        embeddings: torch.Tensor,
        precisions: torch.Tensor,
        seediness: torch.Tensor,
        foreground: torch.Tensor,
    ) -> torch.Tensor:
        return greedy_cluster(
            embeddings,
            precisions,
            seediness,
            foreground,
            min_seediness=self.min_seediness,
            prob_threshold=self.prob_threshold,
            secondary_threshold=self.secondary_threshold,
            max_instances=self.max_instances,
            distance_rule=self.distance_rule,
            secondary_rule=self.secondary_rule,
            free_dim_precision=self.free_dim_precision,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (
            f"min_seediness={self.min_seediness}, prob_threshold={self.prob_threshold}, "
            f"secondary_threshold={self.secondary_threshold}, "
            f"max_instances={self.max_instances}, distance_rule={self.distance_rule!r}, "
            f"secondary_rule={self.secondary_rule!r}, "
            f"free_dim_precision={self.free_dim_precision}, backend={self.backend!r}"
        )
