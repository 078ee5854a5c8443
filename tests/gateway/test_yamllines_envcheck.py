"""Line numbers for servers-file errors; unknown MCPGW_* variables are named, with a suggestion."""

from __future__ import annotations

from gateway.yamllines import locate, with_lines
from shared.envcheck import unknown_variables

TEXT = "servers:\n  demo:\n    url: http://x/mcp\n  bad:\n    url: ftp://x\n    tipe: http\n"


def test_locate_finds_the_deepest_existing_node():
    assert locate(TEXT, "servers.bad.tipe") == 6
    assert locate(TEXT, "servers.bad.missing") == 4
    assert locate(TEXT, "servers") == 1
    assert locate("a: [", "a") is None


def test_with_lines_prefixes_file_and_line():
    assert with_lines(TEXT, ["servers.bad.url: bad", "(top level): odd"], "f.yaml") == [
        "f.yaml:5: servers.bad.url: bad", "f.yaml: (top level): odd"]


def test_unknown_variables_are_reported_with_the_closest_name():
    assert unknown_variables(["MCPGW_URL", "PATH", "MCPGW_GATEWAY_NO_AUTH", "MCPGW_PDP_POLICY_FOLLOW_FILE"]) == []
    assert unknown_variables(["MCPGW_GATEWAY_NO_AUHT", "MCPGW_NOPE"]) == [
        "MCPGW_GATEWAY_NO_AUHT: unknown variable (did you mean MCPGW_GATEWAY_NO_AUTH?)",
        "MCPGW_NOPE: unknown variable"]
