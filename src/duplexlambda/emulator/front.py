"""The main port: a function URL for any method and path, and the Invoke API on its paths.

Function-URL requests become payload-format 2.0 invocations. In duplex mode the upload is
not buffered (the runtime may take it as a stream); in lambda mode it is, with AWS's 6 MB
cap (``buffer_event``). The runtime's answer is relayed as it arrives: each runtime chunk is
one client chunk (``UrlRelay``). Both are written against small interfaces (``ByteSource``,
``ResponseSink``) so that ``duplexlambda.testing`` runs the same code without a socket.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
import uuid
from typing import Protocol

from duplexlambda.errors import (
    BrokenResourceError,
    LocalProtocolError,
    PreludeError,
    RemoteProtocolError,
)
from duplexlambda.events.build import (
    FrontSettings,
    RouteMatch,
    gateway_request_id,
    stage_path,
)
from duplexlambda.events.fronts import Front as FrontKind
from duplexlambda.events.fronts import HttpAnswer
from duplexlambda.events.reply import (
    MAX_STREAM_METADATA,
    Problem,
    read_answer,
    read_stream_metadata,
    response_fields,
    service_error,
)
from duplexlambda.protocol.prelude import HTTP_INTEGRATION_RESPONSE, PreludeDecoder

from . import invoke_api
from .config import EmulatorConfig, FrontSpec
from .furl import (
    HeaderList,
    HttpRequestInfo,
    build_event,
    http_head,
    map_buffered_response,
)
from .hub import (
    UPLOAD_TIMEOUT,
    Hub,
    cancel_on_disconnect,
    new_ids,
    new_trace_id,
    upload_timeout_message,
)
from .inspection import PREFIX
from .invocations import (
    MAX_PAYLOAD,
    BufferedPayload,
    Chunk,
    End,
    Failure,
    Head,
    HttpStreamPayload,
    Invocation,
    Payload,
    Rejected,
    ResultEvent,
    buffer_event,
    buffer_proxy_event,
    error_payload,
)
from .server import Body, Request, Response

log = logging.getLogger("duplexlambda.emulator")

#: What a caller gets when the runtime's prelude or result object cannot be sent as HTTP.
INVALID_RESPONSE = "Runtime.InvalidResponse"
#: What a client gets for an upload whose chunked framing is malformed (400).
BAD_UPLOAD = "InvalidRequestContentException"
#: A REST API request whose path is not under the stage (403, never reaches the function).
FORBIDDEN = "ForbiddenException"
_JSON = "application/json"
#: The methods a function URL forwards (the ``Allow`` of a 405 to CONNECT).
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def front_settings(config: EmulatorConfig) -> FrontSettings:
    """What the emulated API or target group says about itself in its events."""
    return FrontSettings(
        region=config.region,
        account_id=config.account_id,
        stage=config.stage,
        target_group=config.function_name,
    )


def request_info(
    request: Request, request_id: str, trace_id: str, *, now_ms: int | None = None
) -> HttpRequestInfo:
    """What of ``request`` goes into an event, with the headers every front adds."""
    host = request.peer[0]
    server_port = request.header("host") or ""
    return HttpRequestInfo(
        method=request.method,
        raw_path=request.path,
        raw_query=request.query,
        headers=request.headers,
        source_ip=host,
        request_id=request_id,
        now_ms=int(time.time() * 1000) if now_ms is None else now_ms,
        extra_headers={
            "x-amzn-trace-id": trace_id,
            "x-forwarded-for": host,
            "x-forwarded-proto": "http",
            "x-forwarded-port": server_port.rpartition(":")[2] or "80",
        },
    )


class Front:
    """The main port's app: Invoke API paths go to ``invoke_api``, all else is the front
    ``config.front`` names (a function URL unless told otherwise).

    ``spec`` plays another front than ``config.front`` for the same function
    (``serve --template``: its URL, its HTTP API and REST routes): then its integration
    timeout is ``config.integration_timeout`` or that front's own.
    """

    def __init__(self, hub: Hub, spec: FrontSpec | None = None) -> None:
        self._hub = hub
        config = hub.config
        self._spec = spec or config.front_spec
        self._settings = front_settings(config)
        self._timeout = config.front_timeout
        if spec is not None and spec is not config.front_spec:
            own = None if spec.is_function_url else spec.integration_timeout
            self._timeout = config.integration_timeout or own

    async def __call__(self, request: Request, response: Response) -> None:
        if request.method == "CONNECT":
            # A function URL is an origin, never a tunnel; what follows a CONNECT would be
            # tunnel bytes, so the connection closes after the answer.
            response.keep_alive = False
            await response.send(405, [("Allow", ALLOWED_METHODS)])
            return
        inspector = self._hub.inspector
        if request.path.startswith(PREFIX) or request.path == PREFIX[:-1]:
            # Reserved: never the function's, whether or not the inspector is on.
            if inspector is None:
                await response.send(404, [("Content-Type", "text/plain")], b"Not Found\n")
            elif request.path == PREFIX[:-1]:
                await response.send(301, [("Location", PREFIX)])
            else:
                await inspector.serve(request, response)
            return
        if inspector is not None:
            inspector.begin(request, response)
        route = invoke_api.match(request.path)
        if route is not None:
            await invoke_api.handle(self._hub, route, request, response)
        elif self._spec.is_function_url:
            await self._function_url(request, response)
        else:
            await self.proxy(request, response)

    async def function_url(self, request: Request, response: Response) -> None:
        """Serve ``request`` as the function URL (``request.path``: the path the function
        sees)."""
        await self._function_url(request, response)

    async def _function_url(self, request: Request, response: Response) -> None:
        duplex = self._hub.config.mode == "duplex"
        # A BUFFERED URL reads the upload whole and the answer whole, in either mode.
        buffered = not self._spec.streaming
        invocation = await self._invocation(request, duplex and not buffered, buffered)
        if not invocation.settled:
            self._hub.dispatcher.submit(invocation)
        relay = UrlRelay(invocation, response, duplex, request.body, buffered=buffered)
        async with cancel_on_disconnect(request, invocation, duplex):
            await relay_results(relay, invocation)
        relay.close()
        self._hub.record(self._spec.name, invocation, request, response, truncated=relay.truncated)

    async def _invocation(self, request: Request, duplex: bool, buffered: bool) -> Invocation:
        request_id, trace_id = new_ids()
        event = build_event(request_info(request, request_id, trace_id))
        content_type = request.header("content-type")
        payload: Payload
        if duplex:
            payload = HttpStreamPayload(event, request.body, content_type)
        else:
            payload = BufferedPayload(b"")
        invocation = self._hub.new_invocation(
            payload,
            request_id=request_id,
            trace_id=trace_id,
            response_limit=MAX_PAYLOAD if buffered else self._hub.config.stream_limit,
        )
        if not duplex:
            declared = request.header("content-length")
            seconds = self._hub.config.timeout
            try:
                async with asyncio.timeout(seconds):
                    await buffer_event(invocation, request.body, event, content_type, declared)
            except TimeoutError:
                invocation.reject(408, UPLOAD_TIMEOUT, upload_timeout_message(seconds))
        elif _malformed(request.body):
            # The upload's framing broke before the function was offered the request: the
            # client's error, and nothing reaches the function.
            invocation.reject(400, BAD_UPLOAD, _bad_upload_message(request.body))
        return invocation

    async def proxy(
        self, request: Request, response: Response, route: RouteMatch | None = None
    ) -> None:
        """API Gateway or an ALB: the request read whole into that front's event, the
        function invoked as that service invokes it, its answer read as that service reads
        it (``ProxyRelay``). ``route``: the API route the request matched, if not the
        catch-all one."""
        config, spec = self._hub.config, self._spec
        duplex = config.mode == "duplex"
        front_id = str(uuid.uuid4()) if spec.kind is FrontKind.REST_API else gateway_request_id()
        trace_id = new_trace_id()
        invocation = self._hub.new_invocation(
            BufferedPayload(b""),
            trace_id=trace_id,
            response_limit=config.stream_limit if spec.streaming else MAX_PAYLOAD,
        )
        info = request_info(request, front_id, trace_id)
        if spec.kind is FrontKind.REST_API and stage_path(request.path, config.stage) is None:
            invocation.reject(403, FORBIDDEN, f"{request.path} is not under /{config.stage}")
        else:
            try:
                async with asyncio.timeout(config.timeout):
                    await buffer_proxy_event(
                        invocation,
                        request.body,
                        spec.kind,
                        info,
                        self._settings,
                        request.header("content-type"),
                        request.header("content-length"),
                        spec.request_limit,
                        route,
                    )
            except TimeoutError:
                invocation.reject(408, UPLOAD_TIMEOUT, upload_timeout_message(config.timeout))
        if not invocation.settled:
            self._hub.dispatcher.submit(invocation)
        relay = ProxyRelay(
            invocation,
            response,
            spec,
            duplex=duplex,
            front_id=front_id,
            timeout=self._timeout,
        )
        async with cancel_on_disconnect(request, invocation, duplex):
            await relay_results(relay, invocation)
        relay.close()
        self._hub.record(spec.name, invocation, request, response, truncated=relay.truncated)


class ResponseSink(Protocol):
    """What ``UrlRelay`` writes the caller's response to.

    The server's ``Response`` (a socket), or the in-process test client's memory
    (``duplexlambda.testing``): the mapping from result events to status, headers and body
    is written once, here, and both callers get the same answer.
    """

    started: bool  #: the head was sent
    ended: bool  #: the body ended normally
    aborted: bool  #: the response was cut short

    def start(self, status: int, headers: HeaderList, *, length: int | None = None) -> None:
        """Send the status and headers (``length``: the whole body's size, if known).

        Raises:
            BrokenResourceError: the caller has gone.
            LocalProtocolError: a header HTTP cannot carry.
        """

    async def write(self, data: bytes | memoryview) -> None:
        """Send one piece of body (one chunk); may wait for the caller to catch up.

        Raises:
            BrokenResourceError: the caller has gone.
        """

    async def end(self) -> None:
        """End the body normally (raises ``BrokenResourceError`` if the caller has gone)."""

    def abort(self) -> None:
        """Cut the response short: the caller can tell it did not end normally."""


class Relay(abc.ABC):
    """What both relays to an HTTP caller share: writing to a ``ResponseSink`` that the
    caller may have left, and the contract ``relay_results`` drives.

    ``deadline`` is the event-loop time by which the next result event must come, else
    ``expire()`` is called (a front's integration timeout); None for no such limit.
    """

    deadline: float | None = None

    def __init__(self, invocation: Invocation, response: ResponseSink, duplex: bool) -> None:
        self._inv = invocation
        self._resp = response
        self._duplex = duplex
        self._closed = False
        self.client_gone = False
        self.truncated = False
        #: why the runtime's answer could not be sent as HTTP (the caller got the front's error)
        self.invalid: PreludeError | None = None

    @abc.abstractmethod
    async def handle(self, event: ResultEvent) -> None:
        """Act on one result event."""

    def relay_now(self, data: bytes) -> bool:
        """Write a ``Chunk``'s data at once if it is plain streaming (True), else leave it
        to ``handle()`` (False). Then, if ``must_drain``, ``drain()`` before the next one."""
        return False

    @property
    def must_drain(self) -> bool:
        """True when the client must catch up before the next write (see ``relay_now``)."""
        return False

    async def drain(self) -> None:
        """Wait for the client to catch up (a client gone is noted, not raised)."""
        return  # (only relays whose relay_now writes have anything to wait for)

    async def expire(self) -> None:
        """``deadline`` passed with no event: answer the caller, stop relaying. A relay that
        never sets a deadline is never asked; this default only stops the clock."""
        self.deadline = None

    def close(self) -> None:
        """After the last event: a response still open (caller or runtime gone) is cut."""
        if self._resp.started and not self._resp.ended and not self._resp.aborted:
            self.truncated = True
            self._resp.abort()

    @abc.abstractmethod
    async def _invalid(self, exc: PreludeError) -> None:
        """The runtime's answer cannot be sent as HTTP: tell the caller, stop relaying."""

    def _cut_mid_stream(self, failure: Failure) -> bool:
        """A failure after the caller's response started can only cut it (True if so)."""
        if not self._resp.started:
            return False
        log.warning(
            "invocation %s failed mid-stream (%s): cutting the client's response",
            self._inv.request_id,
            failure.error_type,
        )
        self.truncated = True
        self._closed = True
        self._resp.abort()
        return True

    # --- writing to the client (tolerant of a client that left) ---------------------------

    def _headers(self, headers: HeaderList) -> HeaderList:
        return headers

    def _start(self, status: int, headers: HeaderList, length: int | None = None) -> None:
        if self.client_gone:
            return
        try:
            self._resp.start(status, self._headers(headers), length=length)
        except BrokenResourceError:
            self._gone()
        except LocalProtocolError as exc:  # a header the mapping let through but HTTP refuses
            raise PreludeError(str(exc)) from exc

    async def _write(self, data: bytes | memoryview) -> None:
        if self.client_gone or self._resp.aborted:
            return
        try:
            await self._resp.write(data)
        except BrokenResourceError:
            self._gone()

    async def _end(self) -> None:
        if self.client_gone or self._resp.aborted:
            return
        try:
            await self._resp.end()
        except BrokenResourceError:
            self._gone()
        self._closed = True

    async def _send(self, status: int, body: bytes, headers: HeaderList | None = None) -> None:
        fields = headers if headers is not None else [("Content-Type", _JSON)]
        try:
            self._start(status, fields, length=len(body))
        except PreludeError as exc:
            await self._invalid(exc)
            return
        await self._write(body)
        await self._end()

    def _gone(self) -> None:
        self.client_gone = True
        if self._duplex:
            self._inv.cancel()


async def relay_results(relay: Relay, invocation: Invocation) -> None:
    """Feed ``relay`` the invocation's result events until the last one, or until its
    ``deadline`` passes: then the relay answers the caller and the rest is dropped (the
    function runs on, as behind API Gateway, to its own end)."""
    results = invocation.results
    while True:
        deadline = relay.deadline
        try:
            if deadline is None:  # the function URL's hot path: no timer per chunk
                event = await anext(results)
            else:
                async with asyncio.timeout_at(deadline):
                    event = await anext(results)
        except StopAsyncIteration:
            return
        except TimeoutError:
            await relay.expire()
            results.close()
            return
        await relay.handle(event)
        # The hot path: chunks already queued behind that event (several per read of the
        # runtime's stream) are written without a coroutine chain each; they reach the
        # connection's cork together and leave in one writev.
        while (queued := results.get_nowait()) is not None:
            if type(queued) is Chunk and relay.relay_now(queued.data):
                if relay.must_drain:
                    await relay.drain()
                continue
            await relay.handle(queued)


class UrlRelay(Relay):
    """Turns one invocation's result events into a function URL's HTTP response.

    States: waiting for the head; then collecting a buffered result, decoding a prelude
    (which may arrive split across any chunks), or streaming; then closed. A failure after
    the client's head went out ends the response without its last chunk (truncation).
    ``buffered`` (a BUFFERED URL) collects the answer whole however the runtime sent it.
    """

    def __init__(
        self,
        invocation: Invocation,
        response: ResponseSink,
        duplex: bool,
        upload: Body | None = None,
        *,
        buffered: bool = False,
    ) -> None:
        super().__init__(invocation, response, duplex)
        self._upload = upload
        self._buffered = buffered
        self._collected: list[bytes] | None = None
        self._prelude: PreludeDecoder | None = None
        self._prelude_seen = 0
        self._content_type: str | None = None

    async def handle(self, event: ResultEvent) -> None:
        """Act on one result event."""
        if self._closed:
            return
        if (
            self._upload is not None
            and _malformed(self._upload)
            and not self._resp.started
            and not isinstance(event, Rejected)
        ):
            await self._bad_upload(self._upload)
            return
        if isinstance(event, Head):
            await self._on_head(event)
        elif isinstance(event, Chunk):
            await self._on_chunk(event.data)
        elif isinstance(event, End):
            await self._on_end()
        elif isinstance(event, Failure):
            await self._on_failure(event)
        else:
            await self._send(event.status, error_payload(event.error_type, event.message))

    def relay_now(self, data: bytes) -> bool:
        resp = self._resp
        if (
            type(resp) is not Response  # (the in-memory sink of duplexlambda.testing)
            or self._closed
            or self._collected is not None
            or not resp.started
            or resp.aborted
            or self.client_gone
            or not resp.writable
            or (self._upload is not None and _malformed(self._upload))
        ):
            return False
        # As _on_chunk -> _write, less the coroutines: the head is out, no prelude pending.
        try:
            resp.write_nowait(data)
        except BrokenResourceError:
            self._gone()
        return True

    @property
    def must_drain(self) -> bool:
        resp = self._resp
        return type(resp) is Response and not resp.writable and not self.client_gone

    async def drain(self) -> None:
        resp = self._resp
        if type(resp) is not Response or self.client_gone or resp.aborted:
            return
        try:
            await resp.drain()
        except BrokenResourceError:
            self._gone()

    # --- events -------------------------------------------------------------------------

    async def _on_head(self, head: Head) -> None:
        self._content_type = head.content_type
        if not head.streaming or self._buffered:
            self._collected = []
        elif head.content_type.split(";", 1)[0].strip() == HTTP_INTEGRATION_RESPONSE:
            self._prelude = PreludeDecoder()
        else:
            self._start(200, [("Content-Type", head.content_type)])

    async def _on_chunk(self, data: bytes) -> None:
        if self._collected is not None:
            self._collected.append(data)
        elif self._prelude is not None and not self._resp.started:
            await self._on_prelude_bytes(self._prelude, data)
        else:
            await self._write(data)

    async def _on_prelude_bytes(self, decoder: PreludeDecoder, data: bytes) -> None:
        """Feed the prelude decoder; once it completes, send the head and the rest."""
        self._prelude_seen += len(data)
        try:
            pieces = decoder.feed(data)
            if not decoder.complete:
                return
            assert decoder.prelude is not None
            status, headers = http_head(decoder.prelude)
            self._start(status, headers)
        except PreludeError as exc:
            await self._invalid(exc)
            return
        for piece in pieces:
            await self._write(piece)

    async def _on_end(self) -> None:
        if self._collected is not None:
            try:
                result = map_buffered_response(b"".join(self._collected), self._content_type)
            except PreludeError as exc:
                await self._invalid(exc)
                return
            await self._send(result.status, result.body, result.headers)
            return
        if self._prelude is not None and not self._resp.started:
            if self._prelude_seen:
                await self._invalid(PreludeError("stream ended inside the prelude"))
                return
            # A prelude announced but never written (Node, docs/runtime-api.md P1): AWS answers a
            # plain 200.
            self._start(200, [])
        await self._end()

    async def _on_failure(self, failure: Failure) -> None:
        if self._cut_mid_stream(failure):
            return
        status = 504 if failure.error_type == "Sandbox.Timeout" else 502
        await self._send(status, failure.payload)

    async def _bad_upload(self, upload: Body) -> None:
        """The upload turned malformed while the function ran (its request stream was cut):
        whatever it answers, the client, which has no response yet, gets 400."""
        log.warning("invocation %s: malformed upload: %s", self._inv.request_id, upload.error)
        self._inv.cancel()  # nobody can receive what the function would still send
        await self._send(400, error_payload(BAD_UPLOAD, _bad_upload_message(upload)))
        self._closed = True

    async def _invalid(self, exc: PreludeError) -> None:
        self.invalid = exc
        log.warning(
            "invocation %s: invalid response from the runtime: %s", self._inv.request_id, exc
        )
        if self._duplex:
            self._inv.cancel()  # stop the runtime's stream: nobody can receive it
        await self._send(502, error_payload(INVALID_RESPONSE, str(exc)))
        self._closed = True

    def _headers(self, headers: HeaderList) -> HeaderList:
        return [*headers, ("x-amzn-RequestId", self._inv.request_id)]


class ProxyRelay(Relay):
    """An API Gateway API's or an ALB's HTTP response to one invocation's result events.

    A buffered front (HTTP API, REST, ALB) collects the answer whole, however the runtime
    sent it, and reads it as a proxy response (``events.reply.read_answer``); ``rest-stream``
    decodes the metadata and its eight NULs from the first 16 KiB, then streams the body. What
    the front cannot read, a function error, and the integration timeout (``deadline``)
    become that service's own error response (``events.reply.service_error``).
    """

    def __init__(
        self,
        invocation: Invocation,
        response: ResponseSink,
        spec: FrontSpec,
        *,
        duplex: bool,
        front_id: str,
        timeout: float | None,
    ) -> None:
        super().__init__(invocation, response, duplex)
        self._kind = spec.kind
        self._streaming = spec.streaming
        self._answer_limit = spec.answer_limit
        self._front_id = front_id
        self._collected: list[bytes] = []
        self._size = 0
        self._metadata = PreludeDecoder(MAX_STREAM_METADATA) if spec.streaming else None
        if timeout is not None:
            self.deadline = asyncio.get_running_loop().time() + timeout

    async def handle(self, event: ResultEvent) -> None:
        """Act on one result event."""
        if self._closed:
            return
        if isinstance(event, Head):
            return  # the front reads the payload, whatever its content type
        if isinstance(event, Chunk):
            await self._on_chunk(event.data)
        elif isinstance(event, End):
            await self._on_end()
        elif isinstance(event, Failure):
            await self._on_failure(event)
        elif event.status == 413:
            await self._error(Problem.TOO_LARGE)
        elif event.status == 403:
            await self._error(Problem.FORBIDDEN)
        else:  # the upload itself was broken or too slow: the emulator's own answer
            await self._send(event.status, error_payload(event.error_type, event.message))
            self._closed = True

    async def expire(self) -> None:
        """The integration timeout: the front answers (504 / 503 / 502) and stops waiting;
        the function itself runs on."""
        self.deadline = None
        if self._closed or self._resp.started:
            return
        log.warning(
            "invocation %s: the %s integration timed out", self._inv.request_id, self._kind.value
        )
        await self._error(Problem.TIMEOUT)

    # --- events -------------------------------------------------------------------------

    async def _on_chunk(self, data: bytes) -> None:
        if self._metadata is None:
            self._collected.append(data)
            self._size += len(data)
            if self._answer_limit is not None and self._size > self._answer_limit:
                await self._invalid(
                    PreludeError(f"the answer is over the front's {self._answer_limit} bytes")
                )
        elif not self._resp.started:
            await self._on_metadata_bytes(self._metadata, data)
        else:
            await self._write(data)

    async def _on_metadata_bytes(self, decoder: PreludeDecoder, data: bytes) -> None:
        try:
            pieces = decoder.feed(data)
            if not decoder.complete:
                return
            assert decoder.prelude is not None
            answer = read_stream_metadata(decoder.prelude)
            self._start(answer.status, self._fields(answer))
        except PreludeError as exc:
            await self._invalid(exc)
            return
        self.deadline = None  # the integration timeout bounds the wait for the head only
        for piece in pieces:
            await self._write(piece)

    async def _on_end(self) -> None:
        if self._metadata is not None:
            if not self._resp.started:
                await self._invalid(PreludeError("the stream ended before its metadata and 8 NULs"))
                return
            await self._end()
            return
        try:
            answer = read_answer(self._kind, b"".join(self._collected))
        except PreludeError as exc:
            await self._invalid(exc)
            return
        await self._send(answer.status, answer.body, self._fields(answer))

    async def _on_failure(self, failure: Failure) -> None:
        if self._cut_mid_stream(failure):
            return
        # A function error, its own timeout or a crash: to the front, a failed integration.
        await self._error(Problem.INTEGRATION)

    async def _invalid(self, exc: PreludeError) -> None:
        self.invalid = exc
        log.warning(
            "invocation %s: the %s cannot read the function's answer: %s",
            self._inv.request_id,
            self._kind.value,
            exc,
        )
        if self._duplex and not self._inv.settled:
            self._inv.cancel()  # nobody can receive the rest of its stream
        await self._error(Problem.INTEGRATION)

    async def _error(self, problem: Problem) -> None:
        answer = service_error(self._kind, problem, self._front_id)
        await self._send(answer.status, answer.body, response_fields(answer))
        self._closed = True

    def _fields(self, answer: HttpAnswer) -> HeaderList:
        fields = response_fields(answer)
        has_type = any(name.lower() == "content-type" for name, _ in fields)
        if self._kind is FrontKind.REST_API and not has_type:
            fields.insert(0, ("Content-Type", _JSON))  # REST's default for a proxy answer
        if self._kind is FrontKind.REST_API:
            fields.append(("x-amzn-RequestId", self._front_id))
        elif self._kind in (FrontKind.HTTP_API_V2, FrontKind.HTTP_API_V1):
            fields.append(("apigw-requestid", self._front_id))
        return fields


def _malformed(upload: Body) -> bool:
    """Whether the client broke the upload's framing (not merely hung up)."""
    return isinstance(upload.error, RemoteProtocolError)


def _bad_upload_message(upload: Body) -> str:
    return f"malformed request body: {upload.error}"
