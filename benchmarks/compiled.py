"""Static sm_90 report of every Triton kernel launch at the benchmark presets' real shapes:
what a kernel engineer reads before a GPU measures anything. No GPU needed.

    python benchmarks/compiled.py [--presets NAME ...] [--ops OP ...] [--out PATH]
                                  [--readme README.md] [--ipc 1.0] [--clock-ghz 1.98]

1. Record. A child process (kernels decorated for the Triton interpreter) calls the real op
   entry points, forward and backward, and the fused TSE decoder's forward, exactly as the
   benchmarks set them up (their own setup factories). Each kernel launch is noted (arguments,
   constexprs, launch options, grid) and not executed, so presets of record take seconds; the
   decoder runs on fake tensors (shapes only, no memory, no conv arithmetic). A tensor is noted
   by dtype, shape and byte offset into its allocation (the CUDA caching allocator hands out
   512-byte aligned blocks, so that offset alone decides pointer alignment on a GPU).
2. Compile. Each distinct launch goes through Triton 3.6's own launch-time binder
   (``create_function_from_signature`` with the CUDA backend's ``native_specialize_impl``, then
   ``JITFunction._pack_args``): pointers and integers divisible by 16 get ``tt.divisibility``,
   integers equal to 1 become constants, exactly as ``kernel[grid](...)`` on an H100 would
   specialise them. Triton's compiler and the ptxas it ships build the sm_90 cubin.
3. Read. From the cubin (cuobjdump): registers, stack, local memory (spills), shared memory,
   SASS instructions per thread (loop bodies weighted by trip counts from the kernel source
   evaluated on the launch's arguments), load/store vector widths, resident CTAs per SM, grid
   and waves on 132 SMs; from the TTIR: which tensors are read and written and how many
   elements each access moves, hence the compulsory bytes (each tensor at most once per access
   kind); FLOPs from the SASS arithmetic.
4. Estimate (labelled so everywhere): memory time = bytes / bandwidth at 3.0 TB/s (H100 copy)
   and 4.3 TB/s (H200); issue time = warp instructions on the busiest SM / (schedulers × clock
   × IPC); predicted = the larger. Launch overhead (a few µs per launch) is not included.

Writes ``benchmarks/results/sm90-static/<yyyy-mm-dd>.json`` (versions, commit, assumptions)
unless ``--out`` names another file; ``--readme`` renders the table between
``<!-- sm90-static:start -->`` and ``<!-- sm90-static:end -->``.
"""

import argparse
import contextlib
import datetime
import importlib
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCHMARKS_DIR)
if BENCHMARKS_DIR not in sys.path:
    sys.path.insert(0, BENCHMARKS_DIR)

RESULTS_DIR = os.path.join(BENCHMARKS_DIR, "results", "sm90-static")
LABEL = "static estimate, not a measurement"

# H100 / H200 SXM (sm_90): the SM resources occupancy is decided by.
SM_COUNT = 132
SCHEDULERS_PER_SM = 4
REGISTERS_PER_SCHEDULER = 16384  # 64 K per SM in four sub-partitions; a warp lives in one
REGISTER_ALLOCATION_UNIT = 256  # registers per warp are allocated in units of 256
MAX_WARPS_PER_SM = 64
MAX_CTAS_PER_SM = 32
SHARED_BYTES_PER_SM = 228 * 1024
SHARED_BYTES_RESERVED_PER_CTA = 1024
BANDWIDTHS_TBPS = {"h100": 3.0, "h200": 4.3}  # HBM copy bandwidth (H100 SXM measured, H200 spec)
DEFAULT_CLOCK_GHZ = 1.98  # SM boost clock of H100/H200 SXM (ncu --clock-control none runs here)
DEFAULT_IPC = 1.0  # warp instructions per scheduler per cycle: the peak issue rate

RECORD_ENV = "STEMSEG_FAST_STATIC_RECORD"


# ------------------------------------------------------------------------------------------
# Scenarios: the real entry points, set up by the benchmarks' own factories


