"""Table-driven tests of the chunked decoder and encoder, on both twins.

Every decoder case runs fed all at once, byte by byte, and with trailing bytes after it.
"""

from __future__ import annotations

import pytest

from duplexlambda import errors
from duplexlambda.errors import ChunkedEncodingError
from duplexlambda.protocol._chunked_py import ChunkDecoder, ChunkEncoder

from ..conftest import VECTORS
from .feeding import TRAILING, all_at_once, byte_by_byte, decode

OK: list[tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]] = [
    ("empty body", b"0\r\n\r\n", b"", []),
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello", []),
    ("two chunks", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world", []),
    ("uppercase hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", []),
    ("lowercase hex", b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789", []),
    ("leading zeros", b"0005\r\nhello\r\n000\r\n\r\n", b"hello", []),
    ("16 digits", b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc", []),
    ("extension", b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello", []),
    ("quoted extension", b'5;a="b;c"\r\nhello\r\n0;x\r\n\r\n', b"hello", []),
    ("BWS before ;", b"5 \t;ext\r\nhello\r\n0\r\n\r\n", b"hello", []),
    ("trailing whitespace", b"5  \r\nhello\r\n0\r\n\r\n", b"hello", []),
    ("data with CRLF inside", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n", []),
    ("data with NULs", b"3\r\n\x00\x00\x00\r\n0\r\n\r\n", b"\x00\x00\x00", []),
    ("obs-text in extension", b"1;\x80\xff\r\nx\r\n0\r\n\r\n", b"x", []),
    (
        "error trailers",
        b"0\r\nLambda-Runtime-Function-Error-Type: Error\r\n"
        b"Lambda-Runtime-Function-Error-Body: eyJ9\r\n\r\n",
        b"",
        [
            (b"Lambda-Runtime-Function-Error-Type", b"Error"),
            (b"Lambda-Runtime-Function-Error-Body", b"eyJ9"),
        ],
    ),
    ("trailer OWS trimmed", b"0\r\nX:  a b \t\r\n\r\n", b"", [(b"X", b"a b")]),
    ("trailer empty value", b"0\r\nX:\r\nY: \r\n\r\n", b"", [(b"X", b""), (b"Y", b"")]),
    ("trailer obs-text", b"0\r\nX: caf\xe9\r\n\r\n", b"", [(b"X", b"caf\xe9")]),
    ("trailer after data", b"2\r\nhi\r\n0\r\nx-a: 1\r\n\r\n", b"hi", [(b"x-a", b"1")]),
    ("large chunk", b"1000\r\n" + b"z" * 4096 + b"\r\n0\r\n\r\n", b"z" * 4096, []),
    (
        "mixed sizes",
        b"1\r\na\r\n1001\r\n" + b"b" * 4097 + b"\r\n2\r\ncc\r\n0\r\n\r\n",
        b"a" + b"b" * 4097 + b"cc",
        [],
    ),
]

BAD: list[tuple[str, bytes, type[ChunkedEncodingError]]] = [
    ("not hex", b"g\r\n", errors.BadChunkSizeError),
    ("empty size", b"\r\n", errors.BadChunkSizeError),
    ("space before size", b" 5\r\nhello\r\n", errors.BadChunkSizeError),
    ("sign", b"+5\r\nhello\r\n", errors.BadChunkSizeError),
    ("0x prefix", b"0x5\r\nhello\r\n", errors.BadChunkSizeError),
    ("junk after size", b"5x\r\nhello\r\n", errors.BadChunkSizeError),
    ("junk after BWS", b"5 x\r\n", errors.BadChunkSizeError),
    ("bare LF after BWS", b"5 \nhello", errors.BadLineEndingError),
    ("bare LF in trailer name", b"0\r\nAb\n", errors.BadLineEndingError),
    ("17 digits", b"00000000000000005\r\nhello\r\n", errors.ChunkSizeOverflowError),
    ("2**63", b"8000000000000000\r\n", errors.ChunkSizeOverflowError),
    ("2**64-1", b"ffffffffffffffff\r\n", errors.ChunkSizeOverflowError),
    ("bare LF after size", b"5\nhello\r\n0\r\n\r\n", errors.BadLineEndingError),
    ("CR CR after size", b"5\r\rhello", errors.BadLineEndingError),
    ("bare LF after data", b"5\r\nhello\n0\r\n\r\n", errors.BadLineEndingError),
    ("no CRLF after data", b"5\r\nhelloX\r\n", errors.BadLineEndingError),
    ("chunk longer than size", b"3\r\nhello\r\n", errors.BadLineEndingError),
    ("CR then junk after data", b"5\r\nhello\rX", errors.BadLineEndingError),
    ("bare LF at end", b"0\r\n\n", errors.BadLineEndingError),
    ("CR then junk at end", b"0\r\n\rX", errors.BadLineEndingError),
    ("CR then junk after trailer", b"0\r\nA: b\rX", errors.BadLineEndingError),
    ("NUL in extension", b"5;a\x00\r\nhello\r\n0\r\n\r\n", errors.BadChunkExtensionError),
    ("LF in extension", b"5;a\nb\r\n", errors.BadLineEndingError),
    ("DEL in extension", b"5;\x7f\r\n", errors.BadChunkExtensionError),
    ("obs-fold trailer", b"0\r\nA: b\r\n c\r\n\r\n", errors.BadTrailerError),
    ("trailer without colon", b"0\r\nAb\r\n\r\n", errors.BadTrailerError),
    ("trailer empty name", b"0\r\n: v\r\n\r\n", errors.BadTrailerError),
    ("trailer space in name", b"0\r\nA b: v\r\n\r\n", errors.BadTrailerError),
    ("trailer space before colon", b"0\r\nA : v\r\n\r\n", errors.BadTrailerError),
    ("trailer NUL in value", b"0\r\nA: v\x00\r\n\r\n", errors.BadTrailerError),
    ("trailer LF in value", b"0\r\nA: v\nB: w\r\n\r\n", errors.BadLineEndingError),
    ("size line too long", b"1;" + b"e" * 8191 + b"\r\n", errors.LineTooLongError),
    ("trailer line too long", b"0\r\nA: " + b"v" * 8190 + b"\r\n", errors.LineTooLongError),
    (
        "too many trailers",
        b"0\r\n" + b"".join(b"t%d: v\r\n" % i for i in range(65)) + b"\r\n",
        errors.TrailersTooLargeError,
    ),
    (
        "trailer bytes",
        b"0\r\n" + b"".join(b"t%d: %s\r\n" % (i, b"v" * 8000) for i in range(3)) + b"\r\n",
        errors.TrailersTooLargeError,
    ),
    ("truncated in size", b"5", errors.TruncatedBodyError),
    ("truncated in data", b"5\r\nhel", errors.TruncatedBodyError),
    ("truncated before last chunk", b"5\r\nhello\r\n", errors.TruncatedBodyError),
    ("truncated in trailers", b"0\r\nA: b\r\n", errors.TruncatedBodyError),
    ("truncated before final LF", b"0\r\n\r", errors.TruncatedBodyError),
    ("empty input", b"", errors.TruncatedBodyError),
]

MODES = [pytest.param(all_at_once, id="oneshot"), pytest.param(byte_by_byte, id="bytewise")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("body", "data", "trailers"), [c[1:] for c in OK], ids=[c[0] for c in OK])
def test_valid(
    decoder_cls: type[ChunkDecoder],
    mode: object,
    body: bytes,
    data: bytes,
    trailers: list[tuple[bytes, bytes]],
) -> None:
    assert callable(mode)
    out = mode(decoder_cls, body)
    assert out.error is None
    assert (out.data, out.done, out.trailers, out.unused) == (data, True, trailers, b"")


@pytest.mark.parametrize(("body", "data", "trailers"), [c[1:] for c in OK], ids=[c[0] for c in OK])
def test_valid_with_trailing_bytes(
    decoder_cls: type[ChunkDecoder], body: bytes, data: bytes, trailers: list[tuple[bytes, bytes]]
) -> None:
    for pieces in ([body + TRAILING], [body, TRAILING], [bytes([b]) for b in body + TRAILING]):
        out = decode(decoder_cls, pieces)
        assert (out.data, out.trailers, out.unused) == (data, trailers, TRAILING)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("body", "error"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_invalid(
    decoder_cls: type[ChunkDecoder],
    mode: object,
    body: bytes,
    error: type[ChunkedEncodingError],
) -> None:
    assert callable(mode)
    out = mode(decoder_cls, body)
    assert out.error is error
    assert not out.done


# Appending bytes to a truncated body would make a different input: those cases are left out.
BAD_COMPLETE = [c for c in BAD if c[2] is not errors.TruncatedBodyError]


@pytest.mark.parametrize(
    ("body", "error"), [c[1:] for c in BAD_COMPLETE], ids=[c[0] for c in BAD_COMPLETE]
)
def test_invalid_with_trailing_bytes(
    decoder_cls: type[ChunkDecoder], body: bytes, error: type[ChunkedEncodingError]
) -> None:
    assert decode(decoder_cls, [body + TRAILING]).error is error


def test_errors_are_sticky(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    with pytest.raises(errors.BadChunkSizeError):
        dec.feed(b"z")
    with pytest.raises(errors.BadChunkSizeError):
        dec.feed(b"5\r\nhello\r\n")
    with pytest.raises(errors.BadChunkSizeError):
        dec.eof()


def test_data_before_error_is_kept(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    with pytest.raises(errors.BadChunkSizeError) as info:
        dec.feed(b"5\r\nhello\r\n3\r\nabc\r\nZ")
    assert b"".join(info.value.data) == b"helloabc"
    assert info.value.code == errors.BadChunkSizeError.code


def test_feed_after_end(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    assert dec.feed(b"0\r\n\r\n") == []
    assert dec.done
    assert dec.feed(b"") == []
    with pytest.raises(errors.DataAfterEndError):
        dec.feed(b"x")


def test_eof_after_end_is_fine(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    dec.feed(b"0\r\n\r\n")
    dec.eof()


def test_truncation_is_sticky(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    dec.feed(b"5\r\nhe")
    with pytest.raises(errors.TruncatedBodyError):
        dec.eof()
    with pytest.raises(errors.TruncatedBodyError):
        dec.feed(b"llo\r\n")


def test_largest_size_accepted(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    assert bytes(b"".join(dec.feed(b"7fffffffffffffff\r\nabc"))) == b"abc"
    assert dec.data_total == 3
    assert not dec.done


def test_limits_exactly_at_the_edge(decoder_cls: type[ChunkDecoder]) -> None:
    size_line = b"1;" + b"e" * 8190 + b"\r\n"  # 8192 bytes before CRLF
    trailer = b"A: " + b"v" * 8189 + b"\r\n"  # 8192 bytes before CRLF
    many = b"".join(b"t%d: v\r\n" % i for i in range(64))
    for body in (
        size_line + b"x\r\n0\r\n\r\n",
        b"0\r\n" + trailer + b"\r\n",
        b"0\r\n" + many + b"\r\n",
    ):
        assert all_at_once(decoder_cls, body).error is None
        assert byte_by_byte(decoder_cls, body).error is None


def test_input_types(decoder_cls: type[ChunkDecoder]) -> None:
    body = b"3\r\nabc\r\n0\r\n\r\n"
    for data in (body, bytearray(body), memoryview(body), memoryview(b"xx" + body)[2:]):
        dec = decoder_cls()
        assert b"".join(dec.feed(data)) == b"abc"
        assert dec.done


def test_large_chunks_are_zero_copy() -> None:
    from duplexlambda.protocol.chunked import CChunkDecoder

    if CChunkDecoder is None:
        pytest.skip("C twin not built")
    payload = b"q" * 70000
    body = b"%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n"
    pieces = CChunkDecoder().feed(body)
    assert len(pieces) == 1
    assert pieces[0].obj is body  # a view into the input, not a copy


def test_many_small_chunks_coalesce() -> None:
    from duplexlambda.protocol.chunked import CChunkDecoder

    if CChunkDecoder is None:
        pytest.skip("C twin not built")
    # A 64 KiB read of 16-byte chunks: one gathered buffer, not ~3000 views.
    body = b"".join(b"10\r\n%016d\r\n" % i for i in range(2900))
    pieces = CChunkDecoder().feed(body)
    assert len(pieces) == 1
    assert bytes(pieces[0]) == b"".join(b"%016d" % i for i in range(2900))
    # More runs than one span array holds: still a handful of pieces, all the data.
    body = b"".join(b"1\r\n%d\r\n" % (i % 10) for i in range(10000)) + b"0\r\n\r\n"
    pieces = CChunkDecoder().feed(body)
    assert len(pieces) <= 3
    assert b"".join(pieces) == b"".join(b"%d" % (i % 10) for i in range(10000))


def test_few_runs_are_views_of_the_input() -> None:
    from duplexlambda.protocol.chunked import CChunkDecoder

    if CChunkDecoder is None:
        pytest.skip("C twin not built")
    body = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    pieces = CChunkDecoder().feed(body)
    assert [bytes(p) for p in pieces] == [b"abc", b"de"]
    assert all(p.obj is body for p in pieces)


def test_many_spans_alternating(decoder_cls: type[ChunkDecoder]) -> None:
    # More zero-copy runs than the C span array holds, interleaved with coalesced ones.
    big, small = b"B" * 5000, b"s"
    body = (b"1388\r\n" + big + b"\r\n1\r\n" + small + b"\r\n") * 100 + b"0\r\n\r\n"
    out = all_at_once(decoder_cls, body)
    assert out.data == (big + small) * 100
    assert out.done


# --- vectors from tests/vectors (docs/runtime-api.md §5.2) ------------------------------

WIRE_PRELUDE = b'{"statusCode":200,"headers":{"Content-Type":"text/plain"},"cookies":[]}'


def _body_of(request: bytes) -> bytes:
    return request.split(b"\r\n\r\n", 1)[1]


def test_vector_ok_decodes(decoder_cls: type[ChunkDecoder]) -> None:
    body = (VECTORS / "wire_ok_body.bin").read_bytes()
    assert _body_of((VECTORS / "wire_ok.bin").read_bytes()) == body
    for mode in (all_at_once, byte_by_byte):
        out = mode(decoder_cls, body)
        assert out.data == (VECTORS / "prelude_body.bin").read_bytes()
        assert out.trailers == []


def test_vector_err_decodes(decoder_cls: type[ChunkDecoder]) -> None:
    out = byte_by_byte(decoder_cls, _body_of((VECTORS / "wire_err.bin").read_bytes()))
    assert out.data == (VECTORS / "prelude_body.bin").read_bytes()
    assert out.trailers == [
        (b"Lambda-Runtime-Function-Error-Type", b"Error"),
        (
            b"Lambda-Runtime-Function-Error-Body",
            b"eyJlcnJvclR5cGUiOiJFcnJvciIsImVycm9yTWVzc2FnZSI6ImJvb20iLCJ0cmFjZSI6W119",
        ),
    ]


def test_vector_ok_encodes(encoder_cls: type[ChunkEncoder]) -> None:
    enc = encoder_cls()
    wire = enc.data(WIRE_PRELUDE) + enc.data(b"\x00" * 8) + enc.data(b"Hello") + enc.end()
    assert wire == (VECTORS / "wire_ok_body.bin").read_bytes()
    assert encoder_cls().data_many([WIRE_PRELUDE, b"\x00" * 8, b"Hello"]) + b"0\r\n\r\n" == wire


def test_vector_err_encodes(encoder_cls: type[ChunkEncoder]) -> None:
    enc = encoder_cls()
    wire = enc.data_many([WIRE_PRELUDE, b"\x00" * 8, b"Hello"]) + enc.end(
        [
            ("Lambda-Runtime-Function-Error-Type", "Error"),
            (
                "Lambda-Runtime-Function-Error-Body",
                "eyJlcnJvclR5cGUiOiJFcnJvciIsImVycm9yTWVzc2FnZSI6ImJvb20iLCJ0cmFjZSI6W119",
            ),
        ]
    )
    assert wire == _body_of((VECTORS / "wire_err.bin").read_bytes())


# --- encoder ---------------------------------------------------------------------------------


def test_encoder_frames_one_chunk_per_write(encoder_cls: type[ChunkEncoder]) -> None:
    enc = encoder_cls()
    assert enc.data(b"a") == b"1\r\na\r\n"
    assert enc.data(bytearray(b"x" * 255)) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    assert enc.data(memoryview(b"hello")) == b"5\r\nhello\r\n"
    assert enc.head(4096) == b"1000\r\n"
    assert enc.head(0) == b""


def test_encoder_empty_write_emits_nothing(encoder_cls: type[ChunkEncoder]) -> None:
    enc = encoder_cls()
    assert enc.data(b"") == b""
    assert enc.data_many([]) == b""
    assert enc.data_many([b"", b"ab", b""]) == b"2\r\nab\r\n"


def test_encoder_end_and_after(encoder_cls: type[ChunkEncoder]) -> None:
    enc = encoder_cls()
    assert enc.end() == b"0\r\n\r\n"
    assert enc.ended
    with pytest.raises(errors.LocalProtocolError):
        enc.data(b"x")
    with pytest.raises(errors.LocalProtocolError):
        enc.data_many([b"x"])
    with pytest.raises(errors.LocalProtocolError):
        enc.end()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bad Name", "v"),
        ("", "v"),
        ("X", "a\r\nInjected: yes"),
        ("X", "a\nb"),
        ("X", "nul\x00"),
        ("X", " leading"),
        ("X", "trailing\t"),
        ("X:", "v"),
    ],
)
def test_encoder_rejects_bad_trailers(
    encoder_cls: type[ChunkEncoder], name: str, value: str
) -> None:
    enc = encoder_cls()
    with pytest.raises(errors.LocalProtocolError):
        enc.end([(name, value)])
    assert not enc.ended  # nothing was emitted: the caller can still end cleanly
    assert enc.end() == b"0\r\n\r\n"


def test_encoder_round_trip(
    encoder_cls: type[ChunkEncoder], decoder_cls: type[ChunkDecoder]
) -> None:
    writes = [b"x" * n for n in (1, 15, 16, 17, 4095, 4096, 70000)]
    enc = encoder_cls()
    wire = b"".join(enc.data(w) for w in writes) + enc.end([("a", "1"), (b"B-2", b"two words")])
    out = byte_by_byte(decoder_cls, wire)
    assert out.data == b"".join(writes)
    assert out.trailers == [(b"a", b"1"), (b"B-2", b"two words")]


def test_batch_framing_matches_python(encoder_cls: type[ChunkEncoder]) -> None:
    # Many small writes take the C batch path in the C twin; large ones the join path.
    cases: list[list[bytes | bytearray | memoryview]] = [
        [b"%d" % i for i in range(200)],
        [b"", b"x" * 3, memoryview(b"abcd"), bytearray(b"zz")] * 10,
        [b"y" * 5000] * 9,
    ]
    for writes in cases:
        expected = b"".join(b"%x\r\n%s\r\n" % (len(w), bytes(w)) for w in writes if len(w))
        assert encoder_cls().data_many(writes) == expected


def test_fast_path_respects_errors_and_eof(decoder_cls: type[ChunkDecoder]) -> None:
    # Inside a large chunk the C twin skips C for whole reads; errors and EOF still stick.
    dec = decoder_cls()
    assert b"".join(dec.feed(b"100\r\n" + b"a" * 10)) == b"a" * 10
    assert b"".join(dec.feed(b"b" * 10)) == b"b" * 10
    with pytest.raises(errors.TruncatedBodyError):
        dec.eof()
    with pytest.raises(errors.TruncatedBodyError):
        dec.feed(b"c")
    dec = decoder_cls()
    dec.feed(b"3\r\nabc")
    with pytest.raises(errors.BadLineEndingError):
        dec.feed(b"XY" + b"d" * 100)
    with pytest.raises(errors.BadLineEndingError):
        dec.feed(b"e")
    dec = decoder_cls()
    dec.feed(b"a\r\n12345")
    assert dec.data_total == 5
    dec.feed(b"678")
    assert dec.data_total == 8
    assert b"".join(dec.feed(b"90\r\n0\r\n\r\n")) == b"90"
    assert dec.data_total == 10
    assert dec.done


def test_empty_feed_inside_chunk_data(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    dec.feed(b"5\r\nhe")
    assert dec.feed(b"") == []  # found by the fuzzer: C returned one empty view


def test_after_end_error_keeps_the_body_done(decoder_cls: type[ChunkDecoder]) -> None:
    dec = decoder_cls()
    dec.feed(b"0\r\n\r\n")
    with pytest.raises(errors.DataAfterEndError):
        dec.feed(b"x")
    assert dec.done
    dec.eof()  # the body did end; the stray bytes were reported once, by feed()
    with pytest.raises(errors.DataAfterEndError):
        dec.feed(b"y")
