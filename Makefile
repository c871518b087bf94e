# make test | make demo | make bench: each creates .venv on first use and installs the project.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# CPU torch comes from the local wheel (never a multi-GB CUDA build); triton pinned to the GPU
# machine's version so the interpreter in CI speaks the same language as compiled runs.
TORCH_SPEC ?= torch==2.13.0
TRITON_SPEC ?= triton==3.6.0
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup test lint test-seeds demo bench bench-report bench-static bench-host clean gpu-wheels

setup: $(STAMP)

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet "$(TORCH_SPEC)" "$(TRITON_SPEC)"
	$(PIP) install --quiet -e ".[test]"
	$(PIP) install --quiet --no-deps "trackeval==1.3.0"
	touch $(STAMP)

# pytest exits 5 when it collects nothing; that is a failure of the suite, not a pass.
test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

# ruff: the checks (pyflakes, pycodestyle, bugbear) and the formatting, settings in
# pyproject.toml (`ruff format` on the same paths fixes a format failure). CI runs it first.
LINT_PATHS := stemseg_fast kernels training tests benchmarks setup.py
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

# The kernel tests over SEEDS fresh seeds (STEMSEG_FAST_TEST_SEED=1..SEEDS; slow tests and the
# Hopper compile check, which do not depend on the seed, left out): a seed-dependent failure
# shows with its seed, and the loop reports every failing seed before it fails.
SEEDS ?= 20
test-seeds: $(STAMP)
	@failed=""; log=$$(mktemp); for seed in $$(seq 1 $(SEEDS)); do \
	  STEMSEG_FAST_TEST_SEED=$$seed $(PY) -m pytest tests/kernels -q -p no:cacheprovider \
	    -m "not slow" --deselect tests/kernels/test_hopper_compile.py $(PYTEST_ARGS) \
	    > $$log 2>&1 && echo "seed $$seed: passed" \
	    || { echo "seed $$seed: FAILED"; grep -E "^(FAILED|ERROR)" $$log; \
	         failed="$$failed $$seed"; }; \
	done; rm -f $$log; \
	if [ -n "$$failed" ]; then echo "failing seeds:$$failed"; exit 1; fi; \
	echo "all $(SEEDS) seeds passed"

demo: $(STAMP)
	$(VENV)/bin/stemseg-fast demo --out demo_output

bench: $(STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/report.py

bench-report: $(STAMP)
	$(PY) benchmarks/report.py

# Static sm_90 report of every kernel launch at the benchmark presets (no GPU needed; a few
# minutes): benchmarks/results/sm90-static/<date>.json and its README table.
bench-static: $(STAMP)
	env -u TRITON_INTERPRET $(PY) benchmarks/compiled.py --readme README.md

# Host path at OVIS input (decode, preprocessing, masks, RLE, writing), ms per frame on CPU.
bench-host: $(STAMP)
	$(PY) benchmarks/host_path.py --readme README.md

clean:
	rm -rf $(VENV) build *.egg-info demo_output .pytest_cache

# Wheels the GPU machine lacks (it has no network): cp312 manylinux builds into .whl/.
GPU_WHEELS ?= pycocotools==2.0.11 trackeval==1.3.0
gpu-wheels:
	mkdir -p .whl
	$(PYTHON) -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)
