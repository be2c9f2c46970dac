"""The Runtime API client: one method per endpoint, over ``transport`` connections.

Keep-alive connections serve ``/next``, buffered posts and streaming ``/response``s alike, as
Node's keep-alive agent does for its streams (docs/runtime-api.md §3.3.2); a connection goes
back to the pool only when its last exchange ended cleanly on both sides. Any 2xx counts as
accepted (cargo-lambda answers 200, Lambda 202); a 500 means the environment is broken and
the runtime must exit (``RuntimeApiFatalError``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from duplexlambda.errors import DuplexLambdaError, RemoteProtocolError
from duplexlambda.protocol import runtime_api as wire
from duplexlambda.protocol.http1 import ResponseHead
from duplexlambda.protocol.runtime_api import ErrorPayload, InvocationHead, RuntimeApiAddress
from duplexlambda.runtime.connection import ClientConnection, connect

log = logging.getLogger("duplexlambda.api")

#: Largest error body the API may send back to us (its JSON errors are tiny).
MAX_API_BODY = 64 * 1024


class RuntimeApiFatalError(DuplexLambdaError):
    """The Runtime API answered 500: "non-recoverable state, runtime should exit"."""

    error_type = "Runtime.ApiError"


class RuntimeApiRejected(DuplexLambdaError):
    """The Runtime API refused a post (400, 403, 404, 413): logged, then the runtime goes on."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"Runtime API answered {status}: {body[:500]!r}")
        self.status = status
        self.body = body


class RuntimeApiClient:
    """Talks to ``AWS_LAMBDA_RUNTIME_API`` on behalf of one or more invocation loops."""

    def __init__(
        self,
        address: RuntimeApiAddress,
        *,
        connector: Callable[[RuntimeApiAddress], Awaitable[ClientConnection]] = connect,
    ) -> None:
        self.address = address
        #: opens a connection; ``duplexlambda.testing`` swaps in in-memory pipes
        self._connect = connector
        self._idle: list[ClientConnection] = []
        #: request heads from templates: only the request id changes between invocations
        self._heads = wire.RequestHeads(address)
        self._next_request = self._heads.next  # the same bytes every poll

    async def _acquire(self) -> ClientConnection:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn
            conn.close()
        return await self._connect(self.address)

    def release(self, conn: ClientConnection) -> None:
        """Return a connection for reuse, or close it if its last response is not finished."""
        if not conn.reusable:
            conn.close()
        elif conn not in self._idle:
            self._idle.append(conn)

    def close(self) -> None:
        """Close idle connections."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def next(self) -> tuple[InvocationHead, ClientConnection]:
        """Long-poll ``/next`` (no timeout, ever: docs/runtime-api.md §1).

        Returns the invocation and the connection whose body carries its event; read the body
        from it, then ``release()`` it. An empty 204 (some emulators) means "poll again".

        Raises:
            RuntimeApiFatalError: the API answered 500.
            RemoteProtocolError: an answer that is not an invocation.
        """
        while True:
            conn = await self._acquire()
            conn.expect_response(b"GET")
            try:
                conn.write(self._next_request)
                head = await conn.read_head()
            except BaseException:
                conn.close()
                raise
            if head.status == 200:
                return wire.parse_next(head.headers, int(time.time() * 1000)), conn
            body = await self._finish(conn)
            if head.status == 204:
                continue
            self._raise_for(head, body)

    async def _finish(self, conn: ClientConnection) -> bytes:
        try:
            return await conn.read_all(MAX_API_BODY)
        finally:
            self.release(conn)

    @staticmethod
    def _raise_for(head: ResponseHead, body: bytes) -> None:
        if 200 <= head.status < 300:
            return
        if head.status >= 500:
            raise RuntimeApiFatalError(f"Runtime API answered {head.status}: {body[:500]!r}")
        raise RuntimeApiRejected(head.status, body)

    async def _post(self, head_bytes: bytes, body: bytes) -> None:
        conn = await self._acquire()
        conn.expect_response(b"POST")
        try:
            # One buffer, one send: uvloop's writelines() costs several times a write() of
            # the joined bytes for the small posts that dominate (profiled: 228 vs ~40 µs).
            conn.write(head_bytes + body)
            head = await conn.read_head()
        except BaseException:
            conn.close()
            raise
        self._raise_for(head, await self._finish(conn))

    async def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        """Buffered ``POST /invocation/{id}/response``.

        Raises:
            RuntimeApiRejected: e.g. 413 for a response over 6 MB (do not post /error then).
            RuntimeApiFatalError: 500.
        """
        await self._post(self._heads.response(request_id, len(body), content_type), body)

    async def post_error(
        self, request_id: str | None, payload: ErrorPayload, xray_cause: bytes | None = None
    ) -> None:
        """``POST /invocation/{id}/error``, or ``/init/error`` when ``request_id`` is None."""
        body = wire.encode_error(payload)
        head = self._heads.error(request_id, payload.errorType, len(body), xray_cause)
        await self._post(head, body)

    async def open_stream(
        self, request_id: str, content_type: str, first: bytes = b""
    ) -> ClientConnection:
        """Start a streaming ``/response`` on a pooled connection; the head (and ``first``,
        already framed: the prelude chunks) is corked: it leaves at the end of this loop
        iteration with the writes made by then (a small answer: head, prelude, body and end
        in one send, where each send costs the receiver a wakeup too).

        The caller writes chunks, ends the body (``conn.request_ended``), then hands the
        connection to ``finish_stream``; a stream it drops instead it closes.
        """
        head = self._heads.streaming_response(request_id, content_type)
        conn = await self._acquire()
        conn.expect_response(b"POST")
        try:
            conn.write_corked(head + first)
        except BaseException:
            conn.close()
            raise
        return conn

    async def finish_stream(self, conn: ClientConnection) -> None:
        """Read the answer to a streaming ``/response``, then pool its connection or close it.

        Kept only when the body was ended (``0\r\n\r\n``, trailers or not) before the
        answer came, and the answer was a 2xx with keep-alive: an early answer (413, 4xx) may
        have left part of our body unread on the other side, and a cut stream left it unended.

        Raises:
            RuntimeApiRejected / RuntimeApiFatalError: as for buffered posts.
            RemoteProtocolError / BrokenResourceError: the connection broke first.
        """
        clean = False
        try:
            head = await conn.read_head()
            body = await conn.read_all(MAX_API_BODY)
            clean = conn.request_ended_first and 200 <= head.status < 300
        finally:
            if clean:
                self.release(conn)
            else:
                conn.close()
        self._raise_for(head, body)


__all__ = [
    "RemoteProtocolError",
    "RuntimeApiClient",
    "RuntimeApiFatalError",
    "RuntimeApiRejected",
]
