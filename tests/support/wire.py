"""Raw HTTP/1.1 over sockets, in both roles: a caller of the function URL / Invoke API, and
a runtime playing against the Runtime API. We write the bytes, we read the bytes.

Responses are parsed with the project's own sans-I/O heads and body readers, so a test sees
exactly what went over the wire: chunk by chunk, with arrival times, trailers, truncation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import msgspec

from duplexlambda.emulator import Emulator, EmulatorConfig
from duplexlambda.errors import RemoteProtocolError
from duplexlambda.protocol.chunked import ChunkEncoder
from duplexlambda.protocol.http1 import (
    BodyReader,
    Headers,
    HeadReader,
    ResponseHead,
    body_reader,
)

TIMEOUT = 10.0
API = "/2018-06-01/runtime"
STREAM_ACCEPT = "application/vnd.duplexlambda.http-request-stream"
INTEGRATION = "application/vnd.awslambda.http-integration-response"
NUL8 = b"\x00" * 8


@contextlib.asynccontextmanager
async def running(**settings: object) -> AsyncIterator[Emulator]:
    """An emulator on free ports (timeout 10 s unless given), closed on exit; no runtime."""
    settings.setdefault("timeout", 10.0)
    config = EmulatorConfig(port=0, runtime_api_port=0, **settings)  # type: ignore[arg-type]
    async with Emulator(config) as emu:
        yield emu


INVOKE = "/2015-03-31/functions/function/invocations"
INVOKE_STREAM = "/2021-11-15/functions/function/response-streaming-invocations"


def text_header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (any case) as text, or None."""
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


@dataclass
class Reply:
    """A whole response as read off the wire."""

    status: int
    headers: Headers
    #: (monotonic arrival time, bytes) as the body decoder gave them: one item per HTTP
    #: chunk (a chunk split across socket reads comes as its parts)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    trailers: Headers = field(default_factory=Headers)
    #: the body ended as its framing says (False: cut short, e.g. no terminating chunk)
    complete: bool = True
    started: float = 0.0  #: monotonic time the connection was open and the request went out

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    @property
    def truncated(self) -> bool:
        return not self.complete

    def json(self) -> object:
        return msgspec.json.decode(self.body)

    def header(self, name: str) -> str | None:
        return text_header(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        return [value.decode("latin-1") for value in self.headers.get_all(name)]


class Conn:
    """One client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._buf = b""
        self._eof = False
        self.trailers = Headers()

    @classmethod
    async def open(cls, address: str) -> Conn:
        """``address`` is ``host:port`` or a URL like ``http://host:port/``."""
        hostport = address.removeprefix("http://").split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), TIMEOUT)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    async def _recv(self, within: float) -> bytes:
        if self._buf:
            data, self._buf = self._buf, b""
            return data
        if self._eof:
            return b""
        try:
            data = await asyncio.wait_for(self.reader.read(256 * 1024), within)
        except TimeoutError:
            raise  # (an OSError subclass: it must not read as EOF)
        except OSError:  # reset by the peer
            data = b""
        if not data:
            self._eof = True
        return data

    async def read_head(self, within: float = TIMEOUT) -> ResponseHead:
        heads = HeadReader("response")
        while True:
            data = await self._recv(within)
            if not data:
                raise EOFError("connection closed before a response head")
            head = heads.feed(data)
            if head is not None:
                assert isinstance(head, ResponseHead)
                self._buf = heads.rest
                return head

    async def body_pieces(
        self, head: ResponseHead, within: float = TIMEOUT, *, method: bytes = b"GET"
    ) -> AsyncIterator[bytes]:
        """Body bytes as they arrive; raises ``RemoteProtocolError`` on truncation."""
        reader: BodyReader = body_reader(head, request_method=method)
        while not reader.done:
            data = await self._recv(within)
            if not data:
                reader.eof()
                if reader.done:  # an EOF-delimited body
                    return
            for piece in reader.feed(data):
                yield bytes(piece)
        self._buf = reader.unused_data
        self.trailers = Headers(reader.trailers)

    async def read_reply(
        self, within: float = TIMEOUT, *, method: bytes = b"GET", started: float = 0.0
    ) -> Reply:
        head = await self.read_head(within)
        reply = Reply(head.status, head.headers, started=started)
        self.trailers = Headers()
        try:
            async for piece in self.body_pieces(head, within, method=method):
                reply.chunks.append((time.monotonic(), piece))
        except RemoteProtocolError:
            reply.complete = False
        reply.trailers = self.trailers
        return reply

    async def at_eof(self, within: float = TIMEOUT) -> bool:
        """True once the peer has closed the connection (reads until then)."""
        while await self._recv(within):
            pass
        return True


