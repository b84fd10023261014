# rootscope: two commands set up a fresh machine.
#   make demo   create .venv, install from the lock, run the pipeline on bundled synthetic data -> out/demo/
#   make test   create .venv, install from the lock, run the test suite
# and, for maintainers:
#   make lock         re-resolve requirements.lock (newest releases pyproject.toml allows, with hashes)
#   make test-latest  run the suite in a throw-away venv with the newest releases pyproject.toml allows
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# The lock is made by pip-tools (pip-compile reads pip's settings, so it finds the CPU wheel of
# torch 2.13.0 on local disk; see DEVELOPERS.md). Pinned so that `make lock` itself is reproducible.
PIP_TOOLS := pip-tools==7.7.0
# `make lock` takes the newest releases; `make lock LOCK_UPGRADE=` only adds what pyproject.toml gained.
LOCK_UPGRADE ?= --upgrade
COMPILE_FLAGS := --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
                 --build-deps-for editable --extra dev --extra web

.PHONY: demo test install clean lock test-latest

$(PY):
	$(PYTHON) -m venv $(VENV)

# Every package at the exact version and hash of the lock; then rootscope itself, built with the
# locked setuptools (no build isolation, so nothing unlocked is fetched).
$(STAMP): $(LOCK) pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rootscope demo out/demo

test: $(STAMP)
	$(PY) -m pytest -q

lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet $(PIP_TOOLS)
	.venv-lock/bin/pip-compile --quiet $(LOCK_UPGRADE) $(COMPILE_FLAGS) -o $(LOCK) pyproject.toml
	rm -rf .venv-lock

# Not part of `make test` (it resolves and installs everything anew, several minutes): run it before
# `make lock` to see whether the newest releases still pass.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install --quiet --upgrade pip
	.venv-latest/bin/pip install --quiet torch==2.13.0
	.venv-latest/bin/pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev,web]"
	.venv-latest/bin/pip freeze --exclude-editable > .venv-latest/versions.txt
	@echo "versions that differ from $(LOCK) (< lock, > newest; the build's setuptools left out):"
	@diff <(grep -E '^[A-Za-z0-9_.-]+==' $(LOCK) | sed 's/ .*//' | tr A-Z_ a-z- | grep -v '^setuptools==' | sort) \
	      <(tr A-Z_ a-z- < .venv-latest/versions.txt | sort) | grep '^[<>]' || echo "none"
	.venv-latest/bin/python -m pytest -q

clean:
	rm -rf $(VENV) .venv-lock .venv-latest out .pytest_cache
