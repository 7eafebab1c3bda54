# smartpump: `make demo` runs the system on embedded defaults; `make test` runs every gate.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORE := src/smartpump/errors.py src/smartpump/clock.py src/smartpump/units.py src/smartpump/library src/smartpump/ders src/smartpump/pump

.PHONY: demo test lint typecheck unit slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/smartpump demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not slow" --cov=smartpump --cov-report=term:skip-covered --cov-report=xml
	$(BIN)/coverage report --include='$(subst $(eval) ,$(comma),$(addsuffix *,$(CORE)))' --fail-under=95

test: lint typecheck unit

slow: $(STAMP)
	$(BIN)/pytest -m slow

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage coverage.xml

comma := ,
