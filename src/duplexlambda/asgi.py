"""ASGI 3 apps (FastAPI, Starlette, ...) as duplexlambda handlers, streamed both ways.

    from duplexlambda.asgi import asgi

    handler = asgi(app)  # _HANDLER=main.handler; or: duplexlambda run main:app --asgi

What the bridge does, and why:

* One invocation is one ASGI ``http`` scope, built from the request ``req.http`` that
  ``events.parse_request`` read from the event of any front: a function URL, an API Gateway
  HTTP API (payload 2.0 or 1.0) or REST API, an ALB (docs/fronts.md). The app runs on the
  runtime's event loop, the same loop for every warm invocation: Mangum 0.20 calls
  ``asyncio.run`` per invocation, which kills the clients an app opened at startup
  (docs/design-notes.md G.40).
* ``receive()`` returns ``http.request`` messages as the request body arrives; on the
  emulator's duplex wire that is while the client is still uploading.
* ``http.response.start`` is held until the first ``http.response.body``: status, headers
  (a repeated one stays repeated) and every ``Set-Cookie`` go out with it, so an app that
  fails before its first body byte can still answer 500. Each body message is one
  ``res.write``, so ``res`` answers in the front's format: one chunk each behind a streamed
  front, one proxy response JSON with the whole body behind a buffered one (an HTTP API, an
  ALB: a ``StreamingResponse`` arrives there whole). ``more_body=False`` ends the response
  at once, so the client has it while background tasks still run. An app that wants its
  headers out before the first byte of body sends an empty body message with
  ``more_body=True``.
* When the client goes away (the runtime cancels the handler because the response
  connection broke) or the deadline is near, pending and later ``receive()`` calls return
  ``http.disconnect`` and ``send()`` raises ``ClientDisconnected``, an ``OSError`` (ASGI spec
  2.4). After a disconnect the app gets ``disconnect_grace`` seconds to return; at the
  deadline it gets none. Then it is cancelled.
* An exception before the response started becomes a plain ``500 Internal Server Error``
  (logged with its traceback and the request id), as ASGI servers answer; after it started,
  the exception ends the stream with Lambda's error trailers and the function URL cuts the
  client's response short, so the client can tell the body is incomplete.
* ``lifespan`` runs once per execution environment: startup at init, shutdown at SIGTERM.
  The handler brings these as its own init/shutdown hooks (``__duplexlambda_lifecycle__``),
  which ``Runtime.serve`` runs next to the module's ``@on_init`` / ``@on_shutdown``. The
  lifespan ``state`` is shallow-copied into every request scope (ASGI lifespan state).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Literal

from duplexlambda.errors import (
    BrokenResourceError,
    ClosedResourceError,
    DuplexLambdaError,
    LocalProtocolError,
)
from duplexlambda.handler import Lifecycle, Style, set_streaming_fronts
from duplexlambda.runtime.request import Request
from duplexlambda.runtime.response import Response

log = logging.getLogger("duplexlambda.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
LifespanMode = Literal["auto", "on", "off"]

#: What the scopes announce: ASGI 3, HTTP spec 2.4 (``send()`` after a disconnect raises an
#: ``OSError``, so frameworks need no extra task listening for ``http.disconnect``).
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
#: Seconds the app's lifespan coroutine has to return after its final message.
LIFESPAN_END = 5.0
#: Largest ``http.request`` body handed to the app at once.
BODY_MESSAGE_MAX = 256 * 1024
#: Response fields the bridge does not pass on. The function URL frames the body itself
#: (chunked) and would rename a ``content-length`` to ``x-amzn-remapped-content-length``;
#: ``connection`` and ``transfer-encoding`` are hop-by-hop.
_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class ClientDisconnected(BrokenResourceError, OSError):
    """``send()`` after the client went away (ASGI spec 2.4 wants an ``OSError`` there)."""


class ASGIProtocolError(LocalProtocolError):
    """The app sent a message the ASGI HTTP protocol does not allow at that point."""

    error_type = "Runtime.ASGIProtocolError"


class LifespanError(DuplexLambdaError):
    """The app's lifespan startup or shutdown failed (an init error at startup)."""

    error_type = "Runtime.LifespanError"


class UnsupportedEvent(DuplexLambdaError):
    """The invocation is not an HTTP request (function URL, API Gateway), so not ASGI."""

    error_type = "Runtime.UnsupportedEvent"


