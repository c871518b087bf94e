"""Render the static sm_90 report (benchmarks/compiled.py's JSON) as README tables.

    python benchmarks/static_table.py [REPORT.json] [--before EARLIER.json] [--readme README.md]

Without a file, reads the newest ``benchmarks/results/sm90-static/*.json``. Every time shown
is a static estimate, not a measurement.
"""

import argparse
import glob
import json
import os
import sys

from provenance import publish

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCHMARKS_DIR)
RESULTS_DIR = os.path.join(BENCHMARKS_DIR, "results", "sm90-static")
# The per-launch table in the README keeps to these presets (the JSON has every preset): the
# loss ops' and the decoder's first preset and the clustering's full-resolution one.
DETAIL_PRESETS = ("ytvis720_T8", "ovis_T8_fullres")
START, END = "<!-- sm90-static:start -->", "<!-- sm90-static:end -->"


def _us(value):
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _bytes(value):
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _widths(widths):
    parts = []
    for opcode in ("LDG", "STG"):
        if opcode in widths:
            parts.append(
                opcode
                + " "
                + "/".join(
                    f"{bits}×{count}"
                    for bits, count in sorted(
                        widths[opcode].items(), key=lambda item: -int(item[0])
                    )
                )
            )
    return ", ".join(parts) or "–"


def render_markdown(report, path=None, detail_presets=DETAIL_PRESETS):
    assumptions = report["assumptions"]
    versions = report["versions"]
    source = f" (`{os.path.relpath(os.path.abspath(path), REPO)}`)" if path else ""
    lines = [
        f"**sm_90, {report['label']}** — triton {versions['triton']}, {versions['ptxas']}, "
        f"commit {report['git_commit'][:10]}, {report['date']}{source}. Memory time at "
        f"{assumptions['bandwidth_tbps']['h100']} TB/s (H100) and "
        f"{assumptions['bandwidth_tbps']['h200']} TB/s (H200); issue time at "
        f"{assumptions['ipc_per_scheduler']} warp instruction per scheduler per cycle, "
        f"{assumptions['clock_ghz']} GHz, {assumptions['sm_count']} SMs; predicted = the "
        "larger; launch overhead not included.",
        "",
        "| op | pass | variant | preset | launches | predicted H100 (µs, est.) "
        "| predicted H200 (µs, est.) |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for total in report["totals"]:
        lines.append(
            f"| {total['op']} | {total['pass']} | {total['variant'] or '–'} | "
            f"{total['preset']} | {total['launches']} | "
            f"{_us(total['predicted_us']['h100'])} | {_us(total['predicted_us']['h200'])} |"
        )
    lines += [
        "",
        f"<details><summary>Every distinct kernel launch at {', '.join(detail_presets)} "
        "(static estimates; the JSON has every preset)</summary>",
        "",
        "| op | pass | variant | preset | kernel | × | grid | regs | spills | smem | "
        "CTAs/SM | waves | SASS/thread | SASS/output | LDG/STG bits×count | bytes | MFLOP | "
        "bound | H100 µs | H200 µs |",
        "|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    for row in sorted(
        report["launches"],
        key=lambda r: (r["op"], r["pass"], r["variant"], r["preset"], r["kernel"]),
    ):
        if row["preset"] not in detail_presets:
            continue
        if "error" in row:
            lines.append(
                f"| {row['op']} | {row['pass']} | {row['variant'] or '–'} | "
                f"{row['preset']} | `{row['kernel']}` | {row['count']} | "
                f"compile failed: {row['error'][:80]} |" + " |" * 14
            )
            continue
        per_output = row["sass_per_output_element"]
        marks = {"paired": "", "unrolled": "†"}
        per_thread = f"{row['sass_per_thread']:,}" + marks.get(row.get("loop_model"), "*")
        grid = "×".join(str(size) for size in row["grid"])
        lines.append(
            f"| {row['op']} | {row['pass']} | {row['variant'] or '–'} | {row['preset']} | "
            f"`{row['kernel']}` | {row['count']} | {grid} | {row['registers']} | "
            f"{row['spill_stores'] + row['spill_loads']} | {row['shared_bytes']} | "
            f"{row['ctas_per_sm']} | {row['waves']:.2f} | {per_thread} | "
            + (f"{per_output:.1f} | " if per_output is not None else "– | ")
            + f"{_widths(row['memory_widths_bits'])} | {_bytes(row['bytes_moved'])} | "
            f"{row['flops'] / 1e6:.1f} | "
            f"{row['bound_by']['h100']} | {_us(row['predicted_us']['h100'])} | "
            f"{_us(row['predicted_us']['h200'])} |"
        )
    lines += [
        "",
        "\\* loops not paired with the source: SASS counted once per instruction. "
        "† one source loop unrolled by ptxas: main loop weighted by trips // step, "
        "remainder loops by trips % step.",
        "",
        "</details>",
    ]
    return "\n".join(lines)


def render_comparison(before, after, before_path, after_path):
    """Predicted time per op before and after a kernel change, both static estimates."""

    def key(total):
        return (total["op"], total["pass"], total["variant"] or "–", total["preset"])

    earlier = {key(total): total for total in before["totals"]}
    lines = [
        f"**Before and after** (static estimates, not measurements): `"
        f"{os.path.relpath(os.path.abspath(before_path), REPO)}` (commit "
        f"{before['git_commit'][:10]}) → `{os.path.relpath(os.path.abspath(after_path), REPO)}` "
        f"(commit {after['git_commit'][:10]}).",
        "",
        "| op | pass | variant | preset | before H100 (µs, est.) | after H100 (µs, est.) | "
        "before / after |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for total in after["totals"]:
        old = earlier.get(key(total))
        if old is None:
            continue
        was, now = old["predicted_us"]["h100"], total["predicted_us"]["h100"]
        lines.append(f"| {' | '.join(key(total))} | {_us(was)} | {_us(now)} | {was / now:.2f}× |")
    return "\n".join(lines)


def _read_report(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"report: cannot read {path}: {error}") from None


def newest_report():
    files = sorted(glob.glob(os.path.join(RESULTS_DIR, "*.json")))
    return files[-1] if files else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", help="report JSON (default: the newest)")
    parser.add_argument("--readme", help="write the tables into this file between the markers")
    parser.add_argument("--before", help="an earlier report: add a before/after table")
    args = parser.parse_args(argv)
    path = args.report or newest_report()
    if path is None:
        print("no static report yet: run `make bench-static`", file=sys.stderr)
        return 1
    try:
        report = _read_report(path)
        earlier = _read_report(args.before) if args.before else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = render_markdown(report, path)
    if earlier is not None:
        text = render_comparison(earlier, report, args.before, path) + "\n\n" + text
    publish(text, args.readme, START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
