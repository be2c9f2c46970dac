"""``res``: the response as an async writable, streamed to the Runtime API.

Contracts (enforced by tests/streams): status, headers, cookies and content type may change
until the first byte is sent, then raise ``InvalidStreamingOperation``. One ``write()`` is one
HTTP chunk, never merged or split. ``write()`` returns once the bytes are handed to the
transport and waits while its buffer is above the high watermark; a ``write()`` cancelled while
waiting has already queued its bytes. After ``end()`` writes raise ``ClosedResourceError``;
once the Runtime API connection broke they raise ``BrokenResourceError``.

The response is also the one owner of its state when the invocation fails: ``fail()`` decides
between a buffered ``/error`` (nothing sent yet), the error trailers (streaming began) and
nothing at all (the stream already ended or broke).

Each front gets its own format (docs/fronts.md): a function URL (and a REST API in STREAM
mode, when ``DUPLEXLAMBDA_STREAMING`` says so) a streamed prelude and body; HTTP APIs, REST
APIs, ALBs one proxy response JSON posted at ``end()``, whose writes are gathered under
Lambda's 6 MB cap. Before ``end()`` a buffered answer has sent nothing, so an error there is
a ``/error``, like one before the first byte of a stream.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from http.cookies import SimpleCookie

from duplexlambda.errors import (
    BrokenResourceError,
    ClosedResourceError,
    InvalidStreamingOperation,
    RemoteProtocolError,
)
from duplexlambda.events import STREAMABLE, BufferedAnswer, Front, streaming_prelude
from duplexlambda.protocol._types import Buffer
from duplexlambda.protocol.chunked import ChunkEncoder
from duplexlambda.protocol.prelude import DELIMITER, HTTP_INTEGRATION_RESPONSE, encode_prelude
from duplexlambda.protocol.runtime_api import ErrorPayload, error_trailers
from duplexlambda.runtime.client import RuntimeApiClient, RuntimeApiRejected
from duplexlambda.runtime.connection import ClientConnection

log = logging.getLogger("duplexlambda")


class StreamState(enum.Enum):
    """Lifecycle of a response: NOT_STARTED -> STREAMING -> ENDED | ERRORED."""

    NOT_STARTED = "not started"
    STREAMING = "streaming"
    ENDED = "ended"
    ERRORED = "errored"


class ResponseHeaders(MutableMapping[str, str]):
    """Response headers: names keep the case they were first set with, lookups ignore case.

    ``headers[name] = value`` replaces; ``add(name, value)`` adds another value (a repeated
    field), which each front's format then carries its own way (docs/fronts.md#answers);
    ``headers[name]`` reads every value comma-joined. Frozen once the response has started.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, list[str]]] = {}
        self._frozen = False

    def _check(self) -> None:
        if self._frozen:
            raise InvalidStreamingOperation("Cannot change headers, the response has started")

    def __getitem__(self, key: str) -> str:
        return ", ".join(self._data[key.lower()][1])

    def __setitem__(self, key: str, value: str) -> None:
        self._check()
        old = self._data.get(key.lower())
        self._data[key.lower()] = (old[0] if old else key, [value])

    def add(self, key: str, value: str) -> None:
        """Add a value to ``key`` (a repeated header field).

        Raises:
            InvalidStreamingOperation: the response has started.
        """
        self._check()
        old = self._data.get(key.lower())
        if old is None:
            self._data[key.lower()] = (key, [value])
        else:
            old[1].append(value)

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key``, in order (``[]`` when unset)."""
        entry = self._data.get(key.lower())
        return list(entry[1]) if entry else []

    def fields(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, a repeated name once per value."""
        return [(name, value) for name, values in self._data.values() for value in values]

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

#: Framed preludes by (front, status, fields, cookies): most functions answer with a handful
#: of distinct heads, and building one (front rules, JSON, framing) cost more than the rest of
#: opening the stream. Cleared when full, so odd heads cannot grow it.
_PreludeKey = tuple[Front, int, tuple[tuple[str, str], ...], tuple[str, ...]]
_PRELUDES: dict[_PreludeKey, bytes] = {}
_PRELUDES_KEPT = 256


