"""Does the warp count matter? The costliest launches of a static sm_90 report recompiled at
other ``num_warps`` (same blocks, same grid), each read as the report reads it. Static
estimates, not measurements; no GPU needed.

    python benchmarks/static_sweep.py [REPORT.json] [--top N] [--warps 2 4 8] [--out PATH]

A launch is taken from the report's own record of its arguments; ``--top`` picks the N distinct
launches with the largest estimated H100 time (count x predicted) over all ops, presets and
variants. Writes ``benchmarks/results/sm90-sweep/<yyyy-mm-dd>.json`` unless ``--out`` names
another file.
"""

import argparse
import datetime
import importlib
import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCHMARKS_DIR)

from compiled import LABEL, analyse_launch  # noqa: E402
from provenance import git_commit  # noqa: E402
from static_table import newest_report  # noqa: E402

from stemseg_fast.io.files import atomic_output  # noqa: E402

KERNEL_MODULES = (
    "embedding_loss",
    "gaussian_probability",
    "greedy_cluster",
    "group_norm_relu_pool",
    "instance_gaussians",
    "lovasz_hinge",
    "upsample_add",
)


def kernel_module(kernel):
    """The ``stemseg_fast.kernels`` module defining ``kernel``."""
    for name in KERNEL_MODULES:
        module = f"stemseg_fast.kernels.{name}"
        if hasattr(importlib.import_module(module), kernel):
            return module
    raise LookupError(f"no kernel module defines {kernel}")


def _analyse(job):
    launch, num_warps = job
    launch = dict(launch, kwargs=dict(launch["kwargs"], num_warps=num_warps))
    try:
        analysis = analyse_launch(launch)
    except Exception as error:  # a config that does not compile is a result too
        return {"num_warps": num_warps, "error": f"{type(error).__name__}: {error}"[:300]}
    return {
        "num_warps": num_warps,
        "predicted_us": analysis["predicted_us"]["h100"],
        "registers": analysis["registers"],
        "ctas_per_sm": analysis["ctas_per_sm"],
        "issue_time_us": analysis["issue_time_us"],
        "memory_time_us": analysis["memory_time_us"]["h100"],
    }


def sweep(report, top, warps, jobs):
    distinct = {}
    for row in report["launches"]:
        if "error" in row:
            continue
        key = json.dumps([row["kernel"], row["arguments"], row["grid"]], sort_keys=True)
        entry = distinct.setdefault(key, {"row": row, "weight_us": 0.0, "where": []})
        entry["weight_us"] += row["count"] * row["predicted_us"]["h100"]
        entry["where"].append(f"{row['op']}/{row['pass']}/{row['variant'] or '-'}/{row['preset']}")
    chosen = sorted(distinct.values(), key=lambda entry: -entry["weight_us"])[:top]
    launches = [
        {
            "module": kernel_module(entry["row"]["kernel"]),
            "kernel": entry["row"]["kernel"],
            "args": entry["row"]["arguments"]["args"],
            "kwargs": {
                k: v for k, v in entry["row"]["arguments"]["kwargs"].items() if k != "num_warps"
            },
            "grid": entry["row"]["grid"],
        }
        for entry in chosen
    ]
    jobs_list = [(launch, num_warps) for launch in launches for num_warps in warps]
    context = multiprocessing.get_context("spawn")  # as compiled.py: no forked CUDA/Triton state
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        results = list(pool.map(_analyse, jobs_list))
    rows = []
    for index, (entry, launch) in enumerate(zip(chosen, launches)):
        row = entry["row"]
        rows.append(
            {
                "kernel": launch["kernel"],
                "grid": launch["grid"],
                "current_num_warps": row["num_warps"],
                "current_us": row["predicted_us"]["h100"],
                "weight_us": entry["weight_us"],
                "where": entry["where"],
                "configs": results[index * len(warps) : (index + 1) * len(warps)],
            }
        )
    return rows


def render(sweep_report):
    lines = [
        f"{LABEL}: num_warps sweep of `{sweep_report['report']}` (commit "
        f"{sweep_report['git_commit'][:10]}), H100 µs per launch",
        "",
        "| kernel | grid | now | "
        + " | ".join(f"{w} warps" for w in sweep_report["warps"])
        + " | best / now |",
        "|---|---|---:|" + "---:|" * (len(sweep_report["warps"]) + 1),
    ]
    for row in sweep_report["rows"]:
        times = {c["num_warps"]: c.get("predicted_us") for c in row["configs"]}
        valid = [t for t in times.values() if t is not None]
        best = min(valid) if valid else float("nan")
        cells = " | ".join(
            "–" if times[w] is None else f"{times[w]:.2f}" for w in sweep_report["warps"]
        )
        lines.append(
            f"| {row['kernel']} | {row['grid']} | {row['current_num_warps']} | {cells} | "
            f"{best / row['current_us']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", help="static report (default: the newest)")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--warps", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--out", help="result file (default: results/sm90-sweep/DATE.json)")
    args = parser.parse_args(argv)
    path = args.report or newest_report()
    with open(path, encoding="utf-8") as handle:
        report = json.load(handle)
    sweep_report = {
        "label": LABEL,
        "date": datetime.date.today().isoformat(),
        "git_commit": git_commit(),
        "report": os.path.relpath(os.path.abspath(path), os.path.dirname(BENCHMARKS_DIR)),
        "warps": args.warps,
        "rows": sweep(report, args.top, args.warps, args.jobs),
    }
    out = args.out or os.path.join(
        BENCHMARKS_DIR, "results", "sm90-sweep", f"{sweep_report['date']}.json"
    )
    with atomic_output(out) as partial:
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(sweep_report, handle, indent=1)
    print(render(sweep_report))


if __name__ == "__main__":
    main()
