"""Every kernel the test suite launches compiles for an H100 (sm_90), with the specialisation a
real launch gets (Triton's own binder, see benchmarks/compiled.py), checked on a machine
without a GPU: the interpreter runs the kernel tests once while launch_recorder.py notes each
launch's signature and constants, then Triton's own compiler (and the ptxas its wheel ships)
builds every recorded launch down to a cubin. The interpreter does not type-check like the
compiler does, so this catches what only a compiled run would show."""

import os
import subprocess
import sys

import pytest
import torch

KERNEL_TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(KERNEL_TESTS))


def record_launches(tmp_path, *test_paths):
    """Run ``test_paths`` under the interpreter with the launch recorder; returns the record
    file and the environment to compile its launches in (no interpreter, a private cache)."""
    record = tmp_path / "launches.jsonl"
    environment = dict(
        os.environ,
        STEMSEG_FAST_LAUNCH_RECORD=str(record),
        PYTHONPATH=os.pathsep.join(filter(None, [KERNEL_TESTS, os.environ.get("PYTHONPATH")])),
    )
    recorded = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "not slow",
            "-p",
            "launch_recorder",
            "-p",
            "no:cacheprovider",
            *map(str, test_paths),
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert recorded.returncode == 0, recorded.stdout[-3000:]
    compiled_environment = {
        key: value for key, value in environment.items() if key != "TRITON_INTERPRET"
    }
    compiled_environment["TRITON_CACHE_DIR"] = str(tmp_path / "triton_cache")
    return record, compiled_environment


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU compiles every kernel for real")
def test_every_launched_kernel_compiles_for_hopper(tmp_path):
    record, compiled_environment = record_launches(
        tmp_path,
        os.path.join(REPO, "tests", "kernels"),
        os.path.join(REPO, "tests", "model", "test_decoder.py"),
    )
    assert record.stat().st_size > 0
    result = subprocess.run(
        [sys.executable, os.path.join(KERNEL_TESTS, "hopper_compile.py"), str(record)],
        cwd=REPO,
        env=compiled_environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "for sm_90, 0 failed" in result.stdout
