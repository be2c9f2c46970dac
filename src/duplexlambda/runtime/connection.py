"""HTTP/1.1 client connections to the Runtime API (asyncio Protocol, no streams layer).

Backpressure both ways: the body of a response is queued until the reader takes it, and
reading from the socket pauses above ``READ_HIGH`` buffered bytes (so a slow handler slows
the upload instead of growing memory); writes wait for ``drain()`` above the transport's high
watermark. ``TCP_NODELAY`` is set on every socket: without it two small writes (the prelude
and the first chunk) can wait 40 ms for a delayed ACK.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from collections.abc import Callable, Iterable
from typing import cast

from duplexlambda.errors import (
    BrokenResourceError,
    BusyResourceError,
    RemoteProtocolError,
    SingleReader,
)
from duplexlambda.protocol.http1 import BodyReader, HeadReader, ResponseHead, body_reader
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime.blocking import CONNECT_RETRY_DELAYS

log = logging.getLogger("duplexlambda.transport")

READ_HIGH = 256 * 1024
READ_LOW = 64 * 1024
WRITE_HIGH = 256 * 1024
WRITE_LOW = 64 * 1024
#: Bytes ``write_corked`` may hold before it sends at once.
CORK_LIMIT = 64 * 1024


class ClientConnection(asyncio.Protocol):
    """One HTTP/1.1 client connection: requests are written by the caller, one response at a
    time is parsed (head by httptools, body by our readers) and handed out piece by piece."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._head_reader: HeadReader | None = None
        self._body: BodyReader | None = None
        self._method = b"GET"
        self.response: ResponseHead | None = None
        self._head_waiter: asyncio.Future[ResponseHead] | None = None
        self._pieces: collections.deque[memoryview] = collections.deque()
        self._buffered = 0
        self._data_waiter: asyncio.Future[None] | None = None
        self._reader = SingleReader("response")
        self._body_done = False
        self._error: BaseException | None = None
        self._paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._corked: list[bytes] = []
        self._corked_size = 0
        self._cork_scheduled = False
        #: True when the request was ended (``end_request``) before its answer arrived
        self.request_ended_first = False
        #: called once if the connection is lost: set by whoever uses it for now (a response
        #: stream cancels its handler), cleared when it hands the connection back
        self.on_lost: Callable[[], None] | None = None
        self.closed: asyncio.Future[None] = self._loop.create_future()

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except RemoteProtocolError as exc:
            self._fail(exc)
            self.close()

    def eof_received(self) -> bool:
        if self._body is not None and not self._body_done:
            try:
                self._body.eof()
                self._finish_body()
            except RemoteProtocolError as exc:
                self._fail(exc)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not (self._body is not None and self._body_done and self._head_waiter is None):
            self._fail(BrokenResourceError(f"Runtime API connection lost: {exc or 'closed'}"))
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- receiving ---------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        if self._head_reader is not None:
            head = self._head_reader.feed(data)
            if head is None:
                return
            assert isinstance(head, ResponseHead)
            data = self._head_reader.rest
            self._head_reader = None
            self.response = head
            self._body = body_reader(head, request_method=self._method)
            self._body_done = self._body.done
            waiter, self._head_waiter = self._head_waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(head)
            if self._body_done:
                self._wake()
        if not data:
            return
        if self._body is None or self._body_done:
            raise RemoteProtocolError("Runtime API sent data that is not part of a response")
        for piece in self._body.feed(data):
            self._pieces.append(piece)
            self._buffered += len(piece)
        if self._body.done:
            self._finish_body()
        self._wake()
        if self._buffered > READ_HIGH and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _finish_body(self) -> None:
        self._body_done = True
        if self._body is not None and self._body.unused_data:
            # Nothing is pipelined on these connections: extra bytes are a broken peer.
            self._fail(RemoteProtocolError("Runtime API sent bytes after the response"))
            self.close()
        self._wake()

    def _wake(self) -> None:
        waiter, self._data_waiter = self._data_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        head_waiter, self._head_waiter = self._head_waiter, None
        if head_waiter is not None and not head_waiter.done():
            head_waiter.set_exception(exc)
        self._wake()

    # --- the caller's side -------------------------------------------------------------------

    @property
    def is_closing(self) -> bool:
        """True once the connection is closed or closing."""
        return self.transport is None or self.transport.is_closing()

    @property
    def reusable(self) -> bool:
        """True when the last response is complete and the server keeps the connection."""
        return (
            not self.is_closing
            and self._error is None
            and self.response is not None
            and self.response.keep_alive
            and self._body_done
            and not self._pieces
        )

    def expect_response(self, method: bytes) -> None:
        """Get ready to parse the response to the request about to be sent."""
        if self._head_reader is not None or (self._body is not None and not self._body_done):
            raise BusyResourceError("a response is already pending on this connection")
        self._method = method
        self.request_ended_first = False
        self._head_reader = HeadReader("response")
        self._body = None
        self._body_done = False
        self.response = None

    def _check_open(self) -> asyncio.Transport:
        if self._error is not None and isinstance(self._error, BrokenResourceError):
            raise self._error
        if self.transport is None or self.transport.is_closing():
            raise BrokenResourceError("Runtime API connection is closed")
        return self.transport

    def write(self, data: bytes | memoryview) -> None:
        """Send bytes now, in one send with anything corked; raises ``BrokenResourceError``
        once the connection broke."""
        transport = self._check_open()
        if self._corked:
            # A handler's last write and the end of its body leave in one segment (one send,
            # one wakeup of the receiver) instead of two.
            self._corked.append(bytes(data))
            self.flush_cork()
        else:
            transport.write(data)

    def end_request(self, data: bytes) -> None:
        """Send the last bytes of a streamed request body (see ``write``), noting whether the
        answer had already begun: a server that answered early may not have read it all."""
        self.write(data)
        self.request_ended_first = self.response is None and self._head_reader is not None

    def write_corked(self, data: bytes) -> None:
        """Queue bytes to go out at the end of this loop iteration, with whatever else is
        written before then, in one send.

        A handler writing many small chunks in a row would otherwise pay one send (and, on
        loopback, the receiver's processing) per chunk. The chunks stay separate on the wire;
        only TCP segments are shared. Nothing waits longer than the current loop iteration,
        and at most ``CORK_LIMIT`` bytes wait at all.
        """
        self._check_open()
        self._corked.append(data)
        self._corked_size += len(data)
        if self._corked_size >= CORK_LIMIT:
            self.flush_cork()
        elif not self._cork_scheduled:
            self._cork_scheduled = True
            self._loop.call_soon(self.flush_cork)

    def flush_cork(self) -> None:
        """Send what ``write_corked`` queued."""
        self._cork_scheduled = False
        if not self._corked:
            return
        data = b"".join(self._corked)
        self._corked.clear()
        self._corked_size = 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def writelines(self, parts: Iterable[bytes | memoryview]) -> None:
        """Queue several buffers at once (no copy where the transport supports it)."""
        if self.transport is None or self.transport.is_closing():
            raise self._error or BrokenResourceError("Runtime API connection is closed")
        self.flush_cork()
        self.transport.writelines(parts)

    @property
    def needs_drain(self) -> bool:
        """True when ``drain()`` would wait (or raise): skip the coroutine otherwise."""
        return self._write_paused or self.is_closing

    async def drain(self) -> None:
        """Send anything corked, then wait until the write buffer is below the low watermark."""
        self.flush_cork()
        if self.transport is None or self.transport.is_closing():
            raise self._error or BrokenResourceError("Runtime API connection is closed")
        if self._write_paused:
            if self._drain_waiter is None or self._drain_waiter.done():
                self._drain_waiter = self._loop.create_future()
            await self._drain_waiter
            if self.transport.is_closing():
                raise self._error or BrokenResourceError("Runtime API connection is closed")

    async def read_head(self) -> ResponseHead:
        """Wait for the response head."""
        if self.response is not None:
            return self.response
        if self._error is not None:
            raise self._error
        if self._head_waiter is None:
            self._head_waiter = self._loop.create_future()
        return await self._head_waiter

    @property
    def at_body_end(self) -> bool:
        """True when the response body has ended cleanly and every piece has been read."""
        return self._body_done and self._error is None and not self._pieces

    def read_nowait(self) -> memoryview | bytes | None:
        """What ``read()`` would return at once, without a coroutine; None when it would
        wait, raise, or another task is reading (then ``read()`` says why)."""
        if self._reader.busy:
            return None
        if self._pieces:
            return self._take()
        if self._body_done and self._error is None:
            return b""
        return None

    def _take(self) -> memoryview | bytes:
        piece = self._pieces.popleft()
        self._buffered -= len(piece)
        if self._paused and self._buffered <= READ_LOW and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return piece

    async def read(self) -> memoryview | bytes:
        """The next piece of the response body, ``b""`` at its end.

        Raises:
            BusyResourceError: another task is already reading.
            BrokenResourceError / RemoteProtocolError: the body was cut short or malformed.
        """
        with self._reader:
            while not self._pieces:
                if self._body_done and self._error is None:
                    return b""
                if self._error is not None:
                    raise self._error
                self._data_waiter = self._loop.create_future()
                await self._data_waiter
            return self._take()

    async def read_all(self, limit: int | None = None) -> bytes:
        """The whole response body (at most ``limit`` bytes)."""
        if self._body_done and self._error is None and not self._paused:
            # All of it is here already (the small answers that dominate): no read() calls.
            with self._reader:
                data = b"".join(self._pieces)
                self._pieces.clear()
                self._buffered = 0
            if limit is not None and len(data) > limit:
                raise RemoteProtocolError(f"response body larger than {limit} bytes")
            return data
        parts = []
        size = 0
        while piece := await self.read():
            size += len(piece)
            if limit is not None and size > limit:
                raise RemoteProtocolError(f"response body larger than {limit} bytes")
            parts.append(bytes(piece))
        return b"".join(parts)

    def close(self) -> None:
        """Close the connection (idempotent), after sending anything corked."""
        self.flush_cork()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


async def connect(address: RuntimeApiAddress, *, attempts: int = 8) -> ClientConnection:
    """Open a connection, retrying a refused or reset one with exponential backoff.

    Raises:
        OSError: the Runtime API could not be reached after ``attempts`` tries.
    """
    loop = asyncio.get_running_loop()
    for delay in (*CONNECT_RETRY_DELAYS[: attempts - 1], None):
        try:
            _, protocol = await loop.create_connection(ClientConnection, address.host, address.port)
            return protocol
        except OSError as exc:
            if delay is None:
                raise
            log.warning("Runtime API at %s unreachable (%s); retrying", address.host_header, exc)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
