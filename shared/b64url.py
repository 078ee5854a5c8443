"""Unpadded base64url (RFC 4648 §5), the form ids and sealed tokens carry."""

from __future__ import annotations

import base64
import binascii


def encode(data: bytes) -> str:
    """`data` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode(text: str) -> bytes | None:
    """The bytes behind unpadded base64url `text`; None when it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
