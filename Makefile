# likeguard: `make demo` runs the product, `make test` runs every test.
# Both set themselves up from scratch (virtualenv, Python packages, the Rust
# core, Kafka jars, Debian packages kcat, prometheus, chromium and
# chromium-driver when missing).

PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CORE    := detectors/_core
CORE_STAMP := $(VENV)/.core-built
CORE_SRC := $(CORE)/Cargo.toml $(CORE)/Cargo.lock $(wildcard $(CORE)/src/*.rs $(CORE)/src/*/*.rs)
KAFKA   := deploy/kafka/kafka.sh
# rustup installs cargo here; a login shell may not have it on PATH
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: help all setup test test-unit test-integration test-quality test-core lint bench bench-memory bench-moderation soak demo demo-offline clean system-deps kafka-jars rust

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 24

all: test

# The compiled core (detectors/_core, Rust + PyO3) is built by pip through
# setuptools-rust; it needs cargo.
rust:
	@command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust) is needed to build detectors/_core: install it with rustup (https://rustup.rs) or your distribution's cargo package"; exit 1; }

$(STAMP): pyproject.toml | rust
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $(CORE_STAMP)

# rebuild the extension when the Rust sources change
$(CORE_STAMP): $(STAMP) $(CORE_SRC) | rust
	$(BIN)/pip install -q --no-deps -e .
	touch $(CORE_STAMP)

setup: $(STAMP) $(CORE_STAMP) ## virtualenv, Python packages and the compiled core

# Debian packages the tests use as real, independent parts (chromium and its
# driver run the review console's browser test: Selenium gets no browser of its own).
system-deps:
	@missing=""; \
	for t in kcat:kcat prometheus:prometheus promtool:prometheus java:openjdk-17-jre-headless mvn:maven \
	         chromium:chromium chromedriver:chromium-driver; do \
	  cmd=$${t%%:*}; pkg=$${t##*:}; command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

kafka-jars: system-deps
	bash $(KAFKA) fetch

lint: setup ## ruff, mypy, cargo fmt --check, cargo clippy
	$(BIN)/ruff check detectors streams tests
	$(BIN)/mypy
	cd $(CORE) && cargo fmt --check && PYO3_PYTHON=$(abspath $(BIN))/python cargo clippy -q --all-targets -- -D warnings

# the core's own unit tests (without the Python extension feature)
test-core: rust ## the core's Rust unit tests
	cd $(CORE) && cargo test -q --no-default-features

# The outage tests mostly wait for a stopped broker (minutes, little CPU), so
# they run in a second pytest beside the rest; both must pass.
test: setup system-deps kafka-jars lint test-core ## every test (starts a real broker and Prometheus)
	@mkdir -p out; \
	$(BIN)/python -m pytest -q -m outage --basetemp=out/pytest-outage > out/test-outage.log 2>&1 & \
	outage=$$!; \
	$(BIN)/python -m pytest -q --durations=15 -m "not outage"; rest=$$?; \
	wait $$outage; out=$$?; \
	echo "== the outage tests (run beside the rest):"; cat out/test-outage.log; \
	test $$rest -eq 0 -a $$out -eq 0

test-unit: setup ## unit tests and doctests: no broker, no services
	$(BIN)/python -m pytest -q tests/unit detectors streams

test-integration: setup system-deps kafka-jars ## tests on the real broker, Prometheus, compose
	$(BIN)/python -m pytest -q tests/integration

test-quality: setup ## detection quality on our simulator and the independent generators
	$(BIN)/python -m pytest -q tests/quality

bench: setup kafka-jars ## the replay, worker and live-latency benchmarks (figures in out/)
	$(BIN)/python tests/bench/bench_replay.py
	$(BIN)/python tests/bench/bench_worker.py
	$(BIN)/python tests/bench/bench_latency.py

bench-moderation: setup ## alerts with and without a simulated moderator (out/bench_moderation.json; ARGS=--long)
	$(BIN)/python tests/bench/moderation.py $(ARGS)

bench-memory: setup ## one engine through a burst and its expiry: RSS against the pre-burst baseline (out/memory_return.json)
	$(BIN)/python tests/bench/memory_return.py $(ARGS)

soak: setup kafka-jars ## the worker 30 min at a steady rate with a burst: RSS, state, lag (out/soak.*; ARGS="--minutes 5 ...")
	$(BIN)/python tests/bench/soak.py $(ARGS)

demo: setup system-deps kafka-jars ## the product: broker, worker, simulated traffic, live alerts (ARGS="--duration 600 ...")
	$(BIN)/python -m streams.demo $(ARGS)

demo-offline: setup ## simulate, replay and evaluate one hour offline
	$(BIN)/likeguard simulate out/demo.jsonl.gz --labels out/demo.labels.json --seed 7 --duration 3600
	$(BIN)/likeguard replay out/demo.jsonl.gz --alerts-out out/demo.alerts.jsonl
	$(BIN)/likeguard evaluate --labels out/demo.labels.json --alerts out/demo.alerts.jsonl --report out/demo.report.html

clean: ## remove the virtualenv, caches, build output
	rm -rf $(VENV) .cache out *.egg-info $(CORE)/target detectors/_core.*.so
