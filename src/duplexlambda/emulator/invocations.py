"""The Lambda side's model: invocations, their response state, and the queue ``/next`` drains.

An ``Invocation`` is created by a front (function URL or Invoke API), queued in the
``Dispatcher``, handed to a ``GET /next`` long-poll, and answered by the runtime through
``/response`` or ``/error``. What the runtime answers reaches the waiting front as a stream of
result events (``Head``, ``Chunk``..., then exactly one of ``End`` / ``Failure`` /
``Rejected``) through a ``ResultChannel`` that is bounded in bytes, so a slow client slows the
runtime down instead of filling memory.

The response lifecycle is data (``TRANSITIONS``), checked in one place (``Invocation.begin``):
NOT_STARTED -> BUFFERED | STREAMING -> DONE | FAILED (and NOT_STARTED -> FAILED for ``/error``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from duplexlambda.errors import (
    BrokenResourceError,
    InvalidStateTransitionError,
    PayloadTooLargeError,
)
from duplexlambda.events.build import (
    FrontSettings,
    HttpRequestInfo,
    RouteMatch,
    build_event,
    encode_event,
)
from duplexlambda.events.fronts import Front

from .furl import with_body

log = logging.getLogger("duplexlambda.emulator")

#: Lambda's payload cap, both ways, for buffered data: 6 MiB + 100 B (RIE MaxPayloadSize,
#: docs/runtime-api.md §8). Above it a runtime's buffered ``/response`` gets 413.
MAX_PAYLOAD = 6 * 1024 * 1024 + 100
#: Result bytes buffered between the runtime and a slow caller before the runtime waits.
RESULT_HIGH_WATER = 1024 * 1024


class ResponseState(enum.Enum):
    """Where the runtime's answer to one invocation stands."""

    NOT_STARTED = "NOT_STARTED"
    BUFFERED = "BUFFERED"
    STREAMING = "STREAMING"
    DONE = "DONE"
    FAILED = "FAILED"


_S = ResponseState
#: The legal moves. ``/error`` is only legal before a response started (docs/runtime-api.md §3.4);
#: a failure can end any unfinished state (trailer error, truncation, timeout, exit).
TRANSITIONS: dict[ResponseState, frozenset[ResponseState]] = {
    _S.NOT_STARTED: frozenset({_S.BUFFERED, _S.STREAMING, _S.FAILED}),
    _S.BUFFERED: frozenset({_S.DONE, _S.FAILED}),
    _S.STREAMING: frozenset({_S.DONE, _S.FAILED}),
    _S.DONE: frozenset(),
    _S.FAILED: frozenset(),
}


# --- result events (runtime side -> front) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    """The runtime started its response: its content type, and whether it streams."""

    content_type: str
    streaming: bool


@dataclass(frozen=True, slots=True)
class Chunk:
    """Response bytes, one piece as it came off the runtime's connection."""

    data: bytes


@dataclass(frozen=True, slots=True)
class End:
    """The response ended normally."""


@dataclass(frozen=True, slots=True)
class Failure:
    """The invocation failed: ``error_type`` and the error JSON the caller is given.

    ``streamed`` is True when the failure came after response bytes (a trailer error, a
    truncation): what was relayed stays relayed, the caller's stream is cut.
    """

    error_type: str
    payload: bytes
    streamed: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    """The request never reached the function (e.g. 413: the event is over the cap)."""

    status: int
    error_type: str
    message: str


ResultEvent = Head | Chunk | End | Failure | Rejected


def error_payload(error_type: str, message: str) -> bytes:
    """The standard error JSON, ``{"errorMessage": ..., "errorType": ...}``."""
    return msgspec.json.encode({"errorMessage": message, "errorType": error_type})


