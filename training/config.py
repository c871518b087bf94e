"""Training configuration as frozen dataclasses, read from YAML with unknown keys an error."""
import dataclasses
from dataclasses import dataclass

import yaml


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
    milestones: tuple = ()
    gamma: float = 0.1

    def as_kwargs(self):
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


def from_dict(cls, values, *, where="config"):
    """Build dataclass ``cls`` from a nested dict; unknown keys are an error naming them."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known keys: {sorted(fields)}")
    arguments = {}
    for name, value in values.items():
        field_type = fields[name].type
        item_type = fields[name].metadata.get("items")
        if dataclasses.is_dataclass(field_type):
            value = from_dict(field_type, value, where=f"{where}.{name}")
        elif item_type is not None:
            if not isinstance(value, list):
                raise ValueError(f"{where}.{name} must be a list, got {type(value).__name__}")
            value = tuple(from_dict(item_type, item, where=f"{where}.{name}[{index}]")
                          for index, item in enumerate(value))
        elif isinstance(value, list):
            value = tuple(value)
        arguments[name] = value
    return cls(**arguments)


def to_dict(config):
    return dataclasses.asdict(config)


def load_yaml(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except OSError as error:
        raise ValueError(f"cannot read config {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ValueError(f"config {path} is not valid YAML: {error}") from error
