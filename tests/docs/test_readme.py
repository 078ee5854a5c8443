"""The README stays true: two commands first, links that resolve, every doc linked, real targets."""

from __future__ import annotations

import re
from pathlib import Path

from mcpgw.devstack.__main__ import PORTS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_two_commands_come_first():
    sections = re.findall(r"^## (.+)$", README, flags=re.M)
    assert sections[0] == "Two commands"
    first = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert "make run" in first and "make test" in first
    assert sections[1:] and {"Configuration", "Architecture", "API"} <= set(sections)


def test_every_relative_link_resolves_and_every_doc_is_linked():
    links = {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", README)}
    local = {link for link in links if "://" not in link}
    for link in local:
        assert (ROOT / link).exists(), link
    for doc in (ROOT / "docs").glob("*.md"):
        assert f"docs/{doc.name}" in local, f"README does not link {doc.name}"


def test_make_targets_and_dev_ports_named_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    for name in re.findall(r"`(?:make )?(lint|bench|test-fast|conformance|clean|help)`", README):
        assert name in targets, name
    for name, port in PORTS.items():
        assert f"MCPGW_DEV_{name.upper()}_PORT" in README and str(port) in README


def test_make_help_names_what_each_recipe_runs():
    """`make help` reads the `## ` comments: the lint line names every tool its recipe runs, and the
    run line every component the dev stack starts (the issuer included)."""
    makefile = (ROOT / "Makefile").read_text()
    recipes = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
        r"^([a-zA-Z_-]+):[^\n]*?## ([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, flags=re.M)}
    help_line, recipe = recipes["lint"]
    for tool in set(re.findall(r"\$\(VENV\)/bin/([a-z0-9_-]+)", recipe)):
        assert tool in help_line, tool
    for component in ("Postgres", "issuer", "PDP", "gateway", "demo MCP backend"):
        assert component in recipes["run"][0], component


def test_readme_says_what_make_itself_exits_with():
    assert "python -m mcpgw.devstack` exits 1" in README and "itself exits 2 either way" in README
