# likeguard: `make demo` runs the product, `make test` runs every test.
# Both set themselves up from scratch (virtualenv, Python packages, Kafka jars,
# Debian packages kcat and prometheus when missing).

PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
KAFKA   := deploy/kafka/kafka.sh

.PHONY: all setup test test-unit lint bench demo demo-offline clean system-deps kafka-jars

all: test

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests use as real, independent parts.
system-deps:
	@missing=""; \
	for t in kcat:kcat prometheus:prometheus promtool:prometheus java:openjdk-17-jre-headless mvn:maven; do \
	  cmd=$${t%%:*}; pkg=$${t##*:}; command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

kafka-jars: system-deps
	bash $(KAFKA) fetch

lint: $(STAMP)
	$(BIN)/ruff check detectors streams tests

test: $(STAMP) system-deps kafka-jars
	$(BIN)/ruff check detectors streams tests
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not kafka"

bench: $(STAMP) kafka-jars
	$(BIN)/python tests/bench/bench_replay.py
	$(BIN)/python tests/bench/bench_worker.py

demo: $(STAMP) system-deps kafka-jars
	$(BIN)/python -m streams.demo

demo-offline: $(STAMP)
	$(BIN)/likeguard simulate out/demo.jsonl.gz --labels out/demo.labels.json --seed 7 --duration 3600
	$(BIN)/likeguard replay out/demo.jsonl.gz --alerts-out out/demo.alerts.jsonl
	$(BIN)/likeguard evaluate --labels out/demo.labels.json --alerts out/demo.alerts.jsonl --report out/demo.report.html

clean:
	rm -rf $(VENV) .cache out *.egg-info
