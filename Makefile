# smartpump: `make demo` runs the system on embedded defaults; `make test` runs the fast gates (minutes);
# `.ci/run` adds the core coverage gate, the browser suite, the SQLite twin of the server suite and the
# acceptance tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Test processes: the CI machine has 2 cores, and much of the server suite waits on PostgreSQL (a worker
# uses about 60 % of a core), so a third process keeps both cores busy.
TEST_WORKERS ?= 3

.PHONY: demo test lint typecheck unit coverage e2e test-sqlite slow acceptance bench clean browser wheel-check sbom audit-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/smartpump demo --port $(or $(PORT),8000)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# mypy --strict over src/smartpump and tests (the files pyproject.toml lists).
typecheck: $(STAMP)
	$(BIN)/mypy src/smartpump tests

# The end-to-end UI tests drive Debian's Chromium (a test tool's own browser download cannot work
# on a closed network); install it when it is missing.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the end-to-end tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# Everything but the browser suite and the slow tier; the server suite on PostgreSQL when it is configured
# (always under CI), else on SQLite (tests/server/conftest.py: SMARTPUMP_TEST_BACKENDS).
unit: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow and not e2e"

# The coverage gate on the safety core (errors, clock, units, library, ders, pump; pyproject.toml), from the
# tests of the core: at least 95 % of its lines and branches. Branch tracing doubles those tests' time, so
# it is its own target, which .ci/run runs after `make test`.
coverage: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not slow and not e2e" tests/unit tests/property tests/scenarios tests/golden \
		--cov --cov-report=term:skip-covered --cov-report=xml
	$(BIN)/coverage report --fail-under=95

# mypy runs beside the tests (its single process fills the cores the test workers leave while they wait on
# PostgreSQL); either failing fails the target.
test: lint
	$(MAKE) --no-print-directory -j2 typecheck unit

# The web UI in real headless Chromium (Playwright driving Debian's chromium), at 1366x768 and 1920x1080.
e2e: $(STAMP) browser
	$(BIN)/pytest -n $(TEST_WORKERS) -m "e2e and not slow" tests/e2e

# The server and integration tests that take a database, again on SQLite (the embedded default `make demo`
# runs on; `-k sqlite` picks the tests parametrized by backend).
test-sqlite: $(STAMP)
	SMARTPUMP_TEST_BACKENDS=sqlite $(BIN)/pytest -n $(TEST_WORKERS) -m "not slow and not e2e" -k sqlite tests/server tests/integration

# The whole-system acceptance tests .ci/run adds after `make test` (slow-marked, minutes): the fleet truth
# test over a simulated day in process and over the real broker, and over three hours, and the EHR closed loop for every
# order kind over independent MLLP counterparts (python-hl7 client, hl7apy listener), and the fleet-view benchmark
# at tiny scale (benchmarks/fleet_view.py still runs and loses nothing) and the MQTT receive benchmark at tiny
# scale (benchmarks/transport_receive.py: every batch arrives); on PostgreSQL and on SQLite (the
# demo's database) when PostgreSQL is configured, else on SQLite.
comma := ,
ACCEPTANCE_BACKENDS ?= $(if $(SMARTPUMP_TEST_POSTGRES_URL),postgresql$(comma)sqlite,sqlite)
acceptance: $(STAMP)
	SMARTPUMP_TEST_BACKENDS=$(ACCEPTANCE_BACKENDS) $(BIN)/pytest -n $(TEST_WORKERS) -m slow tests/integration/test_fleet_truth.py tests/integration/test_ehr_closed_loop.py \
		tests/integration/test_fleet_view_bench.py tests/integration/test_transport_receive_bench.py

# The slow tier, never part of `make test`: soak tests marked slow (the fleet and replay claims at benchmark
# scale, tests/slow) and the property suite with ten times the Hypothesis examples.
slow: $(STAMP)
	$(BIN)/pytest -m slow
	SMARTPUMP_HYPOTHESIS_PROFILE=deep $(BIN)/pytest tests/property

# The installed package stands alone (.ci/run runs this after `make test`): build the wheel, install it
# into a fresh virtual environment, run `smartpump demo` from an empty folder until /api/v1/health answers.
wheel-check: $(STAMP)
	.ci/wheel-check $(BIN)/python

# A CycloneDX 1.6 JSON SBOM (sbom.cdx.json) of every package installed in the project's environment, the
# project itself as the root component; reproducible (no timestamp or serial unless SOURCE_DATE_EPOCH).
sbom: $(STAMP)
	$(BIN)/cyclonedx-py environment --pyproject pyproject.toml --of JSON --output-reproducible --validate \
		-o sbom.cdx.json $(BIN)/python
	@echo "wrote sbom.cdx.json"

# Known vulnerabilities of the installed dependencies (.ci/audit-deps): offline against a copy of the OSV
# PyPI database when SMARTPUMP_VULN_DB names one, else pip-audit --strict when PyPI answers, else a message
# (exit 0, or 3 with SMARTPUMP_AUDIT_REQUIRED=1). CI does not run it: CI has only the package index.
audit-deps: $(STAMP)
	$(BIN)/python .ci/audit-deps

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage coverage.xml

