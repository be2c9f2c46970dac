"""``req``: the request body as an async readable, whatever wire it came on.

Contracts (enforced by tests/streams): reads return ``b""`` only at the end of the body; two
tasks reading at once get ``BusyResourceError``; a body cut short (the uploading client went
away) raises ``BrokenResourceError``; once the invocation has ended, reads that would need the
wire raise ``ClosedResourceError`` (the ``/next`` connection may already serve another
invocation).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import msgspec

from duplexlambda.context import LambdaContext
from duplexlambda.errors import (
    BrokenResourceError,
    ClosedResourceError,
    RemoteProtocolError,
    SingleReader,
)
from duplexlambda.events import Front, HttpRequest, parse_request
from duplexlambda.protocol._types import Buffer
from duplexlambda.runtime.connection import ClientConnection


class BodySource:
    """Where a request body comes from: ``next_piece()`` returns ``b""`` at the end."""

    async def next_piece(self) -> Buffer:
        """The next piece of the body (``b""`` at its end).

        Raises:
            ClosedResourceError: the invocation has ended.
        """
        return b""

    def settle(self) -> None:
        """The invocation has ended: later reads raise ``ClosedResourceError``."""


_ENDED = "the invocation has ended: its request body can no longer be read"


class BytesSource(BodySource):
    """A body that is already whole (the event from a real Lambda ``/next``)."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data
        self._settled = False

    async def next_piece(self) -> Buffer:
        if self._settled:
            raise ClosedResourceError(_ENDED)
        data, self._data = self._data, None
        return data or b""

    def settle(self) -> None:
        self._settled = True
        self._data = None


class NextBody(BodySource):
    """The body of one ``/next`` answer, read off its connection as it arrives.

    This object is the connection's only owner until ``settle()`` (called when the body has
    been read to its end, or by the invocation when it ends) hands the
    connection back to the client, which keeps it only when the body was read to its end;
    from then on reads return ``b""`` (the end was seen) or raise ``ClosedResourceError``,
    and never touch the connection, which may
    already carry the next invocation (a task the handler spawned must not read another
    caller's request).
    """

    def __init__(self, conn: ClientConnection, release: Callable[[ClientConnection], None]):
        self._conn = conn
        self._release = release
        self._first: list[Buffer] = []
        self._settled = False
        self._ended = False  # the body was read to its end

    @property
    def settled(self) -> bool:
        """True once the connection has been handed back."""
        return self._settled

    def push_back(self, pieces: Iterable[Buffer]) -> None:
        """Bytes read past the event prelude: the upload's first pieces."""
        self._first.extend(p for p in pieces if len(p))

    def settle_if_ended(self) -> None:
        """Hand the connection back now if the body has already ended with nothing left
        unread (a request without an upload): the response can then reuse it."""
        if not self._first and not self._settled and self._conn.at_body_end:
            self._ended = True
            self.settle()

    async def read_all(self) -> bytes:
        """The whole body (a plain event), then the connection is settled."""
        try:
            return await self._conn.read_all()
        finally:
            self.settle()

    async def next_piece(self) -> Buffer:
        if self._settled:
            if self._ended:
                return b""  # it saw its end: still the end
            raise ClosedResourceError(_ENDED)
        if self._first:
            return self._first.pop(0)
        piece = self._conn.read_nowait()  # the usual case: the bytes are already here
        if piece is None:
            try:
                piece = await self._conn.read()
            except (RemoteProtocolError, BrokenResourceError) as exc:
                if self._settled:  # settled while this read waited: the connection was closed
                    raise ClosedResourceError(_ENDED) from None
                raise BrokenResourceError(f"request body cut short: {exc}") from exc
        if not len(piece):
            # The whole body is read: the connection is handed back now, so the response
            # (or the next poll) can reuse it instead of opening another.
            self._ended = True
            self.settle()
        return piece

    def settle(self) -> None:
        if not self._settled:
            self._settled = True
            self._first.clear()
            self._release(self._conn)


def _joined(fields: dict[str, list[str]]) -> dict[str, str]:
    # As Lambda joins repeated headers and query parameters in payload 2.0: with commas.
    return {name: ",".join(values) for name, values in fields.items()}


class HttpInfo(msgspec.Struct, frozen=True):
    """The HTTP request of an event with one string per name (the older, joined view).

    Kept for ``duplexlambda.streams``' callers; ``req.http`` is the whole ``HttpRequest``.
    """

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    cookies: dict[str, str]
    raw_query: str = ""


def http_info(event: Any) -> HttpInfo | None:
    """The joined view of ``events.parse_request(event)``; None for a non-HTTP event.

    Raises:
        BadEventBody: a body flagged ``isBase64Encoded`` that is not base64.
    """
    request = parse_request(event)
    if request is None:
        return None
    return HttpInfo(
        request.method,
        request.path,
        _joined(request.headers),
        _joined(request.query),
        request.cookies,
        request.raw_query,
    )


