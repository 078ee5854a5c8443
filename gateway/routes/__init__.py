"""HTTP routes of the gateway: health/info, the /mcp REST API, aggregated /tools."""
