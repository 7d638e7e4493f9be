# dataverse-sync — every target installs what it needs on a fresh machine (Python 3.11, node/npm), idempotently.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# A stamp per dependency set: re-installs only when a requirements file changes.
PY_STAMP := $(VENV)/.stamp-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
NODE_STAMP := node_modules/.stamp-$(shell sha1sum package-lock.json | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: run test lint fmt bench cloud clean deps help

help:
	@echo "make run    - the main job: local cloud + local Functions runner + sample data, prints a summary"
	@echo "make test   - every test (lint, unit, emulators, end to end, infra validation)"
	@echo "make lint   - ruff (lint + format check) and mypy"
	@echo "make bench  - throughput benchmark against the Dataverse emulator (prints JSON last)"
	@echo "make cloud  - start the local cloud alone and write .local-cloud/cloud.json (Ctrl+C stops it)"

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.stamp-* && touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.stamp-* && touch $@

deps: $(PY_STAMP) $(NODE_STAMP)

run: deps
	$(PY) -m emulators.demo

cloud: deps
	$(PY) -m emulators.cloud

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(PY_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: deps lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench.sync_throughput

clean:
	rm -rf $(VENV) node_modules .local-cloud .pytest_cache .mypy_cache .ruff_cache
