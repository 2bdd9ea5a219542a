# pipewatch: `make run` starts the whole system on embedded defaults; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Test processes (pytest-xdist): most tests wait on the database, Redis or child processes, so more
# processes than cores pays off; each gets its own database, Redis db and var/ (tests/xdist_isolation.py).
TEST_WORKERS ?= 4

.PHONY: run test lint bench clean tools bench-tools

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pipewatch needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

# System tools the tests and benchmarks run (promtool, wrk; chromium for the console's browser tests), installed when missing.
tools:
	@scripts/install_system_tools.sh promtool prometheus prometheus-alertmanager docker-compose chromium

bench-tools:
	@scripts/install_system_tools.sh promtool wrk

run: $(VENV)/.installed
	$(BIN)/python scripts/run.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy .

# Tests need PostgreSQL and Redis (defaults: the local ones); pytest's exit code 5 (no tests) fails.
test: lint tools
	@export DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"; \
	export REDIS_URL="$${REDIS_URL:-redis://127.0.0.1:6379/15}"; \
	export PROMETHEUS_MULTIPROC_DIR="$$(mktemp -d)"; \
	export OMP_NUM_THREADS="$${OMP_NUM_THREADS:-1}"; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); rc=$$?; rm -rf "$$PROMETHEUS_MULTIPROC_DIR"; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# Every bench/*.py script (helpers live in bench/lib/) prints one JSON line; record them in docs/BENCHMARKS.md.
bench: $(VENV)/.installed-dev bench-tools
	@for script in bench/*.py; do \
	  [ "$$(basename $$script)" = "__init__.py" ] && continue; \
	  echo "== $$script" >&2; $(BIN)/python $$script || exit 1; \
	done

clean:
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
