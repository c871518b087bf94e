"""Which samples every optimiser step sees, derived from the step alone (so resuming is exact).

The global sample order is a seeded permutation of the dataset per epoch. Step ``s`` consumes
the ``global_batch`` samples at positions ``[s * global_batch, (s + 1) * global_batch)`` of that
order; rank ``r`` of ``W`` takes the ``r``-th contiguous share and splits it into micro-batches
of ``micro_batch`` clips (gradient accumulation). One process with the same global batch and
micro-batch size sees the same samples in the same micro-batches, so its update equals the DDP
update up to float rounding.
"""

from typing import Iterator, List

import torch


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields one list of dataset indices per micro-batch, for steps ``start_step`` onwards."""

    def __init__(
        self,
        num_samples: int,
        *,
        global_batch: int,
        micro_batch: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        start_step: int = 0,
        max_steps: int,
    ) -> None:
        if num_samples < 1:
            raise ValueError("the training dataset is empty")
        if global_batch % (world_size * micro_batch):
            raise ValueError(
                f"global batch {global_batch} must be a multiple of world size x micro batch "
                f"= {world_size} x {micro_batch}"
            )
        self.num_samples, self.global_batch, self.micro_batch = (
            num_samples,
            global_batch,
            micro_batch,
        )
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.start_step, self.max_steps = start_step, max_steps

    @property
    def accumulation_steps(self) -> int:
        """Micro-batches per optimiser step on each rank."""
        return self.global_batch // (self.world_size * self.micro_batch)

    def _order(self, epoch):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=generator).tolist()

    def step_indices(self, step: int) -> List[int]:
        """The samples rank ``rank`` uses at ``step``, in micro-batch order."""
        share = self.global_batch // self.world_size
        first = step * self.global_batch + self.rank * share
        indices, cached_epoch, order = [], None, None
        for position in range(first, first + share):
            epoch = position // self.num_samples
            if epoch != cached_epoch:
                cached_epoch, order = epoch, self._order(epoch)
            indices.append(order[position % self.num_samples])
        return indices

    def __iter__(self) -> Iterator[List[int]]:
        for step in range(self.start_step, self.max_steps):
            indices = self.step_indices(step)
            for start in range(0, len(indices), self.micro_batch):
                yield indices[start : start + self.micro_batch]

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step) * self.accumulation_steps
