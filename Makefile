# Two commands: `make up` runs wheelfarm on the embedded default, `make test` runs every check.
# `make test-fast` runs the tests not marked slow (docs/development.md), `make lint` the checks.
# Each creates the virtual environment it needs in .venv (Python 3.11 or newer).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test test-fast lint bench clean

$(BIN)/wheelfarm: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "wheelfarm needs Python 3.11+"'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "Python's venv support is missing: install it with 'sudo apt-get install python3-venv'"; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

up: $(BIN)/wheelfarm
	$(BIN)/wheelfarm up

lint: $(BIN)/wheelfarm
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

test: lint
	$(BIN)/pytest

# The fast tier spreads over the cores (pytest-xdist); FAST_WORKERS=0 runs it in one process.
# `make test` stays in one process: see docs/development.md.
FAST_WORKERS ?= auto

test-fast: $(BIN)/wheelfarm
	$(BIN)/pytest -m "not slow" -n $(FAST_WORKERS)

# Every benchmark side by side with what users would run instead, one table, written to
# BENCHMARKS.md (docs/development.md#benchmarks), at the sizes the issues ask for. QUICK=1
# scales the sizes down to a few minutes. Comparison tools go to $$WHEELFARM_BENCH_CACHE, not the project.
QUICK ?=

bench: $(BIN)/wheelfarm
	PYTHONPATH=$(CURDIR)/src:$(CURDIR) $(BIN)/python -m benchmarks.suite $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) wheelfarm-data .mypy_cache .pytest_cache .ruff_cache .hypothesis .import_linter_cache
