"""Binary flat Lovász hinge, one loss per row (official: modeling/losses/_lovasz.py:
lovasz_hinge_flat and lovasz_grad, Berman et al. 2018, "The Lovász-Softmax loss").

For a row of N logits x_i with binary labels y_i (nonzero = positive), sign_i = 2 y_i - 1:

    errors_i   = 1 - x_i sign_i
    sort errors descending (permutation pi); y^ = y[pi], e^ = errors[pi]
    gts        = sum_i y_i
    I_j = gts - cumsum(y^)_j,   U_j = gts + cumsum(1 - y^)_j,   J_j = 1 - I_j / U_j
    grad_j     = J_j - J_{j-1}   (J_{-1} = 0): the Lovász extension's gradient in sorted order
    loss       = sum_j relu(e^_j) grad_j

U_j >= 1 for every position of a nonempty row (gts > 0, or the prefix holds a negative), so
rows without positives are defined as in Berman's code: all of J is 1 from the first position,
grad = (1, 0, 0, ...) and the loss is relu(max error). An empty row (N = 0) has loss 0.

NaN: as in PyTorch, a NaN logit sorts first (``torch.sort`` ranks NaN highest), makes its row's
loss NaN (relu(NaN) = NaN) and passes relu's gradient (``x <= 0 ? 0 : grad``).

Ties: both backends sort with ``stable=True`` (among equal errors the lower index comes first).
The value does not depend on the order of tied errors; the (sub)gradient does, so fixing the
order keeps the two backends' gradients identical. The official code uses an unstable sort.

Triton path (everything around the sort; the sort itself is ``torch.sort`` over the batched
[K, N] errors, a segmented radix sort on CUDA):
  1. errors kernel: errors = 1 - x sign                      read K*N*(4 + label bytes), write 4
  2. torch.sort(errors, dim=1, descending=True, stable=True)  writes sorted errors + int64 perm
  3. chunk kernel: positives per 1024-chunk of the sorted order (gather y[pi])   read 8 + 1
  4. gradient kernel: in-chunk cumsum + chunk offset, closed-form Lovász gradient
        label 1:  grad_j = 1 / U_j                 (I drops by one, U unchanged)
        label 0:  grad_j = I_j / (U_{j-1} U_j)     (U grows by one; 1 when U_{j-1} = 0)
     which avoids the cancellation of J_j - J_{j-1} in float32; per-chunk loss partials and
     d loss / d x_i = -sign_i grad_j [e^_j > 0] scattered back to the unsorted position i.
        read K*N*(4 + 8 + 1), write K*N*4
Steps 3-4 move about 25 bytes per element; with step 1 and the sort's own traffic (at least
read 4 + write 4 + 8 for the indices, several passes) the sort dominates.

As in Liger's cross-entropy, the gradient is computed in the forward and kept for backward,
which only scales it by the upstream gradient per row: **memory held between forward and
backward is one [K, N] tensor in the accumulation dtype (4 bytes per element in float32)**;
the sorted errors and the int64 permutation (12 bytes per element) are freed after forward.
"""

import torch
import triton
import triton.language as tl

from ._backend import resolve_backend
from ._checks import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    check_int32_indexable,
    check_same_device,
    check_tensor,
)
from ._launch import accumulation_dtype, ensure_contiguous, row_start

LABEL_DTYPES = FLOAT_DTYPES + INDEX_DTYPES + (torch.bool,)