def _instance_gaussians(preset_name, phase):
    import torch
    from test_bench_instance_gaussians import setup_instance_gaussians

    _, embeddings, log_precisions, forward = setup_instance_gaussians(
        preset_name, "triton", requires_grad=True
    )
    with phase("forward"):
        means, precisions, _ = forward()
    with phase("backward"):
        torch.autograd.grad(means.sum() + precisions.sum(), [embeddings, log_precisions])


def _gaussian_probability(preset_name, phase):
    import torch
    from test_bench_gaussian_probability import setup_gaussian_probability

    _, inputs, forward = setup_gaussian_probability(preset_name, "triton", requires_grad=True)
    with phase("forward"):
        probability = forward()
    with phase("backward"):
        torch.autograd.grad(probability, inputs, torch.ones_like(probability))


def _lovasz_hinge(preset_name, phase):
    import torch
    from test_bench_lovasz_hinge import setup_lovasz_hinge

    _, logits, forward = setup_lovasz_hinge(preset_name, "triton", requires_grad=True)
    with phase("forward"):
        loss = forward()
    with phase("backward"):
        torch.autograd.grad(loss.sum(), [logits])


def _embedding_loss(preset_name, phase):
    import torch
    from test_bench_embedding_loss import setup_embedding_loss

    _, inputs, forward = setup_embedding_loss(preset_name, "triton", requires_grad=True)
    with phase("forward"):
        terms = forward()
    with phase("backward"):
        torch.autograd.grad(terms.total(), inputs)


def _greedy_cluster(preset_name, phase):
    from test_bench_greedy_cluster import setup_greedy_cluster

    _, _, cluster = setup_greedy_cluster(preset_name, "triton")
    with phase("inference"):
        cluster()


def _tse_decoder(preset_name, phase):
    import torch
    from presets import PRESETS
    from test_bench_tse_decoder import DTYPES, LAYOUTS, WIDTHS, build_decoder, decoder_features
    from torch._subclasses.fake_tensor import FakeTensorMode

    for widths_name, layout in ((w, layout) for w in WIDTHS for layout in LAYOUTS):
        decoder = build_decoder("triton", widths_name, requires_grad=False, layout=layout)
        suffix = "" if layout == "ncdhw" else f"-{layout}"  # NCDHW keeps its earlier names
        for dtype_name, dtype in DTYPES.items():
            # shapes only: the convs between the fused blocks cost nothing and hold no memory
            with FakeTensorMode(allow_non_fake_inputs=True):
                features = decoder_features(PRESETS[preset_name], requires_grad=False)
                with (
                    phase("forward", variant=f"{widths_name}-{dtype_name}{suffix}"),
                    torch.no_grad(),
                    torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None),
                ):
                    decoder(features)


# op -> (runner, the presets its benchmark times on a GPU)
SCENARIOS = {
    "instance_gaussians": (_instance_gaussians, "test_bench_instance_gaussians"),
    "gaussian_probability": (_gaussian_probability, "test_bench_gaussian_probability"),
    "lovasz_hinge": (_lovasz_hinge, "test_bench_lovasz_hinge"),
    "embedding_loss": (_embedding_loss, "test_bench_embedding_loss"),
    "greedy_cluster": (_greedy_cluster, "test_bench_greedy_cluster"),
    "tse_decoder": (_tse_decoder, "test_bench_tse_decoder"),
}


def benchmark_presets(op):
    """The presets the op's benchmark times on a GPU (its module's GPU_PRESET_NAMES)."""
    return tuple(importlib.import_module(SCENARIOS[op][1]).GPU_PRESET_NAMES)


# ------------------------------------------------------------------------------------------
# 1. Recording (child process, interpreter-decorated kernels, launches not executed)


def describe_argument(value):
    """A kernel argument as the launch record keeps it (JSON-ready)."""
    import torch

    if isinstance(value, torch.Tensor):
        return {
            "tensor": str(value.dtype).removeprefix("torch."),
            "shape": list(value.shape),
            "offset_bytes": value.storage_offset() * value.element_size(),
            "element_bytes": value.element_size(),
        }
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"kernel argument of type {type(value).__name__} cannot be recorded")


