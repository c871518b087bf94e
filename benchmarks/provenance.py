"""Where a result came from, and the README tables rendered from results: shared by every
benchmark script (run.py's conftest, compiled.py, host_path.py, report.py, static_table.py)."""

import os
import subprocess

from stemseg_fast.io.files import atomic_output

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_commit():
    """HEAD of the checkout the benchmarks run from ("unknown" outside git)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def replace_between_markers(readme, text, start, end):
    """Put ``text`` between the ``start`` and ``end`` marker lines of ``readme`` (atomically)."""
    with open(readme, encoding="utf-8") as handle:
        content = handle.read()
    if start not in content or end not in content:
        raise SystemExit(f"{readme}: markers {start} / {end} not found")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    with atomic_output(readme) as partial:
        with open(partial, "w", encoding="utf-8") as out:
            out.write(f"{head}{start}\n{text}\n{end}{tail}")


def publish(text, readme, start, end):
    """Print a rendered table and, with ``readme``, put it between the markers there."""
    print(text)
    if readme:
        replace_between_markers(readme, text, start, end)