class ResultChannel:
    """Result events from the runtime side to one consumer, bounded by the bytes it holds.

    ``put`` waits while more than ``high_water`` chunk bytes are unread; a terminal event
    (``End``/``Failure``/``Rejected``) is accepted at once, and only the first one counts.
    ``close()`` says the consumer is gone: later puts are dropped without waiting.
    Iterating yields events up to and including the terminal one.
    """

    def __init__(self, high_water: int = RESULT_HIGH_WATER) -> None:
        self._events: deque[ResultEvent] = deque()
        self._bytes = 0
        self._high = high_water
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self.final: End | Failure | Rejected | None = None  #: the terminal event, once put
        self.closed = False
        # The loop, once known (one get_running_loop(), a getpid() system call, not one per wait).
        self._loop: asyncio.AbstractEventLoop | None = None

    async def put(self, event: Head | Chunk) -> None:
        """Queue a non-terminal event, waiting while the consumer is behind."""
        while self._bytes > self._high and not self.closed and self.final is None:
            loop = self._loop = self._loop or asyncio.get_running_loop()
            waiter = loop.create_future()
            self._putters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._putters:
                    self._putters.remove(waiter)
        if self.closed or self.final is not None:
            return
        self._events.append(event)
        if isinstance(event, Chunk):
            self._bytes += len(event.data)
        self._wake_getter()

    def put_nowait(self, event: Head | Chunk) -> bool:
        """``put()`` if it would not wait (True), else nothing (False): no coroutine per
        chunk on the relay's hot path."""
        if self._bytes > self._high and not self.closed and self.final is None:
            return False
        if self.closed or self.final is not None:
            return True
        self._events.append(event)
        if type(event) is Chunk:
            self._bytes += len(event.data)
        self._wake_getter()
        return True

    def get_nowait(self) -> ResultEvent | None:
        """The next event if one is queued, else None (iterate to wait, and to end)."""
        if not self._events or self.closed:
            return None
        event = self._events.popleft()
        if type(event) is Chunk:
            self._bytes -= len(event.data)
            if self._bytes <= self._high:
                self._wake_putters()
        return event

    def put_final(self, event: End | Failure | Rejected) -> bool:
        """Queue the terminal event; False (and ignored) if there already was one."""
        if self.final is not None:
            return False
        self.final = event
        if not self.closed:
            self._events.append(event)
            self._wake_getter()
        self._wake_putters()
        return True

    def close(self) -> None:
        """The consumer is gone: drop what is held, never make a producer wait again."""
        self.closed = True
        self._events.clear()
        self._bytes = 0
        self._wake_putters()
        self._wake_getter()

    def __aiter__(self) -> ResultChannel:
        return self

    async def __anext__(self) -> ResultEvent:
        """The next event; stops after the terminal one, or once ``close()`` was called."""
        while not self._events:
            if self.closed or self.final is not None:
                raise StopAsyncIteration
            loop = self._loop = self._loop or asyncio.get_running_loop()
            self._getter = loop.create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        if self.closed:
            raise StopAsyncIteration
        event = self._events.popleft()
        if isinstance(event, Chunk):
            self._bytes -= len(event.data)
            if self._bytes <= self._high:
                self._wake_putters()
        return event

    def _wake_getter(self) -> None:
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    def _wake_putters(self) -> None:
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)


# --- payloads ---------------------------------------------------------------------------------


class ByteSource(Protocol):
    """A body still arriving (``emulator.server.Body``)."""

    received: int

    async def read(self) -> bytes: ...

    async def read_all(self, limit: int) -> bytes: ...


@dataclass(eq=False)
class BufferedPayload:
    """An event that is already whole: Invoke API payloads, lambda-mode function-URL events."""

    data: bytes
    content_type: str = "application/json"


@dataclass(eq=False)
class HttpStreamPayload:
    """A duplex-mode function-URL request whose body is still arriving.

    ``event`` is the payload-format 2.0 event without ``body``/``isBase64Encoded``; a runtime
    that asks for the request stream gets it, 8 NULs and then ``body`` as it arrives; any
    other runtime gets the buffered event (body read whole, capped).
    """

    event: dict[str, Any]
    body: ByteSource
    request_content_type: str | None = None


Payload = BufferedPayload | HttpStreamPayload


