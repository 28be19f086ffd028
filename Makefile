PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HUB := $(BIN)/hub
STAMP := $(VENV)/.installed
ASSETS := node_modules/.package-lock.json
CHROMIUM := /usr/bin/chromium
WRK := /usr/bin/wrk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: venv run test test-fast bench lint screenshots lock soak fuzz

# Every runtime and development dependency, pip, setuptools and wheel included, comes from the
# hashed lock (see `make lock`); the project itself is then built with those, adding nothing.
$(STAMP): pyproject.toml requirements/lock.txt requirements/regorus.txt requirements/opa.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/regorus.txt
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/lock.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip install --quiet --require-hashes --no-deps --ignore-requires-python -r requirements/opa.txt
	@# A dependency added to pyproject.toml but not yet locked stops the build here: run `make lock`.
	$(BIN)/pip check
	touch $@

# The web UI's front-end libraries, exactly as locked; the hub serves them itself (no CDN).
$(ASSETS): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Debian's Chromium for the browser tests; Playwright drives it and never downloads a browser.
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Debian's wrk, the benchmark's load generator (`bench/load.py`): a C client that leaves the
# machine's cores to the servers it measures.
$(WRK):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk

venv: $(STAMP) $(ASSETS) $(CHROMIUM) $(WRK)

run: venv
	$(HUB) demo
	$(HUB) serve --demo-sources

# The whole suite, each database test once on SQLite and once on the real PostgreSQL, spread
# over one worker per core (each test has its own database file or schema, and its own ports).
TEST_WORKERS ?= $(shell nproc)
test: venv
	HUB_TEST_DATABASE_URL=$(TEST_PG_URL) $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile \
		--databases=sqlite,postgresql

# Current screenshots of the main pages, written to docs/screenshots/ by the browser tests.
screenshots: venv
	HUB_SCREENSHOTS=1 $(BIN)/pytest -q tests/browser

# The API fuzzing of `make test`, with many more generated requests per operation and role.
FUZZ_EXAMPLES ?= 300
fuzz: venv
	HUB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HUB_TEST_DATABASE_URL=$(TEST_PG_URL) \
		$(BIN)/pytest -q --databases=sqlite,postgresql tests/security/test_fuzz.py

# SQLite only, for a quick loop while editing.
test-fast: venv
	$(BIN)/pytest -q -x

# End to end against a real `hub serve` and a pass-through baseline, plus the parts; under 10
# minutes. Writes bench/results/latest.json and docs/benchmarks.md.
bench: venv
	$(BIN)/python -m bench

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m tests.advisories check

# Re-resolve pyproject.toml's runtime and development dependencies into the hashed lock, keeping
# existing pins that still fit (LOCK_FLAGS=--upgrade to move everything to the newest).
LOCK_FLAGS ?=
lock: | $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --strip-extras \
		--no-emit-index-url --no-emit-find-links $(LOCK_FLAGS) \
		--output-file requirements/lock.txt pyproject.toml

# A mixed load against a real `hub serve` on loopback for SOAK_SECONDS; see tests/soak.py.
SOAK_SECONDS ?= 180
soak: venv
	$(BIN)/python -m tests.soak --duration $(SOAK_SECONDS)
