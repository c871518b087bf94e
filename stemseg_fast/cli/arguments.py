"""Argument types and help text shared by the subcommands."""

import argparse
import re
from typing import Callable, Dict, Iterable

from stemseg_fast.benchmarks import canonical_name
from stemseg_fast.config import parse_assignment

_ROLE = re.compile(r":(?:func|class|meth|mod|attr):`~?([^`]+)`")


def plain_text(docstring: str) -> str:
    """A docstring as help text: reStructuredText markup (````code````, ``:func:`x```) dropped."""
    return _ROLE.sub(r"\1", docstring).replace("``", "")


def _in_range(convert, kind, low, high, shown):
    """An argparse ``type`` converting with ``convert`` and accepting ``[low, high]`` only."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not low <= value <= high:  # NaN fails both
            raise argparse.ArgumentTypeError(
                f"must be in [{shown(low)}, {shown(high)}], got {text.strip()}"
            )
        return value

    return parse


def integer_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]``."""
    return _in_range(int, "an integer", low, high, str)


def number_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[low, high]``."""
    return _in_range(float, "a number", low, high, "{:g}".format)


def preset_name(text: str) -> str:
    """An argparse ``type`` for names of presets, formats and metrics: a benchmark's former
    spelling (``ytvis``, ``kitti``, ``mots``) read as today's; ``choices`` checks the rest."""
    return canonical_name(text)


def name_assignments(assignments: Iterable[str], what: str) -> Dict[str, object]:
    """``name=value`` arguments (values read as YAML: numbers, strings, null) as a dict."""
    return dict(parse_assignment(assignment, what) for assignment in assignments)
