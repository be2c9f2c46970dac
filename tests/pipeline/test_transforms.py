"""Each built-in transform on inputs cut at every byte position (and byte by byte), plus
Hypothesis chunkings: the output never depends on where the chunks were cut."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import zlib
from collections.abc import AsyncIterator

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duplexlambda import errors
from duplexlambda import pipeline as pipeline_module
from duplexlambda.pipeline import (
    RecordTooLongError,
    StreamDecodeError,
    base64_decode,
    base64_encode,
    chain,
    csv_records,
    gzip_compress,
    gzip_decompress,
    ndjson,
    ndjson_encode,
    pipeline,
    split_lines,
    tap,
)

from .drive import drive, pieces, run, splits

TEXT = "héllo, wörld — ünïcode ✓ 🎉\nline two\r\nthree\n\nlast".encode()

# --- gzip ---------------------------------------------------------------------------------


def test_gzip_compress_output_is_gzip_at_every_split() -> None:
    for chunks in splits(TEXT):
        out = run(chunks, gzip_compress())
        assert gzip.decompress(b"".join(out)) == TEXT


def test_gzip_compress_flushes_every_item() -> None:
    # Z_SYNC_FLUSH: after each item, what went out decodes to everything put in so far.
    items = [b"<html><head>", b"", b"shell", b"slow section" * 50, b"</html>"]
    out = run(items, gzip_compress())
    assert len(out) == 5  # one per non-empty item, and the end
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    seen = b""
    non_empty = [item for item in items if item]
    for produced, expected in zip(out, non_empty, strict=False):
        seen += inflater.decompress(produced)
        assert seen.endswith(expected)
    assert seen == b"".join(items)
    inflater.decompress(out[-1])
    assert inflater.eof  # the last piece ends the member


def test_gzip_compress_takes_text() -> None:
    assert gzip.decompress(b"".join(run(["ab", "ç"], gzip_compress()))) == "abç".encode()


@pytest.mark.parametrize(
    "compressed",
    [
        pytest.param(gzip.compress(TEXT), id="gzip"),
        pytest.param(zlib.compress(TEXT), id="zlib"),
        pytest.param(gzip.compress(TEXT[:20]) + gzip.compress(TEXT[20:]), id="two-members"),
    ],
)
def test_gzip_decompress_at_every_split(compressed: bytes) -> None:
    for chunks in splits(compressed):
        assert b"".join(run(chunks, gzip_decompress())) == TEXT


def test_gzip_decompress_bounds_each_output() -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    out = run([bomb], gzip_decompress(max_chunk=65536))
    assert max(len(o) for o in out) <= 65536
    assert sum(len(o) for o in out) == 5_000_000
    for chunks in splits(gzip.compress(TEXT)):
        small = run(chunks, gzip_decompress(max_chunk=7))
        assert max(len(o) for o in small) <= 7
        assert b"".join(small) == TEXT


def test_gzip_decompress_truncated_at_every_position() -> None:
    compressed = gzip.compress(TEXT)
    for cut in range(1, len(compressed)):
        with pytest.raises(StreamDecodeError, match="truncated gzip data"):
            run([compressed[:cut]], gzip_decompress())


def test_gzip_decompress_rejects_garbage_and_bad_checksums() -> None:
    with pytest.raises(StreamDecodeError, match="invalid gzip"):
        run([b"this is not gzip"], gzip_decompress())
    bad = bytearray(gzip.compress(TEXT))
    bad[-6] ^= 0xFF  # the CRC-32
    with pytest.raises(StreamDecodeError):
        run([bytes(bad)], gzip_decompress())


def test_gzip_decompress_of_nothing_is_nothing() -> None:
    assert run([], gzip_decompress()) == []
    assert run([b""], gzip_decompress()) == []


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=12), st.integers(0, 9))
def test_gzip_round_trip_any_chunking(data: bytes, cuts: list[int], level: int) -> None:
    compressed = b"".join(run(pieces(data, cuts), gzip_compress(level)))
    assert b"".join(run(pieces(compressed, cuts), gzip_decompress(max_chunk=100))) == data


# --- base64 -------------------------------------------------------------------------------


@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_encode_at_every_split(urlsafe: bool) -> None:
    data = bytes(range(256)) + b"\xfb\xff"  # '+' and '/' in the standard alphabet
    expected = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    for chunks in splits(data):
        assert b"".join(run(chunks, base64_encode(urlsafe=urlsafe))) == expected


@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_decode_at_every_split(urlsafe: bool) -> None:
    data = bytes(range(200)) + b"\xfb\xff!"
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.encodebytes(data)
    assert b"\n" in encoded or urlsafe  # MIME line breaks are skipped
    for chunks in splits(encoded):
        assert b"".join(run(chunks, base64_decode(urlsafe=urlsafe))) == data


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (b"QUJD*EVG", "invalid base64"),
        (b"QUI=QUJD", "invalid base64"),  # padding before the end
        (b"QUJDRA", "truncated base64"),
    ],
)
def test_base64_decode_rejects(bad: bytes, match: str) -> None:
    with pytest.raises(StreamDecodeError, match=match):
        run([bad], base64_decode())


def test_gzip_inside_base64_nests_at_every_split() -> None:
    # The streams nest: gzip inside base64, and back, however the bytes were cut.
    encoded = b"".join(run([TEXT[:10], TEXT[10:]], gzip_compress(), base64_encode()))
    assert gzip.decompress(base64.b64decode(encoded)) == TEXT
    for chunks in splits(encoded):
        assert b"".join(run(chunks, chain(base64_decode(), gzip_decompress()))) == TEXT


# --- lines and NDJSON -----------------------------------------------------------------------


def test_split_lines_at_every_split() -> None:
    expected = TEXT.replace(b"\r\n", b"\n").split(b"\n")
    assert expected[-2:] == [b"", b"last"]  # an empty line, and a last one without "\n"
    for chunks in splits(TEXT):
        assert run(chunks, split_lines()) == expected
        assert b"".join(run(chunks, split_lines(keepends=True))) == TEXT


def test_split_lines_of_crlf_split_between_cr_and_lf() -> None:
    assert run([b"a\r", b"\nb\r", b"\n"], split_lines()) == [b"a", b"b"]
    assert run([b"no newline\r"], split_lines()) == [b"no newline"]


def test_split_lines_limits_a_line() -> None:
    with pytest.raises(RecordTooLongError):
        run([b"x" * 10, b"y" * 10], split_lines(max_line=15))
    assert run([b"x" * 10 + b"\n", b"y" * 10], split_lines(max_line=15)) == [b"x" * 10, b"y" * 10]


RECORDS = [
    {"msg": "multi\nline\r\nmessage", "n": 1},
    {"msg": "ünïcode ✓", "nested": {"a": [1, 2, None]}},
    [],
    "a string",
    3.5,
]


def test_ndjson_at_every_split() -> None:
    data = b"".join(run(RECORDS, ndjson_encode()))
    assert data.count(b"\n") == len(RECORDS)  # newlines inside strings are escaped
    data = data.replace(b"\n", b"\r\n", 1) + b"\n  \n"  # CRLF and blank lines are fine
    for chunks in splits(data):
        assert run(chunks, ndjson()) == RECORDS


def test_ndjson_bad_line_has_its_number() -> None:
    with pytest.raises(StreamDecodeError, match="line 2 is not JSON"):
        run([b'{"a": 1}\n{oops}\n{"b": 2}\n'], ndjson())
    assert run([b'{"a": 1}\n{oops}\n{"b": 2}'], ndjson(skip_invalid=True)) == [{"a": 1}, {"b": 2}]


# --- CSV ----------------------------------------------------------------------------------


CSV_TEXT = (
    "\ufeffname,note,amount\r\n"
    'plain,"with, comma",1\r\n'
    '"multi\nline\r\nfield","say ""hi""",2\n'
    "\n"
    'a"b,literal quote in an unquoted field,3\n'
    '"",empty quoted,4\n'
    'ünï,"✓ 🎉",5\n'
    '"ends quoted","x"'
)


