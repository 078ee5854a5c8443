"""`Mcp-Param-*` (x-mcp-header): declared headers, the set a call carries, and the client check."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.mcp import params, protocol

SCHEMA = {"type": "object", "properties": {
    "region": {"type": "string", "x-mcp-header": "Region"},
    "opts": {"type": "object", "properties": {"dry": {"type": "boolean", "x-mcp-header": "Dry"}}},
    "n": {"type": "integer", "x-mcp-header": "N"},
    "plain": {"type": "string"},
}}


def test_declared_follows_properties_chains() -> None:
    assert dict(params.declared(SCHEMA)) == {("region",): "Region", ("opts", "dry"): "Dry", ("n",): "N"}
    assert list(params.declared({"type": "object"})) == [] == list(params.declared(None))


@pytest.mark.parametrize(("arguments", "headers"), [
    ({"region": "eu", "opts": {"dry": True}, "n": 3}, {"Mcp-Param-Region": "eu", "Mcp-Param-Dry": "true",
                                                       "Mcp-Param-N": "3"}),
    ({"region": "naïve"}, {"Mcp-Param-Region": "=?base64?bmHDr3Zl?="}),
    ({"plain": "x", "opts": "not an object"}, {}),
    ({"region": None, "n": [1]}, {}),
])
def test_expected(arguments: dict, headers: dict) -> None:
    assert params.expected(SCHEMA, arguments) == headers


def test_check_accepts_only_exact_agreement() -> None:
    wanted = {"Mcp-Param-Region": "eu"}
    params.check({"mcp-param-region": "eu"}, wanted)
    params.check({"mcp-param-region": "=?base64?ZXU=?="}, wanted)
    for client in ({"mcp-param-region": "us"}, {}, {"mcp-param-region": "eu", "mcp-param-extra": "1"},
                   {"mcp-param-region": "=?base64?!!?="}):
        with pytest.raises(protocol.RpcFailure) as exc:
            params.check(client, wanted)
        assert exc.value.code == protocol.HEADER_MISMATCH


def test_sent_refuses_duplicates() -> None:
    assert params.sent(CIMultiDict({"Mcp-Param-A": "1", "Accept": "x"})) == {"mcp-param-a": "1"}
    with pytest.raises(protocol.RpcFailure):
        params.sent(CIMultiDict([("Mcp-Param-A", "1"), ("mcp-param-a", "2")]))
