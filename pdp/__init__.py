"""mcpgw PDP: YAML RBAC policy compiled to Casbin, answered over the AuthZEN 1.0 API."""
