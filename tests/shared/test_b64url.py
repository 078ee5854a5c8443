from shared import b64url


def test_round_trip_without_padding() -> None:
    for data in (b"", b"a", b"ab", b"abc", bytes(range(256))):
        text = b64url.encode(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert b64url.decode(text) == data


def test_what_is_not_base64url_is_none() -> None:
    assert b64url.decode("a") is None  # one character cannot carry a byte
    assert b64url.decode("é") is None
