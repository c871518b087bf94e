"""Do the tile sizes matter? Each kernel module's tile constants set to other values, the op's
launches recorded again at its benchmark presets (grids follow the tiles, as the entry points
compute them) and read as the static sm_90 report reads them (``compiled.py``). Static
estimates, not measurements; no GPU needed.

    python benchmarks/tile_sweep.py [--only LABEL ...] [--jobs N] [--out PATH] [--readme README.md]
    python benchmarks/tile_sweep.py --from RESULT.json --readme README.md   (render only)

Per constant and value: the predicted H100 µs of the launches of the constant's own kernel
module, summed over the op's presets, passes and variants, against the current value; most
registers and local (spill) bytes of those launches; and whether every launch compiled. Writes
``benchmarks/results/sm90-tiles/<yyyy-mm-dd>.json`` unless ``--out`` names another file;
``--readme`` renders the table between ``<!-- sm90-tiles:start -->`` and
``<!-- sm90-tiles:end -->``.
"""

import argparse
import datetime
import importlib
import json
import os
import sys
from typing import Dict, List, NamedTuple, Tuple

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCHMARKS_DIR)

from compiled import LABEL, _plan, analysed_launches  # noqa: E402
from provenance import git_commit, replace_between_markers  # noqa: E402

from stemseg_fast.io.files import atomic_output  # noqa: E402

KERNELS = "stemseg_fast.kernels"
START, END = "<!-- sm90-tiles:start -->", "<!-- sm90-tiles:end -->"


class TileConstant(NamedTuple):
    """A tile constant: where it is set (every module that holds it by name), the op whose
    launches it shapes, the kernel modules whose launches are summed, the values tried."""

    label: str
    targets: Tuple[str, ...]
    op: str
    modules: Tuple[str, ...]
    values: Tuple[int, ...]


def _constant(module, name, op, values, *, also=(), launched_by=None):
    """``module.name``, also held by name in ``also``; its launches are those of
    ``launched_by`` (default: ``module`` itself)."""
    targets = tuple(f"{KERNELS}.{m}.{name}" for m in (module, *also))
    modules = tuple(f"{KERNELS}.{m}" for m in (launched_by or (module,)))
    return TileConstant(f"{module}.{name}", targets, op, modules, values)


_TSE_MODULES = ("group_norm_relu_pool", "upsample_add")


CONSTANTS = (
    _constant("greedy_cluster", "_BLOCK", "greedy_cluster", (512, 1024, 2048)),
    _constant("gaussian_probability", "_FWD_BLOCK_N", "gaussian_probability", (256, 512, 1024)),
    _constant("gaussian_probability", "_BWD_BLOCK_N", "gaussian_probability", (512, 1024, 2048)),
    _constant("lovasz_hinge", "_BLOCK", "lovasz_hinge", (512, 1024, 2048)),
    _constant("instance_gaussians", "_BLOCK_N", "instance_gaussians", (128, 256, 512)),
    _constant("embedding_loss", "_BLOCK_N", "embedding_loss", (64, 128, 256)),
    _constant("group_norm_relu_pool", "_STATS_BLOCK", "tse_decoder", (512, 1024, 2048)),
    _constant("group_norm_relu_pool", "_PROGRAMS_PER_SM", "tse_decoder", (4, 8, 16)),
    _constant("group_norm_relu_pool", "_APPLY_BLOCK", "tse_decoder", (512, 1024, 2048)),
    _constant(
        "_tse_common",
        "CHANNELS_LAST_TILE",
        "tse_decoder",
        (512, 1024, 2048),
        also=("group_norm_relu_pool",),
        launched_by=_TSE_MODULES,
    ),
    _constant(
        "_tse_common", "MAX_ROWS_PER_PROGRAM", "tse_decoder", (4, 8, 16), launched_by=_TSE_MODULES
    ),
)


