"""URI normal form (RFC 3986 section 6.2.2) and the URIs the gateway refuses to decide on."""

from __future__ import annotations

import pytest

from gateway.mcp import uris


@pytest.mark.parametrize(("raw", "normal"), [
    ("file:///public/a.txt", "file:///public/a.txt"),
    ("FILE:///public/a.txt", "file:///public/a.txt"),
    ("http://EXAMPLE.com/A", "http://example.com/A"),
    ("http://User@EXAMPLE.com/", "http://User@example.com/"),
    ("file:///public/../secret/keys.txt", "file:///secret/keys.txt"),
    ("file:///public/./a", "file:///public/a"),
    ("file:///public/%2e%2e/secret", "file:///secret"),
    ("file:///public/%2E%2E/secret", "file:///secret"),
    ("file:///public/%7euser", "file:///public/~user"),
    ("file:///a%2fb", "file:///a%2Fb"),
    ("file:///a/b/..", "file:///a/"),
    ("file:///../../etc/passwd", "file:///etc/passwd"),
    ("memo://a?x=../y#../z", "memo://a?x=../y#../z"),
])
def test_normalise(raw: str, normal: str) -> None:
    assert uris.normalise(raw) == normal
    assert uris.normalise(normal) == normal  # idempotent


@pytest.mark.parametrize("uri", [
    "file:///public/a.txt", "memo://a", "test://static/resource/1", "file:///a%20b.txt",
    "https://example.com/p?q=1&r=%2C", "file:///%E2%82%AC.txt", "urn:isbn:0451450523",
    "file:///data/report;v=1",
])
def test_accepted(uri: str) -> None:
    assert uris.check(uri) == uri


@pytest.mark.parametrize(("uri", "fragment"), [
    ("file:///public/../secret/keys.txt", "normal form"),
    ("file:///public/%2e%2e/secret/keys.txt", "normal form"),
    ("file:///public/%2E%2E/secret", "normal form"),
    ("file:///public/./a", "normal form"),
    ("FILE:///public/a", "normal form"),
    ("file:///public/%7e", "normal form"),
    ("file:///public/%2f..%2fsecret", "escaped separator"),
    ("file:///public/..%2Fsecret", "escaped separator"),
    ("file:///public/..%5csecret", "escaped separator"),
    ("file:///public/%252e%252e/secret", "double-encoded"),
    ("file:///public/..\\secret", "backslash"),
    ("file:///public\\..\\secret", "backslash"),
    ("file:///public/a\x00.txt", "character"),
    ("file:///public/a\n", "character"),
    ("file:///public/a b", "character"),
    ("file:///public/ü", "character"),
    ("file:///public/\uff0e\uff0e/secret", "character"),
    ("file:///public/%zz", "malformed percent"),
    ("file:///public/%2", "malformed percent"),
    ("file:///public/%c0%ae%c0%ae/secret", "UTF-8"),
    ("file:///public/..;/secret", "'..;'"),
    ("/public/a", "absolute"),
    ("", "non-empty"),
    ("file:///" + "a" * 5000, "longer"),
])
def test_refused(uri: str, fragment: str) -> None:
    with pytest.raises(uris.UriRefused) as exc:
        uris.check(uri)
    assert fragment in str(exc.value)
    assert uris.refusal(uri) is not None


def test_templates_allow_expressions_only_when_asked() -> None:
    assert uris.check("file:///public/{path}", template=True) == "file:///public/{path}"
    assert uris.check("file:///public/{+rest}", template=True)
    assert uris.refusal("file:///public/{path}") is not None
    assert uris.refusal("file:///public/../{path}", template=True) is not None


@pytest.mark.parametrize(("path", "out"), [  # RFC 3986 section 5.4 examples, via remove_dot_segments
    ("/a/b/c/./../../g", "/a/g"), ("mid/content=5/../6", "mid/6"), ("/..", "/"), ("/../a", "/a"),
    ("../a", "a"), ("./a", "a"), (".", ""), ("..", ""), ("/a/b/.", "/a/b/"), ("/a/b/..", "/a/"),
])
def test_remove_dot_segments(path: str, out: str) -> None:
    assert uris.remove_dot_segments(path) == out


def test_fast_normal_form_check_agrees_with_normalise() -> None:
    """`check` answers "is it normal?" without building the normal form: same answer on 5,000 URIs."""
    import random

    rng = random.Random(9)
    pieces = ["/", ".", "..", "a", "B", "%2e", "%41", "%7e", "%c3%a9", "?", "#", "x.y", "//", "@", "HOST"]
    for _ in range(5000):
        scheme = rng.choice(["file", "File", "memo", "http"])
        start = rng.choice([":", "://", ":///", "://Host", "://h"])
        uri = scheme + start + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert (uris.refusal(uri) is None) == (uris.normalise(uri) == uri), uri