# --- the scope ---------------------------------------------------------------------------------


def _latin1(text: str) -> bytes:
    # Header bytes are latin-1 in ASGI; an event may carry other characters: keep them (UTF-8).
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _http_version(protocol: str) -> str:
    version = protocol.partition("/")[2] or "1.1"
    return "2" if version.startswith("2") else version


def _host_port(host: str, forwarded_port: str | None, scheme: str) -> tuple[str, int]:
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if forwarded_port and forwarded_port.isdigit():
        return name, int(forwarded_port)
    if port.isdigit():
        return name, int(port)
    return name, 443 if scheme == "https" else 80


def _protocol(event: Any) -> str:
    ctx = event.get("requestContext") if isinstance(event, dict) else None
    if not isinstance(ctx, dict):
        return "HTTP/1.1"
    http = ctx.get("http")
    protocol = http.get("protocol") if isinstance(http, dict) else ctx.get("protocol")
    return str(protocol or "HTTP/1.1")


def http_scope(req: Request, *, root_path: str | None = None) -> dict[str, Any]:
    """The ASGI ``http`` scope of an HTTP invocation, from any front (docs/fronts.md).

    Built from ``req.http``, the request ``events.parse_request`` read by its front's rules:
    ``query_string`` is its ``raw_query`` (percent-encoded once, whatever the front),
    ``headers`` carry every value of a repeated field (and the cookies, which payload 2.0
    moves out of the headers, as one ``cookie`` header), ``root_path`` is its base path (an
    API Gateway stage) unless ``root_path`` is given, and ``path`` / ``raw_path`` are the
    whole path the client used (ASGI's convention: ``path`` starts with ``root_path``).
    ``scheme`` comes from ``x-forwarded-proto`` (``https`` without it: function URLs and API
    Gateway are HTTPS only). The event and the context are in ``aws.event`` / ``aws.context``
    (Mangum's keys).

    Raises:
        UnsupportedEvent: the invocation is not an HTTP request.
    """
    request = req.http
    if request is None:
        raise UnsupportedEvent(
            "an ASGI app only serves HTTP events (function URL, API Gateway, ALB)"
        )
    headers = request.headers
    forwarded = headers.get("x-forwarded-proto") or ["https"]
    scheme = forwarded[0].split(",")[0].strip() or "https"
    host = (headers.get("host") or [""])[0]
    port = (headers.get("x-forwarded-port") or [""])[0]
    return {
        "type": "http",
        "asgi": dict(ASGI_VERSION),
        "http_version": _http_version(_protocol(req.event)),
        "method": request.method,
        "scheme": scheme,
        "path": request.base_path + request.path,
        "raw_path": _latin1(request.raw_path),
        "query_string": _latin1(request.raw_query),
        "root_path": request.base_path if root_path is None else root_path,
        "headers": [(_latin1(k), _latin1(v)) for k, values in headers.items() for v in values],
        "client": (request.source_ip, 0) if request.source_ip else None,
        "server": _host_port(host, port, scheme) if host else None,
        "aws.event": req.event,
        "aws.context": req.context,
    }


# --- one request -------------------------------------------------------------------------------


class _Phase(enum.Enum):
    """Where the app's response stands."""

    WAITING = "waiting for http.response.start"
    STARTED = "started (its head is held until the first body message)"
    STREAMING = "streaming its body"
    COMPLETE = "complete"


#: The legal ``send()`` moves; ``http.response.body`` without ``more_body`` then completes.
_MOVES: dict[tuple[_Phase, str], _Phase] = {
    (_Phase.WAITING, "http.response.start"): _Phase.STARTED,
    (_Phase.STARTED, "http.response.body"): _Phase.STREAMING,
    (_Phase.STREAMING, "http.response.body"): _Phase.STREAMING,
}


