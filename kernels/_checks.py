"""Argument checks shared by every op: errors name the argument, what was expected, what came.

Plain ``ValueError``/``TypeError`` (never ``assert``, which ``python -O`` strips).
"""

from collections.abc import Collection, Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INDEX_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _describe_shape(shape):
    return "[" + ", ".join("*" if size is None else str(size) for size in shape) + "]"


def check_tensor(
    name: str,
    tensor: torch.Tensor,
    *,
    shape: Sequence[int | None] | None = None,
    dtypes: Collection[torch.dtype] | None = None,
) -> torch.Tensor:
    """Check that ``tensor`` is a tensor with ``shape`` (``None`` entries match any size)
    and one of ``dtypes``. Returns the tensor so checks read as assignments."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if shape is not None:
        matches = tensor.dim() == len(shape) and all(
            expected is None or expected == actual for expected, actual in zip(shape, tensor.shape)
        )
        if not matches:
            raise ValueError(
                f"{name} must have shape {_describe_shape(shape)}, got {list(tensor.shape)}"
            )
    if dtypes is not None and tensor.dtype not in dtypes:
        allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} must have dtype in ({allowed}), got {tensor.dtype}")
    return tensor


def check_same_device(**tensors: torch.Tensor) -> None:
    """All named tensors on one device."""
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"all tensors must be on one device, got {listing}")


def check_same_size(dim_name: str, **sizes: int) -> None:
    """Named sizes that must agree, e.g. ``check_same_size("N", embeddings=..., ids=...)``."""
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{name} has {size}" for name, size in sizes.items())
        raise ValueError(f"size {dim_name} must agree across arguments, got {listing}")


def check_index_range(name: str, tensor: torch.Tensor, low: int, high: int) -> None:
    """Every value of an integer tensor in ``[low, high)``. Syncs with the device once."""
    if tensor.numel() == 0:
        return
    smallest, largest = int(tensor.min()), int(tensor.max())
    if smallest < low or largest >= high:
        raise ValueError(
            f"{name} must hold values in [{low}, {high}), got values in [{smallest}, {largest}]"
        )


def instance_count(instance_ids: torch.Tensor, num_instances: int | None = None) -> int:
    """``num_instances`` if given, else the highest instance id + 1 (0 when there is none).
    Reading the ids syncs with the device once."""
    if num_instances is not None:
        return num_instances
    return int(instance_ids.max()) + 1 if instance_ids.numel() else 0


def checked_instance_count(instance_ids: torch.Tensor, num_instances: int | None) -> int:
    """:func:`instance_count`, checked: >= 0, and every id in ``[-1, num_instances)``."""
    num_instances = instance_count(instance_ids, num_instances)
    if num_instances < 0:
        raise ValueError(f"num_instances must be >= 0, got {num_instances}")
    check_index_range("instance_ids", instance_ids, -1, num_instances)
    return num_instances


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


INT32_LIMIT = 2**31


def check_int32_indexable(name: str, size: int, what: str = "elements") -> None:
    """Kernels index inside one row (or one tensor) with int32 lanes: ``size`` must be < 2^31.
    Row starts are 64-bit (``_launch.row_start``), so only per-row extents are limited."""
    if size >= INT32_LIMIT:
        raise ValueError(
            f"{name} has {size} {what}; the Triton kernels index them with int32 "
            f"and take fewer than 2**31 (split the input)"
        )
