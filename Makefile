# dataverse-sync — every target installs what it needs on a fresh machine (Python 3.11, node/npm), idempotently.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# A stamp per dependency set: re-installs only when a requirements file changes.
PY_STAMP := $(VENV)/.stamp-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
NODE_STAMP := node_modules/.stamp-$(shell sha1sum package-lock.json | cut -c1-12)
# Bicep validation tools, each in its own venv: checkov pins pycep-parser 0.5.1, the structural tests use 0.7.1.
PYCEP_VENV := .venv-pycep
CHECKOV_VENV := .venv-checkov
PYCEP_STAMP := $(PYCEP_VENV)/.stamp-$(shell sha1sum infra/tools/pycep-requirements.txt | cut -c1-12)
CHECKOV_STAMP := $(CHECKOV_VENV)/.stamp-$(shell sha1sum infra/tools/checkov-requirements.txt | cut -c1-12)
PYTEST_ARGS ?= -n auto  # pytest-xdist: one worker per core (each starts its own emulators); halves the run on 2 cores

.PHONY: run test lint fmt bench cloud clean deps help infra-tools infra-scan

help:
	@echo "make run    - the main job: local cloud + local Functions runner + sample data, prints a summary"
	@echo "make test   - every test (lint, unit, emulators, end to end, infra validation)"
	@echo "make lint   - ruff (lint + format check) and mypy"
	@echo "make bench  - throughput benchmark against the Dataverse emulator (prints JSON last)"
	@echo "make cloud  - start the local cloud alone and write .local-cloud/cloud.json (Ctrl+C stops it)"
	@echo "make infra-scan - checkov over infra/ (offline); make test also parses and tests the Bicep templates"

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.stamp-* && touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.stamp-* && touch $@

$(PYCEP_STAMP): infra/tools/pycep-requirements.txt
	@test -x $(PYCEP_VENV)/bin/python || $(PYTHON) -m venv $(PYCEP_VENV)
	$(PYCEP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/tools/pycep-requirements.txt
	@rm -f $(PYCEP_VENV)/.stamp-* && touch $@

$(CHECKOV_STAMP): infra/tools/checkov-requirements.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/tools/checkov-requirements.txt
	@rm -f $(CHECKOV_VENV)/.stamp-* && touch $@

deps: $(PY_STAMP) $(NODE_STAMP)

infra-tools: $(PYCEP_STAMP) $(CHECKOV_STAMP)

# checkov's Bicep checks, offline; fails on any failed check, parse error, or skip without a written reason.
infra-scan: $(PY_STAMP) $(CHECKOV_STAMP)
	$(PY) infra/tools/checkov_scan.py --checkov $(CHECKOV_VENV)/bin/checkov infra

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

# tests/infra parses every .bicep with .venv-pycep and runs the structural tests; infra-scan runs checkov.
test: deps lint infra-tools infra-scan
	$(BIN)/pytest $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench.sync_throughput

clean:
	rm -rf $(VENV) $(PYCEP_VENV) $(CHECKOV_VENV) node_modules .local-cloud .pytest_cache .mypy_cache .ruff_cache
