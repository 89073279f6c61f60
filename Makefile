# The two commands of the quick start; each sets up .venv on first use, with only what it needs:
# `make plan` the package and its runtime dependencies, `make test` adds the test tools (the `dev` extra).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Stamps: what the plan (and the live commands) run, then the test tools on top of it.
RUNTIME := $(VENV)/.installed
DEV := $(VENV)/.installed-dev

.PHONY: plan test lint typecheck unit bench bench-catalog clean

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# The pip a venv bundles can be years old; a current one installs the test tools in 2/3 of the time.
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $(RUNTIME)

# The dev extra's requirements alone (read from pyproject.toml): the package is installed already, and
# `pip install -e '.[dev]'` would build it again.
$(DEV): $(RUNTIME)
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]))' > $(VENV)/dev-requirements.txt
	$(PIP) -r $(VENV)/dev-requirements.txt
	touch $(DEV)

## plan: offline plan of the whole multi-account rollout, with the policy pack's verdict
plan: $(RUNTIME)
	$(BIN)/pgf-backup plan --all

## test: ruff, mypy (strict on components/, policy/, pgf_backup/) and the whole pytest suite
test: lint typecheck unit

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV)
	$(BIN)/mypy

unit: $(DEV)
	$(BIN)/pytest -q

bench: $(RUNTIME)
	$(BIN)/python bench/plan_scale.py
	$(BIN)/python bench/policy_gate.py

bench-catalog: $(DEV)
	$(BIN)/python bench/catalog_export.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
