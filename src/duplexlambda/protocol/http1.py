"""HTTP/1.1 message heads and body framing, sans-I/O, for both roles.

Heads are parsed by httptools (llhttp), which validates them strictly; bodies are framed by
our own readers so that the chunked hot path runs through the C codec and trailers are kept
(docs/runtime-api.md §10: aiohttp drops trailers, http.server does not decode chunked at all).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httptools

from duplexlambda.errors import HeadTooLargeError, LocalProtocolError, RemoteProtocolError

from ._types import Buffer
from .chunked import ChunkDecoder

#: Largest request or response head we accept (request line/status line and all headers).
MAX_HEAD = 64 * 1024
#: Most header fields in one head.
MAX_HEADERS = 128

HeaderPairs = list[tuple[bytes, bytes]]


class Headers:
    """An ordered multi-map of header fields; lookups ignore case, as HTTP requires.

    Names and values are kept as bytes exactly as received (or as given).
    """

    __slots__ = ("_index", "raw")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self.raw: HeaderPairs = list(raw)
        self._index: dict[bytes, list[bytes]] | None = None

    def _lookup(self) -> dict[bytes, list[bytes]]:
        if self._index is None:
            index: dict[bytes, list[bytes]] = {}
            for name, value in self.raw:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return self._index

    def get(self, name: bytes | str, default: bytes | None = None) -> bytes | None:
        """The first value of ``name``, or ``default``."""
        key = name.encode("latin-1") if isinstance(name, str) else name
        values = self._lookup().get(key.lower())
        return values[0] if values else default

    def get_all(self, name: bytes | str) -> list[bytes]:
        """Every value of ``name``, in order."""
        key = name.encode("latin-1") if isinstance(name, str) else name
        return list(self._lookup().get(key.lower(), ()))

    def get_list(self, name: bytes | str) -> list[bytes]:
        """The comma-separated elements of every ``name`` field (``Trailer``, ``Connection``)."""
        return [
            item.strip()
            for value in self.get_all(name)
            for item in value.split(b",")
            if item.strip()
        ]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            name = name.encode("latin-1")
        return isinstance(name, bytes) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


@dataclass
class RequestHead:
    """A parsed request line and header section."""

    method: bytes
    target: bytes
    headers: Headers
    http_version: str = "1.1"
    keep_alive: bool = True


@dataclass
class ResponseHead:
    """A parsed status line and header section."""

    status: int
    headers: Headers
    http_version: str = "1.1"
    keep_alive: bool = True
    reason: bytes = b""


class _Collector:
    """httptools' callbacks for one head (a slotted class: one is built per head parsed)."""

    __slots__ = ("complete", "headers", "keep_alive", "parser", "status", "too_many", "url")

    def __init__(self) -> None:
        self.headers: HeaderPairs = []
        self.url = b""
        self.status = b""
        self.complete = False
        self.too_many = False
        self.keep_alive = True
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser | None = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_status(self, status: bytes) -> None:
        self.status += status

    def on_header(self, name: bytes, value: bytes) -> None:
        # Raising here would reach us wrapped as an opaque httptools callback error.
        if len(self.headers) >= MAX_HEADERS:
            self.too_many = True
        else:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.complete = True
        # Read here, not after feed_data: once a message without a body is complete, llhttp
        # resets its flags, and should_keep_alive() would say True despite "Connection: close".
        if self.parser is not None:
            self.keep_alive = bool(self.parser.should_keep_alive())


