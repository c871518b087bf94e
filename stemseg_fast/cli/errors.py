"""How the command line fails: one line, an exit code, no traceback (``--traceback`` shows it).

A :class:`CommandError` (or a ``ValueError``/``OSError`` from the library, which names the
argument or file at fault) prints as ``stemseg-fast <command>: error: ...`` with exit code 2;
a programming error (``TypeError``, ``AttributeError``, ...) keeps its traceback. SIGTERM is
raised in the main thread like Ctrl-C, so every ``finally`` (the atomic writers' clean-up of
their temporaries) runs: exit code 143, or 130 for Ctrl-C.
"""

import argparse
import sys
from types import FrameType
from typing import Callable, NoReturn, Optional


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2, no traceback."""


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2, like every other error (``--help`` shows the
    usage)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so every ``finally`` (the atomic writers'
    clean-up of their temporaries) runs before the process ends."""


def raise_terminated(signum: int, frame: Optional[FrameType]) -> NoReturn:
    raise Terminated()


def is_termination(interruption: BaseException | None) -> bool:
    """Whether a ``KeyboardInterrupt`` came from SIGTERM rather than Ctrl-C."""
    return isinstance(interruption, Terminated)


def one_line_warning(command: str) -> Callable[..., None]:
    """Warnings as one plain line, ``stemseg-fast <command>: warning: ...``, instead of Python's
    two-line form that echoes a line of the library's source."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"stemseg-fast {command}: warning: {message}", file=file or sys.stderr)

    return show
