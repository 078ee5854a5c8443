"""The SSRF guard: the upstream allowlist, and at connect time no cloud-metadata or link-local address.

The allowlist is checked against the host as written (`host_allowed`, when the servers file is
loaded): an IP literal must lie in a listed CIDR, a hostname must match a listed name. A listed *name* could still resolve (or be
re-pointed by DNS) to the metadata service, so when an allowlist is set the gateway's session
resolves through `GuardedResolver`, which drops every resolved address in `METADATA_NETWORKS`
unless a CIDR in the allowlist names it explicitly. A name left with no address fails like an
unreachable host (502), before any byte — or credential — is sent.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local: AWS/GCP/Azure/OpenStack metadata, ECS task credentials
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
    )
)


def allowlist_networks(allowlist: Iterable[str]) -> list[Network]:
    """The CIDR (or single-IP) entries of an upstream allowlist; hostname entries are skipped."""
    networks = []
    for entry in allowlist:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return networks


def host_allowed(host: str, allowlist: Iterable[str]) -> bool:
    """True if `host` matches a hostname (`*.suffix` allowed) or lies in a CIDR of `allowlist`."""
    host = host.lower().strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        names = [entry.strip().lower() for entry in allowlist]
        return any(host == name or (name.startswith("*.") and host.endswith(name[1:])) for name in names)
    return any(ip in network for network in allowlist_networks(allowlist))


def blocked_address(
    address: str,
    allowed: Sequence[Network] = (),
    blocked: Sequence[Network] = METADATA_NETWORKS,
) -> bool:
    """True if `address` is in `blocked` and no network of `allowed` contains it."""
    try:
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True  # not an address at all: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is the metadata service too
    if not any(ip.version == n.version and ip in n for n in blocked):
        return False
    return not any(ip.version == n.version and ip in n for n in allowed)


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, minus addresses the guard refuses."""

    def __init__(
        self,
        allowlist: Iterable[str] = (),
        *,
        blocked: Sequence[Network] = METADATA_NETWORKS,
        inner: AbstractResolver | None = None,
    ) -> None:
        self._allowed = allowlist_networks(allowlist)
        self._blocked = tuple(blocked)
        # ThreadedResolver holds nothing to close: the connector does not close a resolver it
        # was given, so an aiodns channel here would leak with the session.
        self._inner = inner if inner is not None else ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of `host` that are not blocked; OSError when none is left."""
        results = await self._inner.resolve(host, port, family)
        safe = [r for r in results if not blocked_address(r["host"], self._allowed, self._blocked)]
        if not safe:
            log.warning("refused to connect: host resolves only to blocked addresses", extra={"host": host})
            raise OSError(f"{host} resolves only to addresses the upstream guard blocks")
        return safe

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()
