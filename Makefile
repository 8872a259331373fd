# Two commands matter: `make run` (set up, run the default suite, write its report) and
# `make test` (set up, run the tests). Both create .venv from the repository's own files.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RESULTS ?= results/quick-$(shell date -u +%Y%m%d-%H%M%S).jsonl
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
	$(VENV)/bin/odebench report $(RESULTS) --out $(REPORT)

test: setup
	$(PY) -m pytest

# Tests marked slow stay out of `make test`; CI runs them here (exit 5: none collected).
test-slow: setup
	$(PY) -m pytest -m slow || [ $$? -eq 5 ]

lint: setup
	$(VENV)/bin/ruff check odebench tests benchmarks
	$(VENV)/bin/ruff format --check odebench tests benchmarks

format: setup
	$(VENV)/bin/ruff format odebench tests benchmarks
	$(VENV)/bin/ruff check --fix odebench tests benchmarks

# Benchmarking (docs/benchmarking.md): the deterministic-metric gate CI runs, refreshing its
# baseline after an intended change, pytest-benchmark timings, and an asv smoke run.
.PHONY: gate baseline perf asv-smoke
gate: setup
	$(PY) -m odebench.baseline check

baseline: setup
	$(PY) -m odebench.baseline update

perf: setup
	$(PY) -m pytest -m perf tests/perf --benchmark-only

asv-smoke: setup
	$(VENV)/bin/asv machine --yes
	$(VENV)/bin/asv run --python=same --quick --show-stderr
