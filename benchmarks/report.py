"""Render the speed-up tables from committed benchmark results.

    python benchmarks/report.py [RESULT.json ...] [--readme README.md]

Without files, reads the newest result of every device under ``benchmarks/results/``. One table
per device: each benchmark group (op, pass, preset) with the median time of every variant
(backend, loss implementation or inference path; CUDA-event median where measured on a GPU),
the speed-up of the fast variant over the eager baseline and over the torch.compile (Inductor)
baseline in the same run, achieved GB/s and peak memory. ``--readme`` replaces the text between the markers
``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` in that file (atomically).
"""

import argparse
import glob
import json
import os
import re
import sys
from collections import defaultdict

from provenance import publish

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


# pytest-benchmark runs are <yyyy-mm-dd>[-<part>].json; the static report's folder and the
# host-path files have their own renderers (static_table.py, host_path.py).
RUN_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}(-[\w-]+)?\.json$")
OTHER_REPORTS = ("sm90-static",)


def newest_results():
    """Per device, every result file of its newest date (a run may be split in parts)."""
    files = []
    for device_dir in sorted(glob.glob(os.path.join(RESULTS_DIR, "*"))):
        if os.path.basename(device_dir) in OTHER_REPORTS:
            continue
        dated = sorted(
            path
            for path in glob.glob(os.path.join(device_dir, "*.json"))
            if RUN_FILE.match(os.path.basename(path))
        )
        if dated:
            newest = os.path.basename(dated[-1])[:10]  # yyyy-mm-dd
            files += [path for path in dated if os.path.basename(path).startswith(newest)]
    return files


VARIANT_PARAMETERS = ("backend", "variant", "losses", "path")
BASELINES = ("loop_reference", "reference")  # the first present is the speed-up's numerator
FAST_VARIANTS = ("triton", "fused", "fast")


def _variant_of(bench):
    params = bench.get("params") or {}
    for key in VARIANT_PARAMETERS:
        if key in params:
            return str(params[key])
    return "time"  # one implementation only: no comparison in the group


COMPILED = "compiled"  # the reference compiled by torch.compile (Inductor)


def _speedup(times, baseline_names=BASELINES):
    baseline = next((times[name] for name in baseline_names if name in times), None)
    fast = next((times[name] for name in FAST_VARIANTS if name in times), None)
    if baseline is None or not fast:
        return "–"
    return f"{baseline / fast:.1f}×"


def _median_ms(bench):
    info = bench.get("extra_info", {})
    if "cuda_ms_median" in info:
        return info["cuda_ms_median"]
    return bench["stats"]["median"] * 1e3


def _format_ms(ms):
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def render(path):
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    machine = data.get("machine_info", {})
    groups = defaultdict(dict)
    for bench in data.get("benchmarks", []):
        groups[bench.get("group") or bench["name"]][_variant_of(bench)] = bench
    order = ("time",) + BASELINES + ("batched_reference", COMPILED) + FAST_VARIANTS
    backends = sorted(
        {backend for group in groups.values() for backend in group},
        key=lambda b: (order.index(b) if b in order else len(order), b),
    )
    status = data.get("run_status") or {}
    ending = ""
    if status.get("finished") is False:
        ending = f" — **incomplete run** (stopped after {status.get('last_test', '?')})"
    elif status.get("exit_status"):
        ending = f" — **pytest exit {status['exit_status']}** (failed tests left out)"
    lines = [
        f"**{machine.get('device', '?')}** — torch {machine.get('torch_version', '?')}, "
        f"triton {machine.get('triton_version', '?')}, Python {machine.get('python_version', '?')}, "
        f"commit {str(machine.get('git_commit', '?'))[:10]}, {data.get('datetime', machine.get('date', '?'))} "
        f"(`{os.path.relpath(path)}`){ending}",
        "",
        "| benchmark | "
        + " | ".join(f"{b} (ms)" for b in backends)
        + " | speed-up | vs compiled | GB/s | peak MiB |",
        "|---|" + "---:|" * (len(backends) + 4),
    ]
    for name in sorted(groups):
        group = groups[name]
        times = {backend: _median_ms(bench) for backend, bench in group.items()}
        cells = [_format_ms(times[b]) if b in times else "–" for b in backends]
        speedup = _speedup(times)
        versus_compiled = _speedup(times, (COMPILED,))
        fastest = next(
            (group[name] for name in FAST_VARIANTS if name in group), next(iter(group.values()))
        )
        info = fastest.get("extra_info", {})
        gbps = "–"
        if "gbps" in info:
            gbps = f"{info['gbps']:.0f}"
        elif "bytes_moved" in info:
            gbps = f"{info['bytes_moved'] / (_median_ms(fastest) * 1e-3) / 1e9:.1f}"
        peak = f"{info['peak_memory_bytes'] / 2**20:.0f}" if "peak_memory_bytes" in info else "–"
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {speedup} | {versus_compiled} | {gbps} | {peak} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", help="result JSON files (default: newest per device)")
    parser.add_argument("--readme", help="write the tables into this file between the markers")
    args = parser.parse_args(argv)
    files = args.results or newest_results()
    if not files:
        print("no benchmark results yet: run `make bench`", file=sys.stderr)
        return 1
    tables = []
    for path in files:
        try:
            tables.append(render(path))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            # a part that died while writing must not take the other parts' report with it
            print(
                f"skipped {path}: unreadable result ({type(error).__name__}: {error})",
                file=sys.stderr,
            )
    if not tables:
        print("no readable benchmark result", file=sys.stderr)
        return 1
    text = "\n\n".join(tables)
    publish(text, args.readme, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