def current_value(constant: TileConstant) -> int:
    module, name = constant.targets[0].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _summary(rows, modules):
    """Predicted µs, launches, registers, local memory of ``modules``' launches in ``rows``."""
    mine = [row for row in rows if row["module"] in modules]
    failed = [row for row in mine if "error" in row]
    compiled = [row for row in mine if "error" not in row]
    summary = {
        "launches": sum(row["count"] for row in mine),
        "failed": len(failed),
        "predicted_us": sum(row["count"] * row["predicted_us"]["h100"] for row in compiled),
        "max_registers": max((row["registers"] for row in compiled), default=None),
        "local_bytes": max((row["local_bytes"] for row in compiled), default=None),
    }
    if failed:
        summary["error"] = failed[0]["error"][:300]
    return summary


def sweep_constant(constant: TileConstant, jobs: int) -> Dict:
    """Every value of ``constant`` (the current one included) read at the op's presets."""
    plan = _plan(None, [constant.op])
    results = []
    for value in constant.values:
        patches = {target: value for target in constant.targets}
        try:
            rows = analysed_launches(plan, patches=patches, jobs=jobs)
        except RuntimeError as error:  # the entry point refused the value: a result too
            results.append({"value": value, "error": str(error).strip().splitlines()[-1][:300]})
            continue
        results.append({"value": value, **_summary(rows, constant.modules)})
    return {
        "constant": constant.label,
        "op": constant.op,
        "presets": sorted({preset for _, preset in plan}),
        "current": current_value(constant),
        "values": results,
    }


def render(report: Dict, path: str) -> str:
    lines = [
        f"{LABEL}: tile sweep `{path}` (commit {report['git_commit'][:10]}), predicted H100 µs "
        "of the constant's own kernels over its op's benchmark presets",
        "",
        "| constant | value | µs | / current | registers (max) | local bytes (max) | compiled |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for entry in report["constants"]:
        now = next(
            (v.get("predicted_us") for v in entry["values"] if v["value"] == entry["current"]),
            None,
        )
        for result in entry["values"]:
            mark = " (current)" if result["value"] == entry["current"] else ""
            if "predicted_us" not in result:
                lines.append(
                    f"| {entry['constant']} | {result['value']}{mark} | – | – | – | – | "
                    f"refused: {result['error']} |"
                )
                continue
            ratio = f"{result['predicted_us'] / now:.2f}" if now else "–"
            compiled = "all" if not result["failed"] else f"{result['failed']} failed"
            lines.append(
                f"| {entry['constant']} | {result['value']}{mark} | "
                f"{result['predicted_us']:.1f} | {ratio} | {result['max_registers']} | "
                f"{result['local_bytes']} | {compiled} |"
            )
    return "\n".join(lines)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    labels = [constant.label for constant in CONSTANTS]
    parser.add_argument("--only", nargs="+", metavar="LABEL", help=f"some of: {', '.join(labels)}")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--out", help="result file (default: results/sm90-tiles/DATE.json)")
    parser.add_argument("--from", dest="result", help="render this result file, sweep nothing")
    parser.add_argument("--readme", help="render the table into this file between the markers")
    args = parser.parse_args(argv)
    if args.result:
        with open(args.result, encoding="utf-8") as handle:
            report = json.load(handle)
        _publish(report, args.result, args.readme)
        return 0
    for label in args.only or ():
        if label not in labels:
            parser.error(
                f"--only: unknown constant {label!r} (expected one of {', '.join(labels)})"
            )
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("TRITON_INTERPRET=1 is set: the sweep compiles kernels, unset it")
    chosen = [c for c in CONSTANTS if not args.only or c.label in args.only]
    report = {
        "label": LABEL,
        "date": datetime.date.today().isoformat(),
        "git_commit": git_commit(),
        "constants": [sweep_constant(constant, args.jobs) for constant in chosen],
    }
    out = args.out or os.path.join(
        BENCHMARKS_DIR, "results", "sm90-tiles", f"{report['date']}.json"
    )
    with atomic_output(out) as partial:
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
            handle.write("\n")
    _publish(report, out, args.readme)
    return 0


def _publish(report, path, readme):
    table = render(report, os.path.relpath(os.path.abspath(path), os.path.dirname(BENCHMARKS_DIR)))
    print(table)
    if readme:
        replace_between_markers(readme, table, START, END)


if __name__ == "__main__":
    sys.exit(main())
