"""gateway/errors.py: every foreign error maps to its status (a rename must not become a 500)."""

from __future__ import annotations

import pytest

from gateway.errors import (
    BadGateway,
    GatewayTimeout,
    ServiceUnavailable,
    Unauthorized,
    to_gateway_error,
)
from gateway.pep import PdpUnavailable
from gateway.upstream.errors import (
    ResponseTooLarge,
    UpstreamError,
    UpstreamRpcError,
    UpstreamTimeout,
)
from shared.auth.errors import AuthError


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (PdpUnavailable("down"), ServiceUnavailable, 503),
        (UpstreamTimeout("fm", 2.0), GatewayTimeout, 504),
        (UpstreamError("fm", "refused"), BadGateway, 502),
        (ResponseTooLarge("fm", "too large"), BadGateway, 502),
        (AuthError("invalid_token", "expired"), Unauthorized, 401),
        (TimeoutError(), GatewayTimeout, 504),
    ],
)
def test_foreign_errors_map_to_their_status(exc: BaseException, kind: type, status: int) -> None:
    err = to_gateway_error(exc)
    assert isinstance(err, kind)
    assert err is not None and err.status == status


def test_auth_error_carries_the_bearer_challenge() -> None:
    err = to_gateway_error(AuthError("invalid_token", "expired"))
    assert err is not None and err.headers["WWW-Authenticate"].startswith("Bearer")
    assert err.code == "invalid_token"


def test_unknown_errors_are_not_ours() -> None:
    assert to_gateway_error(ValueError("x")) is None


def test_backend_json_rpc_errors_are_bad_gateway() -> None:
    err = to_gateway_error(UpstreamRpcError("fm", {"code": -32000, "message": "boom"}, []))
    assert isinstance(err, BadGateway)