# --- Lambda's rule for a buffered upload: read it whole, capped -------------------------------

#: What a caller is told when its request is over MAX_PAYLOAD (413), in the Invoke API's words.
REQUEST_TOO_LARGE = "RequestTooLargeException"
REQUEST_TOO_LARGE_MESSAGE = (
    f"Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
)


async def read_capped(body: ByteSource, declared: str | None, limit: int = MAX_PAYLOAD) -> bytes:
    """A body read whole, at most ``limit`` bytes.

    Args:
        body: the body, still arriving.
        declared: the request's ``Content-Length``, if it sent one: above ``limit`` the body
            is refused before a byte of it is read (so no ``100 Continue`` goes out).
        limit: the cap.

    Raises:
        PayloadTooLargeError: more than ``limit`` bytes, declared or seen.
        BrokenResourceError: the body was cut short.
    """
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"declared body over {limit} bytes", int(declared))
    return await body.read_all(limit)


async def buffer_event(
    invocation: Invocation,
    body: ByteSource,
    event: Mapping[str, Any],
    content_type: str | None,
    declared: str | None = None,
) -> None:
    """Read a function-URL upload whole into its 2.0 event, capped as AWS caps the event.

    Sets ``invocation.payload`` to the whole event (so that a requeued invocation keeps it:
    the upload can be read only once), or rejects the invocation, which the function then
    never sees: 413 over the cap, 400 for an upload cut short.

    Args:
        invocation: the invocation the upload belongs to.
        body: the upload, still arriving.
        event: the event without ``body`` / ``isBase64Encoded``.
        content_type: the request's ``Content-Type`` (text bodies stay text).
        declared: the request's ``Content-Length``, as for ``read_capped``.
    """
    try:
        data = with_body(event, await read_capped(body, declared), content_type)
        if len(data) > MAX_PAYLOAD:
            raise PayloadTooLargeError("event over the cap", len(data))
    except PayloadTooLargeError:
        invocation.reject(413, REQUEST_TOO_LARGE, REQUEST_TOO_LARGE_MESSAGE)
        return
    except BrokenResourceError:
        invocation.reject(400, "InvalidRequestContentException", "request body truncated")
        return
    invocation.payload = BufferedPayload(data)


async def buffer_proxy_event(
    invocation: Invocation,
    body: ByteSource,
    front: Front,
    info: HttpRequestInfo,
    settings: FrontSettings,
    content_type: str | None,
    declared: str | None = None,
    request_limit: int | None = None,
    route: RouteMatch | None = None,
) -> None:
    """Read an upload whole into the event ``front`` sends (API Gateway, ALB), capped
    (``route``: the API route the request matched, ``serve --template``).

    As ``buffer_event``: sets ``invocation.payload``, or rejects it (413 over the front's
    ``request_limit`` or, once built, over Lambda's ``MAX_PAYLOAD``; 400 cut short).
    """
    limit = MAX_PAYLOAD if request_limit is None else max(request_limit, 0)
    try:
        data = await read_capped(body, declared, limit)
        event = encode_event(build_event(front, info, data, content_type, settings, route=route))
        if len(event) > MAX_PAYLOAD:
            raise PayloadTooLargeError("event over the cap", len(event))
    except PayloadTooLargeError:
        invocation.reject(413, REQUEST_TOO_LARGE, REQUEST_TOO_LARGE_MESSAGE)
        return
    except BrokenResourceError:
        invocation.reject(400, "InvalidRequestContentException", "request body truncated")
        return
    invocation.payload = BufferedPayload(event)


# --- the invocation ---------------------------------------------------------------------------