def apply_patches(patches):
    """Set module constants, ``{"package.module.NAME": value}`` (a tile size to sweep)."""
    for target, value in (patches or {}).items():
        module, name = target.rsplit(".", 1)
        module = importlib.import_module(module)
        if not hasattr(module, name):
            raise AttributeError(f"{module.__name__} has no constant {name}")
        setattr(module, name, value)


def _record(plan, path, patches=None):
    """Run every (op, preset) of ``plan`` with ``patches`` applied (:func:`apply_patches`) and
    write one JSON line per kernel launch."""
    from triton.runtime.interpreter import InterpretedFunction

    apply_patches(patches)

    labels = {}

    @contextlib.contextmanager
    def phase(name, variant=""):
        previous = dict(labels)
        labels.update({"pass": name, "variant": variant})
        try:
            yield
        finally:
            labels.clear()
            labels.update(previous)

    def recording_run(self, *args, grid, warmup, **kwargs):
        if callable(grid):
            raise TypeError(f"{self.fn.__name__}: callable grids are not recorded")
        record = dict(
            labels,
            module=self.fn.__module__,
            kernel=self.fn.__name__,
            args=[describe_argument(arg) for arg in args],
            kwargs={key: describe_argument(value) for key, value in kwargs.items()},
            grid=[int(size) for size in grid],
        )
        handle.write(json.dumps(record, sort_keys=True) + "\n")

    InterpretedFunction.run = recording_run
    with open(path, "w", encoding="utf-8") as handle:
        for op, preset_name in plan:
            labels.clear()
            labels.update(op=op, preset=preset_name, variant="", **{"pass": ""})
            SCENARIOS[op][0](preset_name, phase)


def record_launches(plan, patches=None):
    """Launch records of ``plan`` [(op, preset)], recorded in a child process with ``patches``
    applied (:func:`apply_patches`)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "launches.jsonl")
        environment = dict(os.environ, TRITON_INTERPRET="1")
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--record-to",
            path,
            "--plan",
            json.dumps(plan),
            "--patches",
            json.dumps(patches or {}),
        ]
        result = subprocess.run(command, env=environment, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError("recording the launches failed:\n" + result.stderr[-4000:])
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]


# ------------------------------------------------------------------------------------------
# 2. Compiling with Triton's own launch-time specialisation


class _DevicePointer:
    """What Triton's binder sees of a CUDA tensor: its dtype and its address (an aligned
    allocation plus the tensor's byte offset into it)."""

    ALLOCATION_BASE = 1 << 32

    def __init__(self, dtype, offset_bytes):
        self.dtype = dtype
        self._address = self.ALLOCATION_BASE + offset_bytes

    def data_ptr(self):
        return self._address


def _rebuild(value):
    import torch

    if isinstance(value, dict) and "tensor" in value:
        return _DevicePointer(getattr(torch, value["tensor"]), value["offset_bytes"])
    return value


HOPPER = ("cuda", 90, 32)


