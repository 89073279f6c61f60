# The two commands of the quick start; each sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: plan test lint typecheck unit bench bench-catalog clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## plan: offline plan of the whole multi-account rollout, with the policy pack's verdict
plan: $(STAMP)
	$(BIN)/pgf-backup plan --all

## test: ruff, mypy (strict on components/, policy/, pgf_backup/) and the whole pytest suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/plan_scale.py
	$(BIN)/python bench/policy_gate.py

bench-catalog: $(STAMP)
	$(BIN)/python bench/catalog_export.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
