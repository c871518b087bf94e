"""Training configuration as frozen dataclasses, read from YAML. Unknown or missing keys, wrong
types, non-finite numbers and out-of-range values are errors naming the key, raised before
anything is created."""

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Tuple

from stemseg_fast.config import AT_LEAST_0, AT_LEAST_1, POSITIVE, Range
from stemseg_fast.config import from_dict as config_from_dict
from stemseg_fast.config import load_yaml  # noqa: F401 (the training reader's, re-exported)
from stemseg_fast.model.presets import MODEL_FIELD_RANGES


@dataclass(frozen=True)
class OptimizerConfig:
    """SGD as the official trainer: Nesterov momentum 0.9, weight decay 1e-4 on everything."""

    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4


@dataclass(frozen=True)
class ScheduleConfig:
    """See :func:`stemseg_fast.training.schedule.lr_factor`."""

    kind: str = "exponential"
    decay_start: int = 0
    decay_steps: int = 1
    decay_factor: float = 1.0
    milestones: Tuple[int, ...] = ()
    gamma: float = 0.1

    def as_kwargs(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LoopConfig:
    """How many steps, how batches are split, precision, checkpoints and logging.

    ``global_batch`` clips per optimiser step over all ranks; each forward takes
    ``micro_batch`` clips (official: 2 clips, 1 per forward: accumulation over 2 on one GPU).
    """

    max_steps: int = 1000
    global_batch: int = 2
    micro_batch: int = 1
    precision: str = "fp32"
    checkpoint_every: int = 10_000
    keep_checkpoints: int = 2
    log_every: int = 20
    seed: int = 42
    num_workers: int = 4
    tensorboard: bool = True
    progress_bar: bool = True


# The range of every number of the training config, by dataclass name and field (a tuple field:
# the range of each item). Numbers without an entry only need to be finite; a test checks that
# each numeric field of the training config has an entry.
FIELD_RANGES = {
    "OptimizerConfig": {
        "lr": POSITIVE,
        "momentum": Range(0, 1, high_open=True),
        "weight_decay": AT_LEAST_0,
    },
    "ScheduleConfig": {
        "decay_start": AT_LEAST_0,
        "decay_steps": AT_LEAST_1,
        "decay_factor": POSITIVE,
        "milestones": AT_LEAST_0,
        "gamma": POSITIVE,
    },
    "LoopConfig": {
        "max_steps": AT_LEAST_1,
        "global_batch": AT_LEAST_1,
        "micro_batch": AT_LEAST_1,
        "checkpoint_every": AT_LEAST_1,
        "keep_checkpoints": AT_LEAST_0,
        "log_every": AT_LEAST_1,
        "seed": Range(0, 2**32 - 1),  # numpy's seed range
        "num_workers": AT_LEAST_0,
    },
    "LossConfig": {
        name: AT_LEAST_0
        for name in (
            "lovasz_weight",
            "smoothness_weight",
            "seediness_weight",
            "semantic_weight",
            "foreground_weight",
        )
    },
    "DataConfig": {"clip_length": AT_LEAST_1, "min_dim": AT_LEAST_1, "max_dim": AT_LEAST_1},
    "SourceConfig": {"weight": AT_LEAST_0, "frame_span": AT_LEAST_1, "min_area": AT_LEAST_0},
    **MODEL_FIELD_RANGES,  # the model sections that model_overrides can change
}


def from_dict(cls: type, values: Mapping[str, Any], *, where: str = "config") -> Any:
    """:func:`stemseg_fast.config.from_dict` with the ranges of the training config."""
    return config_from_dict(cls, values, where=where, ranges=FIELD_RANGES)
