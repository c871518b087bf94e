#!/usr/bin/env bash
# GPU runbook: one run on the lent GPU machine (torch 2.11, triton 3.6, Python 3.12, no network)
# does everything: install carried wheels and the project, run the GPU tests of the suites that
# touch CUDA with compiled kernels, run every benchmark, check cuDNN, save a profiler trace of a
# clip step, profile five kernels with ncu, leave logs and result JSON under $OUT.
#
# Prepare here (CPU machine, once):   make gpu-wheels      (fills .whl/, which git ignores)
# Run there:  device run, carry [".whl"], command "bash benchmarks/gpu_check.sh [--quick]"
# Afterwards copy $OUT/results/<device>/<date>-{ops,model}.json into benchmarks/results/<device>/,
# run `python benchmarks/report.py --readme README.md` and commit both.
#
# $OUT gets 8 files at most (the device tool brings back 8): runbook.txt (environment, cuDNN
# check, every step's exit status and elapsed seconds), tests.log, bench.log, the two result
# JSON files, report.md, clip_step_trace.json.gz, ncu.txt.
#
# Nothing is lost to a failure or a time limit: each step has its own limit and a failing step
# does not stop the next; the benchmark result files are rewritten after every finished
# benchmark (benchmarks/bench_progress.py), so a killed part keeps what finished; report.py
# skips a file it cannot read. Budget (about 15 minutes of machine time, one command of at most
# 10): tests 140 s, sync audit 40 s, ops 110 s, model 150 s, profile 50 s, ncu 50 s, report
# 20 s = 560 s of limits plus the install; --quick gives every benchmark 0.5 s of timed rounds instead of 2 s. Use a device
# timeout_s of 600.
#
# Knobs for the CPU dry run (tests/benchmarks/test_gpu_runbook.py): RUNBOOK_ALLOW_CPU=1 goes on
# without CUDA; RUNBOOK_SKIP_INSTALL=1 uses the current environment; RUNBOOK_TESTS,
# RUNBOOK_OPS_FILES, RUNBOOK_MODEL_FILES replace the selections; RUNBOOK_LIMITS="T O M P N"
# replaces the five limits; PYTHON names the interpreter.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick"
export PYTHONUNBUFFERED=1
status=0
runbook="$OUT/runbook.txt"
: >"$runbook"
read -r limit_tests limit_ops limit_model limit_profile limit_ncu \
    <<<"${RUNBOOK_LIMITS:-140 110 150 50 50}"

note() { echo "$*" | tee -a "$runbook"; }

# step NAME LIMIT LOG COMMAND...: run COMMAND under its own time limit (the whole process group
# is killed at the limit), append its output to LOG, note exit status and elapsed seconds.
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" >>"$log" 2>&1
    local code=$?
    local reason=""
    if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then reason=" (time limit hit)"; fi
    note "step $name: exit $code$reason after $((SECONDS - start)) s of $limit s (run total $SECONDS s)"
    tail -n 4 "$log"
    [ "$code" -eq 0 ] || status=1
}

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    if [ "${RUNBOOK_ALLOW_CPU:-0}" != "1" ]; then
        echo "gpu_check.sh: torch.cuda.is_available() is False: this runbook needs a CUDA GPU" \
             "(nothing was run)" | tee -a "$runbook" >&2
        exit 2
    fi
    note "dry run without CUDA (RUNBOOK_ALLOW_CPU=1)"
fi

if [ "${RUNBOOK_SKIP_INSTALL:-0}" != "1" ]; then
    site=/tmp/stemseg_fast_site
    mkdir -p "$site"
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" .whl/*.whl >>"$runbook" 2>&1 || { note "wheel install failed"; status=1; }
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
        --target "$site" . >>"$runbook" 2>&1 || { note "project install failed"; status=1; }
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
unset TRITON_INTERPRET

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 \
        || echo "nvidia-smi not available"
    "$PYTHON" -c "import torch, triton, sys; print('torch', torch.__version__, 'triton', triton.__version__, 'python', sys.version.split()[0], 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
} 2>&1 | tee -a "$runbook"
note "install and environment: $SECONDS s"

# GPU tests: only the suites that touch CUDA, compiled kernels (~200 variants) in parallel.
# -P: keep the source tree's stemseg_fast/ (which lacks the kernels/ mapping) off sys.path.
parallel=()
if "$PYTHON" -c "import xdist" 2>/dev/null; then parallel=(-n 8); fi
read -r -a test_paths <<<"${RUNBOOK_TESTS:-tests/kernels tests/model tests/inference tests/io/test_rle.py}"
step tests "$limit_tests" "$OUT/tests.log" "$PYTHON" -P -m pytest "${test_paths[@]}" -q \
    -p no:cacheprovider -m "gpu or not slow" "${parallel[@]}"

# The sync audit on its own line of runbook.txt: a video step under
# set_sync_debug_mode("error") (tests/inference/test_sync_audit.py), syncs only where marked.
step sync-audit "${RUNBOOK_SYNC_AUDIT_LIMIT:-40}" "$OUT/tests.log" "$PYTHON" -P -m pytest \
    tests/inference/test_sync_audit.py -q -p no:cacheprovider

# Two benchmark parts with their own result files and limits.
read -r -a ops_files <<<"${RUNBOOK_OPS_FILES:-test_bench_instance_gaussians.py \
test_bench_gaussian_probability.py test_bench_lovasz_hinge.py test_bench_embedding_loss.py \
test_bench_greedy_cluster.py test_bench_stitching.py}"
read -r -a model_files <<<"${RUNBOOK_MODEL_FILES:-test_bench_tse_decoder.py test_bench_model.py \
test_bench_inference.py test_bench_training_step.py}"
step bench-ops "$limit_ops" "$OUT/bench.log" "$PYTHON" benchmarks/run.py $QUICK \
    --out "$OUT/results" --part ops -- "${ops_files[@]}"
step bench-model "$limit_model" "$OUT/bench.log" "$PYTHON" benchmarks/run.py $QUICK \
    --out "$OUT/results" --part model -- "${model_files[@]}"
step report 20 "$OUT/report.md" "$PYTHON" benchmarks/report.py "$OUT"/results/*/*.json

# cuDNN: version, whether the bf16 conv3d runs a cuDNN kernel, one profiler trace of a clip.
step profile "$limit_profile" "$runbook" "$PYTHON" benchmarks/gpu_profile.py \
    --trace "$OUT/clip_step_trace.json.gz"

# ncu on the kernels the static report (benchmarks/compiled.py) predicts most about, the two
# TSE blocks in both layouts.
if command -v ncu >/dev/null 2>&1; then
    step ncu "$limit_ncu" "$OUT/ncu.txt" ncu --clock-control none --target-processes all \
        --kernel-name "regex:^(_upsample_add(_channels_last)?_kernel|_group_norm_relu_pool(_channels_last)?_kernel|_gaussian_probability_bwd_kernel)$" \
        --launch-count 5 --section SpeedOfLight --section LaunchStats --section Occupancy \
        "$PYTHON" benchmarks/gpu_profile.py --ncu-targets
else
    note "step ncu: skipped (ncu not found on PATH)"
fi

note "runbook finished with status $status after $SECONDS s"
exit $status
