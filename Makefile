# regionstat — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_VERSION := 3.11
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH if present, else bootstrapped with pip into .tools/ (pinned; nothing installed system-wide)
UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export GX_ANALYTICS_ENABLED := False
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install demo test test-servers lint typecheck bench drills airflow clean
help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==0.13.8"

$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON_VERSION)
	@touch $@

install: $(VENV)/.installed  ## create .venv from the committed uv.lock (idempotent, fast when nothing changed)

demo: install  ## run the whole pipeline through Airflow offline against the bundled snapshot
	$(BIN)/python -m regionstat.cli.demo

test: install lint typecheck test-servers  ## ruff, sqlfluff, mypy and the test suite
	$(BIN)/pytest -q -n 2 --dist loadgroup

# The scheduler tests start their own PostgreSQL and Redis on loopback (tests/test_airflow_postgres.py)
# from Debian's server packages: installed here as root when missing; otherwise those tests skip and say why.
test-servers:  ## Debian's postgresql and redis-server for the scheduler tests (apt-get, as root, when missing)
	@missing=""; \
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || missing="postgresql"; \
	command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "test-servers: missing$$missing (not root with apt-get): the scheduler tests that need it skip"; exit 0; fi; \
	echo "test-servers: apt-get install$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

lint: install  ## ruff + sqlfluff (dbt templater)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd dbt_project && REGIONSTAT_DUCKDB_PATH=$${REGIONSTAT_DUCKDB_PATH:-$(CURDIR)/.lint.duckdb} ../$(BIN)/sqlfluff lint models --processes 2

typecheck: install  ## mypy over regionstat/ extract/ expectations/ warehouse/ (config in pyproject.toml)
	$(BIN)/mypy

.PHONY: generate
generate: install  ## rewrite the dbt sources YAML and seeds from regionstat/catalogue.yaml (regionstat generate)
	$(BIN)/regionstat generate

.PHONY: snapshot
snapshot: install  ## rebuild the offline snapshot tools/snapshot/tables/ from reference/data/ (byte-identical if unchanged)
	$(BIN)/python -m tools.snapshot.build

bench: install  ## benchmarks against peers; results in bench/results/*.json
	$(BIN)/python -m bench.run

drills: install  ## long fault drills: kill -9 during extract/load/dbt, two runs at once, changed upstream
	$(BIN)/pytest -q -m drill tests/drills/

# `make airflow PORT=8081 WORKER_LOG_PORT=8795 TRIGGER_LOG_PORT=8796`: a second checkout on the same machine.
# The log-server ports default to Airflow's own variables if set, else Airflow's 8793/8794.
PORT ?= 8080
WORKER_LOG_PORT ?= $(or $(AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT),8793)
TRIGGER_LOG_PORT ?= $(or $(AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT),8794)
airflow: install  ## local Airflow on 127.0.0.1:8080 (PORT=, WORKER_LOG_PORT=, TRIGGER_LOG_PORT= to move it) with the DAGs
	$(BIN)/python -m regionstat.cli.airflow_local standalone --port $(PORT) \
		--worker-log-port $(WORKER_LOG_PORT) --trigger-log-port $(TRIGGER_LOG_PORT)

clean:  ## remove data/ and local Airflow state (keeps .venv)
	rm -rf data .airflow .lint.duckdb .tools
