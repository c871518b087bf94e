"""Run the benchmark suite on whatever device exists and keep the raw result.

    python benchmarks/run.py [--quick] [--out DIR] [--part NAME] [-- BENCHMARK FILES / pytest args]

Writes ``benchmarks/results/<device-slug>/<yyyy-mm-dd>[-<part>].json`` (pytest-benchmark JSON
with the device, torch/triton/Python versions, git commit and date in ``machine_info``) unless
``--out`` names another folder. ``--quick`` runs fewer rounds (for the time-boxed GPU runbook),
``--part`` names a run of some of the files, so a time limit hitting one part keeps the others.
The file is rewritten after every finished benchmark (``bench_progress.py``): a part that fails
or is killed keeps what finished (``run_status`` in the file says how it ended).
"""

import argparse
import datetime
import os
import re
import subprocess
import sys

import torch

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))


def device_slug():
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=os.path.join(BENCHMARKS_DIR, "results"),
        help="folder that gets <device-slug>/<date>.json",
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds per benchmark")
    parser.add_argument(
        "--part",
        default="",
        help="suffix of the result file, <date>-<part>.json, for a run of some "
        "of the benchmark files (pass the files after --)",
    )
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)

    target_dir = os.path.join(args.out, device_slug())
    os.makedirs(target_dir, exist_ok=True)
    today = datetime.date.today().isoformat()
    target = os.path.join(target_dir, f"{today}-{args.part}.json" if args.part else f"{today}.json")
    environment = dict(os.environ)
    if args.quick:
        environment["STEMSEG_FAST_BENCH_QUICK"] = "1"
    selection = args.pytest_args or [BENCHMARKS_DIR]
    # bench_progress rewrites the result after every finished benchmark: a failing or killed
    # part keeps what finished, and a part that finished nothing leaves no file.
    environment["STEMSEG_FAST_BENCH_RESULT"] = target
    if os.path.exists(target):
        os.unlink(target)  # an earlier run's file of the same day would pass for this one's
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "bench_progress",
        "--benchmark-columns=median,iqr,rounds",
        "--benchmark-sort=name",
    ]
    result = subprocess.run(command + selection, cwd=BENCHMARKS_DIR, env=environment)
    if not os.path.exists(target):
        print(
            f"benchmarks failed (exit {result.returncode}); no benchmark finished, no result "
            "written",
            file=sys.stderr,
        )
        return result.returncode or 1
    if result.returncode != 0:
        print(
            f"benchmarks failed (exit {result.returncode}); kept the benchmarks that finished "
            f"in {os.path.relpath(target)}",
            file=sys.stderr,
        )
        return result.returncode
    print(f"wrote {os.path.relpath(target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
