# Every target creates .venv itself when it is missing, so a fresh clone needs only make and a Python 3.11 or
# newer on PATH. The first of python3.11 .. python3.14, python3 that runs and is >= 3.11 is used (a pyenv shim
# for a version that is not selected fails to run, so it is skipped); `make PYTHON=/path/to/python3.x` overrides.
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3.14 python3
PYTHON ?= $(shell for c in $(PYTHON_CANDIDATES); do \
	$$c -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$c; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out

.PHONY: demo test lint typecheck layers pytest bench clean install

$(STAMP): pyproject.toml iamgraph/usage/_fastct.c
	@test -n "$(PYTHON)" || { echo "need Python 3.11 or newer: none of $(PYTHON_CANDIDATES) on PATH runs as >= 3.11 (or give make PYTHON=/path/to/python3.x)" >&2; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 || { echo "need Python 3.11 or newer: $(PYTHON) is not" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/iamgraph demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check iamgraph api tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# PYTEST_ARGS: more pytest options (.ci/run leaves the slow demo-organization tests out on the newest Python).
PYTEST_ARGS ?=
pytest: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)

test: lint typecheck layers pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
