"""An asyncio HTTP/1.1 server (``asyncio.Protocol``), shared by both emulator listeners.

Heads are parsed by ``protocol.http1.HeadReader`` and bodies framed by its readers (our chunk
decoder, trailers kept); this module only moves bytes. What it guarantees:

- keep-alive, and pipelining-safe: the next request head is parsed only once the current
  response has ended, and bytes that arrive early are held (bounded: reading pauses);
- the request body is handed over piece by piece as it arrives; reading pauses above a high
  watermark until the consumer drains, so memory stays flat for any upload size;
- one ``write()`` is one chunk on the wire (chunks are never merged) and waits while the
  transport's buffer is above its high watermark; what a task writes to a connection in one
  step of the event loop goes out in one ``writev`` at the end of that step (a "cork"), so a
  head and its body, or several relayed chunks, cost one system call, not one each;
- ``TCP_NODELAY`` on every accepted socket: without it two small writes cost a 40 ms
  delayed-ACK stall;
- head limits answered with 431 / 414 / 400 and a log line, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any, cast

from duplexlambda.errors import (
    BrokenResourceError,
    ChunkedEncodingError,
    HeadTooLargeError,
    LocalProtocolError,
    PayloadTooLargeError,
    RemoteProtocolError,
    SingleReader,
)
from duplexlambda.protocol._types import Buffer
from duplexlambda.protocol.chunked import ChunkEncoder, PyChunkEncoder, Trailers
from duplexlambda.protocol.http1 import (
    BodyReader,
    HeaderInput,
    Headers,
    HeadReader,
    RequestHead,
    body_reader,
    encode_response_head,
)

log = logging.getLogger("duplexlambda.emulator")

#: Longest request target we accept (414 beyond); the whole head is capped at MAX_HEAD (431).
MAX_URL = 16 * 1024
#: Request body bytes held for a consumer before reading from the socket pauses.
BODY_HIGH_WATER = 512 * 1024
BODY_LOW_WATER = 128 * 1024
#: Transport write buffer watermarks: ``Response.write`` waits above the high one.
WRITE_HIGH_WATER = 256 * 1024
WRITE_LOW_WATER = 64 * 1024
#: Corked output (see ``HttpServerProtocol.write``) handed to the transport at once past this
#: many bytes, so that a writer that never yields cannot pile up more than this in Python.
CORK_LIMIT = 256 * 1024
#: A body write at least this large is framed without a copy (size line, data, CRLF).
VIEW_MIN = 8 * 1024
#: Pipelined bytes held while a response is still being sent, before reading pauses.
PIPELINE_HOLD = 64 * 1024
#: An unread request body is drained this far (bytes, seconds) before the connection closes.
LINGER_BYTES = 64 * 1024 * 1024
LINGER_SECONDS = 5.0
#: A request head must be complete this many seconds after its first byte (408 and a
#: closed connection otherwise): a client trickling a head byte by byte (slowloris) cannot
#: hold a connection forever. Idle keep-alive connections are not timed: no head has begun.
HEAD_TIMEOUT = 10.0

App = Callable[["Request", "Response"], Awaitable[None]]


async def read_whole(read: Callable[[], Awaitable[bytes]], limit: int) -> bytes:
    """Every piece ``read()`` gives until ``b""``, at most ``limit`` bytes in all.

    Raises:
        PayloadTooLargeError: the body is longer (``size``: bytes seen, at least limit+1).
    """
    parts: list[bytes] = []
    size = 0
    while piece := await read():
        size += len(piece)
        if size > limit:
            raise PayloadTooLargeError(f"body over {limit} bytes", size)
        parts.append(piece)
    if len(parts) == 1:
        return parts[0]  # the usual small body: no copy
    return b"".join(parts)


class Body:
    """A request body, delivered piece by piece as the bytes arrive.

    ``read()`` returns the next piece, ``b""`` once the body has ended; it raises
    ``BrokenResourceError`` if the client hung up (or sent a malformed body) before the end,
    after every piece received before that was returned. One reader at a time
    (``BusyResourceError`` otherwise). ``trailers`` holds the chunked trailer fields at the end.
    """

    def __init__(self, conn: HttpServerProtocol, expect_continue: bool) -> None:
        self._conn = conn
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._reader = SingleReader("body")
        self._expect_continue = expect_continue
        self.done = False  #: the whole body (and trailers) has arrived
        self.error: Exception | None = None  #: why the body was cut short
        self.received = 0  #: body bytes received so far
        self.last_piece = b""  #: what the latest ``read()`` returned
        self.trailers = Headers()
        #: the inspector's ``Entry`` (``emulator.inspection``): told of each piece, or None
        self.tap: Any = None

    def watch(self, tap: Any) -> None:
        """Tell ``tap.mark(piece, "in")`` of each piece: those already held, then each new one."""
        self.tap = tap
        for piece in self._pieces:
            tap.mark(piece, "in")

    # producer side (the protocol)

    def _feed(self, pieces: list[memoryview]) -> None:
        for piece in pieces:
            size = piece.nbytes
            source = piece.obj
            # A piece that is a whole read (a Content-Length upload, a chunk larger than the
            # read) is that read's bytes object: no copy. Any other piece is copied, so that
            # what is held is what is counted (a view would keep its whole read alive).
            data = source if type(source) is bytes and len(source) == size else bytes(piece)
            self._pieces.append(data)
            self._buffered += size
            self.received += size
            if self.tap is not None:
                self.tap.mark(data, "in")
        if self._buffered > BODY_HIGH_WATER:
            self._conn.pause_reading_for("body")
        self._wake()

    def _finish(self, trailers: list[tuple[bytes, bytes]]) -> None:
        self.done = True
        self.trailers = Headers(trailers)
        self._conn.resume_reading_for("body")
        self._wake()

    def _fail(self, exc: Exception) -> None:
        if not self.done and self.error is None:
            self.error = exc
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # consumer side

    @property
    def ended(self) -> bool:
        """True once ``read()`` has nothing more to give (end of body or an error)."""
        return not self._pieces and (self.done or self.error is not None)

    async def read(self) -> bytes:
        """The next piece of the body; ``b""`` at its end.

        Raises:
            BrokenResourceError: the client disconnected or sent a malformed body.
            BusyResourceError: another task is already waiting in ``read()``.
        """
        with self._reader:
            if self._expect_continue:
                self._expect_continue = False
                self._conn.send_continue()
            while not self._pieces:
                if self.error is not None:
                    raise BrokenResourceError(str(self.error)) from self.error
                if self.done:
                    return b""
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            piece = self._pieces.popleft()
            self.last_piece = piece
            self._buffered -= len(piece)
            if self._buffered <= BODY_LOW_WATER:
                self._conn.resume_reading_for("body")
            return piece

    def read_nowait(self) -> bytes | None:
        """``read()`` if it would not wait (a piece, or ``b""`` at the end), else None.

        For the reader that just had a piece from ``read()``: it takes what arrived with
        that piece without a coroutine and a wake-up each (the relay's hot path).

        Raises:
            BrokenResourceError: as ``read()``.
            BusyResourceError: another task is waiting in ``read()``.
        """
        if self._reader.busy:
            with self._reader:  # raises BusyResourceError, as read() would
                pass
        if not self._pieces:
            if self.error is not None:
                raise BrokenResourceError(str(self.error)) from self.error
            return b"" if self.done else None
        piece = self._pieces.popleft()
        self.last_piece = piece
        self._buffered -= len(piece)
        if self._buffered <= BODY_LOW_WATER:
            self._conn.resume_reading_for("body")
        return piece

    async def read_all(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes.

        Raises:
            PayloadTooLargeError: the body is longer (``size``: bytes seen, at least limit+1).
            BrokenResourceError: as ``read()``.
        """
        return await read_whole(self.read, limit)

    @property
    def reading(self) -> bool:
        """True while a task waits in ``read()``."""
        return self._reader.busy

    async def discard(self, limit: int) -> bool:
        """Read and drop up to ``limit`` bytes; True if the body ended cleanly within them."""
        seen = 0
        try:
            while piece := await self.read():
                seen += len(piece)
                if seen > limit:
                    return False
        except BrokenResourceError:
            return False
        return True


class Request:
    """One request: its head, its streamed body, and a flag set when the client is gone."""

    def __init__(self, head: RequestHead, conn: HttpServerProtocol) -> None:
        self.method = head.method.decode("latin-1")
        self.target = head.target.decode("latin-1")
        path, _, query = self.target.partition("?")
        self.path = path  #: the raw (still percent-encoded) path
        self.query = query  #: the raw query string, "" when absent
        self.headers = head.headers
        self.http_version = head.http_version
        self.keep_alive = head.keep_alive
        self.peer: tuple[str, int] = conn.peer
        expect = (head.headers.get(b"expect") or b"").lower() == b"100-continue"
        self.body = Body(conn, expect_continue=expect)
        #: set when the connection is lost (client hang-up, or the server closing it)
        self.disconnected = asyncio.Event()
        self.received_at = time.monotonic()
        self._on_disconnect: list[Callable[[], None]] = []
        self._fields: dict[str, str] | None = None  # header(), built on first use

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the connection is lost (at once if it already is).

        A callback, not a task waiting on ``disconnected``: watching a request must not
        cost a task and its wake-ups on every invocation.
        """
        if self.disconnected.is_set():
            callback()
        else:
            self._on_disconnect.append(callback)

    def remove_disconnect(self, callback: Callable[[], None]) -> None:
        """Forget a callback given to ``on_disconnect`` (no error if it is not there)."""
        if callback in self._on_disconnect:
            self._on_disconnect.remove(callback)

    def _disconnect(self) -> None:
        self.disconnected.set()
        callbacks, self._on_disconnect = self._on_disconnect, []
        for callback in callbacks:
            callback()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case) as text, or None."""
        fields = self._fields
        if fields is None:
            fields = self._fields = self._index()
        return fields.get(name.lower())

    def _index(self) -> dict[str, str]:
        # One pass over the fields as text, first value of each name: the emulator asks
        # a request for several headers, each otherwise an encode, a lower and a lookup.
        # (Names are tokens, ASCII only: str.lower() folds them as bytes.lower() would.)
        fields: dict[str, str] = {}
        for name, value in self.headers.raw:
            key = name.decode("latin-1").lower()
            if key not in fields:
                fields[key] = value.decode("latin-1")
        return fields


class Response:
    """Writes one response: a head, then body bytes (one chunk per write), then the end.

    Writes to a client that has gone raise ``BrokenResourceError``. ``abort()`` closes the
    connection at once, so a chunked body in progress ends without its last-chunk: the
    client sees a truncated response.
    """

    def __init__(self, conn: HttpServerProtocol, request: Request) -> None:
        self._conn = conn
        self._chunked = False
        self._encoder: PyChunkEncoder | None = None
        self._head_only = request.method == "HEAD"
        self._no_body = False  # a status that carries none (set by start)
        self._request_body = request.body
        # HTTP/1.0 has no chunked coding: such a body ends with the connection.
        self._close_delimited = request.http_version == "1.0"
        self.keep_alive = request.keep_alive and not self._close_delimited
        self.started = False
        self.ended = False
        self.aborted = False
        self.status = 0
        self.bytes_sent = 0  #: body bytes written
        self.first_byte_at: float | None = None  #: monotonic time the head went out
        #: the inspector's ``Entry`` (``emulator.inspection``): told of each chunk, or None
        self.tap: Any = None
        self.headers: list[tuple[bytes | str, bytes | str]] = []  #: sent, when tapped

    def start(self, status: int, headers: HeaderInput, *, length: int | None = None) -> None:
        """Send the status line and headers; the body is chunked unless ``length`` is given.

        Raises:
            BrokenResourceError: the client has gone.
            LocalProtocolError: a header that would break the framing.
        """
        if self.started:
            raise RuntimeError("response already started")
        fields: list[tuple[bytes | str, bytes | str]] = list(headers)
        if _bodiless(status):
            # 1xx, 204, 304: no body and no framing header (RFC 9112 6.3): a chunked 204
            # would end with a last-chunk that the client reads as its next response.
            self._no_body = True
        elif length is not None:
            fields.append(("Content-Length", str(length)))
        elif self._close_delimited:
            self.keep_alive = False
        else:
            self._chunked = True
            self._encoder = ChunkEncoder()
            fields.append(("Transfer-Encoding", "chunked"))
        if self._conn.half_closed:
            self.keep_alive = False  # the last answer on this connection
        if status >= 400 and not self._request_body.done:
            # An error before the body was read whole (413, 408, a malformed body...): the
            # connection closes after it (see _finish_exchange), so say so, and a client's
            # pipelined request is known to be unanswered rather than silently dropped.
            self.keep_alive = False
        if not self.keep_alive:
            fields.append(("Connection", "close"))
        if self.tap is not None:
            self.headers = fields
        head = render_head(status, fields)
        self._conn.write(head)
        self.started = True
        self.status = status
        self.first_byte_at = time.monotonic()

    async def write(self, data: Buffer) -> None:
        """Send ``data`` as one chunk (or raw bytes with Content-Length); wait for drain."""
        if not data:
            return
        self._put(data)
        await self._conn.drain()

    @property
    def writable(self) -> bool:
        """True while a write would not wait (the client reads as fast as we write)."""
        return not self._conn.write_paused

    def write_nowait(self, data: Buffer) -> None:
        """``write()`` for a caller that checked ``writable`` first and calls ``drain()``
        once it is not: no coroutine per chunk on the relay's hot path.

        Raises:
            BrokenResourceError: the client has gone.
        """
        if data:
            self._put(data)

    async def drain(self) -> None:
        """Wait until the client has read enough of what was written.

        Raises:
            BrokenResourceError: the client has gone.
        """
        await self._conn.drain()

    def _put(self, data: Buffer) -> None:
        self.bytes_sent += len(data)
        if self.tap is not None:
            self.tap.mark(data, "out")
        if not (self._head_only or self._no_body):
            encoder = self._encoder
            if encoder is None:
                self._conn.write(data)
            elif (size := _nbytes(data)) >= VIEW_MIN:
                # Framed without a copy: size line, the data itself, CRLF (one writev).
                if encoder.ended:
                    raise LocalProtocolError("chunked body already ended")
                self._conn.write_parts(encoder.head(size), data, b"\r\n")
            else:
                self._conn.write(encoder.data(data))

    async def end(self, trailers: Trailers | None = None) -> None:
        """Finish the body (the last-chunk and ``trailers`` when chunked)."""
        if self._encoder is not None and not self._head_only:
            self._conn.write(self._encoder.end(trailers))
        self.ended = True
        self._conn.flush()  # nothing more comes from this response: no need to wait a pass
        await self._conn.drain()

    async def send(self, status: int, headers: HeaderInput, body: bytes = b"") -> None:
        """A whole response with a Content-Length."""
        self.start(status, headers, length=len(body))
        await self.write(body)
        await self.end()

    def abort(self) -> None:
        """Close the connection now (what was written is still flushed first)."""
        self.aborted = True
        self._conn.close()


#: ``Host: uri-host [":" port]`` (RFC 9110 7.2, RFC 3986 3.2.2): an IP literal, or a reg-name
#: (which may be empty); no userinfo, path or whitespace.
_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:[0-9]*)?")


