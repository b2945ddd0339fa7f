# The two commands a fresh machine needs are `make demo` and `make test` (see README.md).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help demo test lint mypy format pytest bench bench-smoke clean setup-php

help:
	@echo "make demo   - create .venv, install, run the main job on the embedded default"
	@echo "make test   - create .venv, install with test extras, run ruff, mypy and every test"
	@echo "make bench  - run every benchmark in bench/ (under 10 min), print one table, write bench/results/latest.json"
	@echo "make bench-smoke - every benchmark at tiny sizes (what make test runs), results in a temp file"
	@echo "make setup-php - install PHP and phpredis (Debian packages) for the PHP publisher's tests"

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or run: make PY=python3 ...)"; exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dualsync doctor
	$(BIN)/dualsync demo

lint: $(STAMP)
	$(BIN)/ruff check dualsync tests examples bench
	$(BIN)/ruff format --check dualsync tests examples bench

mypy: $(STAMP)
	$(BIN)/mypy dualsync tests examples bench

format: $(STAMP)
	$(BIN)/ruff format dualsync tests examples bench
	$(BIN)/ruff check --fix dualsync tests examples bench

pytest: $(STAMP)
	$(BIN)/pytest

test: lint mypy pytest

# PHP is not a Python dependency: Debian's php-cli and php-redis, for the PHP publisher's
# contract test (which skips, saying why, without them). Needs root or sudo.
setup-php:
	bash scripts/setup-php.sh

bench: $(STAMP)
	$(BIN)/python -m bench

bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) .dualsync .mypy_cache .pytest_cache .ruff_cache
