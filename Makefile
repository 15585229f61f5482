# redress — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: setup run db demo test lint typecheck pytest lock bench clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q --require-hashes -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e . --config-settings editable_mode=compat
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

db: setup
	$(BIN)/redress db upgrade

demo: db
	$(BIN)/redress demo --if-empty

run: demo
	$(BIN)/redress serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

# Every benchmark, small by default (a few minutes); FULL=1 for the sizes in docs/BENCHMARKS.md.
# PostgreSQL figures too when REDRESS_TEST_DATABASE_URL (or REDRESS_BENCH_PG_URL) is set.
bench: setup
	$(BIN)/python bench/advance.py $(if $(FULL),--full,)
	$(BIN)/python bench/sweep.py $(if $(FULL),--full,)
	$(BIN)/python bench/api_load.py $(if $(FULL),--full,)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
