"""The GPU runbook (benchmarks/gpu_check.sh) run end to end on CPU, with a benchmark part that
fails and one that hits its time limit: every benchmark that finished is kept, the report is
rendered from both parts, each step's exit status and elapsed seconds are noted, and $OUT
stays within the 8 files the device tool brings back."""

import json
import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNBOOK = os.path.join(REPO, "benchmarks", "gpu_check.sh")
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import report  # noqa: E402  (benchmarks/report.py)

FAILING_PART = """
def test_first_of_failing_part(benchmark):
    benchmark(sum, range(100))

def test_breaks(benchmark):
    raise RuntimeError("a fake failure in the middle of a part")

def test_last_of_failing_part(benchmark):
    benchmark(sum, range(100))
"""
TIMED_OUT_PART = """
import time

def test_before_the_hang(benchmark):
    benchmark(sum, range(100))

def test_hangs():
    time.sleep(600)

def test_never_reached(benchmark):
    benchmark(sum, range(100))
"""
PASSING_TESTS = """
def test_passes():
    assert 1 + 1 == 2
"""


def _without_interpreter():
    return {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}


def _benchmark_names(path):
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return {bench["name"] for bench in data["benchmarks"]}, data["run_status"]


@pytest.mark.slow
def test_runbook_keeps_every_finished_benchmark(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "bench_fails.py").write_text(FAILING_PART)
    (parts / "bench_hangs.py").write_text(TIMED_OUT_PART)
    (parts / "check_passes.py").write_text(PASSING_TESTS)
    out = tmp_path / "out"
    environment = dict(
        _without_interpreter(),
        OUT=str(out),
        PYTHON=sys.executable,
        RUNBOOK_ALLOW_CPU="1",
        RUNBOOK_SKIP_INSTALL="1",
        RUNBOOK_TESTS=str(parts / "check_passes.py"),
        RUNBOOK_OPS_FILES=str(parts / "bench_fails.py"),
        RUNBOOK_MODEL_FILES=str(parts / "bench_hangs.py"),
        RUNBOOK_LIMITS="60 60 20 30 30",
        PATH=os.pathsep.join(
            p
            for p in os.environ["PATH"].split(os.pathsep)
            if not os.path.exists(os.path.join(p, "ncu"))
        ),
    )
    result = subprocess.run(
        ["bash", RUNBOOK], cwd=REPO, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stdout + result.stderr

    runbook = (out / "runbook.txt").read_text()
    assert "step tests: exit 0" in runbook
    assert "step bench-ops: exit 1 after" in runbook
    assert "step bench-model: exit 124 (time limit hit) after" in runbook
    assert "step profile: exit 2" in runbook  # gpu_profile.py refuses to run without CUDA
    assert "step ncu: skipped" in runbook

    results = list((out / "results").glob("*/*.json"))
    by_part = {path.stem.rsplit("-", 1)[1]: path for path in results}
    assert set(by_part) == {"ops", "model"}
    names, status = _benchmark_names(by_part["ops"])
    assert names == {"test_first_of_failing_part", "test_last_of_failing_part"}
    assert status == {"finished": True, "exit_status": 1}
    names, status = _benchmark_names(by_part["model"])
    assert names == {"test_before_the_hang"}
    assert status["finished"] is False

    rendered = (out / "report.md").read_text()
    assert "test_first_of_failing_part" in rendered and "test_before_the_hang" in rendered
    assert "incomplete run" in rendered

    files = [path for path in out.rglob("*") if path.is_file()]
    assert len(files) <= 8, sorted(str(path.relative_to(out)) for path in files)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the check is for machines without CUDA")
def test_runbook_stops_without_cuda(tmp_path):
    environment = dict(_without_interpreter(), OUT=str(tmp_path), PYTHON=sys.executable)
    result = subprocess.run(
        ["bash", RUNBOOK], cwd=REPO, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "torch.cuda.is_available() is False" in result.stderr
    assert not (tmp_path / "results").exists()


def test_report_skips_an_unreadable_result(tmp_path, capsys):
    good = tmp_path / "2026-01-01-ops.json"
    good.write_text(
        json.dumps(
            {
                "machine_info": {"device": "fake"},
                "benchmarks": [
                    {
                        "name": "test_kept",
                        "group": "g",
                        "params": {},
                        "extra_info": {},
                        "stats": {"median": 0.001},
                    }
                ],
            }
        )
    )
    empty = tmp_path / "2026-01-01-model.json"
    empty.write_text("")  # a part killed before it wrote anything
    assert report.main([str(empty), str(good)]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and str(empty) in captured.err
    assert "| g |" in captured.out
