# The two set-up commands of the README: `make pipeline` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: pipeline test test-all install install-test install-spark lint clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"

install-spark: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,spark]"

## Install, then run the whole pipeline on the embedded synthetic default.
pipeline: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

## Install with test extras, then run lint and the fast tests (under 5 minutes on 2 cores:
## one pytest-xdist worker per core, idle workers steal queued tests; each test keeps to its own tmp_path).
test: install-test
	$(BIN)/ruff check src tests benchmarks
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -n 2 --dist worksteal -m "not e2e and not slow and not spark"

## Every test: also the real `dvc repro` in a copy, `dvc exp run`, the notebook, the
## measurement-bias study, the browser test and the Spark engine (local[2]). CI runs this too.
test-all: install-spark
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q