def lovasz_hinge_reference(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch transcription of the maths above, batched over rows; float64 in, float64
    out (other float dtypes compute in float32)."""
    dtype = accumulation_dtype(logits.dtype)
    logits = logits.to(dtype)
    labels = (labels != 0).to(dtype)  # [K, N]
    errors = 1.0 - logits * (2.0 * labels - 1.0)  # [K, N]
    errors_sorted, perm = torch.sort(errors, dim=1, descending=True, stable=True)  # [K, N]
    labels_sorted = labels.gather(1, perm)  # [K, N]
    positives = labels_sorted.sum(dim=1, keepdim=True)  # [K, 1]
    intersection = positives - labels_sorted.cumsum(dim=1)  # [K, N]
    union = positives + (1.0 - labels_sorted).cumsum(dim=1)  # [K, N]
    jaccard = 1.0 - intersection / union  # [K, N]
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)  # [K, N]
    return (torch.relu(errors_sorted) * grad).sum(dim=1)  # [K]


@triton.jit
def _lovasz_hinge_errors_kernel(
    logits_ptr,  # [K * N] logits
    labels_ptr,  # [K * N] labels, nonzero = positive
    errors_ptr,  # [K * N] output: 1 - logit * sign
    total,
    BLOCK: tl.constexpr,
):
    start = row_start(tl.program_id(0), BLOCK)  # K * N may pass 2^31
    offs = tl.arange(0, BLOCK)
    mask = offs < total - start
    acc_dtype = errors_ptr.dtype.element_ty
    logits = tl.load(logits_ptr + start + offs, mask=mask, other=0.0).to(acc_dtype)
    positive = tl.load(labels_ptr + start + offs, mask=mask, other=0) != 0
    sign = tl.where(positive, 1.0, -1.0).to(acc_dtype)
    tl.store(errors_ptr + start + offs, 1.0 - logits * sign, mask=mask)


@triton.jit
def _sorted_label(perm, row, labels_ptr, ids_ptr, N, mask, LABELS_FROM_IDS: tl.constexpr):
    """Label of the voxels at the sorted positions of one row, as int32 0/1."""
    if LABELS_FROM_IDS:  # row k's positives are the voxels of instance k
        positive = tl.load(ids_ptr + perm, mask=mask, other=-1) == row
    else:
        positive = tl.load(labels_ptr + row_start(row, N) + perm, mask=mask, other=0) != 0
    return (positive & mask).to(tl.int32)


@triton.jit
def _lovasz_chunk_positives_kernel(
    perm_ptr,  # [K, N] int64 sort permutation
    labels_ptr,  # [K, N] labels (unless LABELS_FROM_IDS)
    ids_ptr,  # [N] int32 instance ids (if LABELS_FROM_IDS)
    chunk_positives_ptr,  # [K, C] int32 output: positives per chunk of the sorted order
    N,
    C,
    LABELS_FROM_IDS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    chunk, row = tl.program_id(0), tl.program_id(1)
    offs = chunk * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    perm = tl.load(perm_ptr + row_start(row, N) + offs, mask=mask, other=0)
    label = _sorted_label(perm, row, labels_ptr, ids_ptr, N, mask, LABELS_FROM_IDS)
    tl.store(chunk_positives_ptr + row * C + chunk, tl.sum(label, axis=0))


@triton.jit
def _lovasz_gradient_kernel(
    sorted_errors_ptr,  # [K, N] errors sorted descending per row
    perm_ptr,  # [K, N] int64 sort permutation
    labels_ptr,  # [K, N] labels (unless LABELS_FROM_IDS)
    ids_ptr,  # [N] int32 instance ids (if LABELS_FROM_IDS)
    chunk_offsets_ptr,  # [K, C] int32 positives before each chunk (exclusive prefix sum)
    positives_ptr,  # [K] int32 positives per row (gts)
    partial_loss_ptr,  # [K, C] output: per-chunk loss partials
    grad_input_ptr,  # [K, N] output: d loss_k / d input, at unsorted positions
    N,
    C,
    INPUT_SCALE: tl.constexpr,
    LABELS_FROM_IDS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    chunk, row = tl.program_id(0), tl.program_id(1)
    offs = chunk * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    acc_dtype = partial_loss_ptr.dtype.element_ty
    row_offset = row_start(row, N)
    errors = tl.load(sorted_errors_ptr + row_offset + offs, mask=mask, other=0.0)
    perm = tl.load(perm_ptr + row_offset + offs, mask=mask, other=0)
    label = _sorted_label(perm, row, labels_ptr, ids_ptr, N, mask, LABELS_FROM_IDS)
    gts = tl.load(positives_ptr + row)
    cum_positive = tl.load(chunk_offsets_ptr + row * C + chunk) + tl.cumsum(label, axis=0)
    cum_negative = offs + 1 - cum_positive
    intersection = (gts - cum_positive).to(acc_dtype)  # I_j
    union = (gts + cum_negative).to(acc_dtype)  # U_j >= 1 on valid lanes
    safe_union = tl.where(mask, union, 1.0)
    previous_union = safe_union - 1.0  # U_{j-1} for a negative at j
    safe_previous_union = tl.maximum(previous_union, 1.0, propagate_nan=tl.PropagateNan.ALL)
    negative_grad = tl.where(
        previous_union > 0, intersection / (safe_previous_union * safe_union), 1.0
    )
    grad = tl.where(label != 0, 1.0 / safe_union, negative_grad)
    # torch's relu: zero gradient at and below 0; a NaN error passes (its loss term is NaN and
    # its gradient flows, as relu's backward `x <= 0 ? 0 : grad` does)
    active = mask & ((errors > 0) | (errors != errors))
    tl.store(partial_loss_ptr + row * C + chunk, tl.sum(tl.where(active, errors * grad, 0.0)))
    sign = tl.where(label != 0, 1.0, -1.0)
    grad_input = tl.where(active, -INPUT_SCALE * sign * grad, 0.0)
    tl.store(grad_input_ptr + row_offset + perm, grad_input.to(acc_dtype), mask=mask)


_BLOCK = 1024


def lovasz_hinge_from_errors(
    errors: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    instance_ids: torch.Tensor | None = None,
    input_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lovász hinge of rows of precomputed hinge errors (contiguous [K, N], accumulation dtype).

    Row k's labels are ``labels[k] != 0`` or, with ``instance_ids`` ([N] int32), the voxels
    with id k (no [K, N] label tensor). ``input_scale`` is s in errors = 1 - s * input * sign
    (1 for logits; 2 for probabilities p with logits 2p - 1). Returns ``loss`` [K] and
    ``grad_input`` [K, N]: d loss_k / d input_ki. Entries with error <= 0 (e.g. voxels excluded
    by setting their error to -1) contribute nothing and get zero gradient.
    """
    num_rows, num_voxels = errors.shape
    device, dtype = errors.device, errors.dtype
    if num_rows == 0 or num_voxels == 0:
        return (
            torch.zeros(num_rows, dtype=dtype, device=device),
            torch.zeros(num_rows, num_voxels, dtype=dtype, device=device),
        )
    sorted_errors, perm = torch.sort(errors, dim=1, descending=True, stable=True)
    labels_from_ids = instance_ids is not None
    labels_arg = instance_ids if labels_from_ids else labels
    ids_arg = instance_ids if labels_from_ids else perm  # unused pointer
    num_chunks = triton.cdiv(num_voxels, _BLOCK)
    chunk_positives = torch.empty(num_rows, num_chunks, dtype=torch.int32, device=device)
    grid = (num_chunks, num_rows)
    _lovasz_chunk_positives_kernel[grid](
        perm,
        labels_arg,
        ids_arg,
        chunk_positives,
        num_voxels,
        num_chunks,
        LABELS_FROM_IDS=labels_from_ids,
        BLOCK=_BLOCK,
    )
    chunk_ends = chunk_positives.cumsum(dim=1, dtype=torch.int32)  # [K, C]
    chunk_offsets = chunk_ends - chunk_positives
    positives = chunk_ends[:, -1].contiguous()  # [K]
    partial_loss = torch.empty(num_rows, num_chunks, dtype=dtype, device=device)
    grad_input = torch.empty(num_rows, num_voxels, dtype=dtype, device=device)
    _lovasz_gradient_kernel[grid](
        sorted_errors,
        perm,
        labels_arg,
        ids_arg,
        chunk_offsets,
        positives,
        partial_loss,
        grad_input,
        num_voxels,
        num_chunks,
        INPUT_SCALE=float(input_scale),
        LABELS_FROM_IDS=labels_from_ids,
        BLOCK=_BLOCK,
    )
    return partial_loss.sum(dim=1), grad_input


def _lovasz_hinge_errors(logits, labels):
    dtype = accumulation_dtype(logits.dtype)
    errors = torch.empty(logits.shape, dtype=dtype, device=logits.device)
    total = logits.numel()
    if total:
        _lovasz_hinge_errors_kernel[(triton.cdiv(total, _BLOCK),)](
            logits, labels, errors, total, BLOCK=_BLOCK
        )
    return errors


class _LovaszHingeFunction(torch.autograd.Function):
    @staticmethod
    @ensure_contiguous
    def forward(ctx, logits, labels):
        if labels.dtype == torch.bool:
            labels = labels.view(torch.uint8)
        errors = _lovasz_hinge_errors(logits, labels)
        loss, grad_logits = lovasz_hinge_from_errors(errors, labels=labels)
        ctx.save_for_backward(grad_logits)  # [K, N]: the only memory held for backward
        ctx.logits_dtype = logits.dtype
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad_logits,) = ctx.saved_tensors
        return (grad_logits * grad_loss[:, None]).to(ctx.logits_dtype), None


