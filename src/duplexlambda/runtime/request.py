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
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from duplexlambda.context import LambdaContext
from duplexlambda.errors import (
    BrokenResourceError,
    ClosedResourceError,
    RemoteProtocolError,
    SingleReader,
)
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

    This object is the connection's only owner for the life of the invocation. ``settle()``
    (called once by the invocation, when it has read the whole body or when it ends) hands the
    connection back to the client, which keeps it only when the body was read to its end;
    from then on reads raise ``ClosedResourceError`` and never touch the connection, which may
    already carry the next invocation (a task the handler spawned must not read another
    caller's request).
    """

    def __init__(self, conn: ClientConnection, release: Callable[[ClientConnection], None]):
        self._conn = conn
        self._release = release
        self._first: list[Buffer] = []
        self._settled = False

    @property
    def settled(self) -> bool:
        """True once the connection has been handed back."""
        return self._settled

    def push_back(self, pieces: Iterable[Buffer]) -> None:
        """Bytes read past the event prelude: the upload's first pieces."""
        self._first.extend(p for p in pieces if len(p))

    async def read_all(self) -> bytes:
        """The whole body (a plain event), then the connection is settled."""
        try:
            return await self._conn.read_all()
        finally:
            self.settle()

    async def next_piece(self) -> Buffer:
        if self._settled:
            raise ClosedResourceError(_ENDED)
        if self._first:
            return self._first.pop(0)
        try:
            return await self._conn.read()
        except (RemoteProtocolError, BrokenResourceError) as exc:
            if self._settled:  # settled while this read waited: the connection was closed
                raise ClosedResourceError(_ENDED) from None
            raise BrokenResourceError(f"request body cut short: {exc}") from exc

    def settle(self) -> None:
        if not self._settled:
            self._settled = True
            self._first.clear()
            self._release(self._conn)


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
        self._reader = SingleReader("request")
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

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk, as it arrives."""
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            yield data
        while True:
            with self._reader:
                piece = b"" if self._eof else await self._source.next_piece()
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
