# syntax=docker/dockerfile:1
# mcpgw image: one image, two services (`mcpgw gateway serve`, `mcpgw pdp serve`).
#   docker build -t mcpgw:0.1.0 .                              # runtime image (default target)
#   docker build -t mcpgw-demo-backend --target demo-backend .  # demo MCP backend for compose
# The image has no embedded PostgreSQL: DATABASE_URL must point at a real server.
# Tests: tests/unit/test_deploy_docker.py checks this file against the settings and the CLI.

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
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY pdp ./pdp
# Runtime dependencies only: never the dev/test extras (tests/unit/test_deploy_docker.py).
RUN pip install --no-compile . && pip check

# Demo backend (official MCP SDK) used by docker-compose.yml; not part of the product image.
FROM base AS demo-backend
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install "mcp>=2.3,<3"
USER 10001:10001
EXPOSE 9001
ENTRYPOINT ["python", "-m", "shared.devstack.demo_backend"]
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
ENTRYPOINT ["mcpgw"]
CMD ["gateway", "serve"]
