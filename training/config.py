"""Training configuration as frozen dataclasses, read from YAML. Unknown or missing keys, wrong
types, non-finite numbers and out-of-range values are errors naming the key, raised before
anything is created."""
import contextlib
import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Optional, Tuple

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
    milestones: Tuple[int, ...] = ()
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


@dataclass(frozen=True)
class Range:
    """The values a number of the config may take: ``low``/``high`` bounds (None: unbounded),
    each included unless marked open."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value):
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high
                                         or (self.high_open and value == self.high))

    def __str__(self):
        low, high = (f"{bound:g}" if isinstance(bound, float) else str(bound)
                     for bound in (self.low, self.high))
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{low}, "
                    f"{high}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        return f"{'<' if self.high_open else '<='} {high}"


AT_LEAST_0, AT_LEAST_1, POSITIVE = Range(0), Range(1), Range(0, low_open=True)

# The range of every number of the training config, by dataclass name and field (a tuple field:
# the range of each item). Numbers without an entry only need to be finite; a test checks that
# each numeric field of the training config has an entry.
FIELD_RANGES = {
    "OptimizerConfig": {"lr": POSITIVE, "momentum": Range(0, 1, high_open=True),
                        "weight_decay": AT_LEAST_0},
    "ScheduleConfig": {"decay_start": AT_LEAST_0, "decay_steps": AT_LEAST_1,
                       "decay_factor": POSITIVE, "milestones": AT_LEAST_0, "gamma": POSITIVE},
    "LoopConfig": {"max_steps": AT_LEAST_1, "global_batch": AT_LEAST_1, "micro_batch": AT_LEAST_1,
                   "checkpoint_every": AT_LEAST_1, "keep_checkpoints": AT_LEAST_0,
                   "log_every": AT_LEAST_1, "seed": Range(0, 2**32 - 1),  # numpy's seed range
                   "num_workers": AT_LEAST_0},
    "LossConfig": {name: AT_LEAST_0 for name in ("lovasz_weight", "smoothness_weight",
                                                 "seediness_weight", "semantic_weight",
                                                 "foreground_weight")},
    "DataConfig": {"clip_length": AT_LEAST_1, "min_dim": AT_LEAST_1, "max_dim": AT_LEAST_1},
    "SourceConfig": {"weight": AT_LEAST_0, "frame_span": AT_LEAST_1, "min_area": AT_LEAST_0},
    # the model sections that model_overrides can change
    "STEmSegConfig": {"num_classes": Range(2), "free_dim_precision": POSITIVE,
                      "train_clip_length": AT_LEAST_1},
    "BackboneConfig": {"blocks_per_stage": AT_LEAST_1, "num_groups": AT_LEAST_1,
                       "width_per_group": AT_LEAST_1, "stem_channels": AT_LEAST_1,
                       "res2_out_channels": AT_LEAST_1, "fpn_channels": AT_LEAST_1,
                       "freeze_at": Range(0, 5)},
    "DecoderConfig": {"widths": AT_LEAST_1, "num_groups": AT_LEAST_1},
}


def _key(where, name):
    return f"{where}.{name}" if where else name


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value, kind, key, allowed):
    """``value`` as an int or a finite float in ``allowed``, else ValueError naming ``key``."""
    expected = f"{'an integer' if kind is int else 'a finite number'}"
    if allowed is not None:
        expected += f" {allowed}"
    if kind is float and isinstance(value, str):
        # PyYAML reads 1e-3 (no dot in the mantissa) as a string: accept what float() reads
        with contextlib.suppress(ValueError):
            value = float(value)
    acceptable = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, acceptable):
        raise ValueError(f"{key} must be {expected}, got {type(value).__name__} "
                         f"{_describe(value)}")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{key} must be {expected}, got {value}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{key} must be {expected}, got {value}")
    return value


def _checked(value, annotation, key, allowed):
    """``value`` checked against the field type ``annotation`` (lists become tuples)."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        if value is None and type(None) in arguments:
            return None
        (annotation,) = [a for a in arguments if a is not type(None)]
        return _checked(value, annotation, key, allowed)
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where=key)
    if annotation in (int, float):
        return _number(value, annotation, key, allowed)
    if annotation in (bool, str, dict):
        if not isinstance(value, annotation):
            expected = {bool: "true or false", str: "a string", dict: "a mapping"}[annotation]
            raise ValueError(f"{key} must be {expected}, got {type(value).__name__} "
                             f"{_describe(value)}")
        return value
    if annotation is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list, got {type(value).__name__} "
                             f"{_describe(value)}")
        if not arguments:
            return tuple(value)
        return tuple(_checked(item, arguments[0], f"{key}[{index}]", allowed)
                     for index, item in enumerate(value))
    if isinstance(value, float) and not math.isfinite(value):  # untyped fields (object)
        raise ValueError(f"{key} must be finite, got {value}")
    return tuple(value) if isinstance(value, list) else value


def from_dict(cls, values, *, where="config"):
    """Build dataclass ``cls`` from a nested dict. Unknown or missing keys, values of the wrong
    type, non-finite numbers and numbers outside :data:`FIELD_RANGES` are a ValueError naming
    the key (``where`` and the dotted path below it) and what it expects."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{where or 'the config'} must be a mapping, got "
                         f"{type(values).__name__} {_describe(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}: " if where else ""
    unknown = sorted(str(key) for key in set(values) - set(fields))
    if unknown:
        raise ValueError(f"{prefix}unknown keys {unknown}; known keys: {sorted(fields)}")
    missing = sorted(name for name, f in fields.items() if name not in values
                     and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
    if missing:
        raise ValueError(f"{prefix}missing required keys {missing}")
    ranges = FIELD_RANGES.get(cls.__name__, {})
    arguments = {}
    for name, value in values.items():
        key = _key(where, name)
        item_type = fields[name].metadata.get("items")
        if item_type is not None:
            if not isinstance(value, list):
                raise ValueError(f"{key} must be a list, got {type(value).__name__}")
            value = tuple(from_dict(item_type, item, where=f"{key}[{index}]")
                          for index, item in enumerate(value))
        else:
            value = _checked(value, fields[name].type, key, ranges.get(name))
        arguments[name] = value
    return cls(**arguments)


def to_dict(config):
    return dataclasses.asdict(config)


def load_yaml(path):
    """The YAML document in ``path`` ({} for an empty file); errors name the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except OSError as error:
        raise ValueError(f"cannot read config {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"config {path} is not UTF-8 text: {error.reason} at byte "
                         f"{error.start}") from None
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())  # PyYAML's message spans several lines
        raise ValueError(f"config {path} is not valid YAML: {problem}") from None
    return {} if values is None else values
