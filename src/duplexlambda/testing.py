"""Testing handlers: an in-process client that needs no sockets, and the emulator on free ports.

``LambdaClient`` runs the real runtime (``Runtime``: event reading, handler styles, the
response streams, error reports, deadline cancellation, init/shutdown hooks) against the
emulator's Runtime API (``emulator.runtime_api.RuntimeApi`` and its ``Dispatcher``), joined by
in-memory pipes instead of TCP: every byte still goes through the same HTTP/1.1 and chunked
framing, only the sockets are gone. Requests are built as a function URL builds them
(payload format 2.0, uploads streamed in duplex mode) and answers are read back as a function
URL maps them (prelude -> status/headers/cookies, one handler write -> one chunk, a failure
-> 502, a mid-stream failure -> a cut-short body)::

    async with LambdaClient(handler) as client:
        resp = await client.post("/items", json={"name": "x"})
        assert resp.status == 201

        async with client.stream("POST", "/upload", body=chunks()) as resp:
            async for chunk in resp:  # as the handler writes them
                ...

        result = await client.invoke({"plain": "event"})

``EmulatedFunction`` is ``duplexlambda serve`` in-process: the ``Emulator`` on free
127.0.0.1 ports and this process's runtime serving the handler on the same event loop.

The pytest plugin (``duplexlambda.pytest_plugin``) offers both as fixtures.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from duplexlambda.emulator.config import EmulatorConfig
from duplexlambda.emulator.furl import (
    HttpRequestInfo,
    build_event,
    http_head,
    map_buffered_response,
    with_body,
)
from duplexlambda.emulator.hub import new_trace_id
from duplexlambda.emulator.invocations import (
    MAX_PAYLOAD,
    BufferedPayload,
    Chunk,
    Dispatcher,
    End,
    Failure,
    Head,
    HttpStreamPayload,
    Invocation,
    Payload,
    Rejected,
    ResultEvent,
    error_payload,
)
from duplexlambda.emulator.runtime_api import RuntimeApi
from duplexlambda.emulator.server import HttpServer, HttpServerProtocol
from duplexlambda.errors import BrokenResourceError, PayloadTooLargeError, PreludeError
from duplexlambda.handler import Lifecycle, load_handler, style_of
from duplexlambda.protocol.http1 import Headers
from duplexlambda.protocol.prelude import HTTP_INTEGRATION_RESPONSE, PreludeDecoder
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime.client import RuntimeApiClient
from duplexlambda.runtime.connection import ClientConnection
from duplexlambda.runtime.loop import Runtime, RuntimeConfig

Mode = Literal["duplex", "lambda"]
Body = bytes | bytearray | memoryview | str | AsyncIterable[bytes] | None
HeaderInput = Mapping[str, str] | list[tuple[str, str]] | None

#: What the test client's requests look like they were sent to.
DEFAULT_BASE_URL = "https://testserver.lambda-url.us-east-1.on.aws"
_MEMORY_ADDRESS = RuntimeApiAddress.parse("127.0.0.1:9001")  # never dialled: pipes serve it
_MISSING: Any = object()


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


# --- request bodies ----------------------------------------------------------------------------


class _Upload:
    """A request body as the emulator's Runtime API reads it (``ByteSource``).

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
        parts: list[bytes] = []
        size = 0
        while piece := await self.read():
            size += len(piece)
            if size > limit:
                raise PayloadTooLargeError(f"body over {limit} bytes", size)
            parts.append(piece)
        return b"".join(parts)

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


# --- what comes back ---------------------------------------------------------------------------


