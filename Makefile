# Two commands matter: `make run` (set up, run the quick suite and the quick training suite,
# write their report) and `make test` (set up, run the tests). Both create .venv from the
# repository's own files.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RUN_TIME := $(shell date -u +%Y%m%d-%H%M%S)
RESULTS ?= results/quick-$(RUN_TIME).jsonl
TRAIN_RESULTS ?= results/train-quick-$(RUN_TIME).jsonl
REPORT ?= report/quick

.PHONY: setup run test test-slow lint format

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch 2.13.0 is installed first: any other torch request pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/odebench run --suite quick --out $(RESULTS)
	$(VENV)/bin/odebench train --suite train-quick --out $(TRAIN_RESULTS)
	$(VENV)/bin/odebench report $(RESULTS) $(TRAIN_RESULTS) --out $(REPORT)

test: setup
	$(PY) -m pytest

# The slow tier: forward mode beyond dopri5, the newer methods on low-order adaptive solvers,
# the core methods other than naive on the variants of one study, the diffrax cases end to end,
# compiled steps and the gate's own test (CI runs it before `make test`).
test-slow: setup
	$(PY) -m pytest -m slow

lint: setup
	$(VENV)/bin/ruff check odebench tests benchmarks
	$(VENV)/bin/ruff format --check odebench tests benchmarks

format: setup
	$(VENV)/bin/ruff format odebench tests benchmarks
	$(VENV)/bin/ruff check --fix odebench tests benchmarks

# Benchmarking (docs/benchmarking.md). The CI gate is the `gate` suite compared with the committed
# baseline results file by `odebench compare` (the same engine and policy); `make baseline`
# re-measures that file after an intended change (commit it with the change).
.PHONY: gate baseline perf asv-smoke scale-reports memory-backends compiled-step cuda-check
# One name for the whole recipe (`?=` would re-run mktemp at each use).
ifndef GATE_RUN
GATE_RUN := $(shell mktemp -u /tmp/odebench-gate-XXXXXX).jsonl
endif
gate: setup
	$(VENV)/bin/odebench run --suite gate --out $(GATE_RUN) --no-progress
	$(VENV)/bin/odebench compare results/baseline.jsonl $(GATE_RUN)

baseline: setup
	rm -f results/baseline.jsonl
	$(VENV)/bin/odebench run --suite gate --out results/baseline.jsonl --no-progress

perf: setup
	$(PY) -m pytest -m perf tests/perf --benchmark-only

# How report and compare scale: a generated 31k-record file (benchmarks/scale_reports.py).
scale-reports: setup
	$(PY) -m benchmarks.scale_reports

asv-smoke: setup
	$(VENV)/bin/asv machine --yes
	$(VENV)/bin/asv run --python=same --quick --show-stderr

# The allocator memory backend against memray (and, on a GPU, the CUDA allocator's own peak).
memory-backends: setup
	$(PY) -m benchmarks.memory_backends --suite quick

# What torch.compile recovers: one step compiled against the whole fixed-step loop (about 8 min).
compiled-step: setup
	$(PY) -m benchmarks.compiled_step

# The GPU check (scripts/cuda-check): CUDA tests, the scale suite, one training study, the memory
# backends and the report into one folder, within 8 minutes. `make cuda-check DEVICE=cpu` is its
# dry run on a machine without CUDA.
DEVICE ?= cuda
cuda-check: setup
	DEVICE=$(DEVICE) VENV=$(VENV) scripts/cuda-check