class HttpCycle:
    """One request/response exchange between an invocation's ``req``/``res`` and the app."""

    def __init__(self, req: Request, res: Response, scope: Scope) -> None:
        self.req = req
        self.res = res
        self.scope = scope
        self.phase = _Phase.WAITING
        self._head_only = scope["method"] == "HEAD"
        self._status = 200
        self._headers: list[tuple[bytes, bytes]] = []
        self._body_done = False
        self._reading = False
        #: set once the exchange is over for the app: the response completed, or the client
        #: left / the deadline came (``disconnected``); ``receive()`` then says http.disconnect
        self._over: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.disconnected = False

    def _end_exchange(self, *, disconnected: bool) -> None:
        if disconnected and self.phase is not _Phase.COMPLETE:
            self.disconnected = True
        if not self._over.done():
            self._over.set_result(None)

    # --- receive ---------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next ``http.request`` body message; ``http.disconnect`` once it is all over."""
        if self._body_done or self._over.done() or self._reading:
            # Body read (or a second reader): wait for the end of the exchange, as servers do.
            await asyncio.shield(self._over)
            return {"type": "http.disconnect"}
        self._reading = True
        try:
            return await self._read_body()
        finally:
            self._reading = False

    async def _read_body(self) -> Message:
        read = asyncio.ensure_future(self.req.read(BODY_MESSAGE_MAX))
        waiting: set[asyncio.Future[Any]] = {read, self._over}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not read.done():
                read.cancel()
                await asyncio.wait({read})
        if read.cancelled():
            return {"type": "http.disconnect"}
        error = read.exception()
        if isinstance(error, BrokenResourceError):
            # The uploading client hung up: for the app, that is a disconnect.
            log.info("request body cut short: %s", error)
            self._end_exchange(disconnected=True)
            return {"type": "http.disconnect"}
        if error is not None:
            raise error
        data = read.result()
        if not data:
            self._body_done = True
        return {"type": "http.request", "body": data, "more_body": bool(data)}

    # --- send ------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Map one response message onto ``res``.

        Raises:
            ClientDisconnected: the client went away (or the deadline came).
            ASGIProtocolError: a message out of order, or of an unknown type.
        """
        kind = message.get("type")
        if self.disconnected:
            raise ClientDisconnected("the client went away")
        following = _MOVES.get((self.phase, str(kind)))
        if following is None:
            raise ASGIProtocolError(
                f"ASGI message {kind!r} while its response is {self.phase.value}"
            )
        if kind == "http.response.start":
            self._status = int(message["status"])
            self._headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            self.phase = following
            return
        if self.phase is _Phase.STARTED:
            self._apply_head()
        self.phase = following
        body = b"" if self._head_only else bytes(message.get("body", b""))
        try:
            if message.get("more_body", False):
                await self.res.write(body)  # an empty one still sends the prelude
            else:
                self.phase = _Phase.COMPLETE
                await self.res.end(body)
                self._end_exchange(disconnected=False)
        except (BrokenResourceError, ClosedResourceError) as exc:
            self._end_exchange(disconnected=True)
            raise ClientDisconnected(f"the client went away: {exc}") from exc

    def _apply_head(self) -> None:
        res = self.res
        res.status = self._status
        for raw_name, raw_value in self._headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == "set-cookie":
                res.add_set_cookie(value)
            elif name in _DROPPED_HEADERS:
                continue
            else:  # a repeated field stays repeated: each front's format carries it its way
                res.headers.add(name, value)

    # --- running the app -------------------------------------------------------------------

    async def run(self, app: ASGIApp, grace: float) -> None:
        """Run the app for this exchange, in a task of its own so that a cancellation of the
        handler (disconnect, deadline) can be turned into ``http.disconnect`` first.

        Raises:
            ClientDisconnected: the client left (the runtime drops the stream).
            Exception: what the app raised after its response started.
        """

        async def call() -> None:
            await app(self.scope, self.receive, self.send)

        task = asyncio.get_running_loop().create_task(call(), name="duplexlambda-asgi")
        try:
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                self._end_exchange(disconnected=True)
                # The client left: let the app see http.disconnect and wind down. At the
                # deadline there is no time for that: the runtime must report the timeout.
                if self.res.broken and grace > 0 and not task.done():
                    await asyncio.wait({task}, timeout=grace)
                raise
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved here; acted on below
        await self._conclude(task)

    async def _conclude(self, task: asyncio.Task[None]) -> None:
        # An app that cancelled itself failed: never let its CancelledError reach the runtime,
        # which would read it as its own cancellation.
        error: BaseException | None = (
            ASGIProtocolError("the ASGI app cancelled itself")
            if task.cancelled()
            else task.exception()
        )
        if self.phase is _Phase.COMPLETE:
            if error is not None:  # e.g. Starlette re-raises after its own 500 page
                log.error("Exception in ASGI application after its response", exc_info=error)
            return
        if self.disconnected:
            if error is not None:
                log.info("ASGI app ended after the client left: %r", error)
            raise ClientDisconnected("the client went away") from error
        if self.phase is _Phase.STREAMING:
            raise error or ASGIProtocolError("ASGI app returned without completing its response")
        if error is None:
            log.error("ASGI app returned without sending a response")
        else:
            log.error("Exception in ASGI application", exc_info=error)
        await self._internal_error()

    async def _internal_error(self) -> None:
        self.phase = _Phase.COMPLETE
        self.res.status = 500
        self.res.headers["content-type"] = "text/plain; charset=utf-8"
        await self.res.end(b"" if self._head_only else b"Internal Server Error")
        self._end_exchange(disconnected=False)


# --- lifespan ----------------------------------------------------------------------------------


class Lifespan:
    """The ASGI ``lifespan`` protocol, run once: ``startup()`` then ``shutdown()``."""

    def __init__(self, app: ASGIApp, state: dict[str, Any], mode: LifespanMode) -> None:
        self.app = app
        self.state = state
        self.mode = mode
        self.supported = True
        loop = asyncio.get_running_loop()
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._startup: asyncio.Future[Message] = loop.create_future()
        self._shutdown: asyncio.Future[Message] = loop.create_future()
        self._task: asyncio.Task[None] | None = None

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        await self.app(scope, self._inbox.get, self._send)

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            target = self._startup
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            target = self._shutdown
        else:
            raise ASGIProtocolError(f"unexpected lifespan message {kind!r}")
        if target.done():
            raise ASGIProtocolError(f"lifespan message {kind!r} sent twice")
        target.set_result(message)

    async def _answer(self, waiting: asyncio.Future[Message]) -> Message | None:
        """The app's answer, or None if the lifespan task ended without one."""
        assert self._task is not None
        either: set[asyncio.Future[Any]] = {waiting, self._task}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        return waiting.result() if waiting.done() else None

    def _ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is not None and self._startup.done() and not self._shutdown.done():
            # Started fine, then died on its own: say so now, not at shutdown.
            log.error("ASGI lifespan ended with an error", exc_info=error)

    def _task_error(self) -> BaseException | None:
        task = self._task
        if task is None or not task.done():
            return None
        return asyncio.CancelledError() if task.cancelled() else task.exception()

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the app's answer.

        Raises:
            LifespanError: the app reported a failure, or (mode ``"on"``) it raised.
        """
        self._task = asyncio.get_running_loop().create_task(self._main(), name="asgi-lifespan")
        self._task.add_done_callback(self._ended)
        self._inbox.put_nowait({"type": "lifespan.startup"})
        answer = await self._answer(self._startup)
        if answer is None:
            error = self._task_error()
            if self.mode == "auto":
                # As uvicorn does: an app that raises on the lifespan scope does not speak it.
                log.info("ASGI lifespan not supported by the app (%r): going on without", error)
                self.supported = False
                return
            raise LifespanError(f"ASGI lifespan startup failed: {error!r}") from error
        if answer["type"] == "lifespan.startup.failed":
            await self._finish()
            raise LifespanError(f"ASGI lifespan startup failed: {answer.get('message', '')}")

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown``, wait for the answer and for the app's lifespan to end.

        Raises:
            LifespanError: the app reported a failure or raised.
        """
        if not self.supported or self._task is None:
            return
        if self._task.done():
            error = self._task_error()
            raise LifespanError(f"ASGI lifespan ended before shutdown: {error!r}") from error
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        answer = await self._answer(self._shutdown)
        error = await self._finish()
        if answer is None:
            raise LifespanError(f"ASGI lifespan shutdown failed: {error!r}") from error
        if answer["type"] == "lifespan.shutdown.failed":
            raise LifespanError(f"ASGI lifespan shutdown failed: {answer.get('message', '')}")

    async def _finish(self) -> BaseException | None:
        """Let the lifespan task end (cancelled after ``LIFESPAN_END``); its error, if any."""
        assert self._task is not None
        if not self._task.done():
            await asyncio.wait({self._task}, timeout=LIFESPAN_END)
        if not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task})
            return None
        return self._task_error()


