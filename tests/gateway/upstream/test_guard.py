"""The connect-time SSRF guard: metadata/link-local addresses refused after DNS resolution."""

from __future__ import annotations

import pytest

from gateway.upstream.guard import allowlist_networks, blocked_address


@pytest.mark.parametrize(
    ("address", "allow", "blocked"),
    [
        ("169.254.169.254", [], True),
        ("169.254.170.2", ["10.0.0.0/8"], True),
        ("::ffff:169.254.169.254", [], True),
        ("fd00:ec2::254", [], True),
        ("fe80::1%eth0", [], True),
        ("100.100.100.200", [], True),
        ("169.254.169.254", ["169.254.169.254/32"], False),  # named explicitly by the operator
        ("10.0.0.5", [], False),
        ("127.0.0.1", [], False),
        ("2001:db8::1", [], False),
        ("not-an-ip", [], True),
    ],
)
def test_blocked_address(address: str, allow: list[str], blocked: bool) -> None:
    assert blocked_address(address, allowlist_networks(allow)) is blocked