def lovasz_hinge(
    logits: torch.Tensor, labels: torch.Tensor, *, backend: str = "auto"
) -> torch.Tensor:
    """Binary Lovász hinge of every row (Berman's flat version: one row = one image/instance).

    Args:
        logits (Tensor[K, N], float): scores, positive = foreground.
        labels (Tensor[K, N], bool, integer or float): nonzero = positive.
        backend (str): ``"auto"``, ``"triton"`` or ``"reference"``.

    Returns:
        Tensor[K] >= 0: the loss of each row; float64 for float64 logits, else float32.
        Differentiable in ``logits``; rows without positives give relu(max error), N = 0
        gives 0. Equal errors are ordered by index (stable sort) in both backends.
    """
    check_tensor("logits", logits, shape=(None, None), dtypes=FLOAT_DTYPES)
    check_tensor("labels", labels, shape=(None, None), dtypes=LABEL_DTYPES)
    if labels.shape != logits.shape:
        raise ValueError(
            f"labels must have the shape of logits {list(logits.shape)}, got {list(labels.shape)}"
        )
    check_same_device(logits=logits, labels=labels)
    if resolve_backend(backend, logits) == "reference":
        return lovasz_hinge_reference(logits, labels)
    check_int32_indexable("each row of logits", logits.shape[1], "voxels")
    return _LovaszHingeFunction.apply(logits, labels)
