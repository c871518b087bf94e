"""The static sm_90 report (benchmarks/compiled.py) on the small preset, so it cannot rot: every
op's launches are recorded from the real entry points, specialised by Triton's own binder,
compiled by Triton's bundled ptxas and read back; checked against counts that follow from the
launch itself (grid, bytes an elementwise kernel must move, occupancy arithmetic)."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCHMARKS = os.path.join(REPO, "benchmarks")
sys.path.insert(0, BENCHMARKS)

import compiled  # noqa: E402  (benchmarks/compiled.py)
from static_table import render_markdown  # noqa: E402

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU measures these kernels")


def _compiler_environment(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    environment["TRITON_CACHE_DIR"] = str(tmp_path / "triton_cache")
    return environment


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("static")
    path = folder / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(BENCHMARKS, "compiled.py"),
            "--presets",
            "cpu_small",
            "--out",
            str(path),
            "--jobs",
            "2",
        ],
        cwd=REPO,
        env=_compiler_environment(folder),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    with open(path, encoding="utf-8") as handle:
        return json.load(handle), str(path)


def _launches(report, kernel):
    rows = [row for row in report["launches"] if row["kernel"] == kernel]
    assert rows, f"no launch of {kernel}"
    return rows


@NO_GPU
@pytest.mark.slow
def test_every_op_and_pass_is_reported(small_report):
    report, _ = small_report
    assert report["errors"] == 0
    assert report["label"] == "static estimate, not a measurement"
    assert report["versions"]["triton"] and report["git_commit"]
    passes = {(total["op"], total["pass"]) for total in report["totals"]}
    for op in compiled.SCENARIOS:
        assert any(name == op for name, _ in passes), op
    assert ("embedding_loss", "backward") in passes and ("tse_decoder", "forward") in passes
    variants = {row["variant"] for row in report["launches"] if row["op"] == "tse_decoder"}
    assert variants == {
        f"{widths}-{dtype}{layout}"
        for widths in ("embedding", "semantic_ytvis")
        for dtype in ("fp32", "bf16")
        for layout in ("", "-ndhwc")
    }


@NO_GPU
@pytest.mark.slow
def test_counts_follow_from_the_launch(small_report):
    report, _ = small_report
    for row in report["launches"]:
        assert row["ctas"] == math.prod(row["grid"])
        assert row["waves"] == pytest.approx(row["ctas"] / (row["ctas_per_sm"] * 132))
        assert 0 < row["registers"] <= 255 and row["sass_static"] > 0
        for gpu in ("h100", "h200"):
            assert row["predicted_us"][gpu] == max(row["memory_time_us"][gpu], row["issue_time_us"])
    # elementwise GN + ReLU: reads x once and writes out once (plus 4 tiny per-group/channel
    # tensors), the bytes the TTIR's loads and stores must add up to
    for row in _launches(report, "_group_norm_relu_kernel"):
        x = row["arguments"]["args"][0]
        tensor_bytes = math.prod(x["shape"]) * x["element_bytes"]
        assert row["bytes_per_tensor"]["x_ptr"] == {"load": tensor_bytes}
        assert row["bytes_per_tensor"]["out_ptr"] == {"store": tensor_bytes}
        assert 2 * tensor_bytes <= row["bytes_moved"] < 2 * tensor_bytes + 8192
    # a run-time loop of more than one trip weighs its body: dynamic count above static
    looped = [
        row
        for row in _launches(report, "_group_norm_partial_stats_kernel")
        if row["loops_modelled"] and row["loop_trips"] and row["loop_trips"][0] > 1
    ]
    assert looped and all(row["sass_per_thread"] > row["sass_static"] for row in looped)
    # the greedy clustering's seed selection is one CTA per seed, launched max_clusters times
    seeds = _launches(report, "_greedy_cluster_select_seed_kernel")
    assert all(row["ctas"] == 1 for row in seeds) and sum(row["count"] for row in seeds) == 20


@NO_GPU
@pytest.mark.slow
def test_markdown_labels_every_time_an_estimate(small_report):
    report, path = small_report
    text = render_markdown(report, path, detail_presets=("cpu_small",))
    assert "static estimate, not a measurement" in text
    assert "_upsample_add_kernel" in text and "(µs, est.)" in text


@NO_GPU
def test_specialisation_is_tritons_own(tmp_path, monkeypatch):
    """A pointer 4 bytes into its allocation loses 16-divisibility, one 64 bytes in keeps it,
    and an integer equal to 1 becomes a constant: what ``kernel[grid](...)`` would decide."""
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))

    def tensor(offset):
        return {"tensor": "float32", "shape": [4], "offset_bytes": offset, "element_bytes": 4}

    probe = (
        "from compiled import specialise_and_compile, _attribute_summary; import json, sys;"
        "a = json.loads(sys.argv[1]);"
        "c, b, k, s, at = specialise_and_compile(*a);"
        "print(json.dumps(_attribute_summary(s, at)))"
    )
    launch = [
        "stemseg_fast.kernels.upsample_add",
        "_upsample_add_kernel",
        [
            tensor(0),
            tensor(4),
            tensor(64),
            tensor(0),
            1,
            2,
            5,
            9,
            10,
            18,
            90,
            90,
            45,
            9,
            1,
            360,
            360,
            180,
            18,
            1,
            8,
            1,
        ],
        {"BLOCK_W": 32},
    ]
    result = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(launch)],
        cwd=BENCHMARKS,
        env=_compiler_environment(tmp_path),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["low_ptr"] == "div16" and summary["out_ptr"] == "div16"
    assert "high_ptr" not in summary
    assert summary["C"] == "const"  # == 1
    assert "t_in" not in summary  # 2: neither 1 nor divisible by 16


def test_occupancy_arithmetic():
    # 242 registers x 4 warps: 2 warps per 16 K-register scheduler partition -> 2 CTAs
    assert compiled.ctas_per_sm(242, 4, 0) == (2, "registers")
    assert compiled.ctas_per_sm(32, 4, 0) == (16, "warps")
    assert compiled.ctas_per_sm(32, 4, 100 * 1024)[0] == 2


def test_unknown_preset_is_one_clear_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(BENCHMARKS, "compiled.py"),
            "--presets",
            "nope",
            "--out",
            str(tmp_path / "r.json"),
        ],
        cwd=REPO,
        env=_compiler_environment(tmp_path),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--presets: unknown preset 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r.json").exists()


def _listing(opcodes, loops):
    from sass import Instruction, SassListing

    instructions = [
        Instruction(16 * i, opcode, operands) for i, (opcode, operands) in enumerate(opcodes)
    ]
    return SassListing(instructions, loops, 32, 0, 0, 0)


def test_loop_weights_pair_and_unroll():
    from sass import weighted_instruction_counts

    body = [("FFMA", "R1, R2, R3, R1"), ("IADD3", "R4, R4, -0x4, RZ"), ("BRA", "0x10")]
    remainder = [("FADD", "R1, R1, R2"), ("IADD3", "R4, R4, -0x1, RZ"), ("BRA", "0x50")]
    listing = _listing(
        [("S2R", "R0")] + body + [("NOP", "")] + remainder + [("EXIT", "")], [(1, 3), (5, 7)]
    )
    # one source loop of 10 trips, unrolled by 4: the main body runs 2 times, the remainder 2
    counts, model = weighted_instruction_counts(listing, [10])
    assert model == "unrolled"
    assert counts["FFMA"] == 2 and counts["FADD"] == 2 and counts["S2R"] == 1
    # two source loops pair with the two SASS loops in order
    counts, model = weighted_instruction_counts(listing, [3, 5])
    assert model == "paired" and counts["FFMA"] == 3 and counts["FADD"] == 5
    # an unknown trip count leaves every instruction counted once, and says so
    counts, model = weighted_instruction_counts(listing, [None])
    assert model is None and counts["FFMA"] == 1


def test_loops_with_and_without_results_are_read_from_the_ttir():
    from sass import read_ttir

    # what Triton 3.6 writes for a row loop that carries values and for one that does not (the
    # upsample kernels' row loop stores and carries nothing)
    ttir = """tt.func public @k(%x_ptr: !tt.ptr<f32>, %n: i32) attributes {noinline = false} {
    %0:2 = scf.for %i = %c0 to %n step %c1 iter_args(%a = %z, %p = %x_ptr) -> (f32, !tt.ptr<f32>) : i32 {
      %v = tt.load %p : !tt.ptr<f32> loc(#loc1)
      scf.yield %v, %p : f32, !tt.ptr<f32>
    } loc(#loc2)
    scf.for %j = %c0 to %n step %c1  : i32 {
      tt.store %x_ptr, %z : !tt.ptr<f32> loc(#loc3)
    } loc(#loc4)
    tt.return
  }"""
    accesses, loops = read_ttir(ttir)
    assert loops == 2
    assert [(access.kind, access.loops) for access in accesses] == [("load", (0,)), ("store", (1,))]


def test_trip_counts_come_from_the_kernel_source():
    import triton.language as tl
    from sass import loop_trip_counts

    def kernel(x_ptr, n, chunk, BLOCK: tl.constexpr):
        for start in range(0, chunk, BLOCK):
            for inner in range(1, n):
                tl.store(x_ptr + start + inner, 0)
        for unrolled in tl.static_range(4):
            tl.store(x_ptr + unrolled, 1)

    class Source:  # what loop_trip_counts reads of a JITFunction
        fn = kernel

    assert loop_trip_counts(Source, {"n": 3, "chunk": 1000, "BLOCK": 256}) == [4, 8]
    assert loop_trip_counts(Source, {"chunk": 1000, "BLOCK": 256}) == [4, None]
