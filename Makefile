# make demo: set up .venv and run the main job on embedded defaults.  make test: set up and test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNS := runs

.PHONY: install demo test lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

demo: install
	$(BIN)/tronsim run scenarios/reference.yaml --out $(RUNS)/reference --openmetrics

lint: install
	$(BIN)/ruff check simulator sloanalysis tests benchmarks
	$(BIN)/ruff format --check simulator sloanalysis tests benchmarks

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(RUNS) reports/demo .pytest_cache .mypy_cache .ruff_cache
