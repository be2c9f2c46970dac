"""The Lambda Invoke API on the main port, enough for boto3's ``invoke`` and
``invoke_with_response_stream`` (docs/runtime-api.md §7).

``POST /2015-03-31/functions/{name}/invocations`` is buffered: a function error still
answers 200, with ``X-Amz-Function-Error: Unhandled`` and the error JSON as the payload.
``POST /2021-11-15/functions/{name}/response-streaming-invocations`` answers with event-stream
framing: one ``PayloadChunk`` per runtime chunk, then ``InvokeComplete``. The prelude of an
http-integration-response is payload like any other byte: it is passed through, not parsed.
Every function name is this emulator's one function.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

import msgspec

from duplexlambda.errors import BrokenResourceError, PayloadTooLargeError

from . import eventstream
from .hub import UPLOAD_TIMEOUT, Hub, cancel_on_disconnect, upload_timeout_message
from .invocations import (
    MAX_PAYLOAD,
    REQUEST_TOO_LARGE,
    REQUEST_TOO_LARGE_MESSAGE,
    BufferedPayload,
    Chunk,
    End,
    Failure,
    Head,
    Invocation,
    Rejected,
    read_capped,
)
from .server import Request, Response

log = logging.getLogger("duplexlambda.emulator")

_INVOKE = re.compile(r"/2015-03-31/functions/([^/]+)/invocations/?")
_STREAM = re.compile(r"/2021-11-15/functions/([^/]+)/response-streaming-invocations/?")
#: What ``ResponseStreamContentType`` (the Content-Type header) reads. UNCONFIRMED whether
#: AWS puts the function's type there; the CLI docs and cargo-lambda show this one.
EVENTSTREAM_TYPE = "application/vnd.amazon.eventstream"
EXECUTED_VERSION = "$LATEST"


@dataclass(frozen=True)
class Route:
    """An Invoke API call: ``kind`` is ``"invoke"`` or ``"invoke-stream"``."""

    kind: str
    function_name: str


def match(path: str) -> Route | None:
    """The Invoke API route of ``path``, or None for a function-URL path."""
    if m := _INVOKE.fullmatch(path):
        return Route("invoke", m.group(1))
    if m := _STREAM.fullmatch(path):
        return Route("invoke-stream", m.group(1))
    return None


class _BadRequest(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


async def _aws_error(response: Response, status: int, error_type: str, message: str) -> None:
    # rest-json errors: the code in x-amzn-ErrorType (botocore reads it), a JSON body.
    body = msgspec.json.encode({"Type": "User", "message": message})
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)]
    with contextlib.suppress(BrokenResourceError):
        await response.send(status, headers, body)


def _client_context(request: Request) -> str | None:
    """``X-Amz-Client-Context``: base64 JSON, passed to the runtime decoded (as RIE does)."""
    raw = request.header("x-amz-client-context")
    if not raw:
        return None
    try:
        value = msgspec.json.decode(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise _BadRequest(
            400,
            "InvalidRequestContentException",
            "Client context must be a valid Base64-encoded JSON object.",
        ) from None
    # Re-encoded compactly and ASCII-only: the value becomes a header line, so it must hold
    # no newline, and no character a header cannot carry ("\u2603" escapes are lossless).
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


async def _read_payload(request: Request) -> bytes:
    try:
        return await read_capped(request.body, request.header("content-length"))
    except PayloadTooLargeError:
        raise _BadRequest(413, REQUEST_TOO_LARGE, REQUEST_TOO_LARGE_MESSAGE) from None


#: The Invoke API's own checks (botocore's model for Lambda; its enum and pattern checks
#: run on the service side, so an SDK sends any value): invocation types per endpoint, and
#: the ``Qualifier`` pattern and length.
_INVOCATION_TYPES = {
    "invoke": ("Event", "RequestResponse", "DryRun"),
    "invoke-stream": ("RequestResponse", "DryRun"),
}
_QUALIFIER = re.compile(r"(|[a-zA-Z0-9$_-]+)")
_QUALIFIER_MAX = 128


def _qualifier(request: Request) -> str | None:
    """The ``Qualifier`` query parameter (None without one; most calls have no query)."""
    if not request.query:
        return None
    return dict(parse_qsl(request.query, keep_blank_values=True)).get("Qualifier")


def _check_parameters(route: Route, request: Request, payload: bytes) -> None:
    """Refuse what Lambda refuses before invoking: each a 400 with its error type.

    Raises:
        _BadRequest: a payload that is not JSON, an invocation type the endpoint does not
            have (``Event`` on the streaming one), a qualifier outside the pattern.
    """
    invocation_type = request.header("x-amz-invocation-type")
    allowed = _INVOCATION_TYPES[route.kind]
    if invocation_type is not None and invocation_type not in allowed:
        raise _BadRequest(
            400,
            "InvalidParameterValueException",
            f"Value '{invocation_type}' at 'invocationType' failed to satisfy constraint:"
            f" Member must satisfy enum value set: [{', '.join(allowed)}]",
        )
    qualifier = _qualifier(request) or ""
    if not _QUALIFIER.fullmatch(qualifier) or len(qualifier) > _QUALIFIER_MAX:
        constraint = (
            f"Member must have length less than or equal to {_QUALIFIER_MAX}"
            if _QUALIFIER.fullmatch(qualifier)
            else f"Member must satisfy regular expression pattern: {_QUALIFIER.pattern}"
        )
        raise _BadRequest(
            400,
            "ValidationException",
            f"1 validation error detected: Value '{qualifier}' at 'qualifier' failed to"
            f" satisfy constraint: {constraint}",
        )
    if payload:
        try:
            msgspec.json.decode(payload)
        except (msgspec.DecodeError, RecursionError) as exc:  # (nested too deeply)
            detail = f"Could not parse payload into json: {exc}"
            raise _BadRequest(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {detail}",
            ) from None


async def _invocation(hub: Hub, route: Route, request: Request) -> Invocation:
    client_context = _client_context(request)
    payload = await _read_payload(request)
    _check_parameters(route, request, payload)
    qualifier = _qualifier(request)
    arn = hub.config.function_arn + (f":{qualifier}" if qualifier else "")
    # A buffered Invoke of a streaming runtime is capped like any buffered response (3.3.5).
    limit = MAX_PAYLOAD if route.kind == "invoke" else hub.config.stream_limit
    return hub.new_invocation(
        BufferedPayload(payload, "application/json"),
        function_arn=arn,
        client_context=client_context,
        tenant_id=request.header("x-amz-tenant-id"),
        response_limit=limit,
    )


async def handle(hub: Hub, route: Route, request: Request, response: Response) -> None:
    """Serve one Invoke API call."""
    if request.method != "POST":
        await request.body.discard(1024 * 1024)
        await response.send(405, [("Allow", "POST")], b"")
        return
    invocation_type = request.header("x-amz-invocation-type") or "RequestResponse"
    try:
        if request.body.done:  # the usual small payload, already whole: no timer needed
            invocation = await _invocation(hub, route, request)
        else:
            async with asyncio.timeout(hub.config.timeout):
                invocation = await _invocation(hub, route, request)
    except TimeoutError:
        message = upload_timeout_message(hub.config.timeout)
        await _aws_error(response, 408, UPLOAD_TIMEOUT, message)
        return
    except _BadRequest as exc:
        log.warning("invoke api: %d %s", exc.status, exc.message)
        await _aws_error(response, exc.status, exc.error_type, exc.message)
        return
    except BrokenResourceError:
        return
    if invocation_type == "DryRun":
        await response.send(204, [("x-amzn-RequestId", invocation.request_id)])
        return
    hub.dispatcher.submit(invocation)
    if invocation_type == "Event" and route.kind == "invoke":
        hub.spawn(_drain(invocation))
        await response.send(202, [("x-amzn-RequestId", invocation.request_id)])
        hub.record("invoke", invocation, request, response)
        return
    tail = (request.header("x-amz-log-type") or "").lower() == "tail"
    duplex = hub.config.mode == "duplex"
    async with cancel_on_disconnect(request, invocation, duplex):
        if route.kind == "invoke":
            await _buffered(hub, invocation, response, tail)
        else:
            await _streamed(hub, invocation, response, tail, duplex)
    hub.record(route.kind, invocation, request, response, truncated=response.aborted)


async def _drain(invocation: Invocation) -> None:
    async for _ in invocation.results:
        pass


async def _buffered(hub: Hub, invocation: Invocation, response: Response, tail: bool) -> None:
    content_type = "application/json"
    parts: list[bytes] = []
    failure: Failure | None = None
    async for event in invocation.results:
        if isinstance(event, Head):
            content_type = event.content_type
        elif isinstance(event, Chunk):
            parts.append(event.data)
        elif isinstance(event, Failure):
            failure = event
        elif isinstance(event, Rejected):
            await _aws_error(response, event.status, event.error_type, event.message)
            return
    if invocation.cancelled:
        return
    headers = [
        ("X-Amz-Executed-Version", EXECUTED_VERSION),
        ("x-amzn-RequestId", invocation.request_id),
    ]
    if tail:
        headers.append(("X-Amz-Log-Result", hub.log_tail.base64()))
    if failure is not None:
        headers += [("Content-Type", "application/json"), ("X-Amz-Function-Error", "Unhandled")]
        body = failure.payload
    else:
        headers.append(("Content-Type", content_type))
        body = b"".join(parts)
    with contextlib.suppress(BrokenResourceError):
        await response.send(200, headers, body)


class _EventWriter:
    """Writes event-stream messages, one HTTP chunk each, tolerating a caller that left."""

    def __init__(self, invocation: Invocation, response: Response, duplex: bool) -> None:
        self._inv, self._resp, self._duplex = invocation, response, duplex
        self.gone = False

    def start(self) -> None:
        if self._resp.started or self.gone:
            return
        headers = [
            ("Content-Type", EVENTSTREAM_TYPE),
            ("X-Amz-Executed-Version", EXECUTED_VERSION),
            ("x-amzn-RequestId", self._inv.request_id),
        ]
        try:
            self._resp.start(200, headers)
        except BrokenResourceError:
            self._gone()

    async def write(self, message: bytes) -> None:
        self.start()
        if self.gone:
            return
        try:
            await self._resp.write(message)
        except BrokenResourceError:
            self._gone()

    async def end(self) -> None:
        if self.gone:
            return
        try:
            await self._resp.end()
        except BrokenResourceError:
            self._gone()

    def _gone(self) -> None:
        self.gone = True
        if self._duplex:
            self._inv.cancel()


async def _streamed(
    hub: Hub, invocation: Invocation, response: Response, tail: bool, duplex: bool
) -> None:
    writer = _EventWriter(invocation, response, duplex)
    log_result = hub.log_tail.base64() if tail else None
    async for event in invocation.results:
        if isinstance(event, Rejected):
            await _aws_error(response, event.status, event.error_type, event.message)
            return
        if isinstance(event, Head):
            writer.start()
        elif isinstance(event, Chunk):
            await writer.write(eventstream.payload_chunk(event.data))
        elif isinstance(event, End):
            await writer.write(eventstream.invoke_complete(log_result=log_result))
            await writer.end()
        elif isinstance(event, Failure):
            # ErrorCode is the runtime's type as sent, ErrorDetails its decoded error JSON
            # (the Managed Instances mapping; UNCONFIRMED for classic Lambda, 7).
            details = event.payload.decode("utf-8", "replace")
            await writer.write(eventstream.invoke_complete(event.error_type, details, log_result))
            await writer.end()
    if response.started and not response.ended and not response.aborted:
        response.abort()  # the caller left or the relay was cancelled mid-stream
