"""`leaks`: might a backend's JSON text hold one of a credential's forms where masking.scrub would
find it in the decoded strings (pure functions)?

It must never say no when scrub would mask something, and should cost a clean answer far less than
its JSON decode. Escapes (`\\n`, `\\u0074`), characters that are not printable (looked through by
scrub) and case may all sit inside a form's first PREFIX_RUN characters (its head), so heads are not
searched as such. Instead each head's rarest character (its anchor) is found with C `find`s, by
itself or as the last hex digit of a `\\u` escape that spells it, and only the text around each
occurrence is decoded and compared. Past _MAX_HITS occurrences, or with a head the anchors cannot
serve, the whole text is unescaped instead (and any `\\u` escape is a yes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PREFIX_RUN = 8  # a form's first 8 characters (or more) anywhere in the text are masked

# A rough share (per mille) of each character in an answer's JSON text: the anchor is the character
# whose occurrences (and those of the escape spelling it) are fewest. Others count 0.5.
_SHARE = {" ": 160, "e": 100, "t": 73, "a": 66, "o": 60, "i": 56, "n": 54, "s": 50, "h": 49, "r": 48,
          "d": 34, "l": 32, "c": 22, "u": 22, "m": 19, "w": 19, "f": 18, "g": 16, "y": 16, "p": 15,
          "b": 12, "v": 8, "k": 6, "x": 1.2, "j": 1.2, "q": 0.8, "z": 0.6, '"': 40, ":": 15, ",": 15,
          "\\": 12, ".": 8, "0": 8, "1": 8, "2": 6, "{": 5, "}": 5, "-": 4, "[": 3, "]": 3, "_": 3,
          "T": 3, "I": 3, "A": 3, "S": 2, "C": 2}
# Never an anchor: what `\"`, `\\`, `\/` may stand for, and k (the Kelvin sign folds to it).
_NO_ANCHOR = '"\\/k'
_WINDOW = 48  # characters of JSON text read on each side of an anchor
_MARGIN = 5  # characters at a window's edge that may be a cut escape read wrong
_SHORT = 1024  # shorter text is cheaper unescaped whole
_MAX_HITS = 16  # anchors read one by one; past it, the whole text is unescaped
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_UNICODE = re.compile(r"\\u")  # regular expressions find these faster than `in` does
_NOT_NEWLINE = re.compile(r"\\[^n]")
_NEWLINE = re.compile(r"\\n")
_SIMPLE = {"b": "", "f": "", "n": "", "r": "", "t": ""}  # not printable: looked through
_CONTROLS = bytes([*range(0x20), 0x7F])
_UNESCAPE = (('\\"', '"'), ("\\/", "/"), ("\\b", ""), ("\\f", ""), ("\\n", ""), ("\\r", ""), ("\\t", ""))


def fold(text: str) -> str:
    """Lower case, one character for one (indices stay valid)."""
    low = text.lower()
    if len(low) == len(text):  # the usual case, in C; else a few characters grew ('İ'): kept as they are
        return low
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


class _Anchor:
    """One head, where its anchor sits in it, and the characters to `find` for it."""

    __slots__ = ("at", "codes", "finds", "head")

    def __init__(self, head: str, at: int) -> None:
        self.head, self.at = head, at
        cases = {head[at], head[at].upper()}
        self.codes = {ord(c) for c in cases}
        digits = {format(code, "x")[-1] for code in self.codes}
        self.finds = tuple(sorted(cases | digits | {d.upper() for d in digits}))


def _cost(char: str) -> float:
    code = f"{ord(char):x}"[-1]
    return sum(_SHARE.get(c, 0.5) for c in {char, char.upper(), code, code.upper()})


def anchors_of(heads: Sequence[str]) -> tuple[_Anchor, ...] | None:
    """Each head's anchor; None if one is not ASCII or has no character that can be one."""
    anchors = []
    for head in heads:
        usable = [i for i, c in enumerate(head) if c not in _NO_ANCHOR]
        if not head.isascii() or not usable:
            return None
        anchors.append(_Anchor(head, min(usable, key=lambda i: _cost(head[i]))))
    return tuple(anchors)


def _one(match: re.Match[str]) -> str:
    escape = match.group(1)
    return chr(int(escape[1:], 16)) if len(escape) == 5 else _SIMPLE.get(escape, escape)