def _new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(eq=False)
class Invocation:
    """One invocation, from the front's request to the runtime's last byte."""

    payload: Payload
    request_id: str = field(default_factory=_new_request_id)
    function_arn: str = ""
    trace_id: str | None = None
    client_context: str | None = None
    cognito_identity: str | None = None
    tenant_id: str | None = None
    #: cap on a streamed response, None for none (a buffered one is always MAX_PAYLOAD)
    response_limit: int | None = None
    state: ResponseState = ResponseState.NOT_STARTED
    dispatched: bool = False
    deadline_ms: int = 0
    error_type: str | None = None
    error_body: bytes | None = None
    cancelled: bool = False
    response_bytes: int = 0  #: bytes the runtime sent in /response
    #: event-loop time its runtime's time is up, once dispatched (``Dispatcher._expire``)
    expires_at: float = 0.0
    created_at: float = field(default_factory=time.monotonic)
    results: ResultChannel = field(default_factory=ResultChannel, init=False, repr=False)
    _closers: set[Callable[[], None]] = field(default_factory=set, init=False, repr=False)
    _on_settle: list[Callable[[Invocation], None]] = field(
        default_factory=list, init=False, repr=False
    )

    @property
    def settled(self) -> bool:
        """True once the response is DONE or FAILED."""
        return self.state in (ResponseState.DONE, ResponseState.FAILED)

    def begin(self, target: ResponseState) -> None:
        """Move to ``target``.

        Raises:
            InvalidStateTransitionError: not allowed from the current state.
        """
        if target not in TRANSITIONS[self.state]:
            # RIE words it "State transition from <S1> to <S2> failed for runtime. Error: ...";
            # our state names differ from RAPID's internal ones, the shape is the same.
            raise InvalidStateTransitionError(
                f"State transition from {self.state.value} to {target.value} failed for "
                "runtime. Error: State transition is not allowed"
            )
        self.state = target
        if self.settled:
            for callback in self._on_settle:
                callback(self)
            self._on_settle.clear()

    def on_settle(self, callback: Callable[[Invocation], None]) -> None:
        """Call ``callback(self)`` once the invocation is DONE or FAILED."""
        if self.settled:
            callback(self)
        else:
            self._on_settle.append(callback)

    async def send(self, event: Head | Chunk) -> None:
        """Relay an event to the front (waits while it is behind)."""
        if isinstance(event, Chunk):
            self.response_bytes += len(event.data)
        await self.results.put(event)

    def send_nowait(self, chunk: Chunk) -> bool:
        """``send()`` if it would not wait (True), else nothing (False)."""
        if not self.results.put_nowait(chunk):
            return False
        self.response_bytes += len(chunk.data)
        return True

    def complete(self) -> None:
        """The response ended normally."""
        self.begin(ResponseState.DONE)
        self.results.put_final(End())

    def fail(self, error_type: str, payload: bytes | None = None, message: str = "") -> bool:
        """Fail the invocation (no-op, False, if it had already settled)."""
        if self.settled:
            return False
        streamed = self.state is ResponseState.STREAMING
        self.error_type = error_type
        self.begin(ResponseState.FAILED)
        body = payload if payload is not None else error_payload(error_type, message)
        self.error_body = body
        self.results.put_final(Failure(error_type, body, streamed))
        return True

    def reject(self, status: int, error_type: str, message: str) -> None:
        """Refuse the invocation before the function saw it."""
        if not self.settled:
            self.error_type = error_type
            self.begin(ResponseState.FAILED)
            self.results.put_final(Rejected(status, error_type, message))

    # --- the runtime's connections for this invocation ------------------------------------

    def add_closer(self, closer: Callable[[], None]) -> None:
        """Register how to cut a runtime connection serving this invocation."""
        if self.cancelled:
            closer()
        else:
            self._closers.add(closer)

    def remove_closer(self, closer: Callable[[], None]) -> None:
        self._closers.discard(closer)

    def close_runtime_connections(self) -> None:
        """Cut the runtime's open connections for this invocation (timeout, cancel)."""
        closers, self._closers = self._closers, set()
        for closer in closers:
            closer()

    def cancel(self) -> None:
        """The caller is gone (duplex mode): stop relaying and cut the runtime's streams.

        A streaming runtime sees its connection close and can cancel its handler; the
        invocation then settles on its own (usually ``Runtime.TruncatedResponse``).
        """
        self.cancelled = True
        self.results.close()
        if not self.settled:  # a settled runtime is only waiting for its 202: leave it be
            self.close_runtime_connections()


