"""Resource URIs the gateway decides on: only URIs already in RFC 3986 normal form. Pure.

A policy grants `file:///public/*`; a backend resolves `file:///public/%2e%2e/secret` outside it.
Deciding on one spelling and forwarding another is the hole, so a URI is accepted only when it
*is* its own normal form (section 6.2.2); refusing rather than rewriting keeps the passthrough
byte-faithful. Spellings backends are known to decode into separators after the check are refused
too: `\\`, `%2F`/`%5C`, double encoding (`%252e`), control, space and non-ASCII characters.
"""

from __future__ import annotations

import re

MAX_LEN = 4096
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Printable ASCII except space, `"`, `<`, `>`, `\`, `^`, backtick, `{`, `|`, `}` (RFC 3986 never allows them).
_ALLOWED = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_TEMPLATE_EXPR = re.compile(r"\{[+#./;?&]?[A-Za-z0-9_.,*:%]+\}")
_DANGEROUS_ESCAPES = re.compile(r"%(2[Ff]|5[Cc]|25[0-9A-Fa-f]{2})")
_PARAM_DOTS = re.compile(r"(^|/)\.\.?;")
_PARTS = re.compile(r"(?://([^/?#]*))?([^?#]*)")  # after the scheme: authority, path
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")


class UriRefused(ValueError):
    """A URI the gateway will not decide on; the message says why (safe to show the caller)."""


def normalise(uri: str) -> str:
    """The RFC 3986 section 6.2.2 normal form of `uri` (syntax-based normalisation)."""
    uri = _ESCAPE.sub(_fix_escape, uri)
    match = _SCHEME.match(uri)
    if match is None:
        return _remove_dot_segments_in(uri)
    scheme = match.group(1).lower()
    rest = uri[match.end():]
    authority = ""
    if rest.startswith("//"):
        end = _first_of(rest, "/?#", 2)
        authority, rest = _lower_host(rest[2:end]), rest[end:]
        authority = "//" + authority
    return f"{scheme}:{authority}{_remove_dot_segments_in(rest)}"


def check(uri: str, *, template: bool = False) -> str:
    """`uri` itself when the gateway may decide on it; UriRefused otherwise. `template` admits RFC 6570
    expressions (`{path}`), each checked as if it were one ordinary path character."""
    if not isinstance(uri, str) or not uri:
        raise UriRefused("resource URI must be a non-empty string")
    if len(uri) > MAX_LEN:
        raise UriRefused(f"resource URI is longer than {MAX_LEN} characters")
    plain = _TEMPLATE_EXPR.sub("x", uri) if template else uri
    if "\\" in plain:
        raise UriRefused("resource URI contains a backslash")
    if not _ALLOWED.fullmatch(plain):
        raise UriRefused("resource URI contains a character a URI may not contain (control, space, "
                         "non-ASCII or reserved-by-RFC); percent-encode it")
    scheme = _SCHEME.match(plain)
    if scheme is None:
        raise UriRefused("resource URI must be absolute (start with a scheme)")
    escaped = "%" in plain  # most URIs have no escape: skip the escape checks entirely
    if escaped and _BAD_ESCAPE.search(plain):
        raise UriRefused("resource URI contains a malformed percent escape")
    if escaped and _DANGEROUS_ESCAPES.search(plain):
        raise UriRefused("resource URI contains an escaped separator or a double-encoded escape "
                         "(%2F, %5C or %25XX)")
    if ";" in plain and _PARAM_DOTS.search(plain):
        raise UriRefused("resource URI has a dot segment with parameters ('..;'), which some servers resolve")
    if escaped and not _utf8(plain):
        raise UriRefused("resource URI's percent escapes do not decode to valid UTF-8")
    if not _is_normal(plain, scheme, escaped):
        raise UriRefused(f"resource URI is not in normal form (RFC 3986 section 6); use {normalise(uri)!r}")
    return uri


def _is_normal(uri: str, scheme: re.Match[str], escaped: bool) -> bool:
    """`normalise(uri) == uri`, answered without building the normal form in the common case."""
    if not scheme.group(1).islower() and scheme.group(1) != scheme.group(1).lower():
        return False
    parts = _PARTS.match(uri, scheme.end())
    assert parts is not None  # every string matches: each group may be empty
    authority = parts.group(1)
    if authority and _lower_host(authority) != authority:
        return False
    if escaped and _ESCAPE.sub(_fix_escape, uri) != uri:
        return False
    return _DOT_SEGMENT.search(parts.group(2)) is None  # remove_dot_segments changes a path iff it has one


def refusal(uri: object, *, template: bool = False) -> str | None:
    """Why `uri` is refused, or None when it may be decided on."""
    try:
        check(uri, template=template)  # type: ignore[arg-type]
    except UriRefused as exc:
        return str(exc)
    return None


def _utf8(uri: str) -> bool:
    """Escapes decode to valid UTF-8 (overlong forms like `%C0%AE`, read as `.` by lax decoders, do not)."""
    try:
        _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), uri).encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


def _fix_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in UNRESERVED else "%" + match.group(1).upper()


def _first_of(text: str, chars: str, start: int) -> int:
    positions = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(positions) if positions else len(text)


def _lower_host(authority: str) -> str:
    userinfo, at, hostport = authority.rpartition("@")
    lowered = hostport.lower()
    if "%" in lowered:  # the host is case-insensitive, its escapes' hex digits stay upper-case
        lowered = _ESCAPE.sub(lambda m: "%" + m.group(1).upper(), lowered)
    return f"{userinfo}{at}{lowered}"


def _remove_dot_segments_in(rest: str) -> str:
    """Dot-segment removal on the path part of `rest` (query and fragment untouched)."""
    end = _first_of(rest, "?#", 0)
    return remove_dot_segments(rest[:end]) + rest[end:]


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, as written."""
    out: list[str] = []
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith("./"):
            path = path[2:]
        elif path.startswith("/./"):
            path = path[2:]
        elif path == "/.":
            path = "/"
        elif path.startswith("/../"):
            path = path[3:]
            if out:
                out.pop()
        elif path == "/..":
            path = "/"
            if out:
                out.pop()
        elif path in (".", ".."):
            path = ""
        else:
            start = 1 if path.startswith("/") else 0
            cut = path.find("/", start)
            cut = len(path) if cut < 0 else cut
            out.append(path[:cut])
            path = path[cut:]
    return "".join(out)
