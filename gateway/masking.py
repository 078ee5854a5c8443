"""A backend's own text with the credentials the gateway gives it masked (pure functions).

`mask`, for a backend's text quoted to an agent, a log or an audit row (errors): the server's
credential in every form it may travel or be echoed in (`credential_forms`), any case, non-printable
characters dropped first, any PREFIX_RUN-character run of a form's start too, then credential
shapes (shared/redact.py). A successful answer is masked too, gently (`masked_response`): only the
forms (`scrub`), and only once `leaks` (masking_scan.py) found a trace in its JSON text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
from yarl import URL

from gateway import masking_scan
from gateway.backend_auth import AuthConfig, format_value
from gateway.masking_scan import PREFIX_RUN
from gateway.masking_scan import fold as _fold
from shared.jsonutil import dumps
from shared.redact import MAX_DEPTH, REDACTED, mask_secrets


def credential_forms(auth: AuthConfig, secret: str) -> list[str]:
    """Every form `secret` (a server's credential, or its current oauth2 token) may be echoed in."""
    if not secret:
        return []
    plain = [secret]
    if auth.method == "basic":
        plain.append(secret.partition(":")[2])  # the password alone (the user name is no secret)
    return _encoded(plain, {format_value(auth, secret)})


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every form secrets given to a backend otherwise (a stdio server's env) may be echoed in."""
    return _encoded(secrets, set())


def _encoded(values: Iterable[str], forms: set[str]) -> list[str]:
    for value in filter(None, values):
        forms.update({value, base64.b64encode(value.encode()).decode("ascii"), quote(value, safe=""),
                      quote_plus(value), quote(value, safe="/"), orjson.dumps(value).decode()[1:-1],
                      URL.build(query={"k": value}).raw_query_string[2:]})
    return sorted(forms, key=len, reverse=True)


def _spans(folded: str, form: str) -> Iterable[tuple[int, int]]:
    """Where `form` (folded) or a run of PREFIX_RUN or more of its first characters occurs."""
    head = form[:PREFIX_RUN]
    start = folded.find(head)
    while start != -1:
        end = start + len(head)
        while end < len(folded) and end - start < len(form) and folded[end] == form[end - start]:
            end += 1
        yield start, end
        start = folded.find(head, end)


def _covered(folded: str, forms: Iterable[str]) -> list[tuple[int, int]]:
    """Sorted spans of `folded` holding one of `forms` or a long enough run of its first characters."""
    return sorted(span for form in {_fold(f) for f in forms if f} for span in _spans(folded, form))


def _replaced(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with each of the sorted (possibly overlapping) `spans` replaced by one marker."""
    parts, at = [], 0
    for start, end in spans:
        if end <= at:
            continue
        if start >= at:
            parts.append(text[at:start])
            parts.append(REDACTED)
        at = end
    return "".join(parts) + text[at:] if parts else text


def mask(text: str, forms: Iterable[str]) -> str:
    """`text` printable only, with every occurrence of `forms` (any case, or a long enough prefix of
    one) and every credential shape replaced by the redaction marker."""
    if not text.isprintable():
        text = "".join(c for c in text if c.isprintable())
    return mask_secrets(_replaced(text, _covered(_fold(text), forms)))


def scrub(text: str, forms: Sequence[str]) -> str:
    """`text` with `forms` masked as `mask` finds them (characters that are not printable are
    looked through), everything else — line breaks, other secrets' shapes — kept as it is."""
    if text.isprintable():
        return _replaced(text, _covered(_fold(text), forms))
    kept = [i for i, c in enumerate(text) if c.isprintable()]
    spans = _covered(_fold("".join(text[i] for i in kept)), forms)
    return _replaced(text, [(kept[start], kept[end - 1] + 1) for start, end in spans])


_heads: dict[int, tuple[Sequence[str], tuple[str, ...], Any]] = {}


def leaks(raw: bytes | str, forms: Sequence[str]) -> bool:
    """Might JSON text `raw` hold one of `forms` where `scrub` would find it in its strings? Never a
    miss; heads and anchors are kept per forms list (the credential store hands out one per credential)."""
    if not forms:
        return False
    found = _heads.get(id(forms))
    if found is None or found[0] is not forms:
        if len(_heads) >= 256:
            _heads.clear()
        heads = tuple({_fold(f)[:PREFIX_RUN] for f in forms if f})
        found = _heads[id(forms)] = (forms, heads, masking_scan.anchors_of(heads))
    return masking_scan.leaks(raw, found[1], found[2])


def mask_result(value: Any, forms: Sequence[str]) -> Any:
    """A JSON value (a backend's result) with `scrub` applied to every string and key."""
    return _strings(value, lambda text: scrub(text, forms))


def mask_data(value: Any, forms: Iterable[str]) -> Any:
    """A JSON value (a JSON-RPC error's `data`) with `mask` applied to every string and key."""
    forms = forms if isinstance(forms, list | tuple) else list(forms)
    return _strings(value, lambda text: mask(text, forms))


def _strings(value: Any, masked: Callable[[str], str], depth: int = 0) -> Any:
    """`value` with `masked` applied to every string and key (cut at MAX_DEPTH); a number whose
    digits `masked` would change (an all-digit credential echoed as a number) is the marker."""
    if isinstance(value, str):
        return masked(value)
    if depth >= MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {masked(str(k)): _strings(v, masked, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strings(v, masked, depth + 1) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) and masked(text := str(value)) != text:
        return REDACTED
    return value


_KEPT = ("jsonrpc", "id")  # what routes a message: never masked


def masked_response(message: Any, forms: Sequence[str], raw: bytes | str | None = None, *,
                    trace: bool | None = None) -> Any:
    """A backend's JSON-RPC message with its error object masked (`mask_error`) and, when `leaks` finds
    a trace of `forms` (`trace`: a caller already asked; `raw`: its JSON text), every member but
    `jsonrpc` and `id` scrubbed (anything not an object: whole). Every entry point's answer passes here."""
    if trace is None:
        trace = bool(forms) and leaks(dumps(message) if raw is None else raw, forms)
    if not isinstance(message, dict):
        return mask_result(message, forms) if trace else message
    if trace:
        return {k if k in _KEPT else scrub(k, forms): v if k in _KEPT else mask_error(v, forms)
                if k == "error" and isinstance(v, dict) else mask_result(v, forms) for k, v in message.items()}
    if isinstance(message.get("error"), dict):
        return {**message, "error": mask_error(message["error"], forms)}
    return message


def mask_error(error: dict[str, Any], forms: Iterable[str]) -> dict[str, Any]:
    """A backend's JSON-RPC error object with its message and data masked (the code kept)."""
    forms = list(forms)
    masked = {**error, "message": mask(str(error.get("message", "")), forms)}
    if "data" in error:
        masked["data"] = mask_data(error["data"], forms)
    return masked
