# The developer interface. `make run` and `make test` are the README's two commands; CI (.ci/run)
# runs `make check` then `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast check lint types layers wheel-smoke install services bench soak clean \
	bench-latency soak-stream bench-cpu

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

## Set up and run the gateway on the embedded default (SQLite in ./data)
run: $(STAMP)
	$(BIN)/sluice serve --data-dir ./data

## Set up and run the whole test suite (starts PostgreSQL and Redis when they are not running),
## measuring coverage in the test process and in every server subprocess it starts
test: $(STAMP) services
	rm -f .coverage .coverage.*
	status=0; $(BIN)/coverage run -m pytest -q || status=$$?; \
	$(BIN)/coverage combine -q && $(BIN)/coverage report; exit $$status

## Pure and in-process tests only (no server subprocess, no PostgreSQL): seconds, for the edit loop.
## tests/conftest.py marks the others `server`/`postgres` from the fixtures and helpers they use.
test-fast: $(STAMP)
	SLUICE_TEST_TIER=fast $(BIN)/python -m pytest -q -m "not server and not postgres and not redis"

## The gate: lint, types, import layers, and a wheel that installs, serves and logs a request
check: lint types layers wheel-smoke

lint: $(STAMP)
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy

# The import-linter contracts in pyproject.toml, which mirror docs/architecture.md's layer drawing
layers: $(STAMP)
	$(BIN)/lint-imports

wheel-smoke: $(STAMP)
	$(BIN)/python scripts/wheel_smoke.py

## The whole suite again with every test server on a fresh PostgreSQL database (docs/scale-out.md)
.PHONY: test-pg
# Every test server also shares rate limits and the response cache through this Redis (database 1,
# apart from the fixtures' keys in database 0). Empty: no Redis.
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
test-pg: $(STAMP) services
	SLUICE_TEST_BACKEND=postgres SLUICE_TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -q -rs

services:
	./scripts/services.sh

## Screenshots of the console's main pages for docs/console.md, taken by its browser test
.PHONY: console-screenshots
console-screenshots: $(STAMP) services
	SLUICE_CONSOLE_SCREENSHOTS=docs/console $(BIN)/python -m pytest -q tests/console/test_console_browser.py \
		-k "journey or tokens"

## Overhead benchmark against a local mock provider (see docs/performance.md)
bench: $(STAMP)
	$(BIN)/python bench/run.py

soak: $(STAMP)
	$(BIN)/python bench/run.py --soak 600

## The same soak with streamed answers: RSS growth after minute 1 and request logs shed
soak-stream: $(STAMP)
	$(BIN)/python bench/run.py --soak 600 --mode stream

## c=1 latency distribution: p50/p90/p99/p99.9 added over a direct call, request logging on and off
bench-latency: $(STAMP)
	$(BIN)/python bench/run.py --latency

## Gateway CPU per request (or, with ARGS=--instructions DIR, instructions) between builds:
## make bench-cpu ARGS="--build before=../other/src --build now=src"
bench-cpu: $(STAMP)
	$(BIN)/python bench/cpu.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* build dist
