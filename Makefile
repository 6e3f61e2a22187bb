# marketdata_pipeline: every target sets itself up (virtual environment, packages, embedded
# Postgres) on a fresh clone with only Python 3.11 and make.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Parallel by file: every test has its own database, every worker its own Postgres and home.
PYTEST_WORKERS ?= auto
PORT ?= 3000

.PHONY: help venv demo test dev lint format bench clean

help:
	@echo "make demo   set up, materialise recent stock and crypto candles, print what landed"
	@echo "make test   set up and run the whole test suite (what CI runs)"
	@echo "make dev    Dagster UI + daemon on the embedded defaults (http://127.0.0.1:3000; PORT=N)"
	@echo "make bench  run the benchmarks in bench/ and print their ratios"
	@echo "make lint   ruff check and format check"

# Re-installs when pyproject.toml changes.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,test,bench]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/marketdata demo

# Bytecode is written even when the shell sets PYTHONDONTWRITEBYTECODE: the suite starts a few
# hundred Python processes (the console script, Dagster's servers and step processes, benchmark
# children), and without it each compiles the project's modules again and every pytest worker
# rewrites every test module again.
test: export PYTHONDONTWRITEBYTECODE :=
test: $(STAMP)
	$(BIN)/ruff check marketdata_pipeline polygon_simulator marketdata_pipeline_tests bench
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

dev: $(STAMP)
	$(BIN)/marketdata dev --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check marketdata_pipeline polygon_simulator marketdata_pipeline_tests bench
	$(BIN)/ruff format --check marketdata_pipeline polygon_simulator marketdata_pipeline_tests bench

format: $(STAMP)
	$(BIN)/ruff format marketdata_pipeline polygon_simulator marketdata_pipeline_tests bench
	$(BIN)/ruff check --fix marketdata_pipeline polygon_simulator marketdata_pipeline_tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

# The embedded Postgres is stopped first: deleting its data directory under a running server
# would leave the server running on nothing.
clean:
	@if [ -x $(BIN)/marketdata ]; then $(BIN)/marketdata db stop; fi
	rm -rf $(VENV) .marketdata .pytest_cache .ruff_cache *.egg-info