Body = bytes | AsyncIterable[bytes] | None


def request_bytes(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]] = (),
    body: Body = None,
    *,
    host: str = "test",
) -> bytes:
    """A request head, and ``body`` after it when it is bytes (an iterable goes chunked)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}")
    elif body is not None:
        lines.append("Transfer-Encoding: chunked")
    data = body if isinstance(body, bytes) else b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


async def call(
    address: str,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]] = (),
    body: Body = None,
    within: float = TIMEOUT,
    *,
    host: str = "test",
) -> Reply:
    """One request on a fresh connection, and the whole reply.

    An async-iterable body is sent chunked, piece by piece, while the reply is read (a
    duplex function answers before the upload ends).
    """
    conn = await Conn.open(address)
    try:
        started = time.monotonic()
        await conn.send(request_bytes(method, target, headers, body, host=host))
        sending = asyncio.ensure_future(_send_chunked(conn, body))
        try:
            return await conn.read_reply(within, method=method.encode(), started=started)
        finally:
            if not sending.done():
                sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    finally:
        await conn.close()


async def _send_chunked(conn: Conn, body: Body) -> None:
    if body is None or isinstance(body, bytes):
        return
    encoder = ChunkEncoder()
    async for piece in body:
        if piece:
            await conn.send(encoder.data(piece))
    await conn.send(encoder.end())


async def request(
    url: str,
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    body: Body = None,
) -> Reply:
    """``call`` as an HTTP client calls a URL (``Host`` is the URL's host and port)."""
    return await call(url, method, path, headers, body, host=urlsplit(url).netloc)


def chunked(*pieces: bytes, trailers: list[tuple[str, str]] | None = None) -> bytes:
    enc = ChunkEncoder()
    return enc.data_many(pieces) + enc.end(trailers)


# --- playing the runtime ------------------------------------------------------------------------


@dataclass
class Next:
    """A ``/next`` answer held by the fake runtime."""

    conn: Conn
    head: ResponseHead
    request_id: str
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return text_header(self.head.headers, name)


async def next_invocation(
    api: str, *, stream: bool = False, within: float = TIMEOUT, read_body: bool = True
) -> Next:
    """``GET /next`` on a fresh connection; the body is read whole unless ``read_body`` is
    false (then ``conn`` is positioned at the start of the body)."""
    conn = await Conn.open(api)
    headers = [("Accept", STREAM_ACCEPT)] if stream else []
    await conn.send(request_bytes("GET", f"{API}/invocation/next", headers))
    head = await conn.read_head(within)
    assert head.status == 200, head
    rid = head.headers.get("Lambda-Runtime-Aws-Request-Id")
    assert rid
    nxt = Next(conn, head, rid.decode())
    if read_body:
        nxt.body = b"".join([p async for p in conn.body_pieces(head, within)])
        await conn.close()
    return nxt


async def post_response(
    api: str,
    request_id: str,
    body: bytes,
    content_type: str = "application/json",
    extra: Iterable[tuple[str, str]] = (),
) -> Reply:
    """A buffered ``/response``."""
    headers = [("Content-Type", content_type), *extra]
    return await call(api, "POST", f"{API}/invocation/{request_id}/response", headers, body)


def streaming_head(request_id: str, content_type: str = INTEGRATION) -> bytes:
    return request_bytes(
        "POST",
        f"{API}/invocation/{request_id}/response",
        [
            ("Lambda-Runtime-Function-Response-Mode", "streaming"),
            ("Content-Type", content_type),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "Lambda-Runtime-Function-Error-Type"),
            ("Trailer", "Lambda-Runtime-Function-Error-Body"),
        ],
    )


async def open_stream(api: str, request_id: str, content_type: str = INTEGRATION) -> Conn:
    """Start a streaming ``/response``: head sent, body to follow with ``send``."""
    conn = await Conn.open(api)
    await conn.send(streaming_head(request_id, content_type))
    return conn


def chunk(data: bytes, upper: bool = False) -> bytes:
    size = (b"%X" if upper else b"%x") % len(data)
    return size + b"\r\n" + data + b"\r\n"


def prelude(status: int = 200, headers: dict[str, object] | None = None, **more: object) -> bytes:
    meta: dict[str, object] = {"statusCode": status, "headers": headers or {}, "cookies": []}
    meta.update(more)
    return msgspec.json.encode(meta)
