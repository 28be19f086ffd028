PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HUB := $(BIN)/hub
STAMP := $(VENV)/.installed
TEST_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: venv run test test-fast bench lint

$(STAMP): pyproject.toml requirements/regorus.txt requirements/opa.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/regorus.txt
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --require-hashes --no-deps --ignore-requires-python -r requirements/opa.txt
	touch $@

venv: $(STAMP)

run: venv
	$(HUB) demo
	$(HUB) serve --demo-sources

# The whole suite, each database test once on SQLite and once on the real PostgreSQL.
test: venv
	HUB_TEST_DATABASE_URL=$(TEST_PG_URL) $(BIN)/pytest -q --databases=sqlite,postgresql

# SQLite only, for a quick loop while editing.
test-fast: venv
	$(BIN)/pytest -q -x

bench: venv
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.audit.bench_audit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