def _decoded(text: str) -> str:
    """JSON text as scrub reads its strings: escapes decoded, characters that are not printable
    dropped, folded."""
    if "\\" in text:
        text = _ESCAPE.sub(_one, text)
    if not text.isprintable():
        text = "".join(c for c in text if c.isprintable())
    return fold(text)


def _escaped_before(text: str, at: int) -> bool:
    """Is the character at `at` escaped (an odd run of backslashes before it)?"""
    run = 0
    while at - run > 0 and text[at - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _around(text: str, anchor: _Anchor, pos: int) -> bool | None:
    """Does the head sit at the anchor found at `pos` (itself or an escape's last digit)? None: the
    window is too full of escapes to tell."""
    head, at = anchor.head, anchor.at
    low, high = pos - at, pos - at + len(head)
    near = text[max(0, low - 6):high]
    if "\\" not in near and near.isprintable():  # the usual case: no escape, nothing invisible
        return low >= 0 and high <= len(text) and text[low:high].lower() == head
    start = pos - 5
    if start >= 0 and text[start:start + 2] == "\\u" and not _escaped_before(text, start):
        try:  # the last digit of a `\uXXXX`: the anchor only if it spells it
            if int(text[start + 2:pos + 1], 16) not in anchor.codes:
                return False
        except ValueError:
            start = pos
    else:
        start = pos
    if start == pos and (text[pos].lower() != head[at] or _escaped_before(text, pos)):
        return False
    left, end = max(0, start - _WINDOW), pos + 1 + _WINDOW
    while left and text[left - 1] == "\\":  # never a run of backslashes cut in two
        left -= 1
    while end < len(text) and text[end - 1] == "\\":
        end += 1
    before, after = _decoded(text[left:start]), _decoded(text[start:end])
    if (left and len(before) < at + _MARGIN) or (end < len(text) and len(after) < len(head) - at + _MARGIN):
        return None
    return (before[len(before) - at:] if at else "") + after[:len(head) - at] == head


def _anchored(text: str, anchor: _Anchor) -> bool | None:
    """Does the head sit at any of its anchor's occurrences? None past _MAX_HITS of them."""
    hits = 0
    for char in anchor.finds:
        pos = text.find(char)
        while pos != -1:
            hits += 1
            if hits > _MAX_HITS:
                return None
            found = _around(text, anchor, pos)
            if found is not False:
                return found
            pos = text.find(char, pos + 1)
    return False


def leaks(raw: bytes | str, heads: Sequence[str], anchors: tuple[_Anchor, ...] | None) -> bool:
    """Might JSON text `raw` hold one of the folded `heads` where scrub would find it (their
    `anchors_of`)? A false alarm costs a walk; a miss is impossible."""
    text = (raw.decode("ascii") if raw.isascii() else raw.decode("utf-8", "replace")) if isinstance(raw, bytes) else raw
    if anchors is None or len(text) < _SHORT:
        return _unescaped_has(text, heads)
    dense = []
    for anchor in anchors:
        found = _anchored(text, anchor)
        if found:
            return True
        if found is None:
            dense.append(anchor.head)
    return bool(dense) and _unescaped_has(text, dense)


def _unescaped_has(text: str, heads: Sequence[str]) -> bool:
    """The whole text unescaped, then searched: any `\\u` escape (it may spell anything) is a yes."""
    if _NOT_NEWLINE.search(text) is None:  # the usual case: line breaks the only escapes
        text = _NEWLINE.sub("", text)
    else:
        if _UNICODE.search(text) or "\x01" in text:
            return True
        text = text.replace("\\\\", "\x01")  # an escaped backslash first: `\\\\n` is a backslash and an n
        for escape, plain in _UNESCAPE:
            text = text.replace(escape, plain)
        text = text.replace("\x01", "\\")
    if text.isascii():  # scrub looks through controls (NULs between a text/plain body's characters)
        ascii_ = text.encode("ascii")
        if len(kept := ascii_.translate(None, _CONTROLS)) != len(ascii_):  # C speed, unlike isprintable
            text = kept.decode("ascii")
    elif not text.isprintable():
        return True
    folded = fold(text)
    return any(h in folded for h in heads)
