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
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, device)


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
