"""The string formats the gateway asserts in their one canonical spelling: pure.

A policy decides on an argument's text; a backend parses it. For a format with many spellings of
one value (pydantic's `UUID` accepts upper case, no hyphens, `{…}` and `urn:uuid:`), a deny rule on
one spelling would let the others through. The gateway refuses every spelling but the canonical one
(the one `str(uuid.UUID(x))` and `date.isoformat()` print), so what the PDP decided on is the only
spelling of the value that reaches the backend. Used by validate.py as jsonschema's format checker.
"""

from __future__ import annotations

import re
import uuid
from datetime import date

from jsonschema import FormatChecker

# format -> how its canonical spelling looks (in the refusal's message)
CANONICAL = {
    "uuid": "lowercase hexadecimal with hyphens, 8-4-4-4-12",
    "date": "YYYY-MM-DD",
}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def canonical_uuid(value: object) -> bool:
    """Whether a string is a UUID as `str(UUID)` spells it (non-strings: not this check's business)."""
    if not isinstance(value, str):
        return True
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def canonical_date(value: object) -> bool:
    """Whether a string is a calendar date spelled YYYY-MM-DD (ASCII digits, a real day)."""
    if not isinstance(value, str):
        return True
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


FORMATS = FormatChecker(formats=())
FORMATS.checks("uuid")(canonical_uuid)
FORMATS.checks("date")(canonical_date)
