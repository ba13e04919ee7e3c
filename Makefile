# careflow — every target bootstraps .venv on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint synth bench eval models up clean moto-check openapi browser-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@$(MAKE) --no-print-directory browser-deps
	touch $(STAMP)

# The browser tests (tests/browser) drive Debian's headless Chromium through its own
# chromedriver (never Selenium Manager: no downloads). Installed when missing; quiet when
# present; one line saying what to install when apt cannot run (not root, no sudo).
BROWSER_PACKAGES := chromium chromium-driver

browser-deps:  ## Debian's chromium and chromium-driver, when missing
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=sudo; \
	else \
		echo "browser-deps: cannot install Debian's $(BROWSER_PACKAGES) (not root, no sudo): install them (apt-get install chromium chromium-driver) for the browser tests"; \
		exit 0; \
	fi; \
	echo "browser-deps: installing Debian's $(BROWSER_PACKAGES) ..."; \
	if ! { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); } >/tmp/careflow-browser-deps.log 2>&1; then \
		echo "browser-deps: apt-get could not install $(BROWSER_PACKAGES) (see /tmp/careflow-browser-deps.log): install them for the browser tests"; \
	fi

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
	$(PY) -m careflow.api.compat docs/openapi-v1-released.json docs/openapi.json

synth: $(STAMP)  ## CloudFormation templates in cdk.out (builds the dependency layer)
	$(PY) app.py
	$(VENV)/bin/cfn-lint cdk.out/*.template.json

openapi: $(STAMP)  ## docs/openapi.json, the /v1 API's document generated from the code
	$(PY) -m careflow.api.openapi > docs/openapi.json

bench: $(STAMP)  ## executions per second, local cloud vs stock moto
	$(PY) -m careflow.localcloud.bench

eval: $(STAMP)  ## each triage model's held-out metrics beside its baseline (fails below the card's margin)
	$(VENV)/bin/careflow models eval

models: $(STAMP)  ## retrain every triage model from the generated starting history (seeded)
	$(VENV)/bin/careflow models train

# A throwaway venv under /tmp (never .venv): the project with the newest moto on PyPI.
MOTO_CHECK_VENV ?= /tmp/careflow-moto-check
MOTO_CHECK_PY := $(MOTO_CHECK_VENV)/bin/python

moto-check:  ## every moto patch against the newest moto, then the local-cloud suites on it
	rm -rf $(MOTO_CHECK_VENV)
	$(PYTHON) -m venv $(MOTO_CHECK_VENV)
	$(MOTO_CHECK_PY) -m pip install --quiet --upgrade pip
	$(MOTO_CHECK_PY) -m pip install --quiet -e '.[dev]'
	$(MOTO_CHECK_PY) -m pip install --quiet -U 'moto[server]'
	@echo "moto-check: moto (newest on PyPI) is $$($(MOTO_CHECK_PY) -c 'import moto; print(moto.__version__)')"
	@shapes=0; suites=0; \
	$(MOTO_CHECK_PY) -m careflow.localcloud.moto.check || shapes=$$?; \
	$(MOTO_CHECK_PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q -p no:cacheprovider \
		tests/integration/test_localcloud_*.py tests/workflows || suites=$$?; \
	echo "moto-check: shape checks exit $$shapes, local-cloud suites exit $$suites"; \
	test $$shapes -eq 0 -a $$suites -eq 0

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