def _target_or_host_error(head: RequestHead) -> str | None:
    """Why a request's target or ``Host`` is refused (400), or None.

    Only origin-form targets are served (and CONNECT's authority-form, which the app
    refuses with 405): the servers are origins, never proxies, so an absolute-form target
    (whose authority RFC 9112 3.2.2 says would replace Host) and ``OPTIONS *`` are refused.
    An HTTP/1.1 request needs exactly one valid ``Host`` (RFC 9112 3.2: 400 otherwise).
    """
    if head.method != b"CONNECT" and not head.target.startswith(b"/"):
        return f"request target {head.target[:100]!r} is not a path (origin-form)"
    hosts = head.headers.get_all(b"host")
    if len(hosts) > 1:
        return "more than one Host field"
    if not hosts and head.http_version != "1.0":
        return "no Host field"
    if hosts and not _HOST.fullmatch(hosts[0]):
        return f"invalid Host {hosts[0][:100]!r}"
    return None


def _nbytes(data: Buffer) -> int:
    return data.nbytes if type(data) is memoryview else len(data)


#: Status lines already rendered (``HTTP/1.1 200 OK\r\n``...), by status.
_STATUS_LINES: dict[int, bytes] = {}
#: ``name: `` prefixes of header names already checked, by name as given (bounded: names can
#: come from a function's answer).
_NAME_PREFIXES: dict[bytes | str, bytes] = {}
_NAME_CACHE_MAX = 1024
_BAD_NAME_BYTES = frozenset(b" \t:\r\n\x00")


