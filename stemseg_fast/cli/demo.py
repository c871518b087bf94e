"""``stemseg-fast demo``: see :mod:`stemseg_fast.demo`."""

import argparse

from stemseg_fast.demo import __doc__ as DEMO_DOC
from stemseg_fast.demo import run_demo
from stemseg_fast.inference.predictor import BACKENDS
from stemseg_fast.model.checkpoints import BUNDLED_CHECKPOINT

from .arguments import integer_in, plain_text


def _command(args):
    return run_demo(
        args.out,
        checkpoint=args.checkpoint,
        videos=args.videos,
        device=args.device,
        backend=args.backend,
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="synthesize videos, segment them, score them", description=plain_text(DEMO_DOC)
    )
    parser.add_argument("--out", default="demo_output", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--checkpoint",
        default=BUNDLED_CHECKPOINT,
        help="model checkpoint (default: the bundled tiny synthetic model)",
    )
    parser.add_argument(
        "--videos", type=integer_in(1, 1000), default=6, help="held-out videos to draw"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.set_defaults(func=_command)