class Response:
    """The invocation's response as an async writable, in the format its front reads.

    ``front`` None: a plain invocation, the bytes go out as they are. A streamed front
    (a function URL, a REST API in STREAM mode): a prelude (status, headers, cookies) goes
    first, as its own chunk, then the 8 NUL bytes as their own chunk (cargo-lambda needs
    that), even when the body is empty (docs/runtime-api.md P1); then one chunk per write. A
    buffered front (HTTP APIs, buffered REST APIs, ALBs, a BUFFERED function URL): the writes
    are gathered under Lambda's 6 MB cap and ``end()`` posts the front's proxy response JSON
    as one buffered ``/response`` (docs/fronts.md#buffered).
    """

    def __init__(
        self,
        client: RuntimeApiClient,
        request_id: str,
        *,
        front: Front | None = None,
        streamed: bool = True,
        on_broken: Callable[[], None] | None = None,
    ) -> None:
        if front is not None and streamed and front not in STREAMABLE:
            raise ValueError(f"{front.value} cannot take a streamed answer")
        self._client = client
        self._request_id = request_id
        self._front = front
        self._http = front is not None
        self._streamed = streamed or front is None
        self._on_broken = on_broken
        self._status = 200
        self.headers = ResponseHeaders()
        self._cookies: list[str] = []
        self._content_type = "application/octet-stream"
        self._state = StreamState.NOT_STARTED
        self._conn: ClientConnection | None = None
        self._gathered: BufferedAnswer | None = None
        self._encoder = ChunkEncoder()
        self._starting: asyncio.Future[None] | None = None
        self._on_close: list[OnClose] = []
        self.bytes_sent = 0

    @property
    def front(self) -> Front | None:
        """The front whose format the answer takes (None: a plain invocation, raw bytes)."""
        return self._front

    @property
    def streamed(self) -> bool:
        """False when the answer is gathered and posted whole at ``end()`` (a buffered front)."""
        return self._streamed

    # metadata, until the first byte
    def _check_not_started(self, what: str) -> None:
        if self._state is not StreamState.NOT_STARTED or self._starting is not None:
            raise InvalidStreamingOperation(f"Cannot set {what}, too late: the response started")

    @property
    def status(self) -> int:
        """HTTP status code (HTTP fronts only); settable until the first byte."""
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
    def state(self) -> StreamState:
        """Where the response is in its lifecycle."""
        return self._state

    @property
    def started(self) -> bool:
        """True once the first byte (or the prelude) has gone out; for a buffered front,
        once the first write has fixed the status and headers."""
        return self._state is not StreamState.NOT_STARTED

    @property
    def closed(self) -> bool:
        """True once the response has ended, in success or error."""
        return self._state in (StreamState.ENDED, StreamState.ERRORED)

    @property
    def broken(self) -> bool:
        """True when the Runtime API connection went away before the response ended."""
        return (
            self._conn is not None
            and self._conn.is_closing
            and self._state is not StreamState.ENDED
        )

    def on_close(self, callback: OnClose) -> None:
        """Run ``callback`` (sync or async) after the stream has finished, in any way."""
        self._on_close.append(callback)

    # streaming
    def _check_writable(self) -> None:
        if self.closed:
            raise ClosedResourceError("the response has ended")

    def _fields(self) -> list[tuple[str, str]]:
        fields = self.headers.fields()
        if "content-type" not in self.headers:
            fields.append(("content-type", "application/octet-stream"))
        return fields

    def _prelude_frames(self) -> bytes:
        assert self._front is not None
        fields = self._fields()
        key: _PreludeKey = (self._front, self._status, tuple(fields), tuple(self._cookies))
        cacheable = True
        try:
            frames = _PRELUDES.get(key)
        except TypeError:  # a value that is not hashable (not a str): built every time
            frames, cacheable = None, False
        if frames is None:
            prelude = streaming_prelude(self._front, self._status, fields, self._cookies)
            # Two chunks: cargo-lambda takes the first chunk as the whole prelude
            # (docs/runtime-api.md P3).
            frames = self._encoder.data(encode_prelude(prelude)) + self._encoder.data(DELIMITER)
            if cacheable:
                if len(_PRELUDES) >= _PRELUDES_KEPT:
                    _PRELUDES.clear()
                _PRELUDES[key] = frames
        return frames

    def _gather(self) -> BufferedAnswer:
        """A buffered front's answer, begun at the first write (the metadata is fixed then)."""
        if self._gathered is None:
            self._gathered = BufferedAnswer(
                self._front or Front.FUNCTION_URL, self._status, self._fields(), self._cookies
            )
            self.headers._frozen = True
            self._state = StreamState.STREAMING
        return self._gathered

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
            conn.on_lost = self._connection_lost
            self._conn = conn
            self._state = StreamState.STREAMING
            self._starting.set_result(None)
            return conn
        except BaseException as exc:
            self._starting.set_exception(exc)
            self._starting.exception()  # retrieved: the caller re-raises it
            raise

    def _connection_lost(self) -> None:
        if self._state is StreamState.STREAMING and self._on_broken is not None:
            self._on_broken()

    async def _finish(self, conn: ClientConnection, last: bytes) -> None:
        """End the body with ``last``, read the answer, and hand the connection back: from
        then on it may carry another invocation, so this response forgets it."""
        conn.on_lost = None
        try:
            try:
                conn.end_request(last)
            except BaseException:
                conn.close()
                raise
            await self._client.finish_stream(conn)  # pools it, or closes it
        finally:
            self._conn = None

    async def write(self, data: Buffer | str) -> None:
        """Send ``data`` as one chunk (an empty write sends nothing); for a buffered front,
        add it to the answer ``end()`` posts.

        Raises:
            ResponseTooLarge: a buffered front's answer would exceed Lambda's 6 MB cap
                (nothing of ``data`` is kept).
            PreludeTooLarge: the status, headers and cookies are more than the front reads.
        """
        conn = self._conn
        if type(data) is bytes and conn is not None and self._state is StreamState.STREAMING:
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
        if not self._streamed:
            self._gather().add(bytes(data))  # the write that crosses 6 MB raises here
            self.bytes_sent += len(data)
            return
        conn = await self._start()
        self._check_writable()
        if len(data):
            conn.write_corked(self._encoder.data(data))
            self.bytes_sent += len(data)
        if conn.needs_drain:
            await conn.drain()

    async def writelines(self, chunks: Iterable[Buffer | str]) -> None:
        """Send each item as its own chunk, framed in one batch."""
        self._check_writable()
        items = [c.encode("utf-8") if isinstance(c, str) else c for c in chunks]
        if not self._streamed:
            for item in items:
                await self.write(item)
            return
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

    async def end(self, data: Buffer | str = b"") -> None:
        """Write ``data``, end the body, and wait for the Runtime API to accept it (for a
        buffered front: post the whole answer).

        Ending an ended response does nothing.

        Raises:
            ResponseTooLarge: a buffered front's answer over Lambda's 6 MB cap.
        """
        if self.closed:
            if data:
                raise ClosedResourceError("the response has ended")
            return
        if data:
            await self.write(data)
        if not self._streamed:
            body = self._gather().finish()
            self._state = StreamState.ENDED
            await self._client.post_response(self._request_id, body, "application/json")
            return
        conn = await self._start()
        self._state = StreamState.ENDED
        await self._finish(conn, self._encoder.end())

    async def fail(self, payload: ErrorPayload | None, xray_cause: bytes | None = None) -> None:
        """Report that the invocation failed, the one way its state still allows.

        Nothing sent yet: the stream is dropped and the error goes to ``/error`` (the caller
        sees a clean function error). Streaming began: the body ends with the error trailers
        (docs/runtime-api.md §3.3.3), so what was sent stays delivered. Already ended, or the
        connection broke, or ``payload`` is None (the client went away): the stream is
        dropped, there is nobody left to tell. ``xray_cause`` goes with a ``/error`` only
        (trailers have no room for it). Refusals and broken connections are logged,
        never raised.
        """
        if payload is None or self.broken or self.closed:
            if self.broken:
                log.warning("invocation %s: the response stream broke", self._request_id)
            self.abort()
            return
        try:
            if self._conn is not None:
                self._state = StreamState.ERRORED
                await self._finish(self._conn, self._encoder.end(error_trailers(payload)))
            else:
                self.abort()
                await self._client.post_error(self._request_id, payload, xray_cause)
        except RuntimeApiRejected as rejected:
            log.error("error report for %s refused: %s", self._request_id, rejected)
        except (BrokenResourceError, RemoteProtocolError, OSError) as broken:
            log.error("could not report the error of %s: %s", self._request_id, broken)
            self.abort()

    def abort(self) -> None:
        """Drop the stream without ending it (the invocation was cancelled)."""
        if self._conn is not None:
            self._conn.close()
        if not self.closed:
            self._state = StreamState.ERRORED

    @property
    def has_on_close(self) -> bool:
        """True when ``on_close`` callbacks wait to run (most responses have none)."""
        return bool(self._on_close)

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