def render_head(status: int, fields: list[tuple[bytes | str, bytes | str]]) -> bytes:
    """``encode_response_head(status, fields, <RFC reason>)``, byte for byte, same errors.

    Per response it only joins: status lines and checked header names are cached (most
    heads are the emulator's own few shapes), and values are checked all at once, by
    counting CRs and LFs in the whole head (one pair per line), not field by field.

    Raises:
        LocalProtocolError: an invalid status, or a header that would break the framing.
    """
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise LocalProtocolError(f"invalid status code {status}")
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, _reason(status))
    parts = [line]
    lines = 2  # the status line and the blank line
    for name, value in fields:
        prefix = _NAME_PREFIXES.get(name)
        if prefix is None:
            prefix = _name_prefix(name)
            if prefix is None:
                break  # refused below, with the reference's error
        parts += (prefix, value.encode("latin-1") if isinstance(value, str) else value, b"\r\n")
        lines += 1
    else:
        parts.append(b"\r\n")
        head = b"".join(parts)
        if head.count(b"\n") == lines and head.count(b"\r") == lines and b"\x00" not in head:
            return head
    # A bad name or value: the reference encoder raises its own error, for the first culprit.
    encode_response_head(status, fields, _reason(status))
    raise AssertionError("encode_response_head accepted a head render_head refused")


