"""Process-group setup for ``torchrun`` (NCCL on GPU, gloo on CPU) and a single process alike."""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed(device=None):
    """Join the process group ``torchrun`` describes in the environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT); without it, a single process of world size 1."""
    world_size = _environment_int("WORLD_SIZE", 1, 1)
    rank = _environment_int("RANK", 0, 0)
    local_rank = _environment_int("LOCAL_RANK", 0, 0)
    if rank >= world_size:
        raise ValueError(f"RANK must be below WORLD_SIZE = {world_size}, got {rank}")
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = _checked_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, device)


def _environment_int(name, default, minimum):
    raw = os.environ.get(name, str(default))
    if not raw.strip().isdigit() or int(raw) < minimum:
        raise ValueError(f"environment variable {name} must be an integer >= {minimum}, "
                         f"got {raw!r}")
    return int(raw)


def _checked_device(name):
    """``torch.device(name)`` for a CPU or an existing CUDA device, else a ValueError."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device must be cpu, cuda or cuda:<index>, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda or cuda:<index>, got {name!r}")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: no CUDA device is available here")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: there are {count} CUDA devices "
                             f"(cuda:0 .. cuda:{count - 1})")
    return device


def shutdown_distributed():
    if dist.is_initialized():
        dist.destroy_process_group()


def mean_across_ranks(values, context):
    """Average a dict of float scalars over every rank (for logging only)."""
    if context.world_size == 1 or not values:
        return values
    names = sorted(values)
    stacked = torch.tensor([float(values[n]) for n in names], dtype=torch.float64,
                           device=context.device)
    dist.all_reduce(stacked)
    return {name: value / context.world_size for name, value in zip(names, stacked.tolist())}
