"""Launch helpers shared by the Triton ops: block sizes, contiguity at the boundary, AMP, and
64-bit row offsets."""

import functools
from collections.abc import Callable

import torch
import triton
import triton.language as tl


def ensure_contiguous(fn: Callable) -> Callable:
    """Make every tensor argument contiguous before an autograd ``forward``/``backward`` runs."""

    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        args = [a.contiguous() if isinstance(a, torch.Tensor) else a for a in args]
        kwargs = {
            k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()
        }
        return fn(ctx, *args, **kwargs)

    return wrapper


def block_size_for(n: int, *, minimum: int = 16, maximum: int = 1024) -> int:
    """Smallest power of two >= n, clamped to [minimum, maximum]."""
    return max(minimum, min(maximum, triton.next_power_of_2(max(int(n), 1))))


def accumulation_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """fp64 stays fp64 (references and tests); everything else accumulates and returns fp32."""
    return torch.float64 if torch.float64 in dtypes else torch.float32


@triton.jit
def row_start(row, row_length):
    """Offset of row ``row`` of a [rows, row_length] tensor, in int64: rows * row_length passes
    2^31 (e.g. K = 10 rows of N = 215 M voxels, or 10 DAVIS-size 256-channel clips), while
    offsets inside one row stay int32 (checked by :func:`stemseg_fast.kernels._checks.
    check_int32_indexable`). One scalar multiply per program, not per element."""
    return row.to(tl.int64) * row_length
