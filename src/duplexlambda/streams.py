"""``req`` and ``res``: the two streams a duplex handler gets.

Contracts (enforced by tests/streams):

* ``Request`` reads return ``b""`` only at the end of the body; two tasks reading at once get
  ``BusyResourceError``; a body cut short (the uploading client went away) raises
  ``BrokenResourceError``.
* ``Response``: status, headers, cookies and content type may change until the first byte is
  sent, then raise ``InvalidStreamingOperation``. One ``write()`` is one HTTP chunk, never
  merged or split. ``write()`` returns once the bytes are handed to the transport and waits
  while its buffer is above the high watermark; a ``write()`` cancelled while waiting has
  already queued its bytes. After ``end()`` writes raise ``ClosedResourceError``; once the
  Runtime API connection broke they raise ``BrokenResourceError``.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from duplexlambda.api import RuntimeApiClient
from duplexlambda.context import LambdaContext
from duplexlambda.errors import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    InvalidStreamingOperation,
    RemoteProtocolError,
)
from duplexlambda.protocol.chunked import ChunkEncoder
from duplexlambda.protocol.prelude import (
    DELIMITER,
    HTTP_INTEGRATION_RESPONSE,
    HttpResponsePrelude,
    encode_prelude,
)
from duplexlambda.protocol.runtime_api import ErrorPayload, error_trailers
from duplexlambda.transport import ClientConnection

log = logging.getLogger("duplexlambda")

Bytes = bytes | bytearray | memoryview


# --- request ---------------------------------------------------------------------------------


class BodySource:
    """Where a request body comes from: ``next_piece()`` returns ``b""`` at the end."""

    async def next_piece(self) -> Bytes:
        """The next piece of the body (``b""`` at its end)."""
        return b""


class BytesSource(BodySource):
    """A body that is already whole (the event from a real Lambda ``/next``)."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    async def next_piece(self) -> Bytes:
        data, self._data = self._data, None
        return data or b""


class LiveSource(BodySource):
    """The emulator's request stream: upload bytes as they arrive on the ``/next`` body."""

    def __init__(self, conn: ClientConnection, first: list[memoryview]) -> None:
        self._conn = conn
        self._first = [p for p in first if len(p)]

    async def next_piece(self) -> Bytes:
        if self._first:
            return self._first.pop(0)
        try:
            return await self._conn.read()
        except RemoteProtocolError as exc:
            raise BrokenResourceError(f"request body cut short: {exc}") from exc

    @property
    def finished(self) -> bool:
        """True when the whole upload has been read."""
        return not self._first and self._conn.reusable


class HttpInfo(msgspec.Struct, frozen=True):
    """The HTTP request behind a function-URL or API Gateway event."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    cookies: dict[str, str]
    raw_query: str = ""


def _cookie_dict(pairs: Iterable[str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for pair in pairs:
        try:
            jar.load(pair)
        except Exception:
            continue
    return {key: morsel.value for key, morsel in jar.items()}


def http_info(event: Any) -> HttpInfo | None:
    """HTTP details of a function-URL / API Gateway event (payload 2.0 or 1.0), else None."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return None
    ctx = event["requestContext"]
    raw_headers = event.get("headers") or {}
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    if isinstance(ctx.get("http"), dict):  # payload format 2.0 (function URLs, HTTP APIs)
        method = str(ctx["http"].get("method", "GET"))
        path = str(event.get("rawPath") or ctx["http"].get("path") or "/")
        raw_query = str(event.get("rawQueryString") or "")
        cookies = _cookie_dict(event.get("cookies") or [])
    elif "httpMethod" in event:  # payload format 1.0 (REST APIs)
        method = str(event["httpMethod"])
        path = str(event.get("path") or "/")
        multi = event.get("multiValueQueryStringParameters") or {}
        single = event.get("queryStringParameters") or {}
        pairs = [(k, v) for k, vs in multi.items() for v in vs] or list(single.items())
        raw_query = "&".join(f"{k}={v}" for k, v in pairs)
        cookies = _cookie_dict([headers.get("cookie", "")])
    else:
        return None
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value  # as Lambda joins them
    return HttpInfo(method, path, headers, query, cookies, raw_query)


