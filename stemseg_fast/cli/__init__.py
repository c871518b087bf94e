"""The ``stemseg-fast`` command (also ``python -m stemseg_fast``, e.g. under torchrun): thin
subcommands over the Python API, one module each.

Each subcommand module exposes ``add_parser(subparsers)``, which registers the subcommand and
sets ``func`` on its parser to a callable taking the parsed arguments and returning an exit
code. How errors print: :mod:`stemseg_fast.cli.errors`.
"""

import os
import signal
import sys
import threading
import warnings
from typing import Optional, Sequence

from . import datasets, demo, evaluate, infer, models, render, synthesize, train
from .errors import (
    CommandError,
    OneLineErrorParser,
    is_termination,
    one_line_warning,
    raise_terminated,
)

SUBCOMMANDS = (demo, datasets, render, infer, evaluate, train, synthesize, models)
__all__ = ["CommandError", "build_parser", "main"]


def build_parser() -> OneLineErrorParser:
    parser = OneLineErrorParser(
        prog="stemseg-fast",
        description="STEm-Seg video instance segmentation with Triton kernels.",
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an error instead of one line",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one ``stemseg-fast`` command line (``sys.argv[1:]`` by default); returns its exit
    code (never raises ``SystemExit``)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed as one line
        return stop.code

    # Commands that must checkpoint on SIGTERM (training) install their own handler; signal
    # handlers can only be set from the main thread (an embedding program may call us elsewhere).
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if in_main_thread else None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning(args.command)
            return args.func(args) or 0
    except BrokenPipeError:  # `stemseg-fast models | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")
        return 0
    except (CommandError, ValueError, OSError) as error:
        if args.traceback:
            raise
        print(f"stemseg-fast {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interruption:
        if args.traceback:
            raise
        terminated = is_termination(interruption)
        print(
            f"stemseg-fast {args.command}: {'terminated' if terminated else 'interrupted'}; "
            f"no partial output was left",
            file=sys.stderr,
        )
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
