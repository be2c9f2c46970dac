"""The Runtime API client: one method per endpoint, over ``transport`` connections.

Keep-alive connections serve ``/next`` and buffered posts; every streaming ``/response`` gets
a fresh connection that is closed after its 202 (docs/runtime-api.md §3.3.2). Any 2xx counts as
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
        self._next_request = wire.next_request(address)  # the same bytes every poll

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
        await self._post(
            wire.response_request(self.address, request_id, len(body), content_type), body
        )

    async def post_error(
        self, request_id: str | None, payload: ErrorPayload, xray_cause: bytes | None = None
    ) -> None:
        """``POST /invocation/{id}/error``, or ``/init/error`` when ``request_id`` is None."""
        body = wire.encode_error(payload)
        head = wire.error_request(
            self.address, request_id, payload.errorType, len(body), xray_cause
        )
        await self._post(head, body)

    async def open_stream(
        self, request_id: str, content_type: str, first: bytes = b""
    ) -> ClientConnection:
        """Start a streaming ``/response`` on a fresh connection; the head (and ``first``,
        already framed: the prelude chunks) is sent in one write.

        The caller writes chunks, ends the body, reads the response head, then closes it.
        """
        conn = await self._connect(self.address)
        conn.expect_response(b"POST")
        conn.write(wire.streaming_response_request(self.address, request_id, content_type) + first)
        return conn

    async def finish_stream(self, conn: ClientConnection) -> None:
        """Read the answer to a streaming ``/response`` and close its connection.

        Raises:
            RuntimeApiRejected / RuntimeApiFatalError: as for buffered posts.
            RemoteProtocolError / BrokenResourceError: the connection broke first.
        """
        try:
            head = await conn.read_head()
            body = await conn.read_all(MAX_API_BODY)
        finally:
            conn.close()
        self._raise_for(head, body)


__all__ = [
    "RemoteProtocolError",
    "RuntimeApiClient",
    "RuntimeApiFatalError",
    "RuntimeApiRejected",
]
