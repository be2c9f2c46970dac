"""One invocation being served: its event, its ``req`` source, its ``res`` and its handler task.

The event says which front sent it (``events.detect``; docs/fronts.md), and so how ``req`` reads
it and which format ``res`` answers in.

The invocation owns the ``/next`` connection through its ``NextBody`` for as long as it runs,
and settles it exactly once (``finish()``); the response owns the answer's state. The loop
(``loop.py``) only decides what to run and when.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from duplexlambda.context import LambdaContext
from duplexlambda.events import Front, HttpRequest, detect, parse_request
from duplexlambda.events.body import utf8_or_base64
from duplexlambda.handler import Style
from duplexlambda.protocol.prelude import HTTP_REQUEST_STREAM, MAX_REQUEST_PRELUDE, PreludeDecoder
from duplexlambda.protocol.runtime_api import InvocationHead
from duplexlambda.runtime.connection import ClientConnection
from duplexlambda.runtime.marshal import UnmarshalError
from duplexlambda.runtime.request import BodySource, BytesSource, NextBody, Request
from duplexlambda.runtime.response import Response

if TYPE_CHECKING:
    from duplexlambda.runtime.loop import Runtime


class Cancelled(Exception):
    """Why the runtime cancelled a handler: the deadline, or the client went away."""


class HandlerFault(Exception):
    """A handler raised a ``BaseException`` that is not a request to exit.

    ``asyncio.CancelledError`` the runtime did not ask for, ``GeneratorExit`` and the like fail
    their invocation (reported with the original's type and traceback); only ``SystemExit`` and
    ``KeyboardInterrupt`` end the process.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


async def _guarded(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run the handler so that no ``BaseException`` of its own leaves its task.

    The task must not finish with ``GeneratorExit``: asyncio would throw it into the
    coroutines awaiting the task, closing the runtime's loop. A ``CancelledError`` nobody
    asked for (the task is not being cancelled) is the handler's own doing too.
    """
    try:
        return await coro
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise HandlerFault(exc) from None
    except (Exception, SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise HandlerFault(exc) from None


def call_sync(handler: Callable[..., Any], *args: Any) -> Any:
    """Call a blocking handler (in a worker thread) with the same rule as ``_guarded``."""
    try:
        return handler(*args)
    except (Exception, SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise HandlerFault(exc) from None


class ServedInvocation:
    """One invocation being served by the runtime (the emulator has its own ``Invocation``)."""

    def __init__(self, runtime: Runtime, head: InvocationHead, conn: ClientConnection) -> None:
        self.runtime = runtime
        self.head = head
        self.next_body = NextBody(conn, runtime.client.release)
        self.context: LambdaContext | None = None
        self.event: Any = None
        #: the front that sent the event (``Front.NONE``: a plain invocation)
        self.front = Front.NONE
        #: the HTTP request in the event, parsed for a duplex handler's ``req``
        self.request: HttpRequest | None = None
        self.source: BodySource = BytesSource(b"")
        self.res: Response | None = None
        self._task: asyncio.Task[Any] | None = None
        self._why: str | None = None

    def finish(self) -> None:
        """The invocation has ended: settle the ``/next`` connection and close ``req``."""
        self.next_body.settle()
        self.source.settle()

    # --- reading the event -----------------------------------------------------------------

    async def read_event(self, style: Style) -> None:
        """Read the event off the ``/next`` body (the prelude only, for a live stream)."""
        if self.head.content_type.startswith(HTTP_REQUEST_STREAM):
            await self._read_stream_prelude(style)
            if style is not Style.DUPLEX:
                await self._buffer_stream_body()
            return
        payload = await self.next_body.read_all()
        is_json = self.head.content_type.startswith("application/json")
        try:
            self.event = msgspec.json.decode(payload) if is_json else payload
        except msgspec.DecodeError as exc:
            if style is not Style.DUPLEX:
                raise UnmarshalError(f"Unable to unmarshal input: {exc}") from None
            self.event = None  # a duplex handler reads the raw bytes instead
        self._read_front(style)
        self.source = BytesSource(self.request.body if self.request else payload)

    def _read_front(self, style: Style) -> None:
        """Which front sent the event; its HTTP request too, for a duplex handler's ``req``
        (a handler that takes the event reads it itself: its events are not ours to refuse).
        """
        if style is Style.DUPLEX:
            self.request = parse_request(self.event)
            self.front = self.request.front if self.request else Front.NONE
        else:
            self.front = detect(self.event)

    async def _read_stream_prelude(self, style: Style) -> None:
        decoder = PreludeDecoder(MAX_REQUEST_PRELUDE)
        first: list[memoryview] = []
        while not decoder.complete:
            piece = await self.next_body.next_piece()
            if not piece:
                decoder.eof()
            first = decoder.feed(piece)
        self.event = decoder.prelude
        self._read_front(style)
        self.next_body.push_back(first)
        self.source = self.next_body

    async def _buffer_stream_body(self) -> None:
        """Give a buffered/streaming-style handler the whole event, body included."""
        body = await Request(self.source).read()
        self.next_body.settle()
        assert isinstance(self.event, dict)
        self.event.update(utf8_or_base64(body))
        self.source = BytesSource(body)

    # --- running the handler ---------------------------------------------------------------

    def response(self) -> Response:
        """The invocation's response (created on first use), in its front's format:
        streamed for the fronts the runtime streams (``DUPLEXLAMBDA_STREAMING``), else one
        proxy response JSON; raw bytes for a plain invocation (docs/fronts.md).
        ``DUPLEXLAMBDA_RESPONSE=raw`` sends raw bytes whatever the event, ``http`` gives a
        plain invocation the function URL's prelude.
        """
        if self.res is None:
            mode = self.runtime.config.response_mode
            front: Front | None = self.front
            if mode == "raw" or (front is Front.NONE and mode != "http"):
                front = None
            elif front is Front.NONE:
                front = Front.FUNCTION_URL
            self.res = Response(
                self.runtime.client,
                self.head.request_id,
                front=front,
                streamed=front is None
                or self.front is Front.NONE
                or front in self.runtime.streaming,
                on_broken=lambda: self.cancel("the client went away"),
            )
        return self.res

    def cancel(self, why: str) -> None:
        """Cancel the handler task, remembering why."""
        if self._task is not None and not self._task.done():
            self._why = self._why or why
            self._task.cancel()

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run the handler with the deadline armed.

        Raises:
            Cancelled: the runtime cancelled it (deadline or disconnect).
        """
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(_guarded(coro))
        remaining = self.head.deadline_ms / 1000 - time.time()
        delay = remaining - self.runtime.config.deadline_margin
        timer = loop.call_later(max(delay, 0.0), self.cancel, "deadline")
        try:
            return await self._task
        except asyncio.CancelledError:
            if self._why is not None and self._task.cancelled():
                raise Cancelled(self._why) from None
            raise  # the runtime itself is being cancelled
        finally:
            timer.cancel()
