"""`mcpgw` itself (mcpgw/cli.py): one error style for usage errors and late configuration errors."""

from __future__ import annotations

import argparse

import pytest

from gateway.servers_file import RegistryError
from mcpgw import cli


@pytest.mark.parametrize(("argv", "prog"), [(["audit", "query", "--bogus"], "mcpgw audit query"),
                                            (["nope"], "mcpgw"), (["policy", "validate"], "mcpgw policy validate")])
def test_usage_errors_are_mcpgw_error_with_a_pointer_to_help(argv, prog, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err.startswith("mcpgw: error: ") and err.rstrip().endswith(f"(see `{prog} --help`)"), err
    assert "usage:" not in err and err.count(": error: ") == 1


def test_a_registry_error_reaching_the_top_is_a_configuration_error_not_unexpected(monkeypatch, capsys) -> None:
    def late(_args: argparse.Namespace) -> int:
        raise RegistryError(["mcp_servers.yaml:8: servers.crm.auth.client_secret_ref: environment variable X is not set"])

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(func=late)
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mcpgw: error: invalid servers file:") and "unexpected" not in err
    assert "mcp_servers.yaml:8: servers.crm.auth.client_secret_ref" in err
