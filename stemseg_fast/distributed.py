"""Devices and process groups, for ``torchrun`` and a single process alike: one place for
inference over many videos and for training.

Inference deals videos round-robin by sorted name (rank r takes the r-th, (r + N)-th, ...
videos, so the split depends on the inputs only); its results travel as Python objects
(``all_gather_object`` over gloo, which serves CPU and GPU runs alike) and rank 0 writes the
merged files. Training uses NCCL on GPUs and gloo on CPUs for its gradient all-reduce.
"""

import os
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among ``torchrun``'s, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(
    name: Union[str, torch.device, None] = "auto", *, local_rank: int = 0, what: str = "device"
) -> torch.device:
    """``"auto"`` (or None) -> ``cuda:local_rank`` when CUDA is available, else the CPU; any other
    name must be ``cpu``, ``cuda`` or ``cuda:N`` of a device that exists (else ``ValueError``,
    naming the argument as ``what``)."""
    if name is None or name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{what} must be cpu, cuda or cuda:<index>, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"{what} must be cpu, cuda or cuda:<index>, got {name!r}")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{what} {name}: no CUDA device is available here")
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"{what} {name}: there are {count} CUDA devices (cuda:0 .. cuda:{count - 1})"
            )
    return device


def _environment_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.strip().isdigit() or int(raw) < minimum:
        raise ValueError(
            f"environment variable {name} must be an integer >= {minimum}, got {raw!r}"
        )
    return int(raw)


def init_distributed(
    device: Union[str, torch.device, None] = None,
    *,
    backend: Optional[str] = None,
    what: str = "--device",
) -> DistributedContext:
    """Join the process group ``torchrun`` describes in the environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT); without it, a single process of world size 1.

    Args:
        device: see :func:`resolve_device` (``auto``: this process's local GPU).
        backend: the process group's; default NCCL on a GPU, gloo on the CPU.
    """
    world_size = _environment_int("WORLD_SIZE", 1, 1)
    rank = _environment_int("RANK", 0, 0)
    local_rank = _environment_int("LOCAL_RANK", 0, 0)
    if rank >= world_size:
        raise ValueError(f"RANK must be below WORLD_SIZE = {world_size}, got {rank}")
    device = resolve_device(device, local_rank=local_rank, what=what)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend=backend or ("nccl" if device.type == "cuda" else "gloo"),
            rank=rank,
            world_size=world_size,
        )
    return DistributedContext(rank, world_size, local_rank, device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard_items(
    items: Sequence, context: DistributedContext, *, key: Callable[[Any], Any]
) -> List[Tuple[int, Any]]:
    """The items of this rank: sorted by ``key``, every ``world_size``-th from ``rank``.

    Returns:
        list of (position in the sorted order, item).
    """
    ordered = sorted(items, key=key)
    return [
        (position, item)
        for position, item in enumerate(ordered)
        if position % context.world_size == context.rank
    ]


def gather_objects(value: Any, context: DistributedContext) -> list:
    """Every rank's ``value``, in rank order, on every rank (a list of one without a group)."""
    if context.world_size == 1:
        return [value]
    gathered = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def mean_across_ranks(values: dict, context: DistributedContext) -> dict:
    """Average a dict of float scalars over every rank (for logging only)."""
    if context.world_size == 1 or not values:
        return values
    names = sorted(values)
    stacked = torch.tensor(
        [float(values[n]) for n in names], dtype=torch.float64, device=context.device
    )
    dist.all_reduce(stacked)
    return {name: value / context.world_size for name, value in zip(names, stacked.tolist())}
