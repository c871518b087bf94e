"""Mixing sources with fixed per-source counts (section 5.2).

The official ``ConcatDataset`` gives each source a fixed number of the MAX_ITER x BATCH samples
of a run; :func:`mixture_counts` computes those counts (largest remainder, so they sum exactly to
the total) and :class:`MixedClipDataset` concatenates the sources in a fixed order. Which sample
each step, rank and micro-batch sees (and so the data position a resumed run restarts from) is
the trainer's :class:`~stemseg_fast.training.sampler.StepBatchSampler`.
"""

from typing import Dict, Mapping

from torch.utils.data import ConcatDataset, Dataset

# Fractions of the run's samples per source, per training preset (section 5.2; OVIS from the
# seed report: 65 % OVIS clips, 35 % COCO pseudo-clips).
MIXTURES = {
    "youtube_vis": {"youtube_vis": 0.6, "coco": 0.3, "voc": 0.1},
    "davis": {"davis": 0.3, "youtube_vis": 0.35, "coco": 0.25, "voc": 0.1},
    "kitti_mots_1": {"mapillary": 1.0},
    "kitti_mots_2": {"kitti_mots": 1.0},
    "ovis": {"ovis": 0.65, "coco": 0.35},
}


def mixture_counts(weights: Mapping[str, float], total: int) -> Dict[str, int]:
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
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


class MixedClipDataset(ConcatDataset):
    """Sources concatenated in the given order; ``names[k]`` names source k.

    Args:
        sources: {name: dataset}, each already built with its count from :func:`mixture_counts`.
    """

    def __init__(self, sources: Mapping[str, Dataset]) -> None:
        if not sources:
            raise ValueError("sources must name at least one dataset")
        empty = [name for name, dataset in sources.items() if len(dataset) == 0]
        if empty:
            raise ValueError(f"sources {empty} are empty")
        self.names = list(sources)
        super().__init__(list(sources.values()))

    def source_of(self, index: int) -> str:
        """Name of the source that item ``index`` comes from."""
        for name, end in zip(self.names, self.cumulative_sizes):
            if index < end:
                return name
        raise IndexError(f"index {index} out of range for {len(self)} items")