def _name_prefix(name: bytes | str) -> bytes | None:
    n = name.encode("latin-1") if isinstance(name, str) else name
    if not n or not _BAD_NAME_BYTES.isdisjoint(n):
        return None
    prefix = n + b": "
    if len(_NAME_PREFIXES) < _NAME_CACHE_MAX:
        _NAME_PREFIXES[name] = prefix
    return prefix


def _bodiless(status: int) -> bool:
    """Statuses that never carry a body (RFC 9110 15.2, 15.3.5, 15.4.5)."""
    return status < 200 or status in (204, 304)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


class HttpServerProtocol(asyncio.Protocol):
    """One client connection: parses heads, frames bodies, runs the app once per request."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        # Kept, not looked up per use: asyncio.get_running_loop() costs a getpid() system
        # call each time (its fork check), several times per request otherwise.
        self.loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._heads = HeadReader("request")
        self._reader: BodyReader | None = None
        self._request: Request | None = None
        self._response: Response | None = None
        self._held = bytearray()  # bytes of the next (pipelined) request
        self._pauses: set[str] = set()
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._lost = False
        self.peer: tuple[str, int] = ("", 0)
        self._head_timer: asyncio.TimerHandle | None = None
        self.half_closed = False  #: the client sent EOF after a whole request
        # The cork: what was written during this event-loop step, sent by _flush.
        self._corked: list[Buffer] = []
        self._corked_size = 0
        self._flush_handle: asyncio.Handle | None = None

    # --- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = (str(peer[0]), int(peer[1]))
        self._transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return  # rejected or aborted: what still arrives is of no use
        if self._request is None:
            self._feed_head(data)
        elif self._reader is not None and not self._request.body.done:
            self._feed_body(data)
        else:
            self._held += data
            if len(self._held) > PIPELINE_HOLD:
                self.pause_reading_for("pipelined")

    def eof_received(self) -> bool:
        # A client may half-close once its request is whole (RFC 9112 9.6: "nothing more to
        # send"): where the server allows it, that request is still answered, with
        # "Connection: close", then the connection closes. A full close looks the same here,
        # so once the answer has started an EOF means the client is gone (close now, and
        # connection_lost follows), as does an EOF inside a head or a body.
        request, response = self._request, self._response
        if (
            self._server.half_close
            and request is not None
            and response is not None
            and request.body.done
            and not response.started
        ):
            self.half_closed = True
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._stop_head_timer()
        self._corked.clear()
        self._corked_size = 0
        self._server.connections.discard(self)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(BrokenResourceError("client disconnected"))
        self._drain_waiters.clear()
        if self._request is not None:
            self._request.body._fail(BrokenResourceError("client disconnected"))
            self._request._disconnect()

    @property
    def write_paused(self) -> bool:
        """True while the transport's buffer is above its high watermark."""
        return self._write_paused

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # --- flow control and writing (used by Body and Response) -----------------------------

    def pause_reading_for(self, reason: str) -> None:
        """Stop reading the socket until every reason given has been resumed."""
        if reason not in self._pauses:
            self._pauses.add(reason)
            if len(self._pauses) == 1 and self._transport and not self._transport.is_closing():
                self._transport.pause_reading()

    def resume_reading_for(self, reason: str) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
            if not self._pauses and self._transport and not self._transport.is_closing():
                self._transport.resume_reading()

    def write(self, data: Buffer) -> None:
        """Queue ``data`` for the end of this event-loop step (the cork).

        Everything a task writes before it yields goes out in one ``writelines`` (one
        ``writev``): a head and its body, a chunk's size line, data and CRLF, or several
        relayed chunks cost one system call. Nothing waits longer than the current step:
        the flush runs before the loop next polls for I/O with a timeout.
        """
        if self._lost or self._transport is None or self._transport.is_closing():
            raise BrokenResourceError("client disconnected")
        self._cork(data)
        if self._corked_size >= CORK_LIMIT:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def write_parts(self, *parts: Buffer) -> None:
        """``write`` of several buffers in order, without joining them."""
        if self._lost or self._transport is None or self._transport.is_closing():
            raise BrokenResourceError("client disconnected")
        for part in parts:
            self._cork(part)
        if self._corked_size >= CORK_LIMIT:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _cork(self, data: Buffer) -> None:
        if type(data) is bytes:
            size = len(data)
        elif type(data) is memoryview and type(data.obj) is not bytearray:
            size = data.nbytes
        else:
            # A bytearray (or a view of one) may be reused by its writer as soon as write()
            # returns, before the flush: keep a copy, as a transport would.
            data = bytes(data)
            size = len(data)
        self._corked.append(data)
        self._corked_size += size

    def flush(self) -> None:
        """Hand the corked output to the transport now (a response has ended)."""
        self._flush()

    def _flush(self) -> None:
        """Hand the corked output to the transport."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        corked = self._corked
        if not corked:
            return
        self._corked = []
        self._corked_size = 0
        transport = self._transport
        if self._lost or transport is None or transport.is_closing():
            return
        if len(corked) == 1:
            transport.write(corked[0])
        else:
            transport.writelines(corked)

    async def drain(self) -> None:
        if self._lost:
            raise BrokenResourceError("client disconnected")
        if not self._write_paused:
            return  # (corked output is bounded by CORK_LIMIT: no need to flush it here)
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` once the app starts reading the body."""
        if self._response is not None and not self._response.started and not self._lost:
            with contextlib.suppress(BrokenResourceError):
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._flush()  # what was written goes out before the close
            self._transport.close()

    # --- parsing --------------------------------------------------------------------------

    def _feed_head(self, data: bytes) -> None:
        try:
            head = self._heads.feed(data)
        except HeadTooLargeError as exc:  # over MAX_HEAD bytes or MAX_HEADERS fields
            self._reject(431, "Request Header Fields Too Large", str(exc))
            return
        except RemoteProtocolError as exc:
            self._reject(400, "Bad Request", str(exc))
            return
        if head is None:
            if self._head_timer is None and data:
                loop = asyncio.get_running_loop()
                self._head_timer = loop.call_later(HEAD_TIMEOUT, self._head_too_slow)
            return
        self._stop_head_timer()
        assert isinstance(head, RequestHead)
        rest = self._heads.rest
        if len(head.target) > MAX_URL:
            self._reject(414, "URI Too Long", f"request target of {len(head.target)} bytes")
            return
        if (refusal := _target_or_host_error(head)) is not None:
            self._reject(400, "Bad Request", refusal)
            return
        try:
            reader = body_reader(head)
        except RemoteProtocolError as exc:
            self._reject(400, "Bad Request", str(exc))
            return
        self._start_exchange(head, reader)
        if rest:
            self.data_received(rest)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        self._reject(408, "Request Timeout", f"head not complete after {HEAD_TIMEOUT:g} s")

    def _reject(self, status: int, reason: str, detail: str) -> None:
        log.warning(
            "%s: %d %s from %s:%d (%s)", self._server.name, status, reason, *self.peer, detail
        )
        if self._transport is None or self._transport.is_closing():
            return
        self._flush()  # the end of an earlier response, still corked, goes first
        body = reason.encode() + b"\n"
        head = encode_response_head(
            status,
            [
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ],
        )
        self._transport.write(head + body)
        self._transport.close()

    def _feed_body(self, data: bytes) -> None:
        assert self._request is not None
        assert self._reader is not None
        body = self._request.body
        try:
            pieces = self._reader.feed(data)
        except ChunkedEncodingError as exc:
            body._feed(exc.data)
            log.warning(
                "%s: malformed request body from %s:%d: %s", self._server.name, *self.peer, exc
            )
            body._fail(exc)
            self.pause_reading_for("broken")
            return
        body._feed(pieces)
        if self._reader.done:
            body._finish(self._reader.trailers)
            if self._reader.unused_data:
                self.data_received(self._reader.unused_data)

    def _start_exchange(self, head: RequestHead, reader: BodyReader) -> None:
        request = Request(head, self)
        self._request, self._reader = request, reader
        self._response = Response(self, request)
        if reader.done:
            request.body._finish([])
        self._server.spawn(self._run(request, self._response))

    async def _run(self, request: Request, response: Response) -> None:
        try:
            await self._server.app(request, response)
        except BrokenResourceError:
            pass  # the client went away; nothing left to tell it
        except Exception:
            log.exception("%s: %s %s failed", self._server.name, request.method, request.path)
            if not response.started and not self._lost:
                with contextlib.suppress(BrokenResourceError):
                    await response.send(500, [("Content-Type", "text/plain")], b"Internal Error\n")
        finally:
            self._finish_exchange(request, response)

    def _finish_exchange(self, request: Request, response: Response) -> None:
        if self._lost:
            return
        if not request.body.done and request.body.error is None:
            # Answered before the body was read (413, 404...): read and drop the rest before
            # closing, or the close would reset the connection and lose the answer.
            self._server.spawn(self._linger(request.body))
            return
        self._request = self._reader = self._response = None
        if not (response.ended and response.keep_alive and request.body.done):
            self.close()
            return
        # (self._heads is ready for the next head: it keeps nothing once it returned one.)
        if not self._held:
            self.resume_reading_for("pipelined")
            return
        held = bytes(self._held)
        self._held.clear()
        self.resume_reading_for("pipelined")
        self.data_received(held)

    async def _linger(self, body: Body) -> None:
        """Drop what is left of a request body (bounded in bytes and time), then close.

        A duplex upload may still be in the relay to the runtime's ``/next`` stream, waiting
        for its next piece: it lets go of the body once that piece arrives (its invocation
        has settled), so wait for that instead of failing as a second reader.
        """
        try:
            async with asyncio.timeout(LINGER_SECONDS):
                while body.reading:  # noqa: ASYNC110 (another task's read; bounded above)
                    await asyncio.sleep(0.005)
                await body.discard(LINGER_BYTES)
        except TimeoutError:
            pass
        finally:
            self.close()


class HttpServer:
    """A listening socket whose connections all run ``app``; ``close()`` stops it cleanly.

    With ``half_close``, a client that half-closes after a whole request is answered before
    the connection closes; without it (the Runtime API, where an EOF on a ``/next`` poll
    must free the invocation at once) any EOF means the client is gone.
    """

    def __init__(self, app: App, name: str, *, half_close: bool = False) -> None:
        self.app = app
        self.name = name
        self.half_close = half_close
        self.connections: set[HttpServerProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0 picks a free one)."""
        loop = self._loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpServerProtocol(self), host, port, reuse_address=True
        )

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        assert self._server is not None
        assert self._server.sockets
        sockname: Any = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop listening, close every connection, and wait for the request tasks."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
