"""``stemseg-fast models``: the models this library can run, what they are, where they live."""

import argparse
import os
from typing import List, Tuple

from stemseg_fast.model.checkpoints import (
    BUNDLED_CHECKPOINT,
    OFFICIAL_CHECKPOINT_PRESETS,
    OFFICIAL_CHECKPOINT_TRAINING,
    OFFICIAL_CHECKPOINT_URLS,
    checkpoint_config,
    official_checkpoint_cache_dir,
    read_checkpoint_file,
)
from stemseg_fast.model.presets import PRESETS

from .arguments import plain_text


def _classes(config):
    if config.semantic_decoder is None:
        return "class-agnostic"
    names = (
        f": {', '.join(config.category_names)}"
        if config.category_names and len(config.category_names) <= 5
        else ""
    )
    return f"{config.num_classes - 1} classes{names}"


def _where(path):
    if not os.path.exists(path):
        return f"not downloaded (would be {path})"
    return f"{path} ({os.path.getsize(path) / 2**20:.0f} MB)"


def model_rows() -> List[Tuple[str, ...]]:
    """(name, preset, classes, trained on, file or cache state, source) of every model."""
    bundled = checkpoint_config(read_checkpoint_file(BUNDLED_CHECKPOINT), BUNDLED_CHECKPOINT)
    rows = [
        (
            "tiny_synthetic (bundled)",
            bundled.name,
            _classes(bundled),
            "the synthetic OVIS-like videos of `stemseg-fast synthesize` (make demo)",
            _where(BUNDLED_CHECKPOINT),
            "shipped with the package",
        )
    ]
    cache = official_checkpoint_cache_dir()
    for name, url in OFFICIAL_CHECKPOINT_URLS.items():
        preset = OFFICIAL_CHECKPOINT_PRESETS.get(name)
        rows.append(
            (
                name,
                preset or "(backbone)",
                _classes(PRESETS[preset]) if preset else "-",
                OFFICIAL_CHECKPOINT_TRAINING[name],
                _where(os.path.join(cache, f"{name}.pth")),
                url,
            )
        )
    return rows


def _command(args):
    for name, preset, classes, trained_on, where, source in model_rows():
        print(
            f"{name}\n  preset   {preset}, {classes}\n  trained  {trained_on}\n"
            f"  file     {where}\n  source   {source}"
        )
    print(
        "\nUse a name with `infer --checkpoint NAME` (downloaded once, checked, cached); "
        "offline, place a file downloaded by hand at the path shown. The ovis preset "
        "(X-101, the OVIS challenge model) has no released weights: train it with "
        "`stemseg-fast train --config training/configs/ovis.yaml`; fine-tune any model by setting "
        "init_weights in a training config (a name above, or a checkpoint file)."
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models: official checkpoints, the bundled one, where each is",
        description=plain_text(__doc__),
    )
    parser.set_defaults(func=_command)
