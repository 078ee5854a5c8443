"""Tests mirror the packages: the tests of `gateway/mcp/calls.py` live in
`tests/gateway/mcp/test_calls.py`, so a module's tests are found without searching.

Under tests/{gateway,pdp,shared,mcpgw}/ a directory is a package directory of the same path and a
file `test_X.py` names a module or subpackage of it: `X` itself, or `X` plus a suffix when two
files test one module (`test_pep_cache_notify.py`). Every test directory has an `__init__.py`
(files of the same name in two trees, `tests/gateway/test_settings.py` and
`tests/shared/test_settings.py`, would otherwise collide on import). The other test directories
test across packages or test files that are not Python; nothing else holds tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIRRORED = ("gateway", "pdp", "shared", "mcpgw")
# Tests that span packages (integration, conformance, browser), of the deployment files (deploy/),
# of README.md and docs/examples (docs/), and helpers (fixtures/).
ACROSS = ("integration", "conformance", "browser", "fixtures", "deploy", "docs")
# Whole-tree checks directly in tests/.
TOP_LEVEL = {"test_layering.py", "test_layout.py"}


def _names(package: Path) -> set[str]:
    """The module and subpackage names directly inside a source package directory."""
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    return modules | {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}


def _names_a_module(stem: str, names: set[str]) -> bool:
    return any(stem == n or stem.startswith(n + "_") for n in names)


def misplaced(root: Path) -> list[str]:
    """Every test file or test directory under root/tests that breaks the mirror, with why."""
    tests = root / "tests"
    bad: list[str] = []
    for path in sorted(tests.rglob("test_*.py")):
        rel = path.relative_to(tests)
        top = rel.parts[0]
        if len(rel.parts) == 1:
            if rel.name not in TOP_LEVEL:
                bad.append(f"tests/{rel}: a test directly in tests/ (put it beside the module it tests)")
        elif top in MIRRORED:
            package = root / rel.parent
            if not (package / "__init__.py").is_file():
                bad.append(f"tests/{rel}: no package {rel.parent.as_posix()}/ to mirror")
            elif not _names_a_module(path.stem.removeprefix("test_"), _names(package)):
                bad.append(f"tests/{rel}: names no module of {rel.parent.as_posix()}/")
        elif top not in ACROSS:
            bad.append(f"tests/{rel}: tests/{top}/ is neither a package mirror nor one of {ACROSS}")
    for directory in sorted(p for p in tests.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        rel = directory.relative_to(tests)
        if rel.parts[0] in MIRRORED and not (directory / "__init__.py").is_file():
            bad.append(f"tests/{rel.as_posix()}/: no __init__.py")
    return bad


def test_tests_mirror_the_packages() -> None:
    assert not misplaced(ROOT)


def test_the_mirror_sees_real_tests() -> None:
    # Guards the guard: the tree it checks holds the mirrored tests, one per subject at least.
    assert (ROOT / "tests" / "gateway" / "mcp" / "test_protocol.py").is_file()
    assert all(any((ROOT / "tests" / top).rglob("test_*.py")) for top in MIRRORED)


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()


SOURCE = ["gateway/__init__.py", "gateway/pep_cache.py", "gateway/mcp/__init__.py", "gateway/mcp/calls.py",
          "tests/gateway/__init__.py", "tests/gateway/mcp/__init__.py"]


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (["tests/gateway/mcp/test_calls.py", "tests/gateway/test_pep_cache_notify.py",
          "tests/gateway/test_mcp.py", "tests/integration/test_anything.py"], None),
        (["tests/unit/test_calls.py"], "tests/unit/ is neither"),
        (["tests/test_calls.py"], "directly in tests/"),
        (["tests/gateway/test_calls.py"], "names no module of gateway/"),
        (["tests/gateway/mcp/test_pep_cache.py"], "names no module of gateway/mcp/"),
        (["tests/gateway/test_pep_cacheish.py"], "names no module of gateway/"),
        (["tests/gateway/upstream/__init__.py", "tests/gateway/upstream/test_client.py"],
         "no package gateway/upstream/"),
        (["gateway/routes/__init__.py", "gateway/routes/x.py", "tests/gateway/routes/test_x.py"],
         "tests/gateway/routes/: no __init__.py"),
    ],
)
def test_misplaced(tmp_path: Path, files: list[str], problem: str | None) -> None:
    _tree(tmp_path, SOURCE + files)
    found = misplaced(tmp_path)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0], found