class InvocationError(Exception):
    """A failed invocation, as the caller is told: Lambda's error type, message and trace.

    Attributes:
        error_type: e.g. ``"ValueError"``, ``"Function.Timeout"``, ``"Sandbox.Timeout"``.
        message: ``errorMessage``.
        trace: ``stackTrace`` lines (as awslambdaric formats them).
        payload: the error JSON as sent.
    """

    def __init__(
        self, error_type: str, message: str, trace: list[str] | None = None, payload: bytes = b""
    ) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.trace = trace or []
        self.payload = payload

    @classmethod
    def from_payload(cls, error_type: str, payload: bytes) -> InvocationError:
        """Parse the standard error JSON (``errorMessage``, ``errorType``, ``stackTrace``)."""
        try:
            data = msgspec.json.decode(payload) if payload else {}
        except msgspec.DecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        trace = data.get("stackTrace")
        return cls(
            error_type,
            str(data.get("errorMessage", "")),
            [str(line) for line in trace] if isinstance(trace, list) else [],
            payload,
        )


class InitError(InvocationError):
    """The runtime could not start: the handler's init hooks (or lifespan startup) failed."""


class HeaderMap(Mapping[str, str]):
    """Response headers: lookups ignore case; a repeated field reads as its values joined
    with ``", "`` (``get_all`` gives them one by one, e.g. every ``Set-Cookie``)."""

    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self.pairs: list[tuple[str, str]] = list(pairs or [])

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        key = name.lower()
        return [value for field, value in self.pairs if field.lower() == key]

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for field, _ in self.pairs:
            seen.setdefault(field.lower(), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({field.lower() for field, _ in self.pairs})

    def __repr__(self) -> str:
        return f"HeaderMap({self.pairs!r})"


class _Reader:
    """Turns an invocation's result events into what its caller receives.

    ``http`` mode maps them as a function URL does (``UrlRelay`` in the emulator): a prelude
    becomes status, headers and cookies; a buffered result object is unpacked; a failure
    before the first byte is a 502 (504 for ``Sandbox.Timeout``) with the error JSON; a
    failure after it cuts the body short. ``raw`` mode is the Invoke API's view: the payload
    bytes as the runtime sent them, prelude included.
    """

    def __init__(self, invocation: Invocation, *, http: bool) -> None:
        self.invocation = invocation
        self._events = invocation.results
        self._http = http
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.content_type: str | None = None
        self.error: InvocationError | None = None
        self.complete = False  #: the response ended normally (or as a whole error reply)
        self.finished = False  #: no more events will come
        self._pending: collections.deque[bytes] = collections.deque()
        self._collected: list[bytes] | None = None
        self._prelude: PreludeDecoder | None = None
        self._prelude_seen = 0

    async def _pull(self) -> bool:
        """Act on one more event; False once there are none."""
        if self.finished:
            return False
        try:
            event = await anext(self._events)
        except StopAsyncIteration:
            self.finished = True
            return False
        self._handle(event)
        return True

    async def head(self) -> None:
        """Wait until the status and headers are known (or nothing more comes)."""
        while self.status is None and await self._pull():
            pass
        if self.status is None:  # cancelled before any answer
            self.status = 0

    async def next_chunk(self) -> bytes | None:
        """The next piece of body, None at its end."""
        while not self._pending:
            if not await self._pull():
                return None
        return self._pending.popleft()

    def _start(self, status: int, headers: list[tuple[str, str]]) -> None:
        if self.status is None:
            self.status, self.headers = status, headers

    def _handle(self, event: ResultEvent) -> None:
        if isinstance(event, Head):
            self.content_type = event.content_type
            if not self._http:
                self._start(200, [("Content-Type", event.content_type)])
            elif not event.streaming:
                self._collected = []
            elif event.content_type.split(";", 1)[0].strip() == HTTP_INTEGRATION_RESPONSE:
                self._prelude = PreludeDecoder()
            else:
                self._start(200, [("Content-Type", event.content_type)])
        elif isinstance(event, Chunk):
            self._on_chunk(event.data)
        elif isinstance(event, End):
            self._on_end()
        elif isinstance(event, Failure):
            self._on_failure(event)
        else:
            self._on_rejected(event)

    def _on_chunk(self, data: bytes) -> None:
        if self._collected is not None:
            self._collected.append(data)
        elif self._prelude is not None and self.status is None:
            self._prelude_seen += len(data)
            try:
                pieces = self._prelude.feed(data)
                if not self._prelude.complete:
                    return
                assert self._prelude.prelude is not None
                self._start(*http_head(self._prelude.prelude))
            except PreludeError as exc:
                self._invalid(exc)
                return
            self._pending.extend(bytes(p) for p in pieces if len(p))
        else:
            self._pending.append(data)

    def _on_end(self) -> None:
        self.complete = True
        if self._collected is not None:
            try:
                result = map_buffered_response(b"".join(self._collected), self.content_type)
            except PreludeError as exc:
                self._invalid(exc)
                return
            self._start(result.status, result.headers)
            if result.body:
                self._pending.append(result.body)
        elif self._prelude is not None and self.status is None:
            if self._prelude_seen:
                self._invalid(PreludeError("stream ended inside the prelude"))
                return
            self._start(200, [])  # a prelude announced, never written: a plain 200 (P1)

    def _on_failure(self, failure: Failure) -> None:
        self.error = InvocationError.from_payload(failure.error_type, failure.payload)
        if self.status is not None and failure.streamed:
            return  # mid-stream: what arrived stays, the body is cut short (complete False)
        self.complete = True
        if not self._http:
            self._pending.clear()
            self._start(200, [("Content-Type", "application/json")])
        else:
            status = 504 if failure.error_type == "Sandbox.Timeout" else 502
            self._start(status, [("Content-Type", "application/json")])
        self._pending.append(failure.payload)

    def _on_rejected(self, rejected: Rejected) -> None:
        self.complete = True
        self.error = InvocationError(rejected.error_type, rejected.message)
        self._start(rejected.status, [("Content-Type", "application/json")])
        self._pending.append(error_payload(rejected.error_type, rejected.message))

    def _invalid(self, exc: PreludeError) -> None:
        self.complete = True
        self.error = InvocationError("Runtime.InvalidResponse", str(exc))
        self._start(502, [("Content-Type", "application/json")])
        self._pending.append(error_payload("Runtime.InvalidResponse", str(exc)))
        self.invocation.cancel()  # nobody can receive the rest of that stream


class _Received:
    """Body chunks as they arrive; iterate (``async for chunk in resp``) or ``aread()``."""

    def __init__(self, reader: _Reader, upload: _Upload | None) -> None:
        self._reader = reader
        self._upload = upload
        self.request_id = reader.invocation.request_id
        #: the body, one item per chunk the handler wrote, and each one's arrival time
        self.chunks: list[bytes] = []
        self.arrivals: list[float] = []

    @property
    def body(self) -> bytes:
        """What has arrived of the body so far (all of it after ``aread()``)."""
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body as JSON."""
        return msgspec.json.decode(self.body)

    @property
    def error(self) -> InvocationError | None:
        """Why the invocation failed (None if it did not)."""
        return self._reader.error

    @property
    def complete(self) -> bool:
        """True when the body ended normally: False if it was cut short, or not read yet."""
        return self._reader.complete and self._reader.finished and not self._reader._pending

    @property
    def upload_finished_at(self) -> float | None:
        """``time.monotonic()`` when the runtime took the last byte of the request body."""
        return self._upload.finished_at if self._upload is not None else None

    def raise_for_error(self) -> None:
        """Raise the ``InvocationError`` if the invocation failed."""
        if self._reader.error is not None:
            raise self._reader.error

    def __aiter__(self) -> _Received:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._reader.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        self.chunks.append(chunk)
        self.arrivals.append(time.monotonic())
        return chunk

    async def aread(self) -> bytes:
        """Read the rest of the body; return all of it."""
        async for _ in self:
            pass
        return self.body


class HttpResponse(_Received):
    """A function-URL response: status, headers (with ``Set-Cookie`` for each cookie), body."""

    @property
    def status(self) -> int:
        return self._reader.status or 0

    @property
    def headers(self) -> HeaderMap:
        return HeaderMap(self._reader.headers)

    @property
    def cookies(self) -> list[str]:
        """The ``Set-Cookie`` values."""
        return self.headers.get_all("set-cookie")

    def __repr__(self) -> str:
        error = f" error={self.error}" if self.error else ""
        return f"<HttpResponse {self.status} {self.body[:80]!r}{error}>"


class InvokeResult(_Received):
    """A direct invocation's result (the Invoke API's view): the payload bytes as sent."""

    @property
    def content_type(self) -> str | None:
        return self._reader.content_type

    @property
    def payload(self) -> bytes:
        return self.body

    def __repr__(self) -> str:
        error = f" error={self.error}" if self.error else ""
        return f"<InvokeResult {self.body[:80]!r}{error}>"


class _Call:
    """One request in flight: its invocation, the upload pump and the reader."""

    def __init__(self, invocation: Invocation, reader: _Reader, upload: _Upload | None) -> None:
        self.invocation = invocation
        self.reader = reader
        self.upload = upload

    async def close(self) -> None:
        """Done with it; if its answer is still coming, hang up (as an HTTP client would)."""
        if not self.reader.finished and not self.invocation.settled:
            self.invocation.cancel()
        elif not self.reader.finished:
            self.invocation.results.close()
        if self.upload is not None:
            await self.upload.aclose()


# --- the client --------------------------------------------------------------------------------


def _header_pairs(headers: HeaderInput) -> list[tuple[str, str]]:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


class LambdaClient:
    """Drive a handler of any style in-process, through the real runtime, without sockets.

    Each client is one execution environment: ``start()`` (or ``async with``, or the first
    request) runs the init hooks, ``aclose()`` stops the runtime as SIGTERM does (in-flight
    invocations finish, then the shutdown hooks run).

    Args:
        handler: the handler, or its ``module.function`` name.
        mode: ``"duplex"`` streams request bodies to the handler as they are sent (the
            emulator's default); ``"lambda"`` buffers them into the event, as AWS does.
        timeout: the function timeout in seconds (the runtime cancels the handler
            ``deadline_margin`` seconds before it).
        concurrency: ``AWS_LAMBDA_MAX_CONCURRENCY``: invocations served at once.
        lifecycle: init/shutdown hooks; None runs the module-level ``@on_init`` /
            ``@on_shutdown`` ones, as the runtime does.
        base_url: scheme and host the requests appear to be sent to.
    """

    def __init__(
        self,
        handler: Callable[..., Any] | str,
        *,
        mode: Mode = "duplex",
        timeout: float = 30.0,
        concurrency: int = 1,
        deadline_margin: float = 0.25,
        lifecycle: Lifecycle | None = None,
        base_url: str = DEFAULT_BASE_URL,
        function_name: str = "function",
    ) -> None:
        if mode not in ("duplex", "lambda"):
            raise ValueError(f"mode must be 'duplex' or 'lambda', not {mode!r}")
        self.handler = load_handler(handler) if isinstance(handler, str) else handler
        style_of(self.handler)  # a bad signature fails here, not inside the runtime task
        self.mode = mode
        self.timeout = timeout
        self.concurrency = concurrency
        self.deadline_margin = deadline_margin
        self.lifecycle = lifecycle
        url = urlsplit(base_url)
        self._scheme = url.scheme or "https"
        self._host = url.netloc or "testserver"
        self._port = str(url.port or (443 if self._scheme == "https" else 80))
        self.function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.runtime: Runtime | None = None
        self._api: InMemoryRuntimeApi | None = None
        self._task: asyncio.Task[int] | None = None
        self._starting: asyncio.Future[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the runtime and wait for its init hooks (once; later calls wait for it).

        Raises:
            InitError: an init hook (e.g. an ASGI lifespan startup) failed.
        """
        if self._starting is not None:
            await asyncio.shield(self._starting)
            return
        self._starting = starting = asyncio.get_running_loop().create_future()
        try:
            await self._start()
        except BaseException as exc:
            starting.set_exception(exc)
            starting.exception()
            raise
        starting.set_result(None)

    async def _start(self) -> None:
        self._api = api = InMemoryRuntimeApi(self.timeout)
        config = RuntimeConfig(
            _MEMORY_ADDRESS, concurrency=self.concurrency, deadline_margin=self.deadline_margin
        )
        client = RuntimeApiClient(_MEMORY_ADDRESS, connector=api.connect)
        self.runtime = runtime = Runtime(self.handler, config, self.lifecycle, client=client)
        self._task = task = asyncio.get_running_loop().create_task(
            runtime.serve(), name="duplexlambda-test-runtime"
        )
        ready = asyncio.ensure_future(runtime.ready.wait())
        try:
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            await asyncio.wait({ready})
        if task.done():
            failure = api.dispatcher.init_error
            await api.close()
            task.result()  # an unexpected crash of the runtime itself raises here
            if failure is None:
                raise InitError("Runtime.ExitError", "the runtime exited during init")
            error = InvocationError.from_payload(failure.error_type, failure.payload)
            raise InitError(error.error_type, error.message, error.trace, error.payload)

    async def aclose(self) -> None:
        """Stop the runtime as SIGTERM does: in-flight invocations finish, then the shutdown
        hooks run (bounded by the function timeout); then the in-memory API closes."""
        task, api = self._task, self._api
        self._task = self._api = None
        self._starting = None
        if task is None or api is None:
            return
        await _stop_runtime(self.runtime, task, self.timeout + 5)
        await api.close()
        if not task.cancelled():
            task.result()

    async def __aenter__(self) -> LambdaClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _dispatcher(self) -> Dispatcher:
        await self.start()
        assert self._api is not None
        return self._api.dispatcher

    # --- HTTP requests (as a function URL) -------------------------------------------------

    def _event(
        self, method: str, path: str, headers: list[tuple[str, str]], request_id: str, trace: str
    ) -> dict[str, Any]:
        target = urlsplit(path)
        fields = [("host", self._host), ("user-agent", "duplexlambda-testclient"), *headers]
        info = HttpRequestInfo(
            method=method.upper(),
            raw_path=target.path or "/",
            raw_query=target.query,
            headers=Headers((k.encode("latin-1"), v.encode("latin-1")) for k, v in fields),
            source_ip="127.0.0.1",
            request_id=request_id,
            now_ms=int(time.time() * 1000),
            extra_headers={
                "x-amzn-trace-id": trace,
                "x-forwarded-for": "127.0.0.1",
                "x-forwarded-proto": self._scheme,
                "x-forwarded-port": self._port,
            },
        )
        return build_event(info)

    async def _http_call(
        self,
        method: str,
        path: str,
        body: Body,
        json: Any,
        headers: HeaderInput,
    ) -> _Call:
        dispatcher = await self._dispatcher()
        pairs = _header_pairs(headers)
        if json is not _MISSING:
            body = msgspec.json.encode(json)
            if not any(k.lower() == "content-type" for k, _ in pairs):
                pairs.append(("content-type", "application/json"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, bytearray | memoryview):
            body = bytes(body)
        if isinstance(body, bytes) and not any(k.lower() == "content-length" for k, _ in pairs):
            pairs.append(("content-length", str(len(body))))
        request_id, trace = str(uuid.uuid4()), new_trace_id()
        event = self._event(method, path, pairs, request_id, trace)
        content_type = next((v for k, v in pairs if k.lower() == "content-type"), None)
        upload = _Upload(body if body is not None else b"")
        payload: Payload = HttpStreamPayload(event, upload, content_type)
        invocation = Invocation(
            payload, request_id=request_id, function_arn=self.function_arn, trace_id=trace
        )
        if self.mode == "lambda":
            # As AWS: the body is read whole into the event, capped at 6 MB (else 413).
            try:
                data = with_body(event, await upload.read_all(MAX_PAYLOAD), content_type)
                if len(data) > MAX_PAYLOAD:
                    raise PayloadTooLargeError("event over the cap", len(data))
                invocation.payload = BufferedPayload(data)
            except PayloadTooLargeError as exc:
                invocation.reject(
                    413,
                    "RequestTooLargeException",
                    f"Request must be smaller than {MAX_PAYLOAD}"
                    f" bytes for the InvokeFunction operation (got {exc.size} bytes or more)",
                )
            except BrokenResourceError:
                invocation.reject(400, "InvalidRequestContentException", "request body truncated")
        if not invocation.settled:
            dispatcher.submit(invocation)
        return _Call(invocation, _Reader(invocation, http=True), upload)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str = "/",
        *,
        body: Body = None,
        json: Any = _MISSING,
        headers: HeaderInput = None,
    ) -> AsyncIterator[HttpResponse]:
        """Send a request and get its response as it streams: status and headers on entry,
        then ``async for chunk in resp`` yields each chunk as the handler writes it.

        ``body`` may be an async iterable: in duplex mode the handler reads each piece as
        it is produced. Leaving the block before the end hangs up, as an HTTP client that
        closes its connection: the handler is cancelled (an ASGI app sees
        ``http.disconnect``).
        """
        call = await self._http_call(method, path, body, json, headers)
        try:
            response = HttpResponse(call.reader, call.upload)
            await call.reader.head()
            yield response
        finally:
            await call.close()

    async def request(
        self,
        method: str,
        path: str = "/",
        *,
        body: Body = None,
        json: Any = _MISSING,
        headers: HeaderInput = None,
    ) -> HttpResponse:
        """Send a request through the function URL; the whole response once it has ended.

        Args:
            method: the HTTP method.
            path: path and query (``"/items?limit=2"``).
            body: bytes, text, or an async iterable of bytes (streamed in duplex mode).
            json: a value to send as JSON (sets ``content-type``).
            headers: request headers (a mapping, or pairs for repeated ones).
        """
        async with self.stream(method, path, body=body, json=json, headers=headers) as resp:
            await resp.aread()
        return resp

    async def get(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("DELETE", path, **kwargs)

    async def head(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("HEAD", path, **kwargs)

    async def options(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("OPTIONS", path, **kwargs)

    # --- direct invocations (as the Invoke API) --------------------------------------------

    async def _invoke_call(
        self, event: Any, payload: bytes | None, content_type: str, client_context: Any
    ) -> _Call:
        dispatcher = await self._dispatcher()
        data = payload if payload is not None else msgspec.json.encode(event)
        invocation = Invocation(
            BufferedPayload(data, content_type),
            function_arn=self.function_arn,
            trace_id=new_trace_id(),
            client_context=None
            if client_context is None
            else msgspec.json.encode(client_context).decode(),
        )
        dispatcher.submit(invocation)
        return _Call(invocation, _Reader(invocation, http=False), None)

    @contextlib.asynccontextmanager
    async def invoke_stream(
        self,
        event: Any = None,
        *,
        payload: bytes | None = None,
        content_type: str = "application/json",
        client_context: Any = None,
    ) -> AsyncIterator[InvokeResult]:
        """Invoke with ``event`` and read the result as it streams
        (``InvokeWithResponseStream``): ``async for chunk in result``."""
        call = await self._invoke_call(event, payload, content_type, client_context)
        try:
            result = InvokeResult(call.reader, None)
            await call.reader.head()
            yield result
        finally:
            await call.close()

    async def invoke(
        self,
        event: Any = None,
        *,
        payload: bytes | None = None,
        content_type: str = "application/json",
        client_context: Any = None,
    ) -> InvokeResult:
        """Invoke the function directly with ``event`` (JSON-encoded) or raw ``payload``.

        Returns the payload as the runtime sent it (an HTTP-style response keeps its
        prelude, as ``InvokeWithResponseStream`` passes it through); on failure ``error`` is
        set and the payload is the error JSON, as the Invoke API returns it.
        """
        async with self.invoke_stream(
            event, payload=payload, content_type=content_type, client_context=client_context
        ) as result:
            await result.aread()
        return result


# --- the emulator on real sockets --------------------------------------------------------------


class EmulatedFunction:
    """``duplexlambda serve`` in-process: the ``Emulator`` on free ports of 127.0.0.1 and this
    process's runtime serving ``handler`` on the same event loop.

    Attributes:
        url: the function URL (``http://127.0.0.1:PORT/``).
        invoke_url / stream_invoke_url: the Invoke API endpoints (boto3 ``endpoint_url`` is
            ``url``).
        runtime_api: ``host:port`` of the Runtime API.
        records: finished invocations (``emulator.InvocationRecord``).
    """

    def __init__(
        self,
        handler: Callable[..., Any] | str,
        *,
        mode: Mode = "duplex",
        timeout: float = 30.0,
        concurrency: int = 1,
        deadline_margin: float = 0.25,
        lifecycle: Lifecycle | None = None,
        response_limit: int | None = None,
        throttle: bool = False,
        function_name: str = "function",
    ) -> None:
        from duplexlambda.emulator.app import Emulator

        self.handler = load_handler(handler) if isinstance(handler, str) else handler
        style_of(self.handler)
        self.config = EmulatorConfig(
            host="127.0.0.1",
            port=0,
            runtime_api_port=0,
            mode=mode,
            timeout=timeout,
            concurrency=concurrency,
            response_limit=response_limit,
            throttle=throttle,
            function_name=function_name,
        )
        self.emulator = Emulator(self.config)
        self.deadline_margin = deadline_margin
        self.lifecycle = lifecycle
        self.runtime: Runtime | None = None
        self._task: asyncio.Task[int] | None = None

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def runtime_api(self) -> str:
        return self.emulator.runtime_api

    @property
    def invoke_url(self) -> str:
        return f"{self.url}2015-03-31/functions/{self.config.function_name}/invocations"

    @property
    def stream_invoke_url(self) -> str:
        name = self.config.function_name
        return f"{self.url}2021-11-15/functions/{name}/response-streaming-invocations"

    @property
    def records(self) -> asyncio.Queue[Any]:
        return self.emulator.records

    async def start(self) -> None:
        """Listen, start the runtime, wait for its init hooks.

        Raises:
            InitError: an init hook failed (the runtime reported it and exited).
        """
        await self.emulator.start()
        config = RuntimeConfig(
            RuntimeApiAddress.parse(self.emulator.runtime_api),
            concurrency=self.config.concurrency,
            deadline_margin=self.deadline_margin,
        )
        self.runtime = runtime = Runtime(self.handler, config, self.lifecycle)
        self._task = task = asyncio.get_running_loop().create_task(
            runtime.serve(), name="duplexlambda-emulated-runtime"
        )
        ready = asyncio.ensure_future(runtime.ready.wait())
        try:
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            await asyncio.wait({ready})
        if task.done():
            failure = self.emulator.dispatcher.init_error
            await self.aclose()
            if failure is None:
                raise InitError("Runtime.ExitError", "the runtime exited during init")
            error = InvocationError.from_payload(failure.error_type, failure.payload)
            raise InitError(error.error_type, error.message, error.trace, error.payload)

    async def aclose(self) -> None:
        """Stop the runtime as SIGTERM does, then the emulator."""
        task, self._task = self._task, None
        if task is not None and self.runtime is not None:
            await _stop_runtime(self.runtime, task, self.config.timeout + 5)
        await self.emulator.close()
        if task is not None and not task.cancelled():
            task.result()

    async def __aenter__(self) -> EmulatedFunction:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _stop_runtime(runtime: Runtime | None, task: asyncio.Task[Any], grace: float) -> None:
    """Stop a runtime as SIGTERM does; cancel it if it has not finished within ``grace``."""
    if runtime is not None:
        runtime.stop()
    await asyncio.wait({task}, timeout=grace)
    if not task.done():
        task.cancel()
        await asyncio.wait({task})


__all__ = [
    "DEFAULT_BASE_URL",
    "EmulatedFunction",
    "HeaderMap",
    "HttpResponse",
    "InMemoryRuntimeApi",
    "InitError",
    "InvocationError",
    "InvokeResult",
    "LambdaClient",
    "MemoryTransport",
    "memory_pipe",
]
