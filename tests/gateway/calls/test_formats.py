"""Formats asserted in their one canonical spelling (uuid, date)."""

from __future__ import annotations

import pytest

from gateway.calls.formats import canonical_date, canonical_uuid
from gateway.calls.validate import compile_schema

U = "123e4567-e89b-12d3-a456-426614174000"


@pytest.mark.parametrize("value,ok", [
    (U, True), (U.upper(), False), (U.replace("-", ""), False), ("{" + U + "}", False), ("urn:uuid:" + U, False),
    (" " + U, False), ("not-a-uuid", False), (7, True),  # a non-string is the type check's business
])
def test_canonical_uuid(value, ok):
    assert canonical_uuid(value) is ok


@pytest.mark.parametrize("value,ok", [
    ("2024-02-29", True), ("2023-02-29", False), ("20240229", False), ("2024-2-9", False),
    ("\uff12\uff10\uff12\uff14-02-29", False), ("2024-02-29T00:00:00", False), ("1709164800", False), (None, True),
])
def test_canonical_date(value, ok):
    assert canonical_date(value) is ok


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}},  # flat: no fast plan
    {"type": "object", "properties": {"id": {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]}}},
    {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
     "properties": {"id": {"type": "string", "format": "uuid"}}},
])
def test_a_non_canonical_uuid_is_refused_naming_the_argument(schema):
    checker = compile_schema(schema)
    assert checker.problems({"id": U}) == []
    problems = checker.problems({"id": U.upper()})
    assert problems and problems[0].startswith("/id: must be a uuid in canonical form"), problems
    assert U.upper() not in problems[0]  # the value is never echoed


def test_other_formats_stay_annotations():
    checker = compile_schema({"type": "object", "properties": {"at": {"type": "string", "format": "date-time"},
                                                               "mail": {"type": "string", "format": "email"}}})
    assert checker.problems({"at": "yesterday", "mail": "nobody"}) == []
