"""Mixing sources with fixed per-source counts (section 5.2) and a resumable, shardable sampler.

The official ``ConcatDataset`` gives each source a fixed number of the MAX_ITER x BATCH samples
of a run; :func:`mixture_counts` computes those counts (largest remainder, so they sum exactly to
the total) and :class:`MixedClipDataset` concatenates the sources in a fixed order.

:class:`ResumableSampler` walks one seeded permutation of the whole mixed dataset. The *data
position* is the number of samples all ranks together have consumed; rank r of W takes
permutation[position + r], permutation[position + r + W], ... (DistributedSampler's
interleaving). A trainer stores ``sampler.position_after(samples_per_rank)`` in its checkpoint
and restarts with ``start_position=`` that value: the resumed run sees exactly the samples the
interrupted one had not, whatever the number of DataLoader workers.
"""
import torch
from torch.utils.data import ConcatDataset, Sampler

# Fractions of the run's samples per source, per training preset (section 5.2; OVIS from the
# seed report: 65 % OVIS clips, 35 % COCO pseudo-clips).
MIXTURES = {
    "ytvis": {"ytvis": 0.6, "coco": 0.3, "voc": 0.1},
    "davis": {"davis": 0.3, "ytvis": 0.35, "coco": 0.25, "voc": 0.1},
    "kitti_mots_1": {"mapillary": 1.0},
    "kitti_mots_2": {"kitti_mots": 1.0},
    "ovis": {"ovis": 0.65, "coco": 0.35},
}


def mixture_counts(weights, total):
    """{source: count} with counts proportional to ``weights`` summing exactly to ``total``
    (largest remainder; ties by the order of ``weights``)."""
    if total <= 0:
        raise ValueError(f"total must be positive, got {total}")
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    norm = sum(weights.values())
    exact = {name: w / norm * total for name, w in weights.items()}
    counts = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - counts[name], reverse=True)
    for name in by_remainder[:total - sum(counts.values())]:
        counts[name] += 1
    return counts


class MixedClipDataset(ConcatDataset):
    """Sources concatenated in the given order; ``names[k]`` names source k.

    Args:
        sources: {name: dataset}, each already built with its count from :func:`mixture_counts`.
    """

    def __init__(self, sources):
        if not sources:
            raise ValueError("sources must name at least one dataset")
        empty = [name for name, dataset in sources.items() if len(dataset) == 0]
        if empty:
            raise ValueError(f"sources {empty} are empty")
        self.names = list(sources)
        super().__init__(list(sources.values()))

    def source_of(self, index):
        """Name of the source that item ``index`` comes from."""
        for name, end in zip(self.names, self.cumulative_sizes):
            if index < end:
                return name
        raise IndexError(f"index {index} out of range for {len(self)} items")


class ResumableSampler(Sampler):
    """Seeded permutation, sharded over ranks, started at a data position.

    Args:
        num_samples: length of the dataset.
        seed: fixes the permutation (same on every rank).
        rank, world_size: this process and the number of processes.
        start_position: samples already consumed by all ranks together; a multiple of
            ``world_size``. The tail that does not fill a round of all ranks is dropped, so
            every rank yields the same number of samples (DDP needs equal step counts).
    """

    def __init__(self, num_samples, *, seed=0, rank=0, world_size=1, start_position=0):
        if num_samples <= 0:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, "
                             f"world_size={world_size}")
        usable = num_samples - num_samples % world_size
        if start_position % world_size or not 0 <= start_position <= usable:
            raise ValueError(f"start_position must be a multiple of world_size ({world_size}) in "
                             f"[0, {usable}], got {start_position}")
        self.num_samples, self.seed = num_samples, seed
        self.rank, self.world_size = rank, world_size
        self.start_position, self.usable = start_position, usable

    def permutation(self):
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(self.num_samples, generator=generator)

    def __iter__(self):
        order = self.permutation()[self.start_position + self.rank:self.usable:self.world_size]
        return iter(order.tolist())

    def __len__(self):
        return (self.usable - self.start_position) // self.world_size

    def position_after(self, samples_per_rank):
        """The data position once every rank has consumed ``samples_per_rank`` more samples."""
        return self.start_position + samples_per_rank * self.world_size
