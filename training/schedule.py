"""Learning-rate schedules of the official configs (training/exponential_lr.py, utils.py).

``exponential``: constant before ``decay_start``, then multiplied every step by
gamma = ``decay_factor`` ** (1 / ``decay_steps``), the first time at step ``decay_start``
itself (the official scheduler multiplies when its counter reaches the start), so the factor
is reached at step ``decay_start + decay_steps - 1`` and the decay continues if training runs
longer.
``step``: multiplied by ``gamma`` at each milestone (the official defaults.yaml).
``constant``: the base rate throughout (DAVIS and KITTI-MOTS stage 2).
"""

import bisect
from typing import Sequence

import torch

from .config import ScheduleConfig

SCHEDULE_KINDS = ("constant", "exponential", "step")


def lr_factor(
    step: int,
    *,
    kind: str,
    decay_start: int = 0,
    decay_steps: int = 1,
    decay_factor: float = 1.0,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    """The multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    if kind == "constant":
        return 1.0
    if kind == "exponential":
        if step < decay_start:
            return 1.0
        return decay_factor ** ((step - decay_start + 1) / decay_steps)
    if kind == "step":
        return gamma ** bisect.bisect_right(sorted(milestones), step)
    raise ValueError(f"schedule kind must be one of {list(SCHEDULE_KINDS)}, got {kind!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: ScheduleConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following ``schedule`` (a :class:`ScheduleConfig`)."""
    lr_factor(0, **schedule.as_kwargs())  # fail on a bad kind before training starts
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, **schedule.as_kwargs())
    )
