"""Settings as frozen dataclasses, from dicts, YAML files and ``name=value`` text: the one
converter every config of the library goes through (model presets and checkpoints, training
configs, the ``--set`` of ``infer`` and ``train``).

:func:`from_dict` builds a dataclass from a nested dict: unknown or missing keys, values of the
wrong type, non-finite numbers and numbers outside their :class:`Range` are a ``ValueError``
naming the key (dotted path) and what it expects.
"""

import contextlib
import dataclasses
import math
import os
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple, Union

import yaml


def parse_assignment(text: str, what: str = "--set") -> Tuple[str, Any]:
    """``"name=value"`` -> ``(name, value)``, the value read as YAML (a number, true/false,
    null, a word, a list); ``ValueError`` naming ``what`` for anything else."""
    name, separator, raw = text.partition("=")
    name = name.strip()
    if not separator or not name:
        raise ValueError(f"{what} expects name=value, got {text!r}")
    try:
        return name, yaml.safe_load(raw)
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())  # PyYAML's message spans several lines
        raise ValueError(f"{what} {name}: {raw!r} is not a YAML value: {problem}") from None


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
        return self.high is None or not (
            value > self.high or (self.high_open and value == self.high)
        )

    def __str__(self):
        low, high = (
            f"{bound:g}" if isinstance(bound, float) else str(bound)
            for bound in (self.low, self.high)
        )
        if self.low is not None and self.high is not None:
            return (
                f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {low}"
        return f"{'<' if self.high_open else '<='} {high}"


AT_LEAST_0, AT_LEAST_1, POSITIVE = Range(0), Range(1), Range(0, low_open=True)


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
        raise ValueError(f"{key} must be {expected}, got {type(value).__name__} {_describe(value)}")
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{key} must be {expected}, got {value}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{key} must be {expected}, got {value}")
    return value


def _checked(value, annotation, key, allowed, ranges):
    """``value`` checked against the field type ``annotation`` (lists become tuples)."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        if value is None and type(None) in arguments:
            return None
        (annotation,) = [a for a in arguments if a is not type(None)]
        return _checked(value, annotation, key, allowed, ranges)
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where=key, ranges=ranges)
    if annotation in (int, float):
        return _number(value, annotation, key, allowed)
    if annotation in (bool, str, dict):
        if not isinstance(value, annotation):
            expected = {bool: "true or false", str: "a string", dict: "a mapping"}[annotation]
            raise ValueError(
                f"{key} must be {expected}, got {type(value).__name__} {_describe(value)}"
            )
        return value
    if annotation is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list, got {type(value).__name__} {_describe(value)}")
        if not arguments:
            return tuple(value)
        return tuple(
            _checked(item, arguments[0], f"{key}[{index}]", allowed, ranges)
            for index, item in enumerate(value)
        )
    if isinstance(value, float) and not math.isfinite(value):  # untyped fields (object)
        raise ValueError(f"{key} must be finite, got {value}")
    return tuple(value) if isinstance(value, list) else value


def from_dict(
    cls: type,
    values: Optional[Mapping[str, Any]],
    *,
    where: str = "config",
    ranges: Optional[Mapping[str, Mapping[str, Range]]] = None,
) -> Any:
    """Build dataclass ``cls`` from a nested dict. Unknown or missing keys, values of the wrong
    type, non-finite numbers and numbers outside their range are a ValueError naming the key
    (``where`` and the dotted path below it) and what it expects.

    Args:
        ranges: dataclass name -> field name -> :class:`Range` (a tuple field: each item's);
            numbers without an entry only need to be finite.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(
            f"{where or 'the config'} must be a mapping, got "
            f"{type(values).__name__} {_describe(values)}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}: " if where else ""
    unknown = sorted(str(key) for key in set(values) - set(fields))
    if unknown:
        raise ValueError(f"{prefix}unknown keys {unknown}; known keys: {sorted(fields)}")
    missing = sorted(
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise ValueError(f"{prefix}missing required keys {missing}")
    ranges = ranges or {}
    field_ranges = ranges.get(cls.__name__, {})
    arguments = {}
    for name, value in values.items():
        key = _key(where, name)
        item_type = fields[name].metadata.get("items")
        if item_type is not None:
            if not isinstance(value, list):
                raise ValueError(f"{key} must be a list, got {type(value).__name__}")
            value = tuple(
                from_dict(item_type, item, where=f"{key}[{index}]", ranges=ranges)
                for index, item in enumerate(value)
            )
        else:
            value = _checked(value, fields[name].type, key, field_ranges.get(name), ranges)
        arguments[name] = value
    return cls(**arguments)


def load_yaml(path: Union[str, os.PathLike]) -> Any:
    """The YAML document in ``path`` ({} for an empty file); errors name the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except OSError as error:
        raise ValueError(f"cannot read config {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"config {path} is not UTF-8 text: {error.reason} at byte {error.start}"
        ) from None
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())  # PyYAML's message spans several lines
        raise ValueError(f"config {path} is not valid YAML: {problem}") from None
    return {} if values is None else values
