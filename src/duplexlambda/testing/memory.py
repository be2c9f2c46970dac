"""What stands in for sockets: in-memory connections, the Runtime API served over them, and
both ends a caller holds (the request body it sends, the response it is sent).

``MemoryUpload`` is a ``ByteSource`` (what the emulator reads a request body from) and
``MemoryResponse`` a ``ResponseSink`` (what the emulator's ``UrlRelay`` writes an answer to):
the emulator's own code runs between them, only the HTTP server around it is left out.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterable
from typing import Any

from duplexlambda.emulator.furl import HeaderList
from duplexlambda.emulator.invocations import Dispatcher
from duplexlambda.emulator.runtime_api import RuntimeApi
from duplexlambda.emulator.server import HttpServer, HttpServerProtocol, read_whole
from duplexlambda.errors import BrokenResourceError
from duplexlambda.protocol.http1 import encode_response_head
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime.connection import ClientConnection

#: The Runtime API address the in-memory runtime is given; never dialled (pipes serve it).
MEMORY_ADDRESS = RuntimeApiAddress.parse("127.0.0.1:9001")


# --- in-memory connections ---------------------------------------------------------------------


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory connection between two ``asyncio.Protocol`` objects.

    What is written here reaches the other end's ``data_received`` on a later loop
    iteration, one write per call, in order. Flow control behaves as over TCP: an end that
    paused reading holds what arrives, and a writer whose bytes wait above its high
    watermark gets ``pause_writing()`` until they drop below the low one. ``close()`` hands
    the peer an end of file after the bytes already written; ``abort()`` resets at once.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, peername: tuple[str, int]
    ) -> None:
        super().__init__({"peername": peername, "sockname": ("in-memory", 0), "socket": None})
        self._loop = loop
        self._protocol = protocol
        self.peer: MemoryTransport | None = None
        self._inbox: collections.deque[bytes | None] = collections.deque()  # None: EOF
        self._inbox_bytes = 0
        self._reading_paused = False
        self._scheduled = False
        self._closing = False
        self._lost = False
        self._writing_paused = False
        self._high = 64 * 1024
        self._low = 16 * 1024

    # asyncio.BaseTransport / WriteTransport / ReadTransport

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False
        self._schedule()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self.peer is None or not data:
            return  # as a socket transport: writes after close() are dropped
        self.peer._arrive(bytes(data))
        if not self._writing_paused and self.get_write_buffer_size() > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(bytes(part) for part in list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.peer._inbox_bytes if self.peer is not None else 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        self._high, self._low = high, low
        if not self._writing_paused and self.get_write_buffer_size() > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()
        self._maybe_resume()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._inbox.clear()
        if self.peer is not None:
            self.peer._arrive(None)
        self._loop.call_soon(self._lose, None)

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._inbox.clear()
        if self.peer is not None:
            self.peer._reset()
        self._loop.call_soon(self._lose, None)

    # the plumbing between the two ends

    def _arrive(self, data: bytes | None) -> None:
        if self._lost or (self._closing and data is not None):
            return
        self._inbox.append(data)
        self._inbox_bytes += len(data or b"")
        self._schedule()

    def _reset(self) -> None:
        self._inbox.clear()
        self._inbox_bytes = 0
        self._closing = True
        self._loop.call_soon(self._lose, ConnectionResetError("connection reset by peer"))

    def _schedule(self) -> None:
        if not self._scheduled and not self._lost and self._inbox:
            self._scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        while self._inbox and not self._reading_paused and not self._lost:
            data = self._inbox.popleft()
            if data is None:
                if not self._protocol.eof_received():
                    self.close()
                break
            self._inbox_bytes -= len(data)
            self._protocol.data_received(data)
        if self.peer is not None:
            self.peer._maybe_resume()

    def _maybe_resume(self) -> None:
        if self._writing_paused and self.get_write_buffer_size() <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._protocol.connection_lost(exc)


def memory_pipe(
    client: asyncio.Protocol, server: asyncio.Protocol
) -> tuple[MemoryTransport, MemoryTransport]:
    """Connect two protocols in memory (server side first, as an accept would)."""
    loop = asyncio.get_running_loop()
    client_end = MemoryTransport(loop, client, ("in-memory runtime api", 0))
    server_end = MemoryTransport(loop, server, ("127.0.0.1", 0))
    client_end.peer, server_end.peer = server_end, client_end
    server.connection_made(server_end)
    client.connection_made(client_end)
    return client_end, server_end


class InMemoryRuntimeApi:
    """The emulator's Runtime API (``RuntimeApi`` + ``Dispatcher``) served over memory pipes.

    ``connect`` is a ``RuntimeApiClient`` connector: each call opens one in-memory
    connection into an ``HttpServerProtocol`` running the Runtime API.
    """

    def __init__(self, timeout: float) -> None:
        self.dispatcher = Dispatcher(timeout)
        self.server = HttpServer(RuntimeApi(self.dispatcher), "in-memory runtime api")

    async def connect(self, address: RuntimeApiAddress) -> ClientConnection:
        client = ClientConnection()
        memory_pipe(client, HttpServerProtocol(self.server))
        return client

    async def close(self) -> None:
        """Fail what is pending, close every connection, wait for the request tasks."""
        self.dispatcher.close()
        await self.server.close()


# --- the caller's two ends ---------------------------------------------------------------------


class MemoryUpload:
    """A request body as the emulator reads it (a ``ByteSource``): bytes, or an async iterable.

    An async iterable is pumped by a task of its own (so that the iterable is always
    iterated, and closed, by one task), through a small queue: a handler that reads slowly
    slows the upload down.
    """

    def __init__(self, body: bytes | AsyncIterable[bytes]) -> None:
        self.received = 0
        self._whole: bytes | None = body if isinstance(body, bytes) else None
        self._queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(maxsize=4)
        self._pump: asyncio.Task[None] | None = None
        self._done = False
        self.finished_at: float | None = None  #: when the last byte was handed over
        if not isinstance(body, bytes):
            self._pump = asyncio.get_running_loop().create_task(self._run(body))

    async def _run(self, body: AsyncIterable[bytes]) -> None:
        try:
            iterator = aiter(body)
            try:
                async for piece in iterator:
                    if piece:
                        await self._queue.put(bytes(piece))
            finally:
                close = getattr(iterator, "aclose", None)
                if close is not None:
                    await close()
            await self._queue.put(b"")
        except Exception as exc:  # the client "hung up": the runtime sees a cut body
            await self._queue.put(exc)

    async def read(self) -> bytes:
        if self._done:
            return b""
        if self._pump is None:  # a whole body: itself, then the end
            data, self._whole = self._whole or b"", None
            self._done = not data
            self.received += len(data)
            self.finished_at = time.monotonic()
            return data
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise BrokenResourceError(f"the request body failed: {item!r}") from item
        if not item:
            self._done = True
            self.finished_at = time.monotonic()
        self.received += len(item)
        return item

    async def read_all(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes (as the emulator's ``Body.read_all``)."""
        return await read_whole(self.read, limit)

    async def aclose(self) -> None:
        """Stop the pump; a reader still waiting sees the body cut short."""
        if self._pump is None:
            return
        if not self._pump.done():
            self._pump.cancel()
        await asyncio.wait({self._pump})
        if not self._done:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(ConnectionAbortedError("the client closed the request"))


class MemoryResponse:
    """A response kept in memory (a ``ResponseSink``): what the emulator would send a caller.

    Written by a relay (the emulator's ``UrlRelay``, or ``InvokeRelay``), read chunk by
    chunk by the test client. As a socket response does, ``start`` refuses a header HTTP
    cannot carry, so the relay answers it as the emulator does (502).
    """

    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self.aborted = False
        self.status = 0
        self.headers: HeaderList = []
        #: body pieces written and not read yet, one per write
        self.chunks: collections.deque[bytes] = collections.deque()

    def start(self, status: int, headers: HeaderList, *, length: int | None = None) -> None:
        if self.started:
            raise RuntimeError("response already started")
        encode_response_head(status, headers)  # raises LocalProtocolError, as a socket would
        self.started = True
        self.status, self.headers = status, list(headers)

    async def write(self, data: bytes | memoryview) -> None:
        if data and not self.aborted:
            self.chunks.append(bytes(data))

    async def end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        self.aborted = True
