# Two commands matter: `make run` (set up, run the default suite, write its report) and
# `make test` (set up, run the tests). Both create .venv from the repository's own files.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test lint format

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch 2.13.0 is installed first: any other torch request pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m odebench.demo

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check odebench tests
	$(VENV)/bin/ruff format --check odebench tests

format: setup
	$(VENV)/bin/ruff format odebench tests
	$(VENV)/bin/ruff check --fix odebench tests
