"""HTTP/1.1 heads (httptools) and body framing (our readers)."""

from __future__ import annotations

import pytest

from duplexlambda.errors import (
    ChunkedEncodingError,
    HeadTooLargeError,
    LocalProtocolError,
    RemoteProtocolError,
)
from duplexlambda.protocol import http1
from duplexlambda.protocol.http1 import HeadReader, RequestHead, ResponseHead


def parse(role: str, data: bytes) -> RequestHead | ResponseHead | None:
    reader = HeadReader(role)
    result = None
    for i in range(len(data)):  # byte by byte: the CRLFCRLF search must span feeds
        result = reader.feed(data[i : i + 1]) or result
    one = HeadReader(role).feed(data)
    assert (one is None) == (result is None)
    return result


def test_request_head() -> None:
    head = parse(
        "request",
        b"POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\n"
        b"Host: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
        b"Trailer: A\r\nTrailer: B, C\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    assert isinstance(head, RequestHead)
    assert head.method == b"POST"
    assert head.target == b"/2018-06-01/runtime/invocation/abc/response"
    assert head.headers.get("lambda-runtime-function-response-mode") == b"streaming"
    assert head.headers.get(b"LAMBDA-RUNTIME-FUNCTION-RESPONSE-MODE") == b"streaming"
    assert head.headers.get_list("trailer") == [b"A", b"B", b"C"]
    assert "transfer-encoding" in head.headers
    assert isinstance(http1.body_reader(head), http1.ChunkedReader)


def test_response_head_and_rest() -> None:
    reader = HeadReader("response")
    head = reader.feed(b'HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n')
    assert isinstance(head, ResponseHead)
    assert (head.status, head.reason, head.keep_alive) == (202, b"Accepted", True)
    body = http1.body_reader(head)
    assert b"".join(body.feed(reader.rest + b"NEXT")) == b'{"status":"OK"}\n'
    assert body.done
    assert body.unused_data == b"NEXT"


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
    ],
)
def test_bad_request_heads(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        HeadReader("request").feed(data)
    # Malformed, not over a limit: a server answers 400, not 431.
    assert not isinstance(caught.value, HeadTooLargeError)


def test_head_size_limit() -> None:
    reader = HeadReader("request", max_head=100)
    with pytest.raises(HeadTooLargeError, match="larger than"):
        reader.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 200)
    with pytest.raises(HeadTooLargeError, match="larger than"):
        HeadReader("request", max_head=100).feed(
            b"GET / HTTP/1.1\r\nX: " + b"a" * 200 + b"\r\n\r\n"
        )


def test_header_count_limit() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(http1.MAX_HEADERS + 1))
    with pytest.raises(HeadTooLargeError, match="header fields"):
        HeadReader("request").feed(b"GET / HTTP/1.1\r\n" + fields + b"\r\n")


def test_framing_choice() -> None:
    def head(raw: bytes) -> RequestHead | ResponseHead:
        role = "response" if raw.startswith(b"HTTP/") else "request"
        parsed = HeadReader(role).feed(raw + b"\r\n")
        assert parsed is not None
        return parsed

    assert isinstance(http1.body_reader(head(b"GET / HTTP/1.1\r\n")), http1.LengthReader)
    assert isinstance(http1.body_reader(head(b"HTTP/1.1 200 OK\r\n")), http1.EOFReader)
    assert http1.body_reader(head(b"HTTP/1.1 204 No Content\r\n")).done
    with pytest.raises(RemoteProtocolError, match="transfer-coding"):
        http1.body_reader(head(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n"))
    with pytest.raises(RemoteProtocolError, match="Content-Length"):
        http1.body_reader(head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n"))


def test_length_reader_truncation() -> None:
    reader = http1.LengthReader(5)
    assert b"".join(reader.feed(b"abc")) == b"abc"
    with pytest.raises(RemoteProtocolError, match="2 bytes missing"):
        reader.eof()


def test_chunked_reader_keeps_trailers() -> None:
    reader = http1.ChunkedReader()
    reader.feed(b"1\r\na\r\n0\r\nX-T: v\r\n\r\nrest")
    assert reader.done
    assert (reader.trailers, reader.unused_data) == ([(b"X-T", b"v")], b"rest")
    with pytest.raises(ChunkedEncodingError):
        http1.ChunkedReader().feed(b"zz")


def test_encode_heads() -> None:
    assert (
        http1.encode_request_head("GET", "/next", [("Host", "h"), (b"X", b"1")])
        == b"GET /next HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n"
    )
    assert http1.encode_response_head(202, []) == b"HTTP/1.1 202 Accepted\r\n\r\n"
    assert http1.encode_response_head(299, []) == b"HTTP/1.1 299 \r\n\r\n"
    for bad in ([("X", "a\r\nB: c")], [("Bad Name", "v")], [("", "v")], [("X", "\x00")]):
        with pytest.raises(LocalProtocolError):
            http1.encode_response_head(200, bad)
    with pytest.raises(LocalProtocolError):
        http1.encode_request_head("GET", "/a b", [])
