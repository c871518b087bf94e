"""Every benchmark script starts: its imports resolve against today's package layout (a
renamed module otherwise breaks a script that no other test runs)."""

import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")
SCRIPTS = sorted(
    name
    for name in os.listdir(BENCHMARKS)
    if name.endswith(".py")
    and not name.startswith("test_")
    and 'if __name__ == "__main__"' in open(os.path.join(BENCHMARKS, name)).read()
)


def test_the_scripts_are_found():
    assert {"compiled.py", "static_sweep.py", "lovasz_sort.py", "host_path.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_script_starts(script):
    done = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, script), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()
