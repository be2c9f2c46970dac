"""What the fronts share: settings, the dispatcher, records, background tasks, the log tail."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .config import EmulatorConfig, InvocationRecord
from .inspection import Inspector
from .invocations import Dispatcher, Invocation, Payload
from .server import Request, Response

log = logging.getLogger("duplexlambda.emulator")

#: InvokeComplete / X-Amz-Log-Result carry the last 4 KB of the log (docs/runtime-api.md §8).
LOG_TAIL_BYTES = 4096


class LogTail:
    """The last 4 KiB of the runtime's output, for ``X-Amz-Log-Type: Tail``.

    Lambda returns the tail of the invocation's own log; the emulator keeps one tail for the
    whole runtime process, so concurrent invocations share it.
    """

    def __init__(
        self, listener: Callable[[bytes], None] | None = None, size: int = LOG_TAIL_BYTES
    ) -> None:
        self._size = size
        self._buf = bytearray()
        self._listener = listener

    def append(self, data: bytes) -> None:
        if self._listener is not None:
            self._listener(data)
        self._buf += data
        del self._buf[: -self._size]

    def base64(self) -> str:
        return base64.b64encode(bytes(self._buf)).decode("ascii")


#: The 408 of a body that was not received whole within the function's timeout: a body read
#: before the function runs (lambda-mode function URL, Invoke API) is bounded by it too.
UPLOAD_TIMEOUT = "RequestTimeoutException"


def upload_timeout_message(seconds: float) -> str:
    return f"request body not received within {seconds:g} seconds"


def new_trace_id() -> str:
    """An X-Ray trace header, as Lambda passes in ``Lambda-Runtime-Trace-Id``."""
    return new_ids()[1]


def new_ids() -> tuple[str, str]:
    """A request id (a random UUID, as ``str(uuid.uuid4())``) and a trace header, from one
    ``getrandom`` system call (this runs per invocation)."""
    rand = bytearray(os.urandom(36))
    rand[6] = (rand[6] & 0x0F) | 0x40  # version 4
    rand[8] = (rand[8] & 0x3F) | 0x80  # RFC 4122 variant
    u = rand[:16].hex()
    t = rand[16:].hex()
    request_id = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
    trace_id = f"Root=1-{int(time.time()):08x}-{t[:24]};Parent={t[24:]};Sampled=0"
    return request_id, trace_id


class Hub:
    """Shared state of one emulated function, handed to every front."""

    def __init__(
        self,
        config: EmulatorConfig,
        dispatcher: Dispatcher,
        record: Callable[[InvocationRecord], None],
    ) -> None:
        self.config = config
        self.dispatcher = dispatcher
        #: what ``/_duplexlambda/`` shows; None with ``config.inspector`` off
        self.inspector = Inspector() if config.inspector else None
        self.log_tail = LogTail(self.inspector.log if self.inspector is not None else None)
        self._record = record
        self._tasks: set[asyncio.Task[None]] = set()

    def new_invocation(self, payload: Payload, **fields: Any) -> Invocation:
        """An invocation of this function, with its ARN and a trace id."""
        fields.setdefault("function_arn", self.config.function_arn)
        if "trace_id" not in fields:
            request_id, fields["trace_id"] = new_ids()
            fields.setdefault("request_id", request_id)
        return Invocation(payload, **fields)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background task that ``close()`` cancels (async ``Event`` invocations)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self.inspector is not None:
            self.inspector.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def record(
        self,
        kind: str,
        invocation: Invocation,
        request: Request,
        response: Response,
        *,
        truncated: bool = False,
    ) -> InvocationRecord:
        """Record (and log) how an invocation ended for its caller."""
        now = time.monotonic()
        first = response.first_byte_at
        entry = InvocationRecord(
            request_id=invocation.request_id,
            kind=kind,
            status=response.status,
            error_type=invocation.error_type,
            bytes_in=request.body.received,
            bytes_out=response.bytes_sent,
            duration_ms=(now - request.received_at) * 1000,
            ttfb_ms=None if first is None else (first - request.received_at) * 1000,
            truncated=truncated,
        )
        self._record(entry)
        tap = response.tap
        if self.inspector is not None and tap is not None:
            # Straight into the inspector's entry (slots), not through a dict per invocation.
            tap.request_id = entry.request_id
            tap.front = kind
            tap.status = entry.status
            tap.error_type = entry.error_type
            tap.bytes_in = entry.bytes_in
            tap.bytes_out = entry.bytes_out
            tap.duration_ms = entry.duration_ms
            tap.ttfb_ms = entry.ttfb_ms
            tap.truncated = truncated
            tap.response_headers = response.headers
            self.inspector.finish(tap, None, invocation.error_body)
        return entry


class cancel_on_disconnect:  # (lower case: it replaced a function of that name)
    """While inside, a caller hang-up cancels ``invocation`` (duplex mode).

    In lambda mode (``enabled`` False) nothing happens: AWS keeps running, and billing, a
    function whose caller left (docs/runtime-api.md P14), so the front keeps consuming its results.

    A callback on the request, not a task awaiting its ``disconnected`` event: this runs
    for every invocation, and a task costs several event-loop passes. The cancel itself
    waits for the next loop pass, as it did behind such a task: what the runtime sent in the
    same pass is read first, so cutting its connection does not reset it with data unread.
    """

    __slots__ = ("_enabled", "_handle", "_invocation", "_request")

    def __init__(self, request: Request, invocation: Invocation, enabled: bool) -> None:
        self._request = request
        self._invocation = invocation
        self._enabled = enabled
        self._handle: asyncio.Handle | None = None

    async def __aenter__(self) -> None:
        if self._enabled:
            self._request.on_disconnect(self._hung_up)

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._enabled:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._request.remove_disconnect(self._hung_up)

    def _hung_up(self) -> None:
        self._handle = asyncio.get_running_loop().call_soon(self._invocation.cancel)
