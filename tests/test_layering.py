"""The import layering, read from the source with `ast` so a violation cannot come back silently.

Every import counts: module level, inside functions and under `if TYPE_CHECKING` (a typing-only
cycle is still a sign two modules are one concern split wrongly). `from a.b import c` is an edge
to the module `a.b.c` when that is a module of ours, else to `a.b`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "pdp", "shared", "mcpgw")
# The `.env.example` generator lists every settings class by name (shared/envcheck reads the same
# table to report unknown variables, so it stays below the services); nothing else in shared/ may.
STRING_IMPORTERS = {"shared.envexample"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of ours, by dotted name."""
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


@cache
def imports(name: str) -> frozenset[str]:
    """The modules of ours that module `name` imports, anywhere in its body."""
    mods = modules()
    out: set[str] = set()
    for node in ast.walk(ast.parse(mods[name].read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                out.add(child if child in mods else node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return frozenset(m for m in out if m in mods and m != name)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


# (importer package, forbidden package, why)
RULES = [
    ("gateway.mcp", "gateway.routes", "the MCP server sits below the routes that install it"),
    ("gateway.middlewares", "gateway.mcp", "middlewares run for every route; MCP hooks register under an AppKey"),
    ("gateway.middlewares", "gateway.routes", "middlewares run for every route"),
    ("gateway.calls", "gateway.routes", "the call pipeline is below every entry point"),
    ("gateway.calls", "gateway.mcp", "the call pipeline is below every entry point"),
    ("gateway.upstream", "gateway.mcp", "the backend client knows nothing of the agent side"),
    ("gateway.upstream", "gateway.routes", "the backend client knows nothing of the agent side"),
    ("gateway.edge", "gateway.mcp", "edge rules are the floor below middlewares and MCP"),
    ("gateway.edge", "gateway.middlewares", "edge rules are the floor below middlewares and MCP"),
    ("gateway", "mcpgw", "mcpgw/ is the composition root: nothing imports it"),
    ("pdp", "mcpgw", "mcpgw/ is the composition root: nothing imports it"),
    ("shared", "mcpgw", "mcpgw/ is the composition root: nothing imports it"),
    ("shared", "gateway", "shared/ is below both services"),
    ("shared", "pdp", "shared/ is below both services"),
    ("pdp", "gateway", "the services talk over the wire (shared/authzen), never by import"),
    ("gateway", "pdp", "the services talk over the wire (shared/authzen), never by import"),
]


@pytest.mark.parametrize("importer,forbidden,why", RULES)
def test_lower_layers_do_not_reach_up(importer: str, forbidden: str, why: str) -> None:
    bad = sorted(f"{m} -> {t}" for m in modules() if _under(m, importer) for t in imports(m) if _under(t, forbidden))
    assert not bad, f"{why}: {bad}"


def test_shared_loads_no_service_by_name() -> None:
    bad = []
    for name, path in modules().items():
        if not _under(name, "shared") or name in STRING_IMPORTERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value.split(".")[0] in ("gateway", "pdp") and "." in node.value and " " not in node.value:
                bad.append(f"{name}: {node.value!r}")
    assert not bad, f"shared/ names a service module as a string (import it, or move the code up): {bad}"


def test_no_import_cycles() -> None:
    graph = {m: imports(m) for m in modules()}
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for start in sorted(graph):
        if start not in seen:
            visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_rules_see_real_imports() -> None:
    # Guards the guard: a parser that found nothing would pass every rule above.
    assert "gateway.calls.audit" in imports("gateway.mcp.enforce")
    assert "shared.authzen" in imports("gateway.pep") and "shared.authzen" in imports("pdp.api")
    assert "gateway.edge" in imports("gateway.middlewares.browser")
