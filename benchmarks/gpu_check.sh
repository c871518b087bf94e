#!/usr/bin/env bash
# GPU runbook: one run on the lent GPU machine (torch 2.11, triton 3.6, Python 3.12, no network)
# does everything: install carried wheels and the project, run every GPU test with compiled
# kernels, run every benchmark, leave logs and result JSON under $OUT.
#
# Prepare here (CPU machine, once):   make gpu-wheels      (fills .whl/, which git ignores)
# Run there:  device run, carry [".whl"], command "bash benchmarks/gpu_check.sh [--quick]"
# Afterwards copy $OUT/results/<device>/<date>-{ops,model}.json into benchmarks/results/<device>/,
# run `python benchmarks/report.py --readme README.md` and commit both. $OUT gets 7 files (the
# device tool brings back at most 8).
#
# Budget: each step has its own time limit (180 + 150 + 240 s); --quick gives every benchmark
# 0.5 s of timed rounds instead of 2 s. Use a device timeout_s of at least 600.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick"
export PYTHONUNBUFFERED=1
status=0

site=/tmp/stemseg_fast_site
mkdir -p "$site"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || status=1
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
    --target "$site" . >"$OUT/environment.txt" 2>&1 || { echo "project install failed"; status=1; }
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import torch, triton, sys; print('torch', torch.__version__, 'triton', triton.__version__, 'python', sys.version.split()[0], 'cuda', torch.version.cuda)"
} 2>&1 | tee -a "$OUT/environment.txt"

# Every test that touches a kernel runs on CUDA with compiled kernels (tests use the `device`
# fixture, which is CUDA here), plus every test marked gpu elsewhere.
# -P: keep the source tree's stemseg_fast/ (which lacks the kernels/ mapping) off sys.path.
timeout 180 python3 -P -m pytest tests -q -p no:cacheprovider -m "gpu or not slow" \
    2>&1 | tee "$OUT/tests.log" | tail -n 25
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# Two parts, each with its own result file: a time limit hitting the second keeps the first.
timeout 150 python3 benchmarks/run.py $QUICK --out "$OUT/results" --part ops -- \
    test_bench_instance_gaussians.py test_bench_gaussian_probability.py \
    test_bench_lovasz_hinge.py test_bench_embedding_loss.py test_bench_greedy_cluster.py \
    test_bench_stitching.py 2>&1 | tee "$OUT/bench_ops.log" | tail -n 3
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
timeout 240 python3 benchmarks/run.py $QUICK --out "$OUT/results" --part model -- \
    test_bench_tse_decoder.py test_bench_model.py test_bench_inference.py \
    test_bench_training_step.py 2>&1 | tee "$OUT/bench_model.log" | tail -n 3
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
python3 benchmarks/report.py "$OUT"/results/*/*.json 2>&1 | tee "$OUT/report.md"
exit $status
