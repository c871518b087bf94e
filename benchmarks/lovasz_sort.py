"""The Lovász hinge's sort: today's ``torch.sort`` of the [K, N] errors against one-key sorts of
composite integer keys, checked bitwise and timed on the CPU in one run, with the bytes each
moves through PyTorch's CUDA sort as the GPU estimate.

    python benchmarks/lovasz_sort.py [--presets NAME ...] [--repeats N] [--out PATH]
                                     [--readme README.md]

Candidates (each must reproduce today's sorted errors and permutation bit for bit, ties and NaN
included; the script stops if one does not):
  today             ``torch.sort(errors, dim=1, descending=True, stable=True)`` on [K, N]
  composite_stable  one int64 key per element, (row << 32) | d(error), where d is the error's
                    float32 bits mapped so that ascending d is descending error (-0 as +0, NaN
                    first); one stable ``torch.sort`` of the K*N keys, permutation from the
                    flat index, sorted errors from the sorted keys
  unique_unstable   (row << 32 + b) | (d(error) << b) | index, b = bits of N - 1: every key is
                    unique, so an unstable sort is stable and the permutation is in the key

GPU estimate (bytes per element through PyTorch's CUDA sort, from its dispatch in
``aten/src/ATen/native/cuda/SortStable.cu``; cub's one-sweep radix sort makes one pass per
8 key bits, each pass reading and writing key and value):
  today: 1 < K < 128 rows under 10^6 take ``segmented_sort_pairs_by_full_sort``: fill an int2
    (index, row) payload, radix-sort the fp32 keys with it (4 passes), radix-sort the payload by
    its row bits (1 pass), then gather the values and write int64 indices;
  composite / unique: one segment takes ``segmented_sort_large_segments``: an int64 iota and a
    radix sort of int64 keys with int64 values (8 passes), plus building the keys and decoding.
Float64 errors (the tests' dtype) have 64 key bits and cannot share a 64-bit key with the row:
a composite path would be float32-only.

Writes ``benchmarks/results/cpu/lovasz-sort-<yyyy-mm-dd>.json`` unless ``--out`` names another
file; ``--readme`` renders the table between ``<!-- lovasz-sort:start -->`` and
``<!-- lovasz-sort:end -->``.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

import torch

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCHMARKS_DIR)
sys.path.insert(0, BENCHMARKS_DIR)

from inputs import instance_gaussian_inputs  # noqa: E402
from presets import PRESETS  # noqa: E402
from provenance import git_commit, publish  # noqa: E402

from stemseg_fast.io.files import atomic_output  # noqa: E402
from stemseg_fast.kernels.gaussian_probability import gaussian_probability_reference  # noqa: E402

START, END = "<!-- lovasz-sort:start -->", "<!-- lovasz-sort:end -->"
DEFAULT_PRESETS = ("ytvis720_T8", "davis_T16")
ALL_ONES = 0xFFFFFFFF


def descending_key(errors):
    """[K, N] int64 in [0, 2^32): ascending key = descending float32 error, equal errors equal
    keys (-0 == +0), every NaN the smallest key (torch.sort puts NaN first when descending)."""
    errors = torch.where(errors == 0, torch.zeros_like(errors), errors)
    bits = errors.view(torch.int32).to(torch.int64) & ALL_ONES
    # float order as unsigned order: flip negatives entirely, set the sign bit of positives
    ascending = torch.where(bits >= 2**31, ALL_ONES - bits, bits | 2**31)
    ascending = torch.where(errors.isnan(), torch.full_like(ascending, ALL_ONES), ascending)
    return ALL_ONES - ascending


def sort_today(errors):
    return torch.sort(errors, dim=1, descending=True, stable=True)


def sort_composite_stable(errors):
    rows, length = errors.shape
    row_index = torch.arange(rows)[:, None]
    keys = (row_index << 32) | descending_key(errors)  # [K, N]
    _, flat_perm = torch.sort(keys.flatten(), stable=True)  # [K*N]
    return errors.flatten()[flat_perm].view(rows, length), flat_perm.view(rows, length) - (
        row_index * length
    )


def sort_unique_unstable(errors):
    rows, length = errors.shape
    index_bits = max(1, (length - 1).bit_length())
    if index_bits + 32 + max(1, (rows - 1).bit_length()) > 63:
        raise ValueError(f"[{rows}, {length}] does not fit one 63-bit key")
    keys = (
        (torch.arange(rows)[:, None] << (32 + index_bits))
        | (descending_key(errors) << index_bits)
        | torch.arange(length)[None, :]
    )
    sorted_keys, _ = torch.sort(keys.flatten())
    perm = (sorted_keys & ((1 << index_bits) - 1)).view(rows, length)
    return torch.gather(errors, 1, perm), perm


CANDIDATES = {
    "today": sort_today,
    "composite_stable": sort_composite_stable,
    "unique_unstable": sort_unique_unstable,
}


def gpu_bytes_per_element(candidate, rows):
    """Bytes per sorted element through PyTorch's CUDA sort (module docstring), float32 errors."""
    if candidate == "today":
        assert 1 < rows < 128, "the by-full-sort dispatch of today's shapes"
        row_bits = max(1, math.ceil(math.log2(rows)))
        row_passes = math.ceil(row_bits / 8)
        return (
            8  # fill the int2 payload
            + 4
            + 4 * (12 + 12)  # histogram, 4 passes of fp32 key + int2 payload
            + 8
            + row_passes * (8 + 8)  # histogram, passes over the payload's row bits
            + 8
            + 4
            + 4
            + 8
        )  # postprocess: read payload, gather value, write value, index
    return (
        4
        + 8  # build the key: read the error, write the key
        + 8  # int64 iota
        + 8
        + 8 * (16 + 16)  # histogram, 8 passes of int64 key + int64 value
        + 8
        + 4
    )  # decode the sorted errors (composite) / gather them (unique)


