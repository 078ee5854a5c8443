"""A span's constant part as OTLP/JSON text, rendered once per distinct set and cached.

A span's name, kind, flags and attributes repeat endlessly (route, method, server, status); its ids
and times do not. A finished span keeps the repeating part as one text fragment, its `tail`
(`"name":...,"kind":N,"flags":N,"attributes":[...]`, plus `traceState` and `status` when set), so
the encoder writes a span with one f-string of five values. Ids are hex and times digits (no
escaping needed). Caches are cleared past their bound.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from shared.jsonutil import dumps

_BOUND = 4096
_NAMES: dict[str, str] = {}
_SETS: dict[tuple[Any, ...], str] = {}
_TYPED: dict[tuple[tuple[Any, ...], tuple[type, ...]], str] = {}
# (name, kind, flags, attributes) → tail; only sets of strings (or one Rendered) are kept: a str
# never equals a number, where 1 == True == 1.0 hash alike yet encode apart.
TAILS: dict[tuple[Any, ...], str] = {}
_SCALARS = (str, int, bool, float)


def text(value: str) -> str:
    """A JSON string literal."""
    return dumps(value).decode()


def attribute(key: str, value: Any) -> dict[str, Any]:
    """One OTLP KeyValue."""
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


class Rendered(str):
    """An attribute set already rendered as `,"attributes":[...]` (a span's attributes: `(Rendered,)`)."""

    __slots__ = ()


def rendered(attrs: tuple[Any, ...]) -> tuple[Rendered]:
    """A flat key, value, ... tuple rendered once, as a span's attributes: encoding it costs nothing."""
    return (Rendered(_render(attrs)),)


def _render(attrs: tuple[Any, ...]) -> str:
    if not attrs:
        return ""
    pairs = zip(attrs[::2], attrs[1::2], strict=True)
    return ',"attributes":[' + ",".join(dumps(attribute(k, v)).decode() for k, v in pairs) + "]"


def attributes_text(attrs: tuple[Any, ...]) -> str:
    """`,"attributes":[...]` of a flat key, value, ... tuple, rendered once per distinct set."""
    if len(attrs) == 1 and attrs[0].__class__ is Rendered:
        return attrs[0]  # type: ignore[no-any-return]
    try:
        return _SETS[attrs]  # all-str sets: a str never equals a number, so no type check needed
    except KeyError:
        pass
    except TypeError:  # an unhashable value (a list): rendered each time, as str()
        return _render(attrs)
    # Other sets are keyed with their value types too: 1 == True == 1.0, yet they encode apart.
    typed = (attrs, tuple(map(type, attrs[1::2])))
    found = _TYPED.get(typed)
    if found is None:
        if len(_SETS) + len(_TYPED) >= _BOUND:
            _SETS.clear()
            _TYPED.clear()
        found = _render(attrs)
        if all(t is str for t in typed[1]):
            _SETS[attrs] = found
        elif all(t in _SCALARS for t in typed[1]):  # a container's str() may differ where it is ==
            _TYPED[typed] = found
    return found


def _name(name: str) -> str:
    found = _NAMES.get(name)
    if found is None:
        if len(_NAMES) >= _BOUND:
            _NAMES.clear()
        found = _NAMES[name] = text(name)
    return found


def tail(name: str, kind: int, flags: int, attrs: Any) -> str:
    """The constant part of a span (no error, no tracestate); cached when its values are strings."""
    if attrs is None:
        attrs = ()
    elif attrs.__class__ is dict:
        attrs = tuple(chain.from_iterable(attrs.items()))
    key = (name, kind, flags, attrs)
    try:
        return TAILS[key]
    except KeyError:
        pass
    except TypeError:  # unhashable
        return f'"name":{_name(name)},"kind":{kind},"flags":{flags}{attributes_text(attrs)}'
    found = f'"name":{_name(name)},"kind":{kind},"flags":{flags}{attributes_text(attrs)}'
    plain = (len(attrs) == 1 and attrs[0].__class__ is Rendered) or all(v.__class__ is str for v in attrs[1::2])
    if plain:
        if len(TAILS) >= _BOUND:
            TAILS.clear()
        TAILS[key] = found
    return found


def decorated(found: str, error: str | None, tracestate: str | None) -> str:
    """A tail with the span's `traceState` and ERROR status (the type name only) added."""
    if tracestate:
        found += f',"traceState":{text(tracestate)}'
    if error is not None:  # STATUS_CODE_ERROR
        found += f',"status":{{"code":2,"message":{text(error)}}}'
    return found
