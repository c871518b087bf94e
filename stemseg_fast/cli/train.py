"""``stemseg-fast train``: the training loop of :mod:`stemseg_fast.training.train` from a YAML
config (``torchrun --nproc_per_node N -m stemseg_fast train ...`` for several GPUs)."""

import argparse
import dataclasses
import logging
import sys

from stemseg_fast.training.train import __doc__ as TRAIN_DOC
from stemseg_fast.training.train import load_train_config, run


def _command(args):
    config = load_train_config(args.config, args.set)
    if args.run_dir:
        config = dataclasses.replace(config, run_dir=args.run_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    final = run(config, device=args.device)
    if final is None:
        print(
            f"training stopped early; run the same command again to resume from the newest "
            f"checkpoint in {config.run_dir}",
            file=sys.stderr,
        )
        return 3
    print(f"wrote {final}")
    return 0


def _add_arguments(parser):
    parser.add_argument("--config", required=True, help="training YAML (training/configs/)")
    parser.add_argument("--run-dir", help="checkpoints and logs (default: the config's run_dir)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set loop.max_steps=100",
    )
    parser.add_argument("--device", help="default: cuda:<LOCAL_RANK> when CUDA exists, else cpu")
    parser.set_defaults(func=_command)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a STEm-Seg model",
        description=TRAIN_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  stemseg-fast train --config training/configs/ovis.yaml "
        "--set loop.max_steps=1000\n  torchrun --nproc_per_node 4 -m "
        "stemseg_fast train --config training/configs/ovis.yaml",
    )
    _add_arguments(parser)