class HeadReader:
    """Accumulates bytes until a full head (up to CRLFCRLF) is in; parses it with httptools.

    ``feed(data)`` returns the parsed head once complete, else None; the bytes after the
    head are in ``rest``. Raises ``HeadTooLargeError`` for a head over ``max_head`` bytes or
    ``MAX_HEADERS`` fields, ``RemoteProtocolError`` for any other malformed head.
    """

    def __init__(self, role: str, max_head: int = MAX_HEAD) -> None:
        if role not in ("request", "response"):
            raise ValueError("role is 'request' (server side) or 'response' (client side)")
        self._role = role
        self._max = max_head
        self._buf = bytearray()
        self.rest: bytes = b""

    def feed(self, data: Buffer) -> RequestHead | ResponseHead | None:
        """Add ``data``; return the head when the blank line that ends it has arrived."""
        start = max(0, len(self._buf) - 3)
        self._buf += data
        end = self._buf.find(b"\r\n\r\n", start)
        # Every LF of the head after a CR (the usual case) is checked in two C scans; the body
        # after the head may hold any LF.
        limit = len(self._buf) if end < 0 else end + 4
        if self._buf.count(b"\n", start, limit) != self._buf.count(b"\r\n", start, limit):
            self._refuse_bare_lf(start)
        if end < 0:
            if len(self._buf) > self._max:
                raise HeadTooLargeError(f"message head larger than {self._max} bytes")
            return None
        end += 4
        if end > self._max:
            raise HeadTooLargeError(f"message head larger than {self._max} bytes")
        head, self.rest = bytes(self._buf[:end]), bytes(self._buf[end:])
        self._buf = bytearray()
        return self._parse(head)

    def _refuse_bare_lf(self, start: int) -> None:
        """A head with an LF not after a CR never ends (we wait for CRLFCRLF): refuse it at
        once rather than at a timeout (RFC 9112 2.2 allows either, llhttp refuses it too)."""
        lf = self._buf.find(b"\n", start)
        head_end = self._buf.find(b"\r\n\r\n", start)
        limit = len(self._buf) if head_end < 0 else head_end + 4  # the body may hold any LF
        while 0 <= lf < limit:
            if lf == 0 or self._buf[lf - 1] != 0x0D:
                raise RemoteProtocolError("malformed HTTP head: bare LF")
            lf = self._buf.find(b"\n", lf + 1)

    def _parse(self, head: bytes) -> RequestHead | ResponseHead:
        sink = _Collector()
        parser: httptools.HttpRequestParser | httptools.HttpResponseParser
        if self._role == "request":
            parser = httptools.HttpRequestParser(sink)
        else:
            parser = httptools.HttpResponseParser(sink)
        sink.parser = parser
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            pass  # the head itself is complete and valid; upgrades are refused by callers
        except httptools.HttpParserError as exc:
            raise RemoteProtocolError(f"malformed HTTP head: {exc}") from None
        if not sink.complete:
            raise RemoteProtocolError("malformed HTTP head")
        if sink.too_many:
            raise HeadTooLargeError(f"more than {MAX_HEADERS} header fields")
        headers = Headers(sink.headers)
        version = parser.get_http_version()
        keep_alive = sink.keep_alive
        if isinstance(parser, httptools.HttpRequestParser):
            return RequestHead(parser.get_method(), sink.url, headers, version, keep_alive)
        return ResponseHead(parser.get_status_code(), headers, version, keep_alive, sink.status)


# --- body framing ----------------------------------------------------------------------------


class BodyReader(ABC):
    """Frames one message body. ``feed`` returns data pieces; ``done`` once the body ended.

    ``unused_data`` holds what followed the body in the feed that ended it (the next
    pipelined message), ``trailers`` the chunked trailer fields.
    """

    trailers: list[tuple[bytes, bytes]]
    unused_data: bytes

    @property
    @abstractmethod
    def done(self) -> bool:
        """True once the whole body has been read."""

    @abstractmethod
    def feed(self, data: Buffer) -> list[memoryview]:
        """Frame ``data``; return the body bytes in it."""

    @abstractmethod
    def eof(self) -> None:
        """The connection closed: raise ``RemoteProtocolError`` if the body was cut short."""


class ChunkedReader(BodyReader):
    """``Transfer-Encoding: chunked`` through the C (or Python) chunk decoder."""

    def __init__(self) -> None:
        self._dec = ChunkDecoder()
        self.trailers = []
        self.unused_data = b""

    @property
    def done(self) -> bool:
        return self._dec.done

    def feed(self, data: Buffer) -> list[memoryview]:
        pieces = self._dec.feed(data)
        if self._dec.done:
            self.trailers = self._dec.trailers
            self.unused_data = self._dec.unused_data
        return pieces

    def eof(self) -> None:
        self._dec.eof()


class LengthReader(BodyReader):
    """``Content-Length: n``."""

    def __init__(self, length: int) -> None:
        self._left = length
        self.trailers = []
        self.unused_data = b""

    @property
    def done(self) -> bool:
        return self._left == 0

    def feed(self, data: Buffer) -> list[memoryview]:
        view = memoryview(data).cast("B")
        if not len(view):
            return []
        take = min(self._left, len(view))
        self._left -= take
        if self._left == 0:
            self.unused_data = bytes(view[take:])
        return [view[:take]] if take else []

    def eof(self) -> None:
        if self._left:
            raise RemoteProtocolError(f"body truncated: {self._left} bytes missing")


