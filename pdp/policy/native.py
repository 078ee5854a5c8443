"""Native Casbin policies: a model.conf text plus policy lines, validated with line numbers.

A native version is loaded into stock pycasbin as written. Validation reports every problem with its
line: model sections and keys, each policy line's type and field count, and a trial `enforce`
and a parse of the matcher that catches syntax errors and unknown functions. AuthZEN requests reach `enforce` through
a mapping (pdp/policy/native_map.py) written as `# mcpgw-map:` comments inside the model text.
"""

from __future__ import annotations

import ast
import csv
import re
from dataclasses import dataclass, field
from typing import Any

import casbin
from casbin.model import FunctionMap
from casbin.persist.adapter import Adapter

from pdp.policy.checker import PolicyError, PolicyInvalid
from pdp.policy.native_map import Mapping, MappingError, parse_mapping

SECTIONS = {"request_definition": "r", "policy_definition": "p", "role_definition": "g",
            "policy_effect": "e", "matchers": "m"}
REQUIRED = ("request_definition", "policy_definition", "policy_effect", "matchers")
_KEY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


@dataclass(frozen=True)
class PolicyLine:
    """One `p`/`g` line: its type, fields and 1-based line number in the policy text."""

    ptype: str
    fields: tuple[str, ...]
    line: int

    def text(self) -> str:
        """The line as Casbin prints it."""
        return ", ".join((self.ptype, *self.fields))


@dataclass(frozen=True)
class NativePolicy:
    """A validated native pair."""

    model_text: str
    policy_text: str
    lines: tuple[PolicyLine, ...]
    mapping: Mapping
    keys: dict[str, int]  # "p", "g2", "m", ... → line in the model text
    relations: dict[str, set[str]] = field(default_factory=dict)  # request token → g-functions called with it first


class _Lines(Adapter):  # type: ignore[misc]
    def __init__(self, lines: tuple[PolicyLine, ...]) -> None:
        self.lines = lines

    def load_policy(self, model: Any) -> None:
        for pl in self.lines:
            model.add_policy(pl.ptype[0], pl.ptype, list(pl.fields))


def _model_keys(text: str, errors: list[PolicyError]) -> dict[str, int]:
    """Section/key → line, checking the model's shape (Casbin's own parser names no lines)."""
    keys: dict[str, int] = {}
    section: str | None = None
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section not in SECTIONS:
                errors.append(PolicyError(f"[{section}]", n, f"unknown section (allowed: {', '.join(SECTIONS)})"))
            seen.add(section)
            continue
        match = _KEY.match(line)
        if section is None or match is None:
            errors.append(PolicyError("model", n, "expected '[section]' or 'key = value'"))
            continue
        key = match.group(1)
        if section in SECTIONS and not key.startswith(SECTIONS[section]):
            errors.append(PolicyError(f"[{section}].{key}", n,
                                      f"keys in [{section}] start with {SECTIONS[section]!r}"))
        keys[key] = n
    for name in REQUIRED:
        if name not in seen:
            errors.append(PolicyError(f"[{name}]", None, "required section is missing"))
    return keys


def _policy_lines(text: str, model: Any, errors: list[PolicyError]) -> list[PolicyLine]:
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            fields = [f.strip() for f in next(csv.reader([raw], skipinitialspace=True))]
        except csv.Error as exc:
            errors.append(PolicyError("policy", n, f"not a CSV line: {exc}"))
            continue
        ptype, values = fields[0], tuple(fields[1:])
        sec = ptype[:1]
        if sec not in ("p", "g") or ptype not in model.model.get(sec, {}):
            defined = [k for s in ("p", "g") for k in model.model.get(s, {})]
            errors.append(PolicyError("policy", n, f"{ptype!r} is not defined in the model ({', '.join(defined)})"))
            continue
        want = len(model[sec][ptype].tokens)
        if len(values) != want:
            errors.append(PolicyError("policy", n, f"{ptype} takes {want} field(s), this line has {len(values)}"))
            continue
        out.append(PolicyLine(ptype, values, n))
    return out


def parse_native(model_text: str, policy_text: str) -> NativePolicy:
    """Validate a model and its policy lines (raises PolicyInvalid listing every problem)."""
    errors: list[PolicyError] = []
    keys = _model_keys(model_text, errors)
    if errors:
        raise PolicyInvalid(errors)
    try:
        model = casbin.Enforcer.new_model(text=model_text)
    except Exception as exc:  # noqa: BLE001 - pycasbin raises bare RuntimeError/TypeError
        raise PolicyInvalid([PolicyError("model", None, f"Casbin cannot load the model: {exc}")]) from None
    try:
        mapping = parse_mapping(model_text, [t[2:] for t in model["r"]["r"].tokens])
    except MappingError as exc:
        raise PolicyInvalid([PolicyError("model", exc.line, str(exc))]) from None
    lines = tuple(_policy_lines(policy_text, model, errors))
    if errors:
        raise PolicyInvalid(errors)
    native = NativePolicy(model_text, policy_text, lines, mapping, keys)
    _trial(native)
    return native


def _trial(native: NativePolicy) -> None:
    """Build the enforcer and parse the matcher: syntax errors and unknown functions fail here."""
    try:
        enforcer = build_native_enforcer(native)
    except Exception as exc:  # noqa: BLE001 - e.g. RuntimeError("unsupported effect")
        raise PolicyInvalid([PolicyError("model", native.keys.get("e"), f"Casbin cannot load the model: {exc}")]) from None
    line = native.keys.get("m")
    matcher = enforcer.get_model()["m"]["m"].value
    expr = re.sub(r"!(?!=)", " not ", matcher.replace("&&", " and ").replace("||", " or "))
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise PolicyInvalid([PolicyError("[matchers].m", line, f"matcher is not a valid expression: {exc.msg}")]) from None
    known = {*FunctionMap.load_function_map().get_functions(), *enforcer.get_model().model.get("g", {}),
             "eval", "in"}
    unknown = sorted({n.func.id for n in ast.walk(tree)
                      if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id not in known})
    if unknown:
        raise PolicyInvalid([PolicyError("[matchers].m", line, f"unknown function(s): {', '.join(unknown)} "
                                         f"(available: {', '.join(sorted(known - {'eval', 'in'}))})")])
    roles = set(enforcer.get_model().model.get("g", {}))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in roles and node.args:
            first = node.args[0]
            base = first.value if isinstance(first, ast.Attribute) else first
            if isinstance(base, ast.Name) and base.id.startswith("r_"):
                native.relations.setdefault(base.id[2:], set()).add(node.func.id)


def build_native_enforcer(native: NativePolicy) -> casbin.Enforcer:
    """A stock enforcer over the pair (lines loaded through an adapter so priority sorting applies)."""
    model = casbin.Enforcer.new_model(text=native.model_text)
    enforcer = casbin.Enforcer(model, _Lines(native.lines))
    return enforcer
