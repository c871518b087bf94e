"""Timing and bookkeeping shared by every benchmark file.

On CUDA, every measurement is taken with ``triton.testing.do_bench`` (CUDA events, warm-up,
median with 20/80 % quantiles, L2 flushed between runs) and stored in ``extra_info``, next to
pytest-benchmark's own rounds (each call synchronised so host timing covers the device work).
On CPU only pytest-benchmark's timer runs. Bytes moved come from an explicit formula per op, so
achieved GB/s can be read against the device's copy bandwidth (see ``copy_bandwidth_gbps``).
"""

import functools
import os
import time

import torch

# Seconds of repeated calls per benchmark after the warm-up; ``benchmarks/run.py --quick``
# (the time-boxed GPU runbook) sets STEMSEG_FAST_BENCH_QUICK=1 for a shorter budget.
TIME_BUDGET_SECONDS = 2.0
QUICK_TIME_BUDGET_SECONDS = 0.5

BACKENDS_ON_CUDA = ("reference", "triton")
BACKENDS_ON_CPU = ("reference",)


def bench_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# The honest competitor: the reference compiled by torch.compile (Inductor). On a GPU the
# hand-written kernels must beat it, not only eager PyTorch. On CPU Inductor emits C++ (gcc).
COMPILED = "compiled"


def backends(*, compiled=False):
    """Backends worth timing here: the interpreter's Triton timings on CPU would mean nothing.
    ``compiled`` adds the Inductor-compiled reference."""
    names = BACKENDS_ON_CUDA if torch.cuda.is_available() else BACKENDS_ON_CPU
    return names + (COMPILED,) if compiled else names


def compile_reference(fn):
    """``fn`` (a reference function or module) compiled by Inductor, static shapes; the first
    call compiles, which ``run_benchmark`` keeps out of the timed rounds."""
    return torch.compile(fn, backend="inductor", dynamic=False)


def presets(names_on_gpu, names_on_cpu):
    """Preset names for this device: the presets of record on a GPU, small ones on CPU."""
    return names_on_gpu if torch.cuda.is_available() else names_on_cpu


@functools.lru_cache(maxsize=None)
def copy_bandwidth_gbps():
    """Measured device-to-device copy bandwidth (bytes read + bytes written) in GB/s."""
    import triton.testing

    source = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    target = torch.empty_like(source)
    milliseconds = triton.testing.do_bench(lambda: target.copy_(source), return_mode="median")
    return 2 * source.numel() / (milliseconds * 1e-3) / 1e9


def _rounds_within_budget(fn, synchronise):
    """Rounds that fit the time budget (3 to 20), from the time of one warm call."""
    start = time.perf_counter()
    fn()
    synchronise()
    seconds = time.perf_counter() - start
    quick = os.environ.get("STEMSEG_FAST_BENCH_QUICK") == "1"
    budget = QUICK_TIME_BUDGET_SECONDS if quick else TIME_BUDGET_SECONDS
    return max(3, min(20, int(budget / max(seconds, 1e-9))))


def run_benchmark(benchmark, fn, *, bytes_moved=None, flops=None, rounds=None):
    """Time ``fn()`` (inputs already built) and record device time, memory and throughput.

    Args:
        benchmark: the pytest-benchmark fixture.
        fn: a zero-argument callable running the measured work once.
        bytes_moved (int, optional): the fewest bytes the work must read and write.
        flops (int, optional): floating-point operations of one call.
        rounds (int, optional): pytest-benchmark rounds (default: as many as fit the time
            budget after one warm call, 3 to 20).
    """
    info = benchmark.extra_info
    info["device"] = str(bench_device())
    if bytes_moved is not None:
        info["bytes_moved"] = int(bytes_moved)
    if flops is not None:
        info["flops"] = int(flops)
    if torch.cuda.is_available():
        import triton.testing

        fn()  # compile / autotune outside the timed region
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        info["peak_memory_bytes"] = torch.cuda.max_memory_allocated() - baseline
        median, low, high = triton.testing.do_bench(fn, quantiles=[0.5, 0.2, 0.8])
        info["cuda_ms_median"], info["cuda_ms_p20"], info["cuda_ms_p80"] = median, low, high
        if bytes_moved is not None:
            info["gbps"] = bytes_moved / (median * 1e-3) / 1e9
            info["copy_bandwidth_gbps"] = copy_bandwidth_gbps()
            info["roofline_fraction"] = info["gbps"] / info["copy_bandwidth_gbps"]
        if flops is not None:
            info["tflops"] = flops / (median * 1e-3) / 1e12

        def synchronised():
            fn()
            torch.cuda.synchronize()

        rounds = rounds or _rounds_within_budget(fn, torch.cuda.synchronize)
        benchmark.pedantic(synchronised, rounds=rounds, warmup_rounds=0)
    else:
        fn()  # compile (torch.compile variants) outside the rounds and their budget estimate
        rounds = rounds or _rounds_within_budget(fn, lambda: None)
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=0)
