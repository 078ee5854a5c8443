"""A YAML loader that remembers the line of every mapping key and list item.

Validation errors must name the line, and a duplicated key must be an error rather than the
silent "last one wins" of PyYAML: a shadowed key is an ignored key. Numbers with an exponent and no
dot (`1e6`) are numbers, as in YAML 1.2 and JSON (PyYAML's YAML 1.1 reads them as strings).
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class LMap(dict):  # type: ignore[type-arg]
    """A mapping that knows its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class LList(list):  # type: ignore[type-arg]
    """A sequence that knows its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class YamlProblem(Exception):
    """YAML that cannot be read; carries the line when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LMap:  # type: ignore[override]
        self.flatten_mapping(node)
        result = LMap()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise YamlProblem("mapping key is not a scalar", key_node.start_mark.line + 1) from None
            line = key_node.start_mark.line + 1
            if key in result:
                self.duplicates.append((str(key), line))
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = line
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LList:  # type: ignore[override]
        result = LList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


# YAML 1.1 (PyYAML) reads `1e6` and `1E+6` as strings (its floats need a dot); YAML 1.2 and every
# JSON parser read them as numbers. A rule's `equals: 1e6` means the number: resolve it as one
# (quote it, "1e6", to mean the text).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)


def load_with_lines(text: str) -> tuple[Any, list[tuple[str, int]]]:
    """Parse YAML text; return (document, duplicated keys as (key, line)). Raises YamlProblem."""
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlProblem(f"invalid YAML: {exc.problem or exc}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", None) from None
    finally:
        loader.dispose()
    return doc, loader.duplicates