def specialise(module, name, args, kwargs):
    """What ``kernel[grid](*args, **kwargs)`` on an sm_90 GPU would compile, from the binder
    ``JITFunction.run`` builds for the CUDA backend: (JITFunction, bound arguments, options,
    signature, constexprs, attrs)."""
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel = getattr(importlib.import_module(module), name)
    if not hasattr(kernel, "_pack_args"):
        raise RuntimeError(
            f"{module}.{name} is not a compiled JITFunction (TRITON_INTERPRET "
            "must be unset in the compiling process)"
        )
    backend = make_backend(GPUTarget(*HOPPER))
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    kwargs = {key: _rebuild(value) for key, value in kwargs.items()}
    kwargs["debug"] = kwargs.get("debug", kernel.debug) or knobs.runtime.debug
    kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
    bound, specialization, options = binder(*[_rebuild(arg) for arg in args], **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(
        backend, kwargs, bound, specialization, options
    )
    return kernel, bound, options, signature, constexprs, attrs


def compile_specialised(kernel, options, signature, constexprs, attrs):
    """The sm_90 cubin (a CompiledKernel) of one specialisation, built by Triton's compiler
    and the ptxas its wheel ships."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    source = ASTSource(kernel, signature, constexprs, attrs)
    return triton.compile(source, target=GPUTarget(*HOPPER), options=options.__dict__)


def specialise_and_compile(module, name, args, kwargs):
    """(compiled kernel, bound arguments, JITFunction, signature, attrs) of one recorded
    launch (see :func:`specialise`)."""
    kernel, bound, options, signature, constexprs, attrs = specialise(module, name, args, kwargs)
    compiled = compile_specialised(kernel, options, signature, constexprs, attrs)
    return compiled, bound, kernel, signature, attrs


def _attribute_summary(signature, attrs):
    """{argument: "div16" | "const"}: what the specialisation decided, by argument name."""
    names = list(signature)
    summary = {}
    for path, values in attrs.items():
        if any(key == "tt.divisibility" for key, _ in values):
            summary[names[path[0]]] = "div16"
    for name, kind in signature.items():
        if kind == "constexpr":
            summary.setdefault(name, "const")
    return summary


# ------------------------------------------------------------------------------------------
# 3. Reading the compiled kernel


def ctas_per_sm(registers, num_warps, shared_bytes):
    """Resident CTAs per SM and the resource that limits them."""
    registers_per_warp = (
        math.ceil(max(registers, 1) * 32 / REGISTER_ALLOCATION_UNIT) * REGISTER_ALLOCATION_UNIT
    )
    warps_by_registers = SCHEDULERS_PER_SM * (REGISTERS_PER_SCHEDULER // registers_per_warp)
    limits = {
        "ctas": MAX_CTAS_PER_SM,
        "warps": MAX_WARPS_PER_SM // num_warps,
        "registers": warps_by_registers // num_warps,
    }
    if shared_bytes:
        limits["shared"] = SHARED_BYTES_PER_SM // (shared_bytes + SHARED_BYTES_RESERVED_PER_CTA)
    order = ("ctas", "warps", "shared", "registers")  # a tie names the hardware's fixed limit
    limiter = min(limits, key=lambda key: (limits[key], order.index(key)))
    return limits[limiter], limiter


def analyse_launch(launch, *, ipc=DEFAULT_IPC, clock_ghz=DEFAULT_CLOCK_GHZ):
    """Everything the report says about one distinct launch (a JSON-ready dict)."""
    from sass import (
        FLOPS_PER_INSTRUCTION,
        MEMORY_OPCODES,
        access_width_bits,
        loop_trip_counts,
        read_cubin,
        read_ttir,
        weighted_instruction_counts,
    )

    compiled, bound, kernel, signature, attrs = specialise_and_compile(
        launch["module"], launch["kernel"], launch["args"], launch["kwargs"]
    )
    metadata = compiled.metadata
    num_warps = metadata.num_warps
    threads_per_cta = num_warps * 32
    grid = launch["grid"] + [1] * (3 - len(launch["grid"]))
    ctas = math.prod(grid)
    threads = ctas * threads_per_cta

    scalars = {
        key: value
        for key, value in bound.items()
        if isinstance(value, (bool, int, float)) or value is None
    }
    trips = loop_trip_counts(kernel, scalars)
    listing = read_cubin(compiled.asm["cubin"])
    counts, loop_model = weighted_instruction_counts(listing, trips)
    per_thread = sum(counts.values())
    accesses, ttir_loops = read_ttir(compiled.asm["ttir"])
    memory_modelled = ttir_loops == len(trips) and all(t is not None for t in trips)

    # Compulsory bytes: per argument and access kind, what the threads request, at most the
    # whole tensor (re-reads of a tensor are assumed to hit L2).
    descriptors = dict(zip(kernel.arg_names, launch["args"]))
    descriptors.update({key: value for key, value in launch["kwargs"].items()})
    requested = defaultdict(int)
    for access in accesses:
        repeat = 1
        if access.loops and memory_modelled:
            repeat = trips[max(access.loops)]
        kind = "load" if access.kind == "load" else "store"
        requested[(access.argument, kind)] += access.elements * access.element_bytes * repeat * ctas
        if access.kind == "atomic":
            requested[(access.argument, "load")] += access.elements * access.element_bytes * ctas
    bytes_read = bytes_written = elements_written = 0
    tensors = {}
    for (argument, kind), amount in sorted(requested.items()):
        descriptor = descriptors.get(argument)
        if not isinstance(descriptor, dict):
            continue
        whole = math.prod(descriptor["shape"]) * descriptor["element_bytes"]
        moved = min(whole, amount)
        tensors.setdefault(argument, {})[kind] = moved
        if kind == "load":
            bytes_read += moved
        else:
            bytes_written += moved
            elements_written += moved // descriptor["element_bytes"]
    bytes_moved = bytes_read + bytes_written

    flops = threads * sum(
        FLOPS_PER_INSTRUCTION.get(opcode.split(".")[0], 0) * count
        for opcode, count in counts.items()
    )
    widths = defaultdict(Counter)
    for instruction in listing.instructions:
        if instruction.base in MEMORY_OPCODES:
            widths[instruction.base][str(access_width_bits(instruction.opcode))] += 1
    spill_stores = sum(1 for i in listing.instructions if i.base == "STL")
    spill_loads = sum(1 for i in listing.instructions if i.base == "LDL")

    shared = metadata.shared
    resident, limiter = ctas_per_sm(listing.registers, num_warps, shared)
    waves = ctas / (resident * SM_COUNT)
    ctas_on_busiest_sm = math.ceil(ctas / SM_COUNT)
    busy_schedulers = min(SCHEDULERS_PER_SM, min(ctas_on_busiest_sm, resident) * num_warps)
    warp_instructions = ctas_on_busiest_sm * num_warps * per_thread
    issue_us = warp_instructions / (busy_schedulers * clock_ghz * 1e9 * ipc) * 1e6
    memory_us = {gpu: bytes_moved / (tbps * 1e12) * 1e6 for gpu, tbps in BANDWIDTHS_TBPS.items()}
    predicted = {gpu: max(memory_us[gpu], issue_us) for gpu in BANDWIDTHS_TBPS}
    bound_by = {gpu: "memory" if memory_us[gpu] >= issue_us else "issue" for gpu in BANDWIDTHS_TBPS}
    return {
        "specialisation": _attribute_summary(signature, attrs),
        "num_warps": num_warps,
        "num_stages": metadata.num_stages,
        "registers": listing.registers,
        "stack_bytes": listing.stack_bytes,
        "local_bytes": listing.local_bytes,
        "spill_stores": spill_stores,
        "spill_loads": spill_loads,
        "shared_bytes": shared,
        "sass_static": len(listing.instructions),
        "sass_per_thread": per_thread,
        "loop_trips": trips,
        "loops_in_sass": len(listing.loops),
        "loops_modelled": loop_model is not None,
        "loop_model": loop_model,
        "sass_per_output_element": (
            per_thread * threads / elements_written if elements_written else None
        ),
        "elements_written": elements_written,
        "memory_widths_bits": {op: dict(sorted(c.items())) for op, c in sorted(widths.items())},
        "ctas": ctas,
        "threads_per_cta": threads_per_cta,
        "ctas_per_sm": resident,
        "occupancy_limiter": limiter,
        "waves": waves,
        "bytes_read": bytes_read,
        "bytes_written": bytes_written,
        "bytes_moved": bytes_moved,
        "bytes_per_tensor": tensors,
        "memory_modelled": memory_modelled,
        "flops": flops,
        "memory_time_us": memory_us,
        "issue_time_us": issue_us,
        "predicted_us": predicted,
        "bound_by": bound_by,
    }


def _analyse_job(job):
    launch, ipc, clock_ghz = job
    try:
        return analyse_launch(launch, ipc=ipc, clock_ghz=clock_ghz)
    except Exception as error:  # one failing kernel must not hide the others' results
        message = " | ".join(str(error).strip().splitlines()[:6])
        return {"error": f"{type(error).__name__}: {message}"}


# ------------------------------------------------------------------------------------------
# 4. The report


def _plan(preset_names, ops):
    plan = []
    for op in ops:
        for preset_name in preset_names or benchmark_presets(op):
            plan.append((op, preset_name))
    return plan


def analysed_launches(
    plan, *, patches=None, ipc=DEFAULT_IPC, clock_ghz=DEFAULT_CLOCK_GHZ, jobs=None
):
    """The report's rows for ``plan`` [(op, preset)]: one per distinct launch with its count
    and :func:`analyse_launch`'s reading, recorded with ``patches`` applied."""
    records = record_launches(plan, patches)
    distinct = Counter(json.dumps(record, sort_keys=True) for record in records)
    launches = [json.loads(key) for key in distinct]
    identity = [
        {k: v for k, v in launch.items() if k in ("module", "kernel", "args", "kwargs", "grid")}
        for launch in launches
    ]
    unique = list({json.dumps(item, sort_keys=True): item for item in identity}.values())
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count(), mp_context=context) as pool:
        analyses = list(pool.map(_analyse_job, [(item, ipc, clock_ghz) for item in unique]))
    by_identity = {
        json.dumps(item, sort_keys=True): analysis for item, analysis in zip(unique, analyses)
    }
    rows = []
    for launch, key in zip(launches, distinct):
        ident = json.dumps(
            {k: launch[k] for k in ("module", "kernel", "args", "kwargs", "grid")}, sort_keys=True
        )
        rows.append(
            {
                "op": launch["op"],
                "pass": launch["pass"],
                "variant": launch["variant"],
                "preset": launch["preset"],
                "module": launch["module"],
                "kernel": launch["kernel"],
                "count": distinct[key],
                "grid": launch["grid"],
                "arguments": {"args": launch["args"], "kwargs": launch["kwargs"]},
                **by_identity[ident],
            }
        )
    return rows


