"""The JSON + 8 x NUL prelude codec, fed at every split."""

from __future__ import annotations

import itertools

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duplexlambda.errors import LocalProtocolError, PreludeError
from duplexlambda.protocol.prelude import (
    DELIMITER,
    MAX_PRELUDE,
    HttpResponsePrelude,
    PreludeDecoder,
    encode_prelude,
)

from ..conftest import VECTORS


def run(pieces: list[bytes], *, eof: bool = True) -> tuple[dict[str, object] | None, bytes]:
    dec = PreludeDecoder()
    body = b"".join(bytes(v) for p in pieces for v in dec.feed(p))
    if eof:
        dec.eof()
    return dec.prelude, body


def every_split(data: bytes) -> list[list[bytes]]:
    return (
        [[data]]
        + [[data[:i], data[i:]] for i in range(len(data) + 1)]
        + [[data[i : i + 1] for i in range(len(data))]]
    )


def test_vector_prelude_body() -> None:
    data = (VECTORS / "prelude_body.bin").read_bytes()
    for pieces in every_split(data):
        prelude, body = run(pieces)
        assert prelude == {
            "statusCode": 200,
            "headers": {"Content-Type": "text/plain"},
            "cookies": [],
        }
        assert body == b"Hello"


def test_body_may_hold_nuls() -> None:
    data = b'{"a":1}' + DELIMITER + b"\x00\x00x\x00" + DELIMITER
    for pieces in every_split(data):
        assert run(pieces) == ({"a": 1}, b"\x00\x00x\x00" + DELIMITER)


def test_escaped_nul_in_json_is_not_the_delimiter() -> None:
    data = b'{"loc":"mare\\u0000tranquillitatis"}' + DELIMITER + b"ABC"
    assert run([data]) == ({"loc": "mare\x00tranquillitatis"}, b"ABC")


def test_empty_body() -> None:
    dec = PreludeDecoder()
    assert dec.feed(b"{}" + DELIMITER) == []
    assert dec.complete
    assert dec.prelude == {}
    dec.eof()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1,2]" + DELIMITER, "must be a JSON object"),
        (b'"s"' + DELIMITER, "must be a JSON object"),
        (b"{bad" + DELIMITER, "not valid JSON"),
        (DELIMITER, "not valid JSON"),
        (b"{}\x00\x00\x00x", "followed by 8 NUL bytes"),
        (b"{}\x00\x00\x00\x00\x00\x00\x00 ", "followed by 8 NUL bytes"),
    ],
)
def test_bad_preludes(data: bytes, message: str) -> None:
    for pieces in every_split(data):
        with pytest.raises(PreludeError, match=message):
            run(pieces)


@pytest.mark.parametrize("data", [b"", b'{"a":1', b'{"a":1}', b'{"a":1}\x00\x00\x00'])
def test_truncated_prelude(data: bytes) -> None:
    for pieces in every_split(data):
        with pytest.raises(PreludeError, match="ended inside the prelude"):
            run(pieces)


def test_too_large() -> None:
    big = b'{"k":"' + b"x" * MAX_PRELUDE + b'"}'
    with pytest.raises(PreludeError, match="larger than"):
        run([big + DELIMITER])
    dec = PreludeDecoder()
    for i in range(0, MAX_PRELUDE - 1000, 1000):
        assert dec.feed(big[i : i + 1000]) == []  # no NUL yet
    with pytest.raises(PreludeError, match="larger than"):
        dec.feed(big[MAX_PRELUDE - 1000 :])  # must not buffer without bound
    with pytest.raises(PreludeError):
        dec.feed(b"more")  # sticky


def test_exactly_at_the_limit() -> None:
    doc = b'{"k":"' + b"x" * (MAX_PRELUDE - 8) + b'"}'
    assert len(doc) == MAX_PRELUDE
    prelude, body = run([doc + DELIMITER + b"b"])
    assert prelude is not None
    assert body == b"b"


def test_custom_limit() -> None:
    dec = PreludeDecoder(max_size=4)
    assert dec.feed(b"{}  ") == []
    with pytest.raises(PreludeError, match="larger than 4 bytes"):
        dec.feed(b" ")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=20))),
    st.binary(max_size=64),
    st.lists(st.integers(0, 200), max_size=5),
)
def test_round_trip_any_split(doc: dict[str, object], body: bytes, cuts: list[int]) -> None:
    data = encode_prelude(doc) + DELIMITER + body
    bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    assert run([data[a:b] for a, b in itertools.pairwise(bounds)]) == (doc, body)


def test_response_prelude_always_has_cookies() -> None:
    raw = encode_prelude(HttpResponsePrelude())
    assert msgspec.json.decode(raw) == {"statusCode": 200, "headers": {}, "cookies": []}
    raw = encode_prelude(
        HttpResponsePrelude(
            statusCode=302,
            headers={"Location": "/x", "X-Multi": ["a", "b"]},
            cookies=["a=1; Path=/"],
            multiValueHeaders={"X-M": ["1", "2"]},
        )
    )
    assert msgspec.json.decode(raw) == {
        "statusCode": 302,
        "headers": {"Location": "/x", "X-Multi": ["a", "b"]},
        "cookies": ["a=1; Path=/"],
        "multiValueHeaders": {"X-M": ["1", "2"]},
    }


def test_vector_prelude_encodes_byte_exact() -> None:
    raw = encode_prelude(HttpResponsePrelude(headers={"Content-Type": "text/plain"}))
    assert raw + DELIMITER + b"Hello" == (VECTORS / "prelude_body.bin").read_bytes()


@pytest.mark.parametrize(
    "prelude",
    [
        HttpResponsePrelude(headers={"X": "a\r\nSet-Cookie: evil=1"}),
        HttpResponsePrelude(headers={"X": ["ok", "bad\n"]}),
        HttpResponsePrelude(headers={"Bad Name": "v"}),
        HttpResponsePrelude(headers={"": "v"}),
        HttpResponsePrelude(cookies=["a=1\r\nX: y"]),
        HttpResponsePrelude(multiValueHeaders={"X": ["\x00"]}),
        HttpResponsePrelude(statusCode=99),
        HttpResponsePrelude(statusCode=600),
    ],
)
def test_response_prelude_rejects_injection(prelude: HttpResponsePrelude) -> None:
    with pytest.raises(LocalProtocolError):
        encode_prelude(prelude)


def test_encode_rejects_oversize() -> None:
    with pytest.raises(LocalProtocolError, match="exceeds"):
        encode_prelude({"k": "x" * MAX_PRELUDE})


@pytest.mark.parametrize(
    "data",
    [b'"\xff"\x00', b'{"a":"\xd8"}' + DELIMITER, b"[" * 5000 + b"\x00"],
    ids=["bad-utf8-string", "lone-surrogate-byte", "deep-nesting"],
)
def test_only_prelude_errors_escape(data: bytes) -> None:
    # Found by the fuzzer: msgspec's UnicodeDecodeError / RecursionError used to escape.
    with pytest.raises(PreludeError):
        run([data])
