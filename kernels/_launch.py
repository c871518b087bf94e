"""Launch helpers shared by the Triton ops: block sizes, contiguity at the boundary, AMP."""
import functools

import torch
import triton


def ensure_contiguous(fn):
    """Make every tensor argument contiguous before an autograd ``forward``/``backward`` runs."""

    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        args = [a.contiguous() if isinstance(a, torch.Tensor) else a for a in args]
        kwargs = {k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        return fn(ctx, *args, **kwargs)

    return wrapper


def block_size_for(n, *, minimum=16, maximum=1024):
    """Smallest power of two >= n, clamped to [minimum, maximum]."""
    return max(minimum, min(maximum, triton.next_power_of_2(max(int(n), 1))))


def accumulation_dtype(*dtypes):
    """fp64 stays fp64 (references and tests); everything else accumulates and returns fp32."""
    return torch.float64 if torch.float64 in dtypes else torch.float32