# --- the handler -------------------------------------------------------------------------------


class ASGIHandler:
    """A duplex handler (``async def handler(req, res)``) serving an ASGI 3 app.

    One object serves one execution environment at a time: ``startup()`` at init,
    ``shutdown()`` at SIGTERM; after a shutdown it may start again (a new environment, as a
    new ``LambdaClient`` in tests).

    Attributes:
        app: the ASGI app.
        state: the lifespan state, shared (shallow-copied) by every request scope.
    """

    __duplexlambda_style__ = Style.DUPLEX

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: LifespanMode = "auto",
        root_path: str | None = None,
        disconnect_grace: float = 0.5,
        streaming_fronts: Iterable[str] | None = None,
    ) -> None:
        if not callable(app):
            raise TypeError(f"an ASGI app must be callable, not {app!r}")
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {lifespan!r}")
        self.app = app
        self.lifespan_mode: LifespanMode = lifespan
        self.root_path = root_path
        self.disconnect_grace = disconnect_grace
        self.state: dict[str, Any] = {}
        self._lifespan: Lifespan | None = None
        self._starting: asyncio.Future[None] | None = None
        self.__duplexlambda_lifecycle__ = Lifecycle(init=[self.startup], shutdown=[self.shutdown])
        if streaming_fronts is not None:
            set_streaming_fronts(self, streaming_fronts)

    @property
    def started(self) -> bool:
        """True between ``startup()`` and ``shutdown()``."""
        return self._starting is not None and self._starting.done()

    async def startup(self) -> None:
        """Run the lifespan startup (once; later calls wait for the first).

        Raises:
            LifespanError: the app's startup failed.
        """
        if self._starting is not None:
            await asyncio.shield(self._starting)
            return
        self._starting = starting = asyncio.get_running_loop().create_future()
        try:
            if self.lifespan_mode != "off":
                self.state = {}
                self._lifespan = Lifespan(self.app, self.state, self.lifespan_mode)
                await self._lifespan.startup()
        except BaseException as exc:
            self._starting = None
            self._lifespan = None
            starting.set_exception(exc)
            starting.exception()  # retrieved: this caller raises it
            raise
        starting.set_result(None)

    async def shutdown(self) -> None:
        """Run the lifespan shutdown (if it started).

        Raises:
            LifespanError: the app's shutdown failed.
        """
        lifespan, self._lifespan, self._starting = self._lifespan, None, None
        if lifespan is not None:
            await lifespan.shutdown()

    async def __call__(self, req: Request, res: Response) -> None:
        """Serve one invocation (starting the lifespan first if nobody did)."""
        if not self.started:
            await self.startup()
        scope = http_scope(req, root_path=self.root_path)
        scope["state"] = dict(self.state)
        await HttpCycle(req, res, scope).run(self.app, self.disconnect_grace)


