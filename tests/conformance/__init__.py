"""The official MCP conformance suite, run against our SDK backend directly and through the gateway."""