class EOFReader(BodyReader):
    """A response body delimited by the connection closing (HTTP/1.0 style)."""

    def __init__(self) -> None:
        self._closed = False
        self.trailers = []
        self.unused_data = b""

    @property
    def done(self) -> bool:
        return self._closed

    def feed(self, data: Buffer) -> list[memoryview]:
        view = memoryview(data).cast("B")
        return [view] if len(view) else []

    def eof(self) -> None:
        self._closed = True


def _framing_fields(headers: Headers) -> tuple[list[bytes], set[bytes]]:
    """The ``Transfer-Encoding`` codings (lowercased) and the ``Content-Length`` values, as
    ``get_list`` splits them, in one pass over the fields (building the headers' lookup index
    for two names cost more than the rest of the framing)."""
    codings: list[bytes] = []
    lengths: set[bytes] = set()
    for name, value in headers.raw:
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            codings += [item.strip().lower() for item in value.split(b",") if item.strip()]
        elif len(name) == 14 and name.lower() == b"content-length":
            lengths.update(item.strip() for item in value.split(b",") if item.strip())
    return codings, lengths


def body_reader(head: RequestHead | ResponseHead, *, request_method: bytes = b"GET") -> BodyReader:
    """Pick the body framing of a message (RFC 9112 6.3).

    Raises:
        RemoteProtocolError: a transfer coding other than chunked, or a bad Content-Length.
    """
    if isinstance(head, ResponseHead) and (
        request_method == b"HEAD" or head.status in (204, 304) or 100 <= head.status < 200
    ):
        return LengthReader(0)
    codings, lengths = _framing_fields(head.headers)
    if codings:
        # llhttp already refused Transfer-Encoding together with Content-Length.
        if codings != [b"chunked"]:
            raise RemoteProtocolError(f"unsupported transfer-coding {codings!r}")
        return ChunkedReader()
    if len(lengths) > 1:
        raise RemoteProtocolError("conflicting Content-Length values")
    if lengths:
        raw = lengths.pop()
        if not raw.isdigit() or len(raw) > 18:
            raise RemoteProtocolError(f"invalid Content-Length {raw!r}")
        return LengthReader(int(raw))
    return LengthReader(0) if isinstance(head, RequestHead) else EOFReader()


# --- writing heads ---------------------------------------------------------------------------

_FORBIDDEN_IN_VALUE = (b"\r", b"\n", b"\x00")


def _field_bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def _render_fields(headers: Iterable[tuple[bytes | str, bytes | str]]) -> list[bytes]:
    lines = []
    for name, value in headers:
        n, v = _field_bytes(name), _field_bytes(value)
        if not n or any(c in n for c in b" \t:\r\n\x00"):
            raise LocalProtocolError(f"invalid header name {n!r}")
        if any(bad in v for bad in _FORBIDDEN_IN_VALUE):
            raise LocalProtocolError(f"header {n!r} has CR, LF or NUL in its value")
        lines.append(n + b": " + v + b"\r\n")
    return lines


HeaderInput = Iterable[tuple[bytes | str, bytes | str]]


def encode_request_head(method: bytes | str, target: bytes | str, headers: HeaderInput) -> bytes:
    """Render a request line and headers (the caller supplies Host and framing headers).

    Raises:
        LocalProtocolError: a header name or value that would break the framing.
    """
    t = _field_bytes(target)
    if any(c in t for c in b" \r\n\x00"):
        raise LocalProtocolError(f"invalid request target {t!r}")
    line = _field_bytes(method) + b" " + t + b" HTTP/1.1\r\n"
    return b"".join([line, *_render_fields(headers), b"\r\n"])


REASONS = {
    200: b"OK",
    202: b"Accepted",
    204: b"No Content",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    504: b"Gateway Timeout",
}


def encode_response_head(status: int, headers: HeaderInput, reason: bytes | None = None) -> bytes:
    """Render a status line and headers.

    Raises:
        LocalProtocolError: an invalid status or a header that would break the framing.
    """
    if not 100 <= status <= 999:
        raise LocalProtocolError(f"invalid status code {status}")
    phrase = reason if reason is not None else REASONS.get(status, b"")
    line = b"HTTP/1.1 %d %s\r\n" % (status, phrase)
    return b"".join([line, *_render_fields(headers), b"\r\n"])
