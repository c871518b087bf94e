"""Settings from text: ``name=value`` assignments (the ``--set`` of ``infer`` and ``train``),
values read as YAML."""
from typing import Any, Tuple

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