class Request:
    """The invocation's body as an async readable, plus the HTTP details when there are any.

    Fed the same way whatever the wire: a plain event (the body is the payload), a
    function-URL event (its ``body``, base64-decoded when needed), or the emulator's live
    request stream (upload bytes as they arrive).
    """

    def __init__(
        self,
        source: BodySource,
        *,
        event: Any = None,
        context: LambdaContext | None = None,
        http: HttpInfo | None = None,
    ) -> None:
        self._source = source
        self._buf = bytearray()
        self._eof = False
        self._busy = False
        self.event = event
        self.context = context
        self.http = http

    # HTTP details (empty for a plain invocation)
    @property
    def is_http(self) -> bool:
        """True for function-URL / API Gateway invocations."""
        return self.http is not None

    @property
    def method(self) -> str:
        """The HTTP method (``"POST"`` for a plain invoke)."""
        return self.http.method if self.http else "POST"

    @property
    def path(self) -> str:
        """The request path (``"/"`` for a plain invoke)."""
        return self.http.path if self.http else "/"

    @property
    def headers(self) -> dict[str, str]:
        """Request headers, names lowercased, repeated ones comma-joined (as Lambda sends)."""
        return self.http.headers if self.http else {}

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, repeated ones comma-joined."""
        return self.http.query if self.http else {}

    @property
    def cookies(self) -> dict[str, str]:
        """Request cookies by name."""
        return self.http.cookies if self.http else {}

    # reading
    def _enter(self) -> None:
        if self._busy:
            raise BusyResourceError("another task is reading this request")
        self._busy = True

    async def _fill(self) -> bool:
        """Read one more piece into the buffer; False at the end of the body."""
        if self._eof:
            return False
        piece = await self._source.next_piece()
        if not piece:
            self._eof = True
            return False
        self._buf += piece
        return True

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all the rest when ``n < 0``); ``b""`` only at the end."""
        self._enter()
        try:
            if n < 0:
                while await self._fill():
                    pass
                n = len(self._buf)
            elif not self._buf:
                await self._fill()
            data = bytes(self._buf[:n])
            del self._buf[:n]
            return data
        finally:
            self._busy = False

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``asyncio.IncompleteReadError`` if the body ends first."""
        self._enter()
        try:
            while len(self._buf) < n and await self._fill():
                pass
            if len(self._buf) < n:
                partial = bytes(self._buf)
                self._buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            data = bytes(self._buf[:n])
            del self._buf[:n]
            return data
        finally:
            self._busy = False

    async def readline(self) -> bytes:
        """One line including its ``\\n`` (the rest of the body if it has none)."""
        self._enter()
        try:
            start = 0
            while (end := self._buf.find(b"\n", start)) < 0:
                start = len(self._buf)
                if not await self._fill():
                    end = len(self._buf) - 1
                    break
            data = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            return data
        finally:
            self._busy = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk, as it arrives."""
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            yield data
        while True:
            self._enter()
            try:
                piece = b"" if self._eof else await self._source.next_piece()
            finally:
                self._busy = False
            if not piece:
                self._eof = True
                return
            yield bytes(piece)

    async def lines(self, encoding: str = "utf-8") -> AsyncIterator[str]:
        """Decoded lines without their line ending; a last line without ``\\n`` counts."""
        while line := await self.readline():
            yield line.rstrip(b"\r\n").decode(encoding)

    async def text(self, encoding: str = "utf-8") -> str:
        """The whole body decoded."""
        return (await self.read()).decode(encoding)

    async def json(self) -> Any:
        """The whole body as JSON (msgspec)."""
        return msgspec.json.decode(await self.read())


# --- response --------------------------------------------------------------------------------


class ResponseState(enum.Enum):
    """Lifecycle of a response: NOT_STARTED -> STREAMING -> ENDED | ERRORED."""

    NOT_STARTED = "not started"
    STREAMING = "streaming"
    ENDED = "ended"
    ERRORED = "errored"