class Request:
    """The invocation's body as an async readable, plus the HTTP details when there are any.

    Fed the same way whatever the wire: a plain event (the body is the payload), an
    HTTP-shaped event (its ``body``, base64-decoded when needed), or the emulator's live
    request stream (upload bytes as they arrive). The HTTP details come from
    ``events.parse_request``, by the rules of the front that sent the event (function URL,
    API Gateway HTTP or REST API, ALB: docs/fronts.md#request).
    """

    def __init__(
        self,
        source: BodySource,
        *,
        event: Any = None,
        context: LambdaContext | None = None,
        http: HttpRequest | None = None,
    ) -> None:
        self._source = source
        self._buf = bytearray()
        self._eof = False
        self._reader = SingleReader("request")
        self.event = event
        self.context = context
        #: the whole HTTP request (every header and query value), None for a plain event
        self.http = http
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None

    # HTTP details (empty for a plain invocation)
    @property
    def is_http(self) -> bool:
        """True when a front (function URL, API Gateway, ALB) sent an HTTP request."""
        return self.http is not None

    @property
    def front(self) -> Front:
        """The front that sent the request (``Front.NONE`` for a plain invocation)."""
        return self.http.front if self.http else Front.NONE

    @property
    def method(self) -> str:
        """The HTTP method (``"POST"`` for a plain invoke)."""
        return self.http.method if self.http else "POST"

    @property
    def path(self) -> str:
        """The request path, decoded, without an API Gateway stage (``"/"`` for a plain
        invoke); ``req.http.raw_path`` is the whole path as the client sent it."""
        return self.http.path if self.http else "/"

    @property
    def headers(self) -> dict[str, str]:
        """Request headers, names lowercased, repeated ones comma-joined (as Lambda joins
        them); ``header_list()`` has every value."""
        if self._headers is None:
            self._headers = _joined(self.http.headers) if self.http else {}
        return self._headers

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, decoded, repeated ones comma-joined; ``query_list()`` has every
        value."""
        if self._query is None:
            self._query = _joined(self.http.query) if self.http else {}
        return self._query

    @property
    def raw_query(self) -> str:
        """The query string, percent-encoded (never encoded twice, whatever the front)."""
        return self.http.raw_query if self.http else ""

    @property
    def cookies(self) -> dict[str, str]:
        """Request cookies by name."""
        return self.http.cookies if self.http else {}

    def header_list(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order; ``[]`` when absent."""
        return list(self.http.headers.get(name.lower(), ())) if self.http else []

    def query_list(self, name: str) -> list[str]:
        """Every value of query parameter ``name``, decoded, in order; ``[]`` when absent."""
        return list(self.http.query.get(name, ())) if self.http else []

    # reading
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
        with self._reader:
            if n < 0:
                while await self._fill():
                    pass
                n = len(self._buf)
            elif not self._buf:
                await self._fill()
            data = bytes(self._buf[:n])
            del self._buf[:n]
            return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``asyncio.IncompleteReadError`` if the body ends first."""
        with self._reader:
            while len(self._buf) < n and await self._fill():
                pass
            if len(self._buf) < n:
                partial = bytes(self._buf)
                self._buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            data = bytes(self._buf[:n])
            del self._buf[:n]
            return data

    async def readline(self) -> bytes:
        """One line including its ``\\n`` (the rest of the body if it has none)."""
        with self._reader:
            start = 0
            while (end := self._buf.find(b"\n", start)) < 0:
                start = len(self._buf)
                if not await self._fill():
                    end = len(self._buf) - 1
                    break
            data = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            return data

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk, as it arrives."""
        # An iterator object, not an async generator: asyncio registers every async
        # generator (a WeakSet entry and a finalizer hook per ``async for``).
        return _Pieces(self)

    async def _next_piece(self) -> bytes | None:
        """The next piece for ``async for``; None at the end of the body."""
        with self._reader:
            piece = b"" if self._eof else await self._source.next_piece()
        if not piece:
            self._eof = True
            return None
        return bytes(piece)

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


class _Pieces(AsyncIterator[bytes]):
    """``async for piece in req``: what ``read()``s left buffered first, then each piece."""

    __slots__ = ("_first", "_req")

    def __init__(self, req: Request) -> None:
        self._req = req
        self._first = True

    async def __anext__(self) -> bytes:
        req = self._req
        if self._first:
            self._first = False
            if req._buf:
                data = bytes(req._buf)
                req._buf.clear()
                return data
        piece = await req._next_piece()
        if piece is None:
            raise StopAsyncIteration
        return piece
