# careflow — every target bootstraps .venv on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint synth bench up clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## the surgical readiness scenarios on the local cloud
	$(VENV)/bin/careflow demo

up: $(STAMP)  ## the local cloud on 127.0.0.1:4566 until Ctrl-C
	$(VENV)/bin/careflow up

test: $(STAMP)  ## the whole suite
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/runtime/careflow lambdas stacks app.py

synth: $(STAMP)  ## CloudFormation templates in cdk.out (builds the dependency layer)
	$(PY) app.py
	$(VENV)/bin/cfn-lint cdk.out/*.template.json

bench: $(STAMP)  ## executions per second, local cloud vs stock moto
	$(PY) -m careflow.localcloud.bench

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
