"""mcpgw gateway: authenticates agents, asks the PDP, forwards MCP calls to backends."""
