"""The operator/script side of `mcpgw`: register backends, list, invoke, broadcast, token, health.

`register(subparsers)` is what mcpgw/cli.py calls; see docs/cli.md.
"""

from mcpgw.client.commands import register

__all__ = ["register"]
