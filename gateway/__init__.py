"""mcpgw gateway: authenticates agents, asks the PDP, forwards MCP calls to backends."""

__version__ = "0.1.0"  # as in pyproject.toml; reported by GET / and /mcp's serverInfo