# --- the queue /next drains ---------------------------------------------------------------------


class Dispatcher:
    """FIFO of invocations handed to ``GET /next`` long-polls, and the timers that bound them.

    Several pollers may wait at once (``AWS_LAMBDA_MAX_CONCURRENCY``): each gets the oldest
    queued invocation. An invocation not picked up, or not answered, within ``timeout``
    seconds fails with ``Sandbox.Timeout``; ``on_timeout`` is then told (to recycle the
    environment, as Lambda does).
    """

    def __init__(
        self, timeout: float, on_timeout: Callable[[Invocation], None] | None = None
    ) -> None:
        self.timeout = timeout
        self._on_timeout = on_timeout
        self._queue: deque[Invocation] = deque()
        self._pollers: deque[asyncio.Future[Invocation | None]] = deque()
        self._known: dict[str, Invocation] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._running_loop: asyncio.AbstractEventLoop | None = None  # see _loop()
        #: cleared by ``hold()``: invocations queue up, no poller gets one until ``release()``
        self._open = asyncio.Event()
        self._open.set()
        #: a ``/runtime/init/error`` report, served to invocations until the runtime recovers
        self.init_error: Failure | None = None

    def submit(self, invocation: Invocation) -> None:
        """Queue an invocation (or fail it at once with a pending init error)."""
        if self.init_error is not None:
            invocation.fail(self.init_error.error_type, self.init_error.payload)
            return
        invocation.on_settle(self._forget_timer)
        self._arm(invocation, self.timeout)
        self._offer(invocation)

    def requeue(self, invocation: Invocation) -> None:
        """Put back an invocation a poller could not take (its connection closed)."""
        if not invocation.settled:
            self._offer(invocation, front=True)

    def hold(self) -> None:
        """Keep new invocations queued for the next runtime (``serve --reload``): no poller
        gets one until ``release()``. Dispatched ones run on."""
        self._open.clear()

    def release(self) -> None:
        """End a ``hold()``: queued invocations go to whoever polls."""
        self._open.set()
        while self._queue and self._pollers:
            invocation = self._queue.popleft()
            if not invocation.settled:
                self._offer(invocation, front=True)

    @property
    def held(self) -> bool:
        return not self._open.is_set()

    async def next(self) -> Invocation:
        """Wait for the next invocation (no timeout: the runtime long-polls, runtime-api 1)."""
        polled = self.poll()
        if not isinstance(polled, asyncio.Future):
            return polled
        try:
            invocation = await polled
        except asyncio.CancelledError:
            self.abandon(polled)
            raise
        assert invocation is not None  # only abandon() or a runtime API poller sets None
        return invocation

    def poll(self) -> Invocation | asyncio.Future[Invocation | None]:
        """The next invocation if one is waiting, else a future it will be handed in.

        A poller that gives up on the future (its runtime hung up, its task was cancelled)
        must ``abandon()`` it; setting the future's result to None first is how a poller
        says why it woke without an invocation. No task per poll: this runs per invocation.
        """
        self._evict_settled()
        if not self.held:
            while self._queue:
                invocation = self._queue.popleft()
                if not invocation.settled:
                    return invocation
        waiter: asyncio.Future[Invocation | None] = self._loop().create_future()
        self._pollers.append(waiter)
        return waiter

    def abandon(self, waiter: asyncio.Future[Invocation | None]) -> None:
        """A poller gives up ``waiter``: an invocation handed to it but not yet seen is
        put back at the front of the queue."""
        if waiter in self._pollers:
            self._pollers.remove(waiter)
        if waiter.done() and not waiter.cancelled():
            invocation = waiter.result()
            if invocation is not None:
                self.requeue(invocation)

    def dispatch(self, invocation: Invocation) -> None:
        """The invocation goes to a runtime now: set its deadline and arm its timer."""
        invocation.dispatched = True
        invocation.deadline_ms = int(time.time() * 1000 + self.timeout * 1000)
        self._known[invocation.request_id] = invocation
        # The clock restarts now. The timer armed at submit() (earlier, so never later than
        # this deadline) stays: it re-arms itself for the rest when it fires (see _expire);
        # cancelling it and arming another would cost two timer operations per invocation.
        invocation.expires_at = self._loop().time() + self.timeout
        if invocation.request_id not in self._timers:
            self._arm(invocation, self.timeout)

    def get(self, request_id: str) -> Invocation | None:
        """The dispatched invocation with this id, unless the runtime has moved past it."""
        return self._known.get(request_id)

    def in_flight(self) -> list[Invocation]:
        """Dispatched invocations the runtime has not answered yet."""
        return [inv for inv in self._known.values() if not inv.settled]

    def has_pending(self) -> bool:
        """True while invocations are dispatched but unanswered."""
        return bool(self.in_flight())

    def report_init_error(self, failure: Failure) -> None:
        """Keep an init error and fail what is queued with it (docs/runtime-api.md §3.5)."""
        self.init_error = failure
        while self._queue:
            self._queue.popleft().fail(failure.error_type, failure.payload)

    def fail_in_flight(self, error_type: str, message: str) -> None:
        """Fail every dispatched, unanswered invocation (the runtime exited)."""
        for invocation in self.in_flight():
            invocation.close_runtime_connections()
            invocation.fail(error_type, message=message)

    def close(self) -> None:
        """Stop: cancel timers and waiting pollers, fail what never ran."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for waiter in self._pollers:
            waiter.cancel()
        while self._queue:
            self._queue.popleft().fail("Sandbox.Failure", message="emulator shutting down")
        for invocation in self.in_flight():
            invocation.fail("Sandbox.Failure", message="emulator shutting down")

    # --- internals ------------------------------------------------------------------------

    def _offer(self, invocation: Invocation, front: bool = False) -> None:
        while self._pollers and not self.held:
            waiter = self._pollers.popleft()
            if not waiter.done():
                waiter.set_result(invocation)
                return
        if front:
            self._queue.appendleft(invocation)
        else:
            self._queue.append(invocation)

    def _evict_settled(self) -> None:
        # A runtime asking for more work has moved past what it answered: from now on those
        # ids are unknown (400 InvalidRequestID), as in RIE where only the current id is valid.
        self._known = {rid: inv for rid, inv in self._known.items() if not inv.settled}

    def _loop(self) -> asyncio.AbstractEventLoop:
        # Kept once known: get_running_loop() is a getpid() system call (its fork check).
        loop = self._running_loop
        if loop is None:
            loop = self._running_loop = asyncio.get_running_loop()
        return loop

    def _arm(self, invocation: Invocation, seconds: float) -> None:
        old = self._timers.pop(invocation.request_id, None)
        if old is not None:
            old.cancel()
        loop = self._loop()
        self._timers[invocation.request_id] = loop.call_later(seconds, self._expire, invocation)

    def _forget_timer(self, invocation: Invocation) -> None:
        handle = self._timers.pop(invocation.request_id, None)
        if handle is not None:
            handle.cancel()

    def _expire(self, invocation: Invocation) -> None:
        self._timers.pop(invocation.request_id, None)
        if invocation.settled:
            return
        left = invocation.expires_at - self._loop().time()
        if invocation.dispatched and left > 0:
            self._arm(invocation, left)  # dispatched after the timer was armed: time remains
            return
        if not invocation.dispatched:
            invocation.fail(
                "Sandbox.Timeout",
                message=f"no runtime took the invocation within {self.timeout:.2f} seconds",
            )
            return
        log.warning("invocation %s timed out after %.2f s", invocation.request_id, self.timeout)
        invocation.close_runtime_connections()
        invocation.fail(
            "Sandbox.Timeout",
            message=f"{invocation.request_id} Task timed out after {self.timeout:.2f} seconds",
        )
        if self._on_timeout is not None:
            self._on_timeout(invocation)
