"""The gateway as an MCP server: aggregated `/mcp` and per-backend `/servers/{name}/mcp` (see README.md)."""
