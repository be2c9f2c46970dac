"""The Runtime API, server side: ``/next``, ``/response``, ``/error``, ``/init/error``.

Statuses and JSON bodies follow docs/runtime-api.md §3 and its table §3.7 byte for byte (bodies
are Go-encoded JSON with a trailing newline, as RIE sends them). The request-stream wire of
``/next`` (docs/runtime-api.md §11.2) is offered only to a runtime whose ``Accept``
names ``application/vnd.duplexlambda.http-request-stream``; every other runtime gets the
buffered event, so any runtime works.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from duplexlambda.errors import (
    BrokenResourceError,
    InvalidStateTransitionError,
    PayloadTooLargeError,
)
from duplexlambda.protocol.http1 import Headers
from duplexlambda.protocol.prelude import DELIMITER, HTTP_REQUEST_STREAM

from .invocations import (
    MAX_PAYLOAD,
    BufferedPayload,
    Chunk,
    Dispatcher,
    Failure,
    Head,
    HttpStreamPayload,
    Invocation,
    ResponseState,
    buffer_event,
    error_payload,
    read_capped,
)
from .server import Request, Response
from .throttle import TokenBucket

log = logging.getLogger("duplexlambda.emulator")

PREFIX = "/2018-06-01"
NEXT_PATH = PREFIX + "/runtime/invocation/next"
INIT_ERROR_PATH = PREFIX + "/runtime/init/error"
_INVOCATION_PATH = re.compile(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)")

MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
#: /error bodies of this type carry an X-Ray ``errorCause`` that is not forwarded (3.4).
ERROR_CAUSE_TYPE = "application/vnd.aws.lambda.error.cause+json"

#: How much of an unwanted request body is read (and dropped) before an error reply, so
#: that the runtime can read that reply; a longer body gets the reply and a closed socket.
_DISCARD_LIMIT = 1024 * 1024
_OVERSIZE_DISCARD = 64 * 1024 * 1024
_DISCARD_SECONDS = 5.0
_JSON = [("Content-Type", "application/json")]

_Handler = Callable[[Request, Response], Awaitable[None]]


def _go_json(obj: dict[str, Any]) -> bytes:
    # Go's json.Encoder ends every value with a newline; RIE's bodies therefore do too.
    return msgspec.json.encode(obj) + b"\n"


ACCEPTED = _go_json({"status": "OK"})


def _error_body(error_type: str, message: str) -> bytes:
    return _go_json({"errorMessage": message, "errorType": error_type})


def _too_large_message(limit: int = MAX_PAYLOAD) -> str:
    # RIE's words for a runtime's body over the cap (docs/runtime-api.md §3.7).
    return f"Exceeded maximum allowed payload size ({limit} bytes)."


def trailer_error(trailers: Headers) -> tuple[str, bytes] | None:
    """The mid-stream error a runtime reported in its trailers, if any (runtime-api 3.3.3).

    The type is kept as sent (classic RIE passes it through unscrubbed); the body is base64
    JSON. If it does not decode, the type is kept and the details are left empty, as Lambda
    does, i.e. the caller gets ``{"errorMessage": "", "errorType": <type>}``.
    """
    raw_type = trailers.get(ERROR_TYPE_HEADER)
    if raw_type is None:
        return None
    error_type = raw_type.decode("latin-1").strip()
    raw_body = trailers.get(ERROR_BODY_TRAILER) or b""
    try:
        payload = base64.b64decode(raw_body, validate=True)
    except (binascii.Error, ValueError):
        payload = b""
    return error_type, payload or error_payload(error_type, "")


def _error_report(request: Request, body: bytes) -> tuple[str, bytes]:
    """Error type and caller-facing JSON of an ``/error`` or ``/init/error`` request.

    The type is the header's, else the body's ``errorType`` (the Python and Node clients send
    no header, docs/runtime-api.md P13), else ``Runtime.Unknown``. A body that is not a JSON object
    is replaced by
    a standard error object carrying the type.
    """
    header_type = request.header(ERROR_TYPE_HEADER)
    try:
        value = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        value = None
    body_type = value.get("errorType") if isinstance(value, dict) else None
    error_type = header_type or (body_type if isinstance(body_type, str) else None)
    error_type = error_type or "Runtime.Unknown"
    if not isinstance(value, dict):
        return error_type, error_payload(error_type, body.decode("utf-8", "replace"))
    ctype = (request.header("content-type") or "").split(";", 1)[0].strip()
    if ctype == ERROR_CAUSE_TYPE:
        # RIE forwards only these three fields; errorCause goes to X-Ray.
        value = {k: value[k] for k in ("errorMessage", "errorType", "stackTrace") if k in value}
        return error_type, msgspec.json.encode(value)
    return error_type, body


def _content_type(request: Request) -> str:
    # Propagated to the caller (docs/runtime-api.md §3.3.1); a runtime that sends none gets
    # the generic binary type.
    return request.header("content-type") or "application/octet-stream"


def _accepts_request_stream(request: Request) -> bool:
    for item in request.headers.get_list(b"accept"):
        if item.split(b";", 1)[0].strip().lower() == HTTP_REQUEST_STREAM.encode():
            return True
    return False


class RuntimeApi:
    """The ``AWS_LAMBDA_RUNTIME_API`` server app.

    Args:
        dispatcher: where invocations wait for ``/next``.
        throttle: apply AWS's streaming bandwidth limit to streamed responses.
    """

    def __init__(self, dispatcher: Dispatcher, *, throttle: bool = False) -> None:
        self._dispatcher = dispatcher
        self._throttle = throttle

    async def __call__(self, request: Request, response: Response) -> None:
        await self._route(request)(request, response)

    def _route(self, request: Request) -> _Handler:
        """The handler for a request's path and method (404, 405 or 400 for the rest)."""
        path, method = request.path, request.method
        if path == NEXT_PATH:
            return self._next if method == "GET" else self._not_allowed("GET")
        if path == INIT_ERROR_PATH:
            return self._init_error if method == "POST" else self._not_allowed("POST")
        match = _INVOCATION_PATH.fullmatch(path)
        if match is None:
            return self._not_found
        if method != "POST":
            return self._not_allowed("POST")
        request_id, action = match.groups()
        invocation = self._dispatcher.get(request_id)
        if invocation is None:
            return self._unknown_id
        handler = self._response if action == "response" else self._error
        return functools.partial(handler, invocation)

    # --- replies --------------------------------------------------------------------------

    async def _reply(
        self,
        request: Request,
        response: Response,
        status: int,
        error_type: str,
        message: str,
        *,
        drain: bool = True,
    ) -> None:
        if status >= 400:
            log.warning("runtime api: %d %s for %s (%s)", status, error_type, request.path, message)
        if drain and not request.body.done:
            # Read what the runtime is still sending (bounded in bytes and time) so that it
            # reads this reply rather than a connection reset.
            limit = _OVERSIZE_DISCARD if status == 413 else _DISCARD_LIMIT
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DISCARD_SECONDS):
                    await request.body.discard(limit)
        with contextlib.suppress(BrokenResourceError):
            await response.send(status, _JSON, _error_body(error_type, message))

    async def _accepted(self, response: Response) -> None:
        with contextlib.suppress(BrokenResourceError):
            await response.send(202, _JSON, ACCEPTED)

    def _not_allowed(self, allow: str) -> _Handler:
        async def reply(request: Request, response: Response) -> None:
            log.warning("runtime api: 405 %s %s", request.method, request.path)
            await request.body.discard(_DISCARD_LIMIT)
            await response.send(405, [("Allow", allow)], b"")

        return reply

    async def _not_found(self, request: Request, response: Response) -> None:
        log.warning("runtime api: 404 %s %s", request.method, request.path)
        await request.body.discard(_DISCARD_LIMIT)
        # RIE's router (chi) answers unknown paths with Go's plain-text 404.
        await response.send(
            404, [("Content-Type", "text/plain; charset=utf-8")], b"404 page not found\n"
        )

    async def _unknown_id(self, request: Request, response: Response) -> None:
        await self._reply(request, response, 400, "InvalidRequestID", "Invalid request ID")

    # --- GET /next ------------------------------------------------------------------------

    async def _next(self, request: Request, response: Response) -> None:
        # A runtime asking for work has initialised: an init error is history (3.5).
        self._dispatcher.init_error = None
        wants_stream = _accepts_request_stream(request)
        while True:
            invocation = await self._wait_next(request)
            if invocation is None:
                return
            if await self._deliver(invocation, request, response, wants_stream):
                return

    async def _wait_next(self, request: Request) -> Invocation | None:
        """The next invocation, or None if the runtime hung up while waiting.

        One future per poll, woken by the dispatcher or by a hang-up (which sets it to None),
        no task: this is on every invocation's path.
        """
        if request.disconnected.is_set():
            return None
        polled = self._dispatcher.poll()
        if not isinstance(polled, asyncio.Future):
            return polled
        waiter = polled

        def hung_up() -> None:
            if not waiter.done():
                waiter.set_result(None)

        request.on_disconnect(hung_up)
        try:
            invocation = await waiter
        except BaseException:
            # Cancelled (the server is closing): what was handed over but not seen goes back.
            self._dispatcher.abandon(waiter)
            raise
        finally:
            request.remove_disconnect(hung_up)
        if invocation is None or request.disconnected.is_set():
            self._dispatcher.abandon(waiter)  # (requeues an invocation handed over meanwhile)
            return None
        return invocation

    async def _deliver(
        self, invocation: Invocation, request: Request, response: Response, wants_stream: bool
    ) -> bool:
        """Send ``invocation`` as the /next response; False if it never got to the runtime."""
        if invocation.cancelled:
            # Its caller hung up while it was queued (duplex mode): nobody wants it now.
            invocation.reject(499, "ClientClosedRequest", "the caller left before it ran")
            return False
        payload = invocation.payload
        if isinstance(payload, HttpStreamPayload) and wants_stream:
            await self._deliver_stream(invocation, payload, response)
            return True
        if isinstance(payload, HttpStreamPayload):
            # The buffered event, capped as on AWS (6 MiB + 100 B): above it the caller gets
            # 413 and the runtime never sees the request.
            body, ctype = payload.body, payload.request_content_type
            await buffer_event(invocation, body, payload.event, ctype)
            payload = invocation.payload
        if invocation.settled:
            return False
        assert isinstance(payload, BufferedPayload)  # buffer_event settles or buffers
        data, content_type = payload.data, payload.content_type
        if request.disconnected.is_set():
            self._dispatcher.requeue(invocation)
            return True
        self._dispatcher.dispatch(invocation)
        await response.send(200, self._next_headers(invocation, content_type), data)
        return True

    async def _deliver_stream(
        self, invocation: Invocation, payload: HttpStreamPayload, response: Response
    ) -> None:
        """The request-stream wire: event JSON, 8 NULs, then the upload as it arrives."""
        self._dispatcher.dispatch(invocation)
        headers = self._next_headers(invocation, HTTP_REQUEST_STREAM)
        invocation.add_closer(response.abort)
        try:
            response.start(200, headers)
            # Two chunks, as a streaming runtime sends its response prelude (runtime-api 3.3.2).
            await response.write(msgspec.json.encode(payload.event))
            await response.write(DELIMITER)
            while True:
                if invocation.settled:
                    # The runtime answered without reading all of the upload: the rest is
                    # the front's to drop (it lingers on the body); never read it here.
                    response.abort()
                    return
                try:
                    piece = await payload.body.read()
                except BrokenResourceError:
                    # The uploading client hung up: cut the runtime's body without its
                    # last-chunk, so the runtime sees a truncated request.
                    log.warning("invocation %s: upload cut short", invocation.request_id)
                    response.abort()
                    return
                if not piece:
                    break
                await response.write(piece)  # waits while the runtime reads slowly
            await response.end()
        finally:
            invocation.remove_closer(response.abort)

    def _next_headers(self, invocation: Invocation, content_type: str) -> list[tuple[str, str]]:
        # Set only when non-empty, with RIE's spelling (docs/runtime-api.md §3.1).
        candidates = [
            ("Content-Type", content_type),
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn),
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
            ("Lambda-Runtime-Client-Context", invocation.client_context),
            ("Lambda-Runtime-Cognito-Identity", invocation.cognito_identity),
            ("Lambda-Runtime-Aws-Tenant-Id", invocation.tenant_id),
        ]
        return [(name, value) for name, value in candidates if value]

    # --- POST /response ---------------------------------------------------------------------

    async def _response(self, invocation: Invocation, request: Request, response: Response) -> None:
        mode = request.header(MODE_HEADER)
        if mode is not None and mode != "streaming":
            # Exactly "streaming", case-sensitive; anything else fails the invoke (docs/runtime-
            # api.md P5).
            invocation.fail(
                "Runtime.InvalidResponseModeHeader", message=f"invalid response mode {mode!r}"
            )
            await self._reply(
                request,
                response,
                400,
                "InvalidFunctionResponseMode",
                "Invalid function response mode",
            )
            return
        target = ResponseState.STREAMING if mode else ResponseState.BUFFERED
        try:
            invocation.begin(target)
        except InvalidStateTransitionError as exc:
            await self._reply(request, response, 403, "InvalidStateTransition", str(exc))
            return
        if target is ResponseState.STREAMING:
            await self._relay_stream(invocation, request, response)
        else:
            await self._relay_buffered(invocation, request, response)

    async def _relay_buffered(
        self, invocation: Invocation, request: Request, response: Response
    ) -> None:
        try:
            body = await read_capped(request.body, request.header("content-length"))
        except PayloadTooLargeError as exc:
            await self._too_large(invocation, request, response, exc.size)
            return
        except BrokenResourceError:
            await self._truncated(invocation, request, response)
            return
        if invocation.settled:  # timed out meanwhile: its connections were cut
            return
        error = trailer_error(request.body.trailers)
        if error is not None:
            invocation.fail(error[0], error[1])
        else:
            await invocation.send(Head(_content_type(request), streaming=False))
            if body:
                await invocation.send(Chunk(body))
            if not invocation.settled:
                invocation.complete()
        await self._accepted(response)

    async def _relay_stream(
        self, invocation: Invocation, request: Request, response: Response
    ) -> None:
        """Relay the runtime's chunks one by one as they arrive, then read its trailers."""
        invocation.add_closer(response.abort)
        try:
            outcome = await self._relay_chunks(invocation, request)
        finally:
            invocation.remove_closer(response.abort)
        if outcome == "truncated":
            await self._truncated(invocation, request, response)
        elif outcome == "too large":
            # Mid-stream: the runtime would keep sending, so answer at once and hang up.
            size = invocation.response_bytes + len(request.body.last_piece)
            limit = invocation.response_limit or 0
            await self._too_large(invocation, request, response, size, limit, drain=False)
        elif not invocation.settled:  # else it timed out or was cut meanwhile
            error = trailer_error(request.body.trailers)
            if error is not None:
                log.warning(
                    "invocation %s: runtime reported %s mid-stream", invocation.request_id, error[0]
                )
                invocation.fail(error[0], error[1])
            else:
                invocation.complete()
            await self._accepted(response)

    async def _relay_chunks(self, invocation: Invocation, request: Request) -> str:
        """Relay the body; "ended", "truncated" or "too large" (over the stream cap)."""
        bucket = TokenBucket(now=time.monotonic()) if self._throttle else None
        limit = invocation.response_limit
        body = request.body
        await invocation.send(Head(content_type=_content_type(request), streaming=True))
        while True:
            try:
                piece = await body.read()
            except BrokenResourceError:
                return "truncated"
            while True:  # this piece, then those that came in the same read, if any
                if not piece:
                    return "ended"
                if limit is not None and invocation.response_bytes + len(piece) > limit:
                    return "too large"
                chunk = Chunk(piece)
                if bucket is not None:
                    delay = bucket.reserve(len(piece), time.monotonic())
                    if delay:
                        await asyncio.sleep(delay)
                    await invocation.send(chunk)
                elif not invocation.send_nowait(chunk):
                    await invocation.send(chunk)  # the caller is behind: wait for it
                # The hot path: no coroutine, no wake-up per piece already at hand.
                try:
                    next_piece = body.read_nowait()
                except BrokenResourceError:
                    return "truncated"
                if next_piece is None:
                    break
                piece = next_piece

    async def _too_large(
        self,
        invocation: Invocation,
        request: Request,
        response: Response,
        size: int,
        limit: int = MAX_PAYLOAD,
        *,
        drain: bool = True,
    ) -> None:
        invocation.fail(
            "Function.ResponseSizeTooLarge",
            message=f"Response payload size ({size} bytes) exceeded maximum allowed payload"
            f" size ({limit} bytes).",
        )
        message = _too_large_message(limit)
        await self._reply(request, response, 413, "RequestEntityTooLarge", message, drain=drain)

    async def _truncated(
        self, invocation: Invocation, request: Request, response: Response
    ) -> None:
        invocation.fail("Runtime.TruncatedResponse", message="runtime response was truncated")
        if not request.disconnected.is_set():
            message = "HTTP request detected as truncated"
            await self._reply(request, response, 400, "TruncatedHTTPRequest", message)

    # --- POST /error, /init/error -----------------------------------------------------------

    async def _read_report(self, request: Request, response: Response) -> bytes | None:
        try:
            return await request.body.read_all(MAX_PAYLOAD)
        except PayloadTooLargeError:
            await self._reply(request, response, 413, "RequestEntityTooLarge", _too_large_message())
        except BrokenResourceError:
            await self._reply(
                request, response, 400, "TruncatedHTTPRequest", "HTTP request detected as truncated"
            )
        return None

    async def _error(self, invocation: Invocation, request: Request, response: Response) -> None:
        body = await self._read_report(request, response)
        if body is None:
            return
        if invocation.state is not ResponseState.NOT_STARTED:
            # /error is only legal before a response started (docs/runtime-api.md §3.4).
            message = (
                f"State transition from {invocation.state.value} to FAILED failed for runtime."
                " Error: State transition is not allowed"
            )
            await self._reply(request, response, 403, "InvalidStateTransition", message)
            return
        error_type, payload = _error_report(request, body)
        invocation.fail(error_type, payload)
        await self._accepted(response)

    async def _init_error(self, request: Request, response: Response) -> None:
        body = await self._read_report(request, response)
        if body is None:
            return
        # Init errors belong to the init phase: a runtime with work in hand is past it.
        # (A restarted runtime cannot be told from the old one without a supervisor, so any
        # moment without dispatched work counts as init; RIE's rule is stricter.)
        if self._dispatcher.has_pending():
            message = "State transition from INVOKING to INIT_ERROR failed for runtime."
            await self._reply(request, response, 403, "InvalidStateTransition", message)
            return
        error_type, payload = _error_report(request, body)
        log.warning("runtime reported an init error: %s", error_type)
        self._dispatcher.report_init_error(Failure(error_type, payload))
        await self._accepted(response)
