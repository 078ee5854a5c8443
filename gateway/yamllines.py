"""Line numbers for dotted paths (`servers.crm.url`) in a YAML text, so errors can say where."""

from __future__ import annotations

import yaml


def locate(text: str, dotted: str) -> int | None:
    """The 1-based line of the deepest node on `dotted` that exists in `text` (None: not YAML)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        if match is None:
            break
        line = match[0].start_mark.line + 1
        node = match[1]
    return line


def with_lines(text: str, errors: list[str], name: str) -> list[str]:
    """Prefix each `path: problem` error with `name:LINE:` where the path can be found."""
    out = []
    for error in errors:
        path = error.split(":", 1)[0].strip()
        line = locate(text, path) if path and " " not in path else None
        out.append(f"{name}:{line}: {error}" if line else f"{name}: {error}")
    return out
