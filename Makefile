# Two commands matter: `make demo` and `make test` (see README.md). Everything installs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts unit fidelity bench reliability clean browser

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m demo

lint: $(STAMP)
	$(VENV)/bin/ruff check controller emulator tests bench demo

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

# Debian chromium for the HTML report's browser test (idempotent; the test skips, naming this target,
# when it cannot be installed, e.g. without root)
browser:
	-bash tests/reporting/install_chromium.sh

unit: $(STAMP) browser
	$(VENV)/bin/pytest

fidelity: $(STAMP)
	bash tests/fidelity/run.sh

test: lint typecheck contracts unit fidelity

bench: $(STAMP)
	$(PY) -m bench

reliability: $(STAMP)
	$(PY) -m bench.reliability

clean:
	rm -rf $(VENV) .venv-sdk12 .mypy_cache .ruff_cache build *.egg-info
