"""Inference over many videos with several processes (``torchrun --nproc_per_node N``).

Videos are dealt round-robin by sorted name: rank r takes the r-th, (r + N)-th, ... videos, so
every rank gets a similar share and the split depends on the inputs only. Results travel as
Python objects over a gloo process group (``all_gather_object``; no tensor collectives, so gloo
serves CPU and GPU runs alike) and rank 0 writes the merged files.
"""
import os
from dataclasses import dataclass

import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self):
        return self.rank == 0


def shard_from_environment():
    """This process's place among ``torchrun``'s (RANK, WORLD_SIZE, LOCAL_RANK; MASTER_ADDR and
    MASTER_PORT for the rendezvous), joining a gloo process group when there are several;
    rank 0 of 1 without them."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE={world_size}), got {rank}")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="gloo", rank=rank, world_size=world_size)
    return Shard(rank, world_size, local_rank)


def shard_items(items, shard, *, key):
    """The items of this rank: sorted by ``key``, every ``world_size``-th from ``rank``.

    Returns:
        list of (position in the sorted order, item).
    """
    ordered = sorted(items, key=key)
    return [(position, item) for position, item in enumerate(ordered)
            if position % shard.world_size == shard.rank]


def gather_objects(value, shard):
    """Every rank's ``value``, in rank order, on every rank (a list of one without a group)."""
    if shard.world_size == 1:
        return [value]
    gathered = [None] * shard.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def close_process_group():
    if dist.is_initialized():
        dist.destroy_process_group()
