# redress — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
# The bench extra (SpiffWorkflow, matplotlib) on top, for `make bench` only.
BENCH_STAMP := $(VENV)/.bench-$(shell cat requirements-bench.lock pyproject.toml | cksum | cut -d' ' -f1)
BENCH_OUT := var/bench
# The small run's plot stays under var/; FULL=1 (the figures in docs/BENCHMARKS.md) updates docs/.
PEERS_PLOT := $(if $(FULL),docs/bench-peers.png,$(BENCH_OUT)/peers.png)
PYTEST_ARGS ?=

.PHONY: setup bench-setup run db demo test test-faults lint typecheck pytest lock bench clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python -q --require-hashes -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e . --config-settings editable_mode=compat
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

$(BENCH_STAMP): $(STAMP) requirements-bench.lock
	$(BIN)/uv pip install --python $(BIN)/python -q --require-hashes -r requirements-bench.lock
	rm -f $(VENV)/.bench-*
	touch $@

bench-setup: $(BENCH_STAMP)

# The installation's secret key (var/secret.key) before anything is hashed with it.
db: setup
	$(BIN)/redress secret init --if-missing
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

# Fault injection (processes killed, ten cold starts in a row): slower, run by .ci/run too.
test-faults: setup
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

# Regenerate the lock files after changing dependencies in pyproject.toml. The bench lock adds
# the bench extra with every shared package held at requirements.lock's version.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra bench --python-version 3.11 --generate-hashes --constraint requirements.lock -o requirements-bench.lock

# The pages' words: re-extract every msgid (babel.cfg: api/web, templates/pages) and merge them
# into each catalogue under locale/ (new ones empty, changed ones fuzzy, removed ones obsolete);
# then translate until tests/api/test_message_catalogues.py passes. The pages read the .po files
# themselves at startup: nothing to compile.
messages: setup
	mkdir -p var/locale
	$(BIN)/pybabel extract -F babel.cfg --add-location=file --sort-by-file --no-wrap \
		--project=redress --version=0.1.0 -o var/locale/messages.pot .
	$(BIN)/pybabel update -i var/locale/messages.pot -d locale -D messages --no-wrap \
		--ignore-pot-creation-date

# Every benchmark, small by default (a few minutes); FULL=1 for the sizes in docs/BENCHMARKS.md.
# PostgreSQL figures too when REDRESS_TEST_DATABASE_URL (or REDRESS_BENCH_PG_URL) is set.
bench: bench-setup
	$(BIN)/python bench/advance.py $(if $(FULL),--full,)
	$(BIN)/python bench/sweep.py $(if $(FULL),--full,)
	$(BIN)/python bench/api_load.py $(if $(FULL),--full,)
	$(BIN)/python bench/peers.py $(if $(FULL),--full,) --json-out $(BENCH_OUT)/peers.json
	$(BIN)/python bench/plot.py $(BENCH_OUT)/peers.json -o $(PEERS_PLOT)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
