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
	$(BIN)/python -m ipykernel install --sys-prefix --name tron-slo-toolkit --display-name "tron-slo-toolkit (.venv)"
	touch $(STAMP)

# The seed's rules and the corrected ones (when present) are backtested side by side.
REPORT_RULES = --rules monitoring/seed/alerting-rules.yml $(if $(wildcard monitoring/rules/tron-payment.yml),--rules monitoring/rules/tron-payment.yml)

# A failed gate (exit 1) is part of the demo's findings; bad input (exit 2) still stops make.
demo: install
	$(BIN)/tronsim run scenarios/reference.yaml --out $(RUNS)/reference
	$(BIN)/sloanalysis report --run $(RUNS)/reference --out reports/demo $(REPORT_RULES) || [ $$? -eq 1 ]

# make report RUN=runs/NAME [OUT=reports/NAME]: the same report from any run directory (exit 1 on a failed gate).
RUN ?= $(RUNS)/reference
OUT ?= reports/$(notdir $(RUN))
.PHONY: report
report: install
	$(BIN)/sloanalysis report --run $(RUN) --out $(OUT) $(REPORT_RULES)

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

# make live: the service, its load, Prometheus and Alertmanager on 127.0.0.1 (Ctrl-C stops all).
LIVE_SCENARIO ?= scenarios/smoke.yaml
LIVE_SPEED ?= 1
.PHONY: live
live: install
	$(BIN)/python -m simulator.live $(LIVE_SCENARIO) --speed $(LIVE_SPEED)