class ResponseHeaders(MutableMapping[str, str]):
    """Response headers: names keep the case they were set with, lookups ignore case.

    Frozen once the response has started.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, str]] = {}
        self._frozen = False

    def _check(self) -> None:
        if self._frozen:
            raise InvalidStreamingOperation("Cannot change headers, the response has started")

    def __getitem__(self, key: str) -> str:
        return self._data[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        self._check()
        old = self._data.get(key.lower())
        self._data[key.lower()] = (old[0] if old else key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        del self._data[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._data


OnClose = Callable[[], Awaitable[None] | None]


class Response:
    """The invocation's response as an async writable, streamed to the Runtime API.

    For HTTP-shaped invocations a prelude (status, headers, cookies) goes first, as its own
    chunk, then the 8 NUL bytes as their own chunk (cargo-lambda needs that), even when the
    body is empty (P1). For plain invocations the bytes go out as they are.
    """

    def __init__(
        self,
        client: RuntimeApiClient,
        request_id: str,
        *,
        http: bool,
        on_broken: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._request_id = request_id
        self._http = http
        self._on_broken = on_broken
        self._status = 200
        self.headers = ResponseHeaders()
        self._cookies: list[str] = []
        self._content_type = "application/octet-stream"
        self._state = ResponseState.NOT_STARTED
        self._conn: ClientConnection | None = None
        self._encoder = ChunkEncoder()
        self._starting: asyncio.Future[None] | None = None
        self._on_close: list[OnClose] = []
        self.bytes_sent = 0

    # metadata, until the first byte
    def _check_not_started(self, what: str) -> None:
        if self._state is not ResponseState.NOT_STARTED or self._starting is not None:
            raise InvalidStreamingOperation(f"Cannot set {what}, too late: the response started")

    @property
    def status(self) -> int:
        """HTTP status code (function URLs only); settable until the first byte."""
        return self._status

    @status.setter
    def status(self, value: int) -> None:
        self._check_not_started("status")
        if not 100 <= int(value) <= 599:
            raise ValueError(f"invalid HTTP status {value}")
        self._status = int(value)

    @property
    def content_type(self) -> str:
        """Content type of the body; settable until the first byte."""
        if self._http:
            return self.headers.get("content-type", "application/octet-stream")
        return self._content_type

    @content_type.setter
    def content_type(self, value: str) -> None:
        self._check_not_started("content-type")
        if self._http:
            self.headers["content-type"] = value
        else:
            self._content_type = value

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        max_age: int | None = None,
        expires: str | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = None,
    ) -> None:
        """Add a ``Set-Cookie`` (sent in the prelude's ``cookies``)."""
        self._check_not_started("cookies")
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        for key, attr in (
            ("max-age", max_age),
            ("expires", expires),
            ("path", path),
            ("domain", domain),
            ("samesite", samesite),
        ):
            if attr is not None:
                morsel[key] = str(attr)
        morsel["secure"] = secure
        morsel["httponly"] = httponly
        self._cookies.append(morsel.OutputString())

    def add_set_cookie(self, value: str) -> None:
        """Add a ready-made ``Set-Cookie`` value (e.g. one a web framework built).

        Raises:
            InvalidStreamingOperation: the response has started.
        """
        self._check_not_started("cookies")
        self._cookies.append(value)

    @property
    def cookies(self) -> list[str]:
        """The ``Set-Cookie`` values set so far."""
        return list(self._cookies)

    @property
    def state(self) -> ResponseState:
        """Where the response is in its lifecycle."""
        return self._state

    @property
    def started(self) -> bool:
        """True once the first byte (or the prelude) has gone out."""
        return self._state is not ResponseState.NOT_STARTED

    @property
    def closed(self) -> bool:
        """True once the response has ended, in success or error."""
        return self._state in (ResponseState.ENDED, ResponseState.ERRORED)

    @property
    def broken(self) -> bool:
        """True when the Runtime API connection went away before the response ended."""
        return (
            self._conn is not None
            and self._conn.is_closing
            and self._state is not ResponseState.ENDED
        )

    def on_close(self, callback: OnClose) -> None:
        """Run ``callback`` (sync or async) after the stream has finished, in any way."""
        self._on_close.append(callback)

    # streaming
    def _check_writable(self) -> None:
        if self.closed:
            raise ClosedResourceError("the response has ended")

    def _prelude_frames(self) -> bytes:
        headers: dict[str, str | list[str]] = {k: self.headers[k] for k in self.headers}
        if "content-type" not in self.headers:
            headers["content-type"] = "application/octet-stream"
        prelude = HttpResponsePrelude(self._status, headers, self._cookies)
        # Two chunks: cargo-lambda takes the first chunk as the whole prelude (P3).
        return self._encoder.data(encode_prelude(prelude)) + self._encoder.data(DELIMITER)

    async def _start(self) -> ClientConnection:
        if self._conn is not None:
            return self._conn
        if self._starting is not None:  # another task is opening the stream
            await asyncio.shield(self._starting)
            assert self._conn is not None
            return self._conn
        self._starting = asyncio.get_running_loop().create_future()
        try:
            self.headers._frozen = True
            content_type = HTTP_INTEGRATION_RESPONSE if self._http else self._content_type
            frames = self._prelude_frames() if self._http else b""
            # The prelude and the NULs are two chunks (cargo-lambda needs that), sent with the
            # request head in one write.
            conn = await self._client.open_stream(self._request_id, content_type, frames)
            conn.closed.add_done_callback(self._connection_closed)
            self._conn = conn
            self._state = ResponseState.STREAMING
            self._starting.set_result(None)
            return conn
        except BaseException as exc:
            self._starting.set_exception(exc)
            self._starting.exception()  # retrieved: the caller re-raises it
            raise

    def _connection_closed(self, _fut: asyncio.Future[None]) -> None:
        if self._state is ResponseState.STREAMING and self._on_broken is not None:
            self._on_broken()

    async def write(self, data: Bytes | str) -> None:
        """Send ``data`` as one chunk (an empty write sends nothing)."""
        conn = self._conn
        if type(data) is bytes and conn is not None and self._state is ResponseState.STREAMING:
            # The hot path of a streaming handler: framed with one format operation, and no
            # coroutine unless the socket buffer is above its high watermark.
            if data:
                conn.write_corked(b"%x\r\n%b\r\n" % (len(data), data))
                self.bytes_sent += len(data)
            if conn.needs_drain:
                await conn.drain()
            return
        self._check_writable()
        if isinstance(data, str):
            data = data.encode("utf-8")
        conn = await self._start()
        self._check_writable()
        if len(data):
            conn.write(self._encoder.data(data))
            self.bytes_sent += len(data)
        await conn.drain()

    async def writelines(self, chunks: Iterable[Bytes | str]) -> None:
        """Send each item as its own chunk, framed in one batch."""
        self._check_writable()
        items = [c.encode("utf-8") if isinstance(c, str) else c for c in chunks]
        conn = await self._start()
        self._check_writable()
        conn.write(self._encoder.data_many(items))
        self.bytes_sent += sum(len(c) for c in items)
        await conn.drain()

    async def flush(self) -> None:
        """Wait until everything written so far has been handed to the kernel."""
        if self._conn is None or self.closed:
            return
        transport = self._conn.transport
        if transport is None or transport.is_closing():
            raise BrokenResourceError("Runtime API connection is closed")
        transport.set_write_buffer_limits(high=0, low=0)
        try:
            await self._conn.drain()
        finally:
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=256 * 1024, low=64 * 1024)

    async def end(self, data: Bytes | str = b"") -> None:
        """Write ``data``, end the body, and wait for the Runtime API to accept it.

        Ending an ended response does nothing.
        """
        if self.closed:
            if data:
                raise ClosedResourceError("the response has ended")
            return
        if data:
            await self.write(data)
        conn = await self._start()
        self._state = ResponseState.ENDED
        conn.write(self._encoder.end())
        await self._client.finish_stream(conn)

    async def fail(self, payload: ErrorPayload) -> None:
        """End a started stream with the error trailers (runtime-api.md 3.3.3)."""
        if self.closed or self._conn is None:
            return
        self._state = ResponseState.ERRORED
        try:
            self._conn.write(self._encoder.end(error_trailers(payload)))
            await self._client.finish_stream(self._conn)
        except BrokenResourceError:
            self._conn.close()

    def abort(self) -> None:
        """Drop the stream without ending it (the invocation was cancelled)."""
        if self._conn is not None:
            self._conn.close()
        if not self.closed:
            self._state = ResponseState.ERRORED

    async def run_on_close(self) -> None:
        """Run the ``on_close`` callbacks; their errors are logged, never raised."""
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_close callback %r failed", callback)
