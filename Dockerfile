# syntax=docker/dockerfile:1
# mcpgw image: one image, two services (`mcpgw gateway serve`, `mcpgw pdp serve`).
#   docker build -t mcpgw:0.1.0 .                              # runtime image (default target)
#   docker build -t mcpgw-demo-backend --target demo-backend .  # demo MCP backend for compose
# The image has no embedded PostgreSQL: DATABASE_URL must point at a real server. It runs with a
# read-only root filesystem (compose read_only, Kubernetes readOnlyRootFilesystem): writable are
# only MCPGW_DATA_DIR (/var/lib/mcpgw, a volume: the audit spool) and /tmp (tmpfs).
# Dependencies come pinned from requirements.lock / requirements-demo.lock (`make lock`).
# Tests: tests/deploy/test_docker.py checks this file against the settings and the CLI.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Build the project into a venv that the runtime stage copies whole (no compiler in the result).
FROM base AS builder
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, pinned by the lock file: this layer is rebuilt only when the lock changes,
# not on every source edit (layer cache). Runtime dependencies only, never the dev/test extras.
COPY requirements.lock ./
RUN pip install --no-compile --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY pdp ./pdp
COPY mcpgw ./mcpgw
# --no-deps: everything it needs is already pinned above; `pip check` proves the lock is complete.
RUN pip install --no-compile --no-deps . && pip check

# Demo backend (official MCP SDK) used by docker-compose.yml; not part of the product image.
FROM base AS demo-backend
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements-demo.lock /tmp/
RUN pip install --no-compile --no-deps -r /tmp/requirements-demo.lock && pip check
USER 10001:10001
EXPOSE 9001
ENTRYPOINT ["python", "-m", "mcpgw.devstack.demo_backend"]
CMD ["--host", "0.0.0.0", "--port", "9001"]

FROM base AS runtime
LABEL org.opencontainers.image.title="mcpgw" \
      org.opencontainers.image.description="Security and governance gateway between AI agents and MCP servers"
# A fixed numeric uid so Kubernetes can verify runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 10001 mcpgw \
 && useradd --system --uid 10001 --gid mcpgw --home-dir /var/lib/mcpgw --shell /usr/sbin/nologin mcpgw \
 && install -d -o mcpgw -g mcpgw -m 0750 /var/lib/mcpgw \
 && install -d -m 0755 /etc/mcpgw/policy /etc/mcpgw/servers
COPY --from=builder /opt/venv /opt/venv
# The default policy (the installed package does not carry policies/); mount a ConfigMap over it.
COPY policies/policy.yaml /etc/mcpgw/policy/policy.yaml
ENV PATH=/opt/venv/bin:$PATH \
    MCPGW_DATA_DIR=/var/lib/mcpgw \
    MCPGW_GATEWAY_HOST=0.0.0.0 \
    MCPGW_GATEWAY_SERVERS_FILE=/etc/mcpgw/servers/mcp_servers.yaml \
    MCPGW_PDP_HOST=0.0.0.0 \
    MCPGW_PDP_POLICY_FILE=/etc/mcpgw/policy/policy.yaml
WORKDIR /var/lib/mcpgw
USER 10001:10001
EXPOSE 8000 8181
# Liveness of whichever service runs: the gateway's /health on 8000, else the PDP's /healthz on
# 8181 (`mcpgw health` needs a token; this needs nothing but the standard library).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys,urllib.request as u\nfor url in ('http://127.0.0.1:8000/health','http://127.0.0.1:8181/healthz'):\n    try:\n        u.urlopen(url, timeout=2); sys.exit(0)\n    except Exception: pass\nsys.exit(1)"]
ENTRYPOINT ["mcpgw"]
CMD ["gateway", "serve"]
