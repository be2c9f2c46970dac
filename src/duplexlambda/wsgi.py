"""WSGI (PEP 3333) apps (Flask, Django, ...) as duplexlambda handlers, streamed both ways.

    from duplexlambda.wsgi import wsgi

    handler = wsgi(app)  # _HANDLER=main.handler; or: duplexlambda run main:app --wsgi

What the bridge does, and why:

* One invocation is one WSGI call, made in a worker thread of its own (one per request), so a
  blocking app never stalls the event loop: other invocations, the deadline timer and the
  response stream keep running. The ``environ`` comes from the same normalisation as the ASGI
  scope (``asgi.http_scope``: payload format 2.0 or 1.0), so a Flask and a Starlette app see
  the same request. See docs/wsgi.md for every key.
* ``wsgi.input`` is read while the upload arrives: each read that needs bytes the stream does
  not hold yet blocks the worker thread on a ``req`` read run on the loop
  (``asyncio.run_coroutine_threadsafe``). Nothing is read ahead, so an app that stops reading
  stops the upload (backpressure), and the stream ends where the body (or its
  ``Content-Length``) ends. ``wsgi.input_terminated`` is set, so Werkzeug reads a chunked
  upload (no ``Content-Length``) instead of seeing an empty body.
* ``start_response`` only records the status and headers (PEP 3333): they go out with the first
  non-empty body item, or the first ``write()`` call, so an app may still replace them with
  ``exc_info`` until then. Each non-empty item of the response iterable is one ``res.write``
  (one HTTP chunk), sent from the thread through the loop and waited for, so the items keep
  their order and a slow client slows the app down. ``close()`` on the iterable is always
  called. Status, headers and every ``Set-Cookie`` map onto ``res`` as in the ASGI bridge;
  ``Content-Length`` and hop-by-hop headers are not passed on (the function URL frames the
  body itself), but the body is held to the ``Content-Length``: never more, and less is an
  error.
* An exception before the first body byte makes the handler raise, so the runtime reports it
  (``/error``: a 502 on the function URL). Frameworks answer their own 500 before that (Flask
  turns a view's exception into a 500 page), so this is for errors the framework did not
  catch. After the first byte, the exception ends the stream with Lambda's error trailers and
  the client's response is cut short.
* When the client goes away (the runtime cancels the handler because the response connection
  broke) or the deadline comes, the thread's next ``wsgi.input`` read or body write raises
  ``ClientDisconnected`` (an ``OSError``) and the bridge closes the iterable, so a generator
  stops at its next ``yield``. After a disconnect the thread gets ``disconnect_grace`` seconds
  to wind down before the handler returns; a thread cannot be killed, so one blocked
  elsewhere runs on in the background until its next read or write.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import itertools
import logging
import re
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote_to_bytes

from duplexlambda.asgi import ClientDisconnected, UnsupportedEvent, http_scope
from duplexlambda.errors import (
    BrokenResourceError,
    ClosedResourceError,
    LocalProtocolError,
)
from duplexlambda.handler import Style, set_streaming_fronts
from duplexlambda.runtime.request import Request
from duplexlambda.runtime.response import Response

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("duplexlambda.wsgi")
#: Where ``wsgi.errors`` goes: one ERROR record per line the app writes.
errors_log = logging.getLogger("duplexlambda.wsgi.errors")

T = TypeVar("T")

#: What ``wsgi.version`` says.
WSGI_VERSION = (1, 0)
#: Largest piece ``wsgi.input`` asks ``req`` for at once (one loop round trip each).
INPUT_PIECE = 64 * 1024
#: Hop-by-hop fields (RFC 9110 7.6.1) a WSGI app must not send (PEP 3333); dropped.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
#: Response fields not passed on: the hop-by-hop ones, and ``content-length``, since the
#: function URL frames the body itself (chunked) and would rename it to
#: ``x-amzn-remapped-content-length``.
_DROPPED_HEADERS = HOP_BY_HOP | {"content-length"}
#: A field name is a token (RFC 9110 5.1).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: A field value: visible characters, spaces and tabs, obs-text (RFC 9110 5.5); no CR, LF, NUL.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_STATUS = re.compile(r"([1-5][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?")


class WSGIProtocolError(LocalProtocolError):
    """The app broke a rule of PEP 3333 (a bad status or header, ``write()`` before
    ``start_response()``, a body that is not bytes, or shorter than its Content-Length)."""

    error_type = "Runtime.WSGIProtocolError"


# --- the environ -------------------------------------------------------------------------------


def _wsgi_str(raw: bytes) -> str:
    # PEP 3333 "native strings": the bytes as sent, decoded as latin-1.
    return raw.decode("latin-1")


def split_path(req: Request, script_name: str = "") -> tuple[str, str]:
    """``SCRIPT_NAME`` and ``PATH_INFO`` (still percent-encoded) of a request.

    The base path is ``script_name`` when the handler was given one, else the one the event
    says: an API Gateway stage that is part of the path the client used (HTTP API ``rawPath``
    ``/prod/items`` with stage ``prod``); a function URL has none. It is stripped from the
    path when the path starts with it (a REST API's ``path`` never holds the stage).

    This is the only place the bridge reads a base path.
    """
    http = req.http
    path = (http.raw_path if http is not None else "") or req.path or "/"
    base = script_name.rstrip("/") if script_name else (http.base_path if http else "")
    if base and (path == base or path.startswith(base + "/")):
        return base, path[len(base) :]
    return (base if script_name else ""), path


def environ_of(req: Request, *, script_name: str = "") -> dict[str, Any]:
    """The WSGI ``environ`` of a function-URL / API Gateway invocation, without the two
    streams (``wsgi.input``, ``wsgi.errors``), which the handler adds.

    Args:
        req: the invocation's request.
        script_name: the base path the app is mounted at (``SCRIPT_NAME``); ``""`` takes
            the one the event says (see ``split_path``).

    Raises:
        UnsupportedEvent: the invocation is not an HTTP request.
    """
    scope = http_scope(req)
    base, raw_path = split_path(req, script_name)
    query = _wsgi_str(scope["query_string"])
    scheme = str(scope["scheme"])
    server = scope["server"] or ("localhost", 443 if scheme == "https" else 80)
    raw_target = _wsgi_str(scope["raw_path"]) + (f"?{query}" if query else "")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": str(scope["method"]),
        # WSGI paths are decoded: the UTF-8 bytes of the path, as latin-1 (as servers do).
        "SCRIPT_NAME": _wsgi_str(unquote_to_bytes(base.encode("utf-8"))),
        "PATH_INFO": _wsgi_str(unquote_to_bytes(raw_path.encode("utf-8"))),
        "QUERY_STRING": query,
        "RAW_URI": raw_target,
        "REQUEST_URI": raw_target,
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": WSGI_VERSION,
        "wsgi.url_scheme": scheme,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "lambda.event": req.event,
        "lambda.context": req.context,
        # The names other adapters use, so apps moving over keep working.
        "aws.event": req.event,
        "aws.context": req.context,
        "awsgi.event": req.event,
        "awsgi.context": req.context,
    }
    if scope["client"]:
        environ["REMOTE_ADDR"] = str(scope["client"][0])
    for raw_name, raw_value in scope["headers"]:
        if b"_" in raw_name:
            # x_user and x-user would both be HTTP_X_USER: a header spelled with an
            # underscore could pose as the other (as nginx and gunicorn, drop it).
            continue
        name = _wsgi_str(raw_name).upper().replace("-", "_")
        value = _wsgi_str(raw_value)
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        if key in environ:  # repeated: one comma-separated line (the cookie header: "; ")
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            environ[key] = value
    return environ


# --- the two streams ---------------------------------------------------------------------------


class _Bridge:
    """Runs coroutines on the loop for the worker thread, and cuts the thread off when the
    exchange is over for it (the client left, or the deadline came)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future[Any] | None = None
        self.gone = False

    def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``make()`` on the loop and wait for it (in the worker thread).

        Raises:
            ClientDisconnected: the exchange is over, or ends while waiting.
        """
        with self._lock:
            if self.gone:
                raise ClientDisconnected("the client went away")
            coro = make()
            try:
                future = asyncio.run_coroutine_threadsafe(coro, self.loop)
            except RuntimeError:  # the loop has closed
                coro.close()
                raise ClientDisconnected("the runtime has stopped") from None
            self._pending = future
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ClientDisconnected("the client went away") from None
        finally:
            with self._lock:
                self._pending = None

    def mark_gone(self) -> None:
        """The client left (its upload was cut short): later ``call()``s raise."""
        with self._lock:
            self.gone = True

    def cut(self) -> None:
        """The exchange is over for the app (on the loop): the pending and every later
        ``call()`` raise ``ClientDisconnected``."""
        with self._lock:
            self.gone = True
            pending = self._pending
        if pending is not None:
            pending.cancel()


class InputStream:
    """``wsgi.input``: the request body, read from ``req`` as it arrives.

    ``read(n)`` returns ``n`` bytes unless the body ends first (as a buffered file, and as
    gunicorn's input); ``read1(n)`` and ``readinto()`` return what one piece brings, at
    least one byte before the end. Iterating gives lines. Reads never go past the body's end,
    nor past ``limit`` (the request's ``Content-Length``), where they return ``b""``.
    """

    def __init__(self, req: Request, bridge: _Bridge, limit: int | None = None) -> None:
        self._req = req
        self._bridge = bridge
        self._left = limit  # bytes ``req`` may still be asked for (None: up to its end)
        self._buf = bytearray()
        self._eof = False
        #: body bytes taken from ``req`` so far
        self.received = 0

    def _fill(self, want: int = INPUT_PIECE) -> bool:
        """One more piece into the buffer (blocking the thread); False at the end."""
        if self._eof:
            return False
        want = min(max(want, 1), INPUT_PIECE)
        if self._left is not None:
            want = min(want, self._left)
        if want <= 0:
            self._eof = True
            return False
        piece = self._bridge.call(lambda: self._read(want))
        if not piece:
            self._eof = True
            return False
        self._buf += piece
        self.received += len(piece)
        if self._left is not None:
            self._left -= len(piece)
        return True

    async def _read(self, n: int) -> bytes:
        try:
            return await self._req.read(n)
        except (BrokenResourceError, ClosedResourceError) as exc:
            # The uploading client hung up (or the invocation is over): for the app, that is
            # a disconnect, and its answer has nobody to go to (as the ASGI bridge).
            self._bridge.mark_gone()
            raise ClientDisconnected(str(exc)) from exc

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """``size`` bytes (fewer only at the end); all the rest when ``size`` is None or < 0."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buf))
        while len(self._buf) < size and self._fill(size - len(self._buf)):
            pass
        return self._take(size)

    def read1(self, size: int = -1) -> bytes:
        """What is buffered, or else one piece as it arrives (``b""`` only at the end)."""
        if not self._buf:
            self._fill(INPUT_PIECE if size < 0 else size)
        return self._take(len(self._buf) if size < 0 else size)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """``read1`` into ``buffer``; the number of bytes (0 only at the end)."""
        view = memoryview(buffer).cast("B")
        data = self.read1(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        """One line with its ``\\n`` (or ``size`` bytes, or the rest at the end)."""
        limit = -1 if size is None else size
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                n = end + 1
                break
            if 0 <= limit <= len(self._buf):
                n = limit
                break
            start = len(self._buf)
            if not self._fill():
                n = len(self._buf)
                break
        return self._take(n if limit < 0 else min(n, limit))

    def readlines(self, hint: int = -1) -> list[bytes]:
        """The lines left, or lines until they hold ``hint`` bytes."""
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release: the runtime owns the request stream."""


class ErrorStream:
    """``wsgi.errors``: text written here is logged, one ERROR record per line, on the
    ``duplexlambda.wsgi.errors`` logger (with the request id, as every runtime log line)."""

    def __init__(self, logger: logging.Logger = errors_log) -> None:
        self._logger = logger
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._logger.error("%s", line.rstrip("\r"))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._partial:
            self._logger.error("%s", self._partial)
            self._partial = ""


# --- one request -------------------------------------------------------------------------------


def _check_status(status: object) -> int:
    if not isinstance(status, str):
        raise WSGIProtocolError(f"status must be a str like '200 OK', not {status!r}")
    match = _STATUS.fullmatch(status)
    if match is None:
        raise WSGIProtocolError(f"malformed status {status!r} (want '200 OK')")
    return int(match[1])


def _check_headers(headers: object) -> list[tuple[str, str]]:
    if not isinstance(headers, list | tuple):
        raise WSGIProtocolError(f"headers must be a list of (name, value), not {headers!r}")
    checked: list[tuple[str, str]] = []
    for pair in headers:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise WSGIProtocolError(f"a header must be a (name, value) tuple, not {pair!r}")
        name, value = pair
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise WSGIProtocolError(f"invalid header name {name!r}")
        if not isinstance(value, str) or not _FIELD_VALUE.fullmatch(value):
            raise WSGIProtocolError(f"invalid value for header {name!r}: {value!r}")
        checked.append((name, value))
    return checked


def _body_bytes(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    raise WSGIProtocolError(f"a WSGI body must be bytes, not {type(item).__name__}")


class WSGICycle:
    """One WSGI call: the worker thread's side (``start_response``, ``write``, the body
    iteration) and the loop's side (the head and each chunk onto ``res``)."""

    def __init__(self, req: Request, res: Response, environ: dict[str, Any]) -> None:
        self.req = req
        self.res = res
        self.environ = environ
        self.bridge = _Bridge(asyncio.get_running_loop())
        declared = environ.get("CONTENT_LENGTH", "")
        limit = int(declared) if declared.isdigit() else None
        self.input = InputStream(req, self.bridge, limit)
        self.errors = ErrorStream()
        environ["wsgi.input"] = self.input
        environ["wsgi.errors"] = self.errors
        self._head_only = environ["REQUEST_METHOD"] == "HEAD"
        self._status: int | None = None
        self._headers: list[tuple[str, str]] = []
        self._length: int | None = None  # the response's Content-Length, if it has one
        self.head_sent = False
        self.sent = 0  # body bytes handed to ``res``

    # --- the worker thread's side ----------------------------------------------------------

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        """PEP 3333 ``start_response``: records the head; returns ``write``.

        Raises:
            WSGIProtocolError: a bad status or header, or a second call without
                ``exc_info``.
            BaseException: ``exc_info``'s exception, when the head has already gone out.
        """
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])  # type: ignore[union-attr]
            finally:
                exc_info = None  # no reference cycle through the traceback (PEP 3333)
        elif self._status is not None:
            raise WSGIProtocolError("start_response() called again without exc_info")
        code = _check_status(status)
        checked = _check_headers(headers)
        length = None
        for name, value in checked:
            if name.lower() == "content-length":
                if not value.strip().isdigit():
                    raise WSGIProtocolError(f"invalid Content-Length {value!r}")
                length = int(value)
        self._status, self._headers, self._length = code, checked, length
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write()``: sends ``data`` (and the head first) before returning.

        Raises:
            WSGIProtocolError: before ``start_response()``, not bytes, or past the
                Content-Length.
            ClientDisconnected: the client went away.
        """
        if self._status is None:
            raise WSGIProtocolError("write() called before start_response()")
        data = _body_bytes(data)
        if self._length is not None and self.sent + len(data) > self._length:
            raise WSGIProtocolError(
                f"write() past the response's Content-Length ({self._length} bytes)"
            )
        self._send(data, force=True)

    def _send(self, data: bytes, *, force: bool = False) -> None:
        if self._head_only:
            data = b""
        if not data and (self.head_sent or not force):
            return
        head = None
        if not self.head_sent:
            assert self._status is not None
            head = (self._status, list(self._headers))
            self.head_sent = True
        self.bridge.call(lambda: self._write(data, head))
        self.sent += len(data)

    def _body_item(self, item: object) -> bool:
        """Send one item of the response iterable; False once no more may be sent."""
        data = _body_bytes(item)
        if not data:
            return True
        if self._status is None:
            raise WSGIProtocolError("the app returned a body before calling start_response()")
        if self._length is not None:
            data = data[: self._length - self.sent]  # never more than announced (PEP 3333)
        self._send(data)
        if self._head_only:
            return False  # the head is final: a HEAD answer needs no more
        return self._length is None or self.sent < self._length

    def serve(self, app: WSGIApplication) -> None:
        """Call the app and send its body (in the worker thread).

        Raises:
            ClientDisconnected: the client went away.
            WSGIProtocolError: the app broke a rule of PEP 3333.
            Exception: what the app raised.
        """
        try:
            result = app(self.environ, self.start_response)
            try:
                for item in result:
                    if not self._body_item(item):
                        break
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            self.errors.flush()
        if self._status is None:
            raise WSGIProtocolError("the app returned without calling start_response()")
        short = self._length is not None and self.sent < self._length
        if short and not self._head_only and self._status not in (204, 304):
            raise WSGIProtocolError(
                f"the body ended after {self.sent} of its Content-Length {self._length} bytes"
            )

    # --- the loop's side -------------------------------------------------------------------

    async def _write(self, data: bytes, head: tuple[int, list[tuple[str, str]]] | None) -> None:
        if head is not None:
            self._apply_head(*head)
        try:
            await self.res.write(data)  # an empty one still sends the head
        except (BrokenResourceError, ClosedResourceError) as exc:
            raise ClientDisconnected(f"the client went away: {exc}") from exc

    def _apply_head(self, status: int, headers: list[tuple[str, str]]) -> None:
        res = self.res
        res.status = status
        for raw_name, raw_value in headers:
            name = raw_name.lower()
            # A field value has no leading or trailing whitespace (RFC 9110 5.5); Django's
            # Set-Cookie values start with a space (``cookie.output(header="")``).
            value = raw_value.strip(" \t")
            if name == "set-cookie":
                res.add_set_cookie(value)
            elif name in _DROPPED_HEADERS:
                continue
            elif name in res.headers:  # a repeated field: one comma-separated line (RFC 9110 5.3)
                res.headers[name] = f"{res.headers[name]}, {value}"
            else:
                res.headers[name] = value

    async def finish(self) -> None:
        """End the response once the app is done (on the loop): the head, if no byte of
        body took it out, then the end of the stream."""
        if not self.head_sent:
            assert self._status is not None
            self.head_sent = True
            self._apply_head(self._status, self._headers)
        await self.res.end()


# --- the handler -------------------------------------------------------------------------------


_THREAD_NUMBERS = itertools.count(1)


class WSGIHandler:
    """A duplex handler (``async def handler(req, res)``) serving a WSGI app, one worker
    thread per request.

    Attributes:
        app: the WSGI app.
        script_name: the ``SCRIPT_NAME`` the app is mounted at (``""``: as the event says).
        disconnect_grace: seconds the worker thread may run on after its client left, before
            the handler returns without it.
    """

    __duplexlambda_style__ = Style.DUPLEX

    def __init__(
        self, app: WSGIApplication, *, script_name: str = "", disconnect_grace: float = 0.5
    ) -> None:
        if not callable(app):
            raise TypeError(f"a WSGI app must be callable, not {app!r}")
        if script_name and not script_name.startswith("/"):
            raise ValueError(f"script_name must start with '/', not {script_name!r}")
        self.app = app
        self.script_name = script_name.rstrip("/")
        self.disconnect_grace = disconnect_grace

    async def __call__(self, req: Request, res: Response) -> None:
        """Serve one invocation.

        Raises:
            UnsupportedEvent: the invocation is not an HTTP request.
            ClientDisconnected: the client went away.
            Exception: what the app raised (before the first byte: reported to ``/error``;
                after it: the error trailers end the stream).
        """
        environ = environ_of(req, script_name=self.script_name)
        cycle = WSGICycle(req, res, environ)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[BaseException | None] = loop.create_future()
        context = contextvars.copy_context()  # the request id on the app's log records

        def settle(outcome: BaseException | None) -> None:
            if not done.done():
                done.set_result(outcome)

        def work() -> None:
            outcome: BaseException | None = None
            try:
                context.run(cycle.serve, self.app)
            except BaseException as exc:  # handed to the loop, which re-raises it
                outcome = exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(settle, outcome)
            del outcome

        name = f"duplexlambda-wsgi-{next(_THREAD_NUMBERS)}"
        thread = threading.Thread(target=work, name=name, daemon=True)
        thread.start()
        try:
            await asyncio.wait({done})
        except asyncio.CancelledError:
            cycle.bridge.cut()
            # The client left: let the app notice at its next read or write and wind down.
            # At the deadline there is no time for that: the runtime must report the timeout.
            if res.broken and self.disconnect_grace > 0 and not done.done():
                await asyncio.wait({done}, timeout=self.disconnect_grace)
            if not done.done():
                log.warning(
                    "WSGI app still running after the invocation ended: it stops at "
                    "its next read or write"
                )
            raise
        error = done.result()
        if error is not None:
            if cycle.bridge.gone or isinstance(error, ClientDisconnected):
                log.info("WSGI app ended after the client left: %r", error)
            raise error
        await cycle.finish()


def wsgi(
    app: WSGIApplication,
    *,
    script_name: str = "",
    disconnect_grace: float = 0.5,
    streaming_fronts: Iterable[str] | None = None,
) -> WSGIHandler:
    """Serve a WSGI (PEP 3333) app as a duplexlambda handler.

    Args:
        app: the WSGI app (``Flask(__name__)``, Django's ``get_wsgi_application()``, any
            ``app(environ, start_response)``).
        script_name: the ``SCRIPT_NAME`` the app is mounted at (e.g. ``"/api"`` behind a
            path-based route), stripped from ``PATH_INFO`` when the path starts with it;
            ``""`` takes the base path the event says (an API Gateway stage in the path).
        disconnect_grace: seconds the app's thread may run on after its client left, before
            the handler returns without it.
        streaming_fronts: the fronts whose answers stream (``"function-url"``,
            ``"rest-api"``), over ``DUPLEXLAMBDA_STREAMING`` (docs/fronts.md).

    Returns:
        A handler for ``_HANDLER`` (``handler = wsgi(app)``) or for ``LambdaClient``.
    """
    handler = WSGIHandler(app, script_name=script_name, disconnect_grace=disconnect_grace)
    if streaming_fronts is not None:
        set_streaming_fronts(handler, streaming_fronts)
    return handler


__all__ = [
    "ClientDisconnected",
    "ErrorStream",
    "InputStream",
    "UnsupportedEvent",
    "WSGIHandler",
    "WSGIProtocolError",
    "environ_of",
    "split_path",
    "wsgi",
]
