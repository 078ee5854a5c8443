"""Pure rules of the gateway's edge: header hygiene, the browser guard, parser-log scrubbing."""

from __future__ import annotations

import logging

import pytest
from aiohttp.http_exceptions import LineTooLong
from multidict import CIMultiDict

from gateway.mcp.oauth_metadata import cache_headers
from gateway.middlewares.browser import browser_problem, json_body
from gateway.middlewares.headers import ScrubParserErrors, duplicated, oversized, server_limits
from shared.auth import AuthError, Principal, authorization_header

HOST = "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Authorization", "authorization"], ["authorization"]),
        (["Mcp-Session-Id", "MCP-SESSION-ID"], ["mcp-session-id"]),
        (["Mcp-Param-Region", "mcp-param-region", "Accept", "Accept"], ["mcp-param-region"]),
        (["Accept", "Accept", "X-Custom", "X-Custom"], []),  # list-valued, not security-relevant
        (["Authorization", "Mcp-Method", "Mcp-Name"], []),
    ],
)
def test_duplicated(names: list[str], expected: list[str]) -> None:
    assert duplicated(names) == expected


def test_oversized_names_the_header_not_its_value() -> None:
    assert oversized([(b"Accept", b"x" * 10), (b"Authorization", b"t" * 101)], 100) == ("Authorization", 101)
    assert oversized([(b"Authorization", b"t" * 100)], 100) is None
    limits = server_limits(16_384)
    assert limits["max_field_size"] == 65_536 and "max_line_size" not in limits


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("POST", "/mcp/invoke", {"Content-Type": "application/json"}, None),
        ("POST", "/mcp/invoke", {"Content-Type": "application/vnd.x+json; charset=utf-8"}, None),
        ("POST", "/mcp/invoke", {"Content-Type": "text/plain"}, 415),
        ("POST", "/mcp/invoke", {}, 415),
        ("POST", "/mcp/invoke", {"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        ("POST", "/mcp/invoke", {"Origin": f"http://{HOST}", "Content-Type": "application/json"}, None),
        ("POST", "/mcp/invoke", {"Origin": "null", "Content-Type": "application/json"}, 403),
        ("POST", "/mcp/invoke", {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),
        ("POST", "/mcp/invoke", {"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}, None),
        ("GET", "/tools", {"Sec-Fetch-Site": "cross-site"}, None),  # a link click reads nothing
        ("GET", "/tools", {"Origin": "https://evil.example"}, 403),
        ("POST", "/mcp", {"Content-Type": "text/plain"}, None),  # the MCP endpoint answers its own 415
        ("POST", "/servers/a/mcp", {"Origin": "https://evil.example"}, 403),
    ],
)
def test_browser_problem(method: str, path: str, headers: dict[str, str], expected: int | None) -> None:
    problem = browser_problem(method, path, CIMultiDict(headers), (), HOST)
    assert (problem[0] if problem else None) == expected


def test_allowlist_replaces_same_host() -> None:
    headers = CIMultiDict({"Origin": f"http://{HOST}", "Content-Type": "application/json"})
    assert browser_problem("POST", "/tools/x/invoke", headers, ("https://console.example",), HOST) is not None
    headers["Origin"] = "https://console.example"
    assert browser_problem("POST", "/tools/x/invoke", headers, ("https://console.example",), HOST) is None


@pytest.mark.parametrize(
    ("ctype", "has_body", "ok"),
    [
        (None, False, True), ("application/octet-stream", False, True), ("text/plain", False, False),
        ("multipart/form-data; boundary=x", False, False), ("application/x-www-form-urlencoded", True, False),
        (None, True, False), ("application/json", True, True), ("application/jsonx", True, False),
    ],
)
def test_json_body(ctype: str | None, has_body: bool, ok: bool) -> None:
    assert json_body(ctype, has_body) is ok
    assert json_body("APPLICATION/JSON;charset=utf-8", True)


def test_parser_errors_are_logged_without_header_bytes() -> None:
    exc = LineTooLong(b"Bearer eyJsecretsecret", 8190)
    record = logging.LogRecord("gateway.http_parser", logging.ERROR, __file__, 1,
                               "Error handling request from %s", ("10.0.0.1",), (LineTooLong, exc, None))
    assert ScrubParserErrors().filter(record)
    text = logging.Formatter().format(record)
    assert "secret" not in text and "10.0.0.1" in text and "LineTooLong" in text
    assert record.levelname == "WARNING"


def test_authorization_header_refuses_two() -> None:
    assert authorization_header(CIMultiDict()) is None
    assert authorization_header(CIMultiDict([("Authorization", "Bearer a")])) == "Bearer a"
    with pytest.raises(AuthError) as exc:
        authorization_header(CIMultiDict([("Authorization", "Bearer a"), ("authorization", "Bearer b")]))
    assert exc.value.status == 400 and "Bearer" not in exc.value.description


def test_metadata_caching_and_admin_roles() -> None:
    assert cache_headers(reflected=True) == {"Cache-Control": "no-store", "Vary": "Host"}
    assert cache_headers(reflected=False) == {"Cache-Control": "max-age=300"}
    def is_admin(roles: tuple[str, ...], admin_roles: list[str]) -> bool:
        return Principal("p", roles=roles).has_any_role(admin_roles)

    assert is_admin(("dev", "admin"), ["admin"]) and not is_admin(("dev",), ["admin"]) and not is_admin((), [])