def asgi(
    app: ASGIApp,
    *,
    lifespan: LifespanMode = "auto",
    root_path: str | None = None,
    disconnect_grace: float = 0.5,
    streaming_fronts: Iterable[str] | None = None,
) -> ASGIHandler:
    """Serve an ASGI 3 app as a duplexlambda handler.

    Args:
        app: the ASGI app (``FastAPI()``, ``Starlette()``, any ``async (scope, receive, send)``).
        lifespan: ``"auto"`` runs the lifespan protocol unless the app does not speak it,
            ``"on"`` requires it (a failure is an init error), ``"off"`` skips it.
        root_path: the ASGI ``root_path``; by default the event's base path (an API Gateway
            stage such as ``/prod``: docs/fronts.md#base-path).
        disconnect_grace: seconds an app may run on after its client left, before it is
            cancelled.
        streaming_fronts: the fronts that get the app's answers streamed (e.g.
            ``["function-url", "rest-api"]``), over ``DUPLEXLAMBDA_STREAMING``
            (docs/fronts.md#streaming).

    Returns:
        A handler for ``_HANDLER`` (``handler = asgi(app)``) or for ``LambdaClient``.
    """
    return ASGIHandler(
        app,
        lifespan=lifespan,
        root_path=root_path,
        disconnect_grace=disconnect_grace,
        streaming_fronts=streaming_fronts,
    )


__all__ = [
    "ASGIHandler",
    "ASGIProtocolError",
    "ClientDisconnected",
    "LifespanError",
    "UnsupportedEvent",
    "asgi",
    "http_scope",
]