def _median_ms(function, errors, repeats):
    function(errors)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(errors)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _errors(preset_name):
    """float32 hinge errors of the Lovász benchmark's inputs: logits 2p - 1 of the preset's
    instances (the embedding loss's real input, many near-ties) and their labels."""
    preset = PRESETS[preset_name]
    embeddings, ids, means, precisions = instance_gaussian_inputs(
        preset, device=torch.device("cpu")
    )
    logits = 2.0 * gaussian_probability_reference(embeddings, means, precisions) - 1.0
    labels = ids[None, :] == torch.arange(preset.num_instances)[:, None]  # [K, N]
    return (1.0 - logits * torch.where(labels, 1.0, -1.0)).float().contiguous()


def run(preset_names, repeats):
    rows = []
    for preset_name in preset_names:
        errors = _errors(preset_name)
        expected_values, expected_perm = sort_today(errors)
        for name, candidate in CANDIDATES.items():
            values, perm = candidate(errors)
            if not (
                torch.equal(perm, expected_perm)
                and torch.equal(values.view(torch.int32), expected_values.view(torch.int32))
            ):
                raise SystemExit(f"{name} does not reproduce today's sort at {preset_name}")
        timings = {
            name: _median_ms(candidate, errors, repeats) for name, candidate in CANDIDATES.items()
        }
        num_rows, length = errors.shape
        for name in CANDIDATES:
            rows.append(
                {
                    "preset": preset_name,
                    "K": num_rows,
                    "N": length,
                    "candidate": name,
                    "cpu_ms": timings[name],
                    "cpu_vs_today": timings[name] / timings["today"],
                    "gpu_bytes_per_element": gpu_bytes_per_element(name, num_rows),
                }
            )
    return rows


def render(report):
    lines = [
        f"Lovász sort candidates (`benchmarks/lovasz_sort.py`, commit "
        f"{report['git_commit'][:10]}, {report['machine']}, {report['threads']} threads, "
        f"torch {report['torch']}): CPU times measured in one run; GPU bytes are an estimate "
        "from PyTorch's CUDA sort dispatch, not a measurement. Every candidate reproduces "
        "today's sorted errors and permutation bit for bit.",
        "",
        "| preset | K × N | candidate | CPU ms (measured) | CPU / today | GPU bytes per "
        "element (est.) | GPU bytes / today |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    today = {
        row["preset"]: row["gpu_bytes_per_element"]
        for row in report["rows"]
        if row["candidate"] == "today"
    }
    for row in report["rows"]:
        lines.append(
            f"| {row['preset']} | {row['K']} × {row['N']} | {row['candidate']} | "
            f"{row['cpu_ms']:.1f} | {row['cpu_vs_today']:.2f}× | "
            f"{row['gpu_bytes_per_element']} | "
            f"{row['gpu_bytes_per_element'] / today[row['preset']]:.2f}× |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="result file (default: results/cpu/lovasz-sort-DATE.json)")
    parser.add_argument("--readme", help="README to render the table into")
    args = parser.parse_args(argv)
    report = {
        "date": datetime.date.today().isoformat(),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "rows": run(args.presets, args.repeats),
    }
    out = args.out or os.path.join(
        BENCHMARKS_DIR, "results", "cpu", f"lovasz-sort-{report['date']}.json"
    )
    with atomic_output(out) as partial:
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    publish(render(report), args.readme, START, END)


if __name__ == "__main__":
    main()