def launch_totals(rows):
    """Launches and predicted µs per (op, pass, variant, preset), failed launches left out."""
    totals = defaultdict(lambda: {"launches": 0, "predicted_us": defaultdict(float)})
    for row in rows:
        if "error" in row:
            continue
        total = totals[(row["op"], row["pass"], row["variant"], row["preset"])]
        total["launches"] += row["count"]
        for gpu, value in row["predicted_us"].items():
            total["predicted_us"][gpu] += row["count"] * value
    return [
        {
            "op": op,
            "pass": pass_,
            "variant": variant,
            "preset": preset,
            "launches": total["launches"],
            "predicted_us": dict(total["predicted_us"]),
        }
        for (op, pass_, variant, preset), total in sorted(totals.items())
    ]


def build_report(
    preset_names=None,
    output_path=None,
    *,
    ops=None,
    ipc=DEFAULT_IPC,
    clock_ghz=DEFAULT_CLOCK_GHZ,
    jobs=None,
):
    """Record, compile and read every launch; write the JSON report to ``output_path``.

    Args:
        preset_names (sequence of str, optional): run every op at these presets (default:
            each op at the presets its benchmark times on a GPU).
        output_path (str, optional): where the JSON goes (default
            ``benchmarks/results/sm90-static/<date>.json``).
        ops (sequence of str, optional): a subset of :data:`SCENARIOS` (default: all).
        ipc, clock_ghz (float): the issue-time model's stated IPC and SM clock.
        jobs (int, optional): compiling processes (default: CPU count).

    Returns:
        The report (dict); ``report["errors"]`` counts launches that failed to compile.
    """
    import torch
    import triton

    from provenance import git_commit
    from sass import ptxas_version
    from stemseg_fast.io.files import atomic_output

    ops = list(ops or SCENARIOS)
    rows = analysed_launches(_plan(preset_names, ops), ipc=ipc, clock_ghz=clock_ghz, jobs=jobs)
    report = {
        "label": LABEL,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "versions": {
            "torch": torch.__version__,
            "triton": triton.__version__,
            "python": platform.python_version(),
            "ptxas": ptxas_version(),
        },
        "target": "sm_90 (H100 / H200 SXM)",
        "assumptions": {
            "sm_count": SM_COUNT,
            "schedulers_per_sm": SCHEDULERS_PER_SM,
            "clock_ghz": clock_ghz,
            "ipc_per_scheduler": ipc,
            "bandwidth_tbps": BANDWIDTHS_TBPS,
            "registers_per_sm": 4 * REGISTERS_PER_SCHEDULER,
            "shared_bytes_per_sm": SHARED_BYTES_PER_SM,
            "memory_time": "compulsory bytes (each tensor argument at most once per access "
            "kind, from the TTIR's loads and stores) / bandwidth",
            "issue_time": "warp instructions on the busiest SM / (busy schedulers x clock x "
            "IPC); loop bodies weighted by trip counts from the kernel source",
            "predicted": "max(memory time, issue time); launch overhead not included",
        },
        "presets": sorted({row["preset"] for row in rows}),
        "launches": rows,
        "totals": launch_totals(rows),
        "errors": sum(1 for row in rows if "error" in row),
    }
    output_path = output_path or os.path.join(
        RESULTS_DIR, f"{datetime.date.today().isoformat()}.json"
    )
    with atomic_output(output_path) as partial:
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1, sort_keys=True)
            handle.write("\n")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--presets",
        nargs="+",
        metavar="NAME",
        help="run every op at these presets (default: each op at its benchmark's GPU presets)",
    )
    parser.add_argument("--ops", nargs="+", metavar="OP", help="a subset of the ops")
    parser.add_argument(
        "--out", help="the JSON file to write (default: benchmarks/results/sm90-static/<date>.json)"
    )
    parser.add_argument("--readme", help="render the table into this file between the markers")
    parser.add_argument(
        "--ipc",
        type=float,
        default=DEFAULT_IPC,
        help="warp instructions per scheduler per cycle of the issue model",
    )
    parser.add_argument(
        "--clock-ghz", type=float, default=DEFAULT_CLOCK_GHZ, help="SM clock of the issue model"
    )
    parser.add_argument("--jobs", type=int, help="compiling processes (default: CPU count)")
    parser.add_argument("--record-to", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--patches", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.record_to:  # the recording child
        plan = [tuple(item) for item in json.loads(args.plan)]
        _record(plan, args.record_to, json.loads(args.patches or "{}"))
        return 0
    from presets import PRESETS

    for name in args.presets or ():
        if name not in PRESETS:
            parser.error(
                f"--presets: unknown preset {name!r} (expected one of {', '.join(sorted(PRESETS))})"
            )
    for op in args.ops or ():
        if op not in SCENARIOS:
            parser.error(f"--ops: unknown op {op!r} (expected one of {', '.join(SCENARIOS)})")
    for name, value in (("--ipc", args.ipc), ("--clock-ghz", args.clock_ghz)):
        if not value > 0:
            parser.error(f"{name} must be > 0, got {value}")
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("TRITON_INTERPRET=1 is set: the report compiles kernels, unset it")
    output_path = args.out or os.path.join(RESULTS_DIR, f"{datetime.date.today().isoformat()}.json")
    report = build_report(
        args.presets,
        output_path,
        ops=args.ops,
        ipc=args.ipc,
        clock_ghz=args.clock_ghz,
        jobs=args.jobs,
    )
    print(
        f"{len(report['launches'])} distinct launches, {report['errors']} failed; "
        f"wrote {os.path.relpath(output_path)}"
    )
    if args.readme:
        from provenance import replace_between_markers
        from static_table import END, START, render_markdown

        replace_between_markers(args.readme, render_markdown(report, output_path), START, END)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
