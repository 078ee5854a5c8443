"""AuthZEN request → `enforce` arguments for native Casbin models (pure).

Each token of the model's `r = ...` line takes its value from one source:
  subject | resource | action | context        an attribute object (see `Entity`)
  subject.id | subject.type | resource.id | resource.type | action.name
  subject.properties.NAME | resource.properties.NAME | action.properties.NAME | context.NAME

Defaults: `sub` = subject, `obj` = resource, `act` = action.name; with other names, the first three
tokens take subject, resource and action.name in that order, and any further token `x` takes
`context.x`. A model overrides a token with a comment line `# mcpgw-map: dom = context.tenant`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ENTITIES = ("subject", "resource", "action", "context")
_DEFAULT_BY_NAME = {"sub": "subject", "obj": "resource", "act": "action.name"}
_BY_POSITION = ("subject", "resource", "action.name")
_MAP_LINE = re.compile(r"^\s*#\s*mcpgw-map:\s*(.*)$")
_SOURCE = re.compile(r"^(subject|resource|action|context)(\.(id|type|name|properties\.[^.\s]+|[^.\s]+))?$")


class MappingError(ValueError):
    """A bad `# mcpgw-map:` line."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


class Entity:
    """An AuthZEN subject/resource/action as a Casbin attribute object.

    `r.sub.id`, `r.sub.type` and every property (`r.obj.ownerID`) are attributes; a property named
    `id` or `type` does not shadow the top-level field. A missing attribute raises inside the matcher,
    which the PDP turns into a deny (fail closed).
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"Entity({self.__dict__!r})"


@dataclass(frozen=True)
class Mapping:
    """Token → source, in request-definition order."""

    tokens: tuple[str, ...]
    sources: tuple[str, ...]

    def describe(self) -> dict[str, str]:
        """JSON form (shown by validate/explain)."""
        return dict(zip(self.tokens, self.sources, strict=True))


def parse_mapping(model_text: str, tokens: list[str]) -> Mapping:
    """Defaults for `tokens`, overridden by `# mcpgw-map: TOKEN = SOURCE` lines."""
    sources = {t: _DEFAULT_BY_NAME.get(t) for t in tokens}
    unnamed = [t for t in tokens if sources[t] is None]
    free = [s for s in _BY_POSITION if s not in sources.values()]
    for t in unnamed:
        sources[t] = free.pop(0) if free and tokens.index(t) < 3 else f"context.{t}"
    for n, raw in enumerate(model_text.splitlines(), 1):
        match = _MAP_LINE.match(raw)
        if match is None:
            continue
        for part in filter(None, (p.strip() for p in match.group(1).split(","))):
            token, eq, source = (x.strip() for x in part.partition("="))
            if not eq or token not in sources:
                raise MappingError(f"mcpgw-map: {part!r} must be 'TOKEN = SOURCE' with TOKEN one of "
                                   f"{', '.join(tokens)}", n)
            if not _SOURCE.match(source):
                raise MappingError(f"mcpgw-map: source {source!r} must be subject|resource|action|context, "
                                   "optionally with .id, .type, .name, .properties.NAME or (context) .NAME", n)
            sources[token] = source
    return Mapping(tuple(tokens), tuple(str(sources[t]) for t in tokens))


def entity(obj: dict[str, Any], *, kind: str) -> Entity:
    """The attribute object for a subject/resource/action/context body."""
    if kind == "context":
        return Entity(dict(obj))
    props = obj.get("properties") or {}
    fields = {**props, **{k: obj[k] for k in ("id", "type", "name") if k in obj}}
    return Entity(fields)


def resolve(source: str, body: dict[str, Any]) -> Any:
    """The value of one source in a merged AuthZEN evaluation body (KeyError names what is missing)."""
    head, _, rest = source.partition(".")
    part = body.get(head) or {}
    if not rest:
        return entity(part, kind=head)
    if rest.startswith("properties."):
        value = (part.get("properties") or {}).get(rest[len("properties."):])
    else:
        value = part.get(rest)
    if value is None:
        raise KeyError(f"{source} is required by this policy's request mapping")
    return value


def enforce_args(mapping: Mapping, body: dict[str, Any]) -> list[Any]:
    """The `enforce` arguments for one evaluation (KeyError when a mapped value is missing)."""
    return [resolve(source, body) for source in mapping.sources]