def reference_rows(text: str) -> list[list[str]]:
    """What the csv module reads from the whole text (blank lines dropped)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    return [row for row in reader if row]


def test_csv_records_at_every_split() -> None:
    data = CSV_TEXT.encode()
    expected = reference_rows(CSV_TEXT)
    assert expected[2] == ["multi\nline\r\nfield", 'say "hi"', "2"]
    assert expected[3] == ['a"b', "literal quote in an unquoted field", "3"]
    assert expected[-1] == ["ends quoted", "x"]
    for chunks in splits(data):
        assert run(chunks, csv_records()) == expected


def test_csv_records_other_delimiters() -> None:
    text = 'a;"b;c"\n"d\n";e\n'
    for chunks in splits(text.encode()):
        assert run(chunks, csv_records(delimiter=";")) == [["a", "b;c"], ["d\n", "e"]]
    assert run([b"x\ty\n"], csv_records(delimiter="\t")) == [["x", "y"]]


def test_csv_records_yield_as_soon_as_a_record_ends() -> None:
    seen: list[tuple[str, object]] = []

    async def source() -> AsyncIterator[bytes]:
        for chunk in [b"a,b\n", b"c,", b"d\n"]:
            seen.append(("in", chunk))
            yield chunk

    async def sink(rows: AsyncIterator[list[str]]) -> None:
        async for row in rows:
            seen.append(("out", row))

    drive(pipeline(source(), csv_records(), sink=sink))
    assert seen == [
        ("in", b"a,b\n"),
        ("out", ["a", "b"]),
        ("in", b"c,"),
        ("in", b"d\n"),
        ("out", ["c", "d"]),
    ]


def test_csv_records_errors() -> None:
    with pytest.raises(StreamDecodeError, match="inside a quoted field"):
        run([b'a,"never closed\n'], csv_records())
    with pytest.raises(RecordTooLongError):
        run([b'a,"open' + b"x" * 100], csv_records(max_record=50))
    with pytest.raises(StreamDecodeError, match="not utf-8"):
        run([b"\xff\xfe,\n"], csv_records())
    with pytest.raises(ValueError, match="ASCII-compatible"):
        csv_records(encoding="utf-16")


FIELD = st.text(alphabet=st.sampled_from(list('ab ,"\n\r;é✓')), max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(FIELD, min_size=1, max_size=4), max_size=8),
    st.lists(st.integers(0, 400), max_size=10),
    st.sampled_from(["\r\n", "\n"]),
)
def test_csv_records_match_the_csv_module(
    rows: list[list[str]], cuts: list[int], terminator: str
) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    text = buffer.getvalue()
    expected = reference_rows(text)
    assert run(pieces(text.encode(), cuts), csv_records()) == expected


# --- helpers ------------------------------------------------------------------------------


def test_tap_sees_every_item_and_passes_it_on() -> None:
    seen: list[bytes] = []
    assert run([b"a", b"b"], tap(seen.append)) == [b"a", b"b"]
    assert seen == [b"a", b"b"]


def test_ndjson_encode_escapes_newlines() -> None:
    out = run([{"t": "a\nb"}], ndjson_encode())
    assert out == [b'{"t":"a\\nb"}\n']
    assert msgspec.json.decode(out[0]) == {"t": "a\nb"}


def test_record_too_long_keeps_its_former_name() -> None:
    # Documented as LineTooLongError before; the chunked codec's error of that name differs.
    assert pipeline_module.LineTooLongError is RecordTooLongError
    assert not issubclass(RecordTooLongError, errors.ChunkedEncodingError)
