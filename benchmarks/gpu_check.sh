#!/usr/bin/env bash
# GPU runbook: one run on the lent GPU machine (torch 2.11, triton 3.6, Python 3.12, no network)
# does everything: install carried wheels and the project, run every GPU test with compiled
# kernels, run every benchmark, leave logs and result JSON under $OUT.
#
# Prepare here (CPU machine, once):   make gpu-wheels      (fills .whl/, which git ignores)
# Run there:  device run, carry [".whl"], command "bash benchmarks/gpu_check.sh [--quick]"
# Afterwards copy $OUT/results/<device>/<date>.json into benchmarks/results/ and commit it.
#
# Budget: well under 6 minutes. --quick shortens every benchmark (pytest-benchmark max-time).
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
    --target "$site" . >"$OUT/install.log" 2>&1 || { echo "project install failed"; status=1; }
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import torch, triton, sys; print('torch', torch.__version__, 'triton', triton.__version__, 'python', sys.version.split()[0], 'cuda', torch.version.cuda)"
} 2>&1 | tee "$OUT/environment.txt"

# Every test that touches a kernel runs on CUDA with compiled kernels (tests use the `device`
# fixture, which is CUDA here), plus every test marked gpu elsewhere.
# -P: keep the source tree's stemseg_fast/ (which lacks the kernels/ mapping) off sys.path.
timeout 240 python3 -P -m pytest tests -q -p no:cacheprovider -m "gpu or not slow" \
    --junitxml="$OUT/tests.xml" 2>&1 | tee "$OUT/tests.log" | tail -n 25
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

timeout 300 python3 benchmarks/run.py $QUICK --out "$OUT/results" 2>&1 | tee "$OUT/bench.log" \
    | tail -n 5
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
python3 benchmarks/report.py "$OUT"/results/*/*.json 2>&1 | tee "$OUT/report.md"
exit $status
