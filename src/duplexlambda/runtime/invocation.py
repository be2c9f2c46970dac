"""One invocation being served: its event, its ``req`` source, its ``res`` and its handler task.

The event says which front sent it (``events.detect``; docs/fronts.md), and so how ``req`` reads
it and which format ``res`` answers in.

The invocation owns the ``/next`` connection through its ``NextBody`` for as long as it runs,
and settles it exactly once (``finish()``); the response owns the answer's state. The loop
(``loop.py``) only decides what to run and when.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
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


class HandlerThreads:
    """The threads blocking handlers run in, so they stall neither the other invocations nor
    the deadline timer.

    Leaner than ``asyncio.to_thread`` over a ``ThreadPoolExecutor``, which builds a
    concurrent future (a ``Condition`` and its locks), a work item and a chained asyncio
    future per call: here a job is one queue entry, and its answer one
    ``call_soon_threadsafe``. Each call runs in a copy of the caller's context, as with
    ``to_thread`` (log records name the invocation). A thread is added whenever every
    thread is busy, so a handler that outlives its cancelled invocation never holds up the
    next one; the threads are daemons, so such a handler cannot hold up the exit either.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = 0
        self._busy = 0  # counted on the event loop's thread only

    async def call(self, handler: Callable[..., Any], *args: Any) -> Any:
        """``call_sync(handler, *args)`` in a thread; cancelling abandons the call (the
        thread finishes it, the answer is dropped)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._busy >= self._threads:
            self._threads += 1
            name = f"duplexlambda-handler-{self._threads}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        self._busy += 1
        self._jobs.put((loop, fut, contextvars.copy_context(), handler, args))
        return await fut

    def close(self) -> None:
        """Let the threads end once they are idle."""
        for _ in range(self._threads):
            self._jobs.put(None)
        self._threads = 0

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, fut, ctx, handler, args = job
            job = None  # hold no reference to the event or the result while idle
            result: Any = None
            error: BaseException | None = None
            try:
                result = ctx.run(call_sync, handler, *args)
            except BaseException as exc:  # handed to the awaiting invocation, as to_thread does
                error = exc
            try:
                loop.call_soon_threadsafe(self._settle, fut, result, error)
            except RuntimeError:
                return  # the loop is closed: the runtime has exited
            del loop, fut, ctx, handler, args, result, error

    def _settle(self, fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        self._busy -= 1
        if fut.cancelled():
            return
        if error is None:
            fut.set_result(result)
        else:
            fut.set_exception(error)


_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
]


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
        self._inline = False
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
        self.next_body.settle_if_ended()
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
        """Cancel the handler, remembering why (only while it runs, and only once)."""
        task = self._task
        if task is None or task.done():
            return
        if self._inline:
            if self._why is None:  # one cancel: the uncancel() in run_inline pairs with it
                self._why = why
                task.cancel()
            return
        self._why = self._why or why
        task.cancel()

    def _arm_deadline(self, loop: asyncio.AbstractEventLoop) -> asyncio.TimerHandle:
        remaining = self.head.deadline_ms / 1000 - time.time()
        delay = remaining - self.runtime.config.deadline_margin
        return loop.call_later(max(delay, 0.0), self.cancel, "deadline")

    async def run(
        self,
        coro: Coroutine[Any, Any, Any],
        then: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> Any:
        """Run the handler in a task of its own, with the deadline armed; then, in the same
        task, ``then()`` (the response's ``end()``), no longer under the deadline.

        Its own task gives the handler its own copy of the context: a ``ContextVar`` it sets
        stays with its invocation (as in an ASGI server's task per request). Ending the
        response in that task lets its last writes and the end leave in one send, and saves
        the event-loop pass that would wake this caller in between.

        Raises:
            Cancelled: the runtime cancelled it (deadline or disconnect).
        """
        loop = asyncio.get_running_loop()
        timer = self._arm_deadline(loop)
        self._task = task = loop.create_task(self._handle(coro, timer, then))
        try:
            return await task
        except asyncio.CancelledError:
            if self._why is not None and task.cancelled():
                raise Cancelled(self._why) from None
            raise  # the runtime itself is being cancelled
        finally:
            timer.cancel()

    async def _handle(
        self,
        coro: Coroutine[Any, Any, Any],
        timer: asyncio.TimerHandle,
        then: Callable[[], Coroutine[Any, Any, None]] | None,
    ) -> Any:
        result = await _guarded(coro)
        # The handler is done: neither the deadline nor a disconnect cancels what follows.
        timer.cancel()
        self._task = None
        if then is not None:
            await then()
        return result

    async def run_inline(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run the handler in the calling task, with the deadline armed: no task to create,
        and no event-loop pass to wake the caller when it returns.

        Cancelling (the deadline, a disconnect) cancels the calling task, as
        ``asyncio.timeout`` does, and ``uncancel()`` takes it back, so the caller goes on
        serving. The rules of ``_guarded`` hold: a ``CancelledError`` nobody asked for, a
        ``GeneratorExit`` and the like are the handler's fault. A ``ContextVar`` the handler
        sets stays set in the caller's context.

        Raises:
            Cancelled: the runtime cancelled it (deadline or disconnect).
        """
        task = asyncio.current_task()
        assert task is not None
        self._task, self._inline = task, True
        timer = self._arm_deadline(asyncio.get_running_loop())
        try:
            return await coro
        except asyncio.CancelledError as exc:
            if self._why is not None:
                self._why, why = None, self._why  # taken back below, not in finally
                if task.uncancel() == 0:
                    raise Cancelled(why) from None
                raise  # the runtime itself is being cancelled too
            if task.cancelling():
                raise  # the runtime itself is being cancelled
            raise HandlerFault(exc) from None
        except (Exception, SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            raise HandlerFault(exc) from None
        finally:
            timer.cancel()
            self._inline = False
            self._task = None
            if self._why is not None:  # the handler swallowed the cancel: take it back
                task.uncancel()
