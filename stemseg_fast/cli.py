"""The ``stemseg-fast`` command: thin subcommands over the Python API.

Each subcommand lives in the module that owns its feature and exposes
``add_parser(subparsers)``, which registers the subcommand and sets ``func`` on its parser to a
callable taking the parsed arguments and returning an exit code.
"""
import argparse
import importlib
import os
import re
import signal
import sys
import threading
import warnings

SUBCOMMAND_MODULES = (
    "stemseg_fast.demo",
    "stemseg_fast.datasets_cli",
    "stemseg_fast.outputs.cli",
    "stemseg_fast.inference.cli",
    "stemseg_fast.evaluation.cli",
    "stemseg_fast.training.train",
    "stemseg_fast.synthetic",
    "stemseg_fast.model.cli",
)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2, no traceback."""


_ROLE = re.compile(r":(?:func|class|meth|mod|attr):`~?([^`]+)`")


def plain_text(docstring: str) -> str:
    """A docstring as help text: reStructuredText markup (````code````, ``:func:`x```) dropped."""
    return _ROLE.sub(r"\1", docstring).replace("``", "")


class _OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2, like every other error (``--help`` shows the
    usage)."""

    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _in_range(convert, kind, low, high, shown):
    """An argparse ``type`` converting with ``convert`` and accepting ``[low, high]`` only."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not low <= value <= high:  # NaN fails both
            raise argparse.ArgumentTypeError(
                f"must be in [{shown(low)}, {shown(high)}], got {text.strip()}")
        return value
    return parse


def integer_in(low: int, high: int):
    """An argparse ``type``: an integer in ``[low, high]``."""
    return _in_range(int, "an integer", low, high, str)


def number_in(low: float, high: float):
    """An argparse ``type``: a finite number in ``[low, high]``."""
    return _in_range(float, "a number", low, high, "{:g}".format)


def build_parser():
    parser = _OneLineErrorParser(
        prog="stemseg-fast",
        description="STEm-Seg video instance segmentation with Triton kernels.",
    )
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so every ``finally`` (the atomic writers'
    clean-up of their temporaries) runs before the process ends."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def is_termination(interruption) -> bool:
    """Whether a ``KeyboardInterrupt`` came from SIGTERM rather than Ctrl-C."""
    return isinstance(interruption, _Terminated)


def _one_line_warning(command):
    """Warnings as one plain line, ``stemseg-fast <command>: warning: ...``, instead of Python's
    two-line form that echoes a line of the library's source."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"stemseg-fast {command}: warning: {message}", file=file or sys.stderr)
    return show


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed as one line
        return stop.code

    from stemseg_fast.model.checkpoints import CheckpointMismatchError

    # Commands that must checkpoint on SIGTERM (training) install their own handler; signal
    # handlers can only be set from the main thread (an embedding program may call us elsewhere).
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return args.func(args) or 0
    except BrokenPipeError:  # `stemseg-fast models | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")
        return 0
    except (CommandError, ValueError, TypeError, OSError, CheckpointMismatchError) as error:
        if args.traceback:
            raise
        print(f"stemseg-fast {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interruption:
        if args.traceback:
            raise
        terminated = is_termination(interruption)
        print(f"stemseg-fast {args.command}: {'terminated' if terminated else 'interrupted'}; "
              f"no partial output was left", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
