# The developer interface. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install services bench soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Set up and run the gateway on the embedded default (SQLite in ./data)
run: $(STAMP)
	$(BIN)/sluice serve --data-dir ./data

## Set up and run the whole test suite (starts PostgreSQL and Redis when they are not running)
test: $(STAMP) services
	$(BIN)/python -m pytest -q

## The whole suite again with every test server on a fresh PostgreSQL database (docs/scale-out.md)
.PHONY: test-pg
# Empty: no Redis. Set it (e.g. redis://127.0.0.1:6379/1) once SLUICE_REDIS_URL is accepted.
TEST_REDIS_URL ?=
test-pg: $(STAMP) services
	SLUICE_TEST_BACKEND=postgres SLUICE_TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -q -rs

services:
	./scripts/services.sh

## Overhead benchmark against a local mock provider (see docs/performance.md)
bench: $(STAMP)
	$(BIN)/python bench/run.py

soak: $(STAMP)
	$(BIN)/python bench/run.py --soak 600

clean:
	rm -rf $(VENV) .pytest_cache
