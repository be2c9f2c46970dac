"""``LambdaClient``: a handler driven in-process through the real runtime, without sockets.

The runtime (``Runtime``: event reading, handler styles, the response streams, error
reports, deadline cancellation, init/shutdown hooks) runs against the emulator's Runtime API
over memory pipes. Requests are built as the emulator's function URL builds them (payload
format 2.0 via ``furl.build_event``; in lambda mode buffered by ``invocations.buffer_event``), or
with ``front=`` as API Gateway or an ALB builds them (``events.build`` via
``invocations.buffer_proxy_event``), and the answers are mapped by the emulator's own relay
(``UrlRelay`` / ``ProxyRelay``, see ``call.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from duplexlambda.emulator.config import FRONTS, FrontName, Mode
from duplexlambda.emulator.front import FORBIDDEN
from duplexlambda.emulator.furl import HttpRequestInfo, build_event
from duplexlambda.emulator.hub import new_trace_id
from duplexlambda.emulator.invocations import (
    MAX_PAYLOAD,
    BufferedPayload,
    Dispatcher,
    HttpStreamPayload,
    Invocation,
    buffer_event,
    buffer_proxy_event,
)
from duplexlambda.events.build import FrontSettings, gateway_request_id, stage_path
from duplexlambda.events.fronts import Front
from duplexlambda.handler import Lifecycle
from duplexlambda.protocol.http1 import Headers
from duplexlambda.runtime.client import RuntimeApiClient
from duplexlambda.runtime.loop import RuntimeConfig
from duplexlambda.testing.runner import runtime_streaming

from .call import Call
from .memory import MEMORY_ADDRESS, InMemoryRuntimeApi, MemoryUpload
from .results import HttpResponse, InvokeResult
from .runner import RuntimeHost

Body = bytes | bytearray | memoryview | str | AsyncIterable[bytes] | None
HeaderInput = Mapping[str, str] | list[tuple[str, str]] | None

#: What the test client's requests look like they were sent to.
DEFAULT_BASE_URL = "https://testserver.lambda-url.us-east-1.on.aws"
_MISSING: Any = object()


def _header_pairs(headers: HeaderInput) -> list[tuple[str, str]]:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


class LambdaClient(RuntimeHost):
    """Drive a handler of any style in-process, through the real runtime, without sockets.

    Each client is one execution environment: ``start()`` (or ``async with``, or the first
    request) runs the init hooks, ``aclose()`` stops the runtime as SIGTERM does (in-flight
    invocations finish, then the shutdown hooks run).

    Args:
        handler: the handler, or its ``module.function`` name.
        mode: ``"duplex"`` streams request bodies to the handler as they are sent (the
            emulator's default); ``"lambda"`` buffers them into the event, as AWS does.
        timeout: the function timeout in seconds (the runtime cancels the handler
            ``deadline_margin`` seconds before it).
        concurrency: ``AWS_LAMBDA_MAX_CONCURRENCY``: invocations served at once.
        lifecycle: init/shutdown hooks; None runs the module-level ``@on_init`` /
            ``@on_shutdown`` ones, as the runtime does.
        base_url: scheme and host the requests appear to be sent to.
        front: the service that sends the requests (``EmulatorConfig.front``): the event it
            builds, how it invokes, and how it reads the answer, as ``serve --front``.
            ``"function-url"`` by default; ``"rest"`` paths start with the stage
            (``client.get("/prod/items")``).
        stage: the REST API's stage.
        integration_timeout: seconds API Gateway waits (None: its own, 30 s / 29 s).
    """

    def __init__(
        self,
        handler: Callable[..., Any] | str,
        *,
        mode: Mode = "duplex",
        timeout: float = 30.0,
        concurrency: int = 1,
        deadline_margin: float = 0.25,
        lifecycle: Lifecycle | None = None,
        base_url: str = DEFAULT_BASE_URL,
        function_name: str = "function",
        front: FrontName = "function-url",
        stage: str = "prod",
        integration_timeout: float | None = None,
    ) -> None:
        if mode not in ("duplex", "lambda"):
            raise ValueError(f"mode must be 'duplex' or 'lambda', not {mode!r}")
        if front not in FRONTS:
            raise ValueError(f"front must be one of {', '.join(FRONTS)}, not {front!r}")
        super().__init__(
            handler,
            timeout=timeout,
            concurrency=concurrency,
            deadline_margin=deadline_margin,
            lifecycle=lifecycle,
        )
        self.mode = mode
        self.front = FRONTS[front]
        self._front_settings = FrontSettings(stage=stage, target_group=function_name)
        self._integration_timeout = (
            self.front.integration_timeout if integration_timeout is None else integration_timeout
        )
        url = urlsplit(base_url)
        self._scheme = url.scheme or "https"
        self._host = url.netloc or "testserver"
        self._port = str(url.port or (443 if self._scheme == "https" else 80))
        self.function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self._api: InMemoryRuntimeApi | None = None
        self._starting: asyncio.Future[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the runtime and wait for its init hooks (once; later calls wait for it).

        Raises:
            InitError: an init hook (e.g. an ASGI lifespan startup) failed.
        """
        if self._starting is not None:
            await asyncio.shield(self._starting)
            return
        self._starting = starting = asyncio.get_running_loop().create_future()
        try:
            self._api = api = InMemoryRuntimeApi(self.timeout)
            config = RuntimeConfig(
                MEMORY_ADDRESS,
                concurrency=self.concurrency,
                deadline_margin=self.deadline_margin,
                streaming=runtime_streaming(self.front.streaming_env),
            )
            client = RuntimeApiClient(MEMORY_ADDRESS, connector=api.connect)
            await self._serve(config, api.dispatcher, "duplexlambda-test-runtime", client)
        except BaseException as exc:
            starting.set_exception(exc)
            starting.exception()
            raise
        starting.set_result(None)

    async def aclose(self) -> None:
        """Stop the runtime as SIGTERM does: in-flight invocations finish, then the shutdown
        hooks run (bounded by the function timeout); then the in-memory API closes."""
        self._starting = None
        await self._shutdown()

    async def _close_lambda_side(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await api.close()

    async def _dispatcher(self) -> Dispatcher:
        await self.start()
        assert self._api is not None
        return self._api.dispatcher

    # --- HTTP requests (as a function URL) -------------------------------------------------

    def _info(
        self, method: str, path: str, headers: list[tuple[str, str]], request_id: str, trace: str
    ) -> HttpRequestInfo:
        target = urlsplit(path)
        fields = [("host", self._host), ("user-agent", "duplexlambda-testclient"), *headers]
        return HttpRequestInfo(
            method=method.upper(),
            raw_path=target.path or "/",
            raw_query=target.query,
            headers=Headers((k.encode("latin-1"), v.encode("latin-1")) for k, v in fields),
            source_ip="127.0.0.1",
            request_id=request_id,
            now_ms=int(time.time() * 1000),
            extra_headers={
                "x-amzn-trace-id": trace,
                "x-forwarded-for": "127.0.0.1",
                "x-forwarded-proto": self._scheme,
                "x-forwarded-port": self._port,
            },
        )

    async def _http_call(
        self,
        method: str,
        path: str,
        body: Body,
        json: Any,
        headers: HeaderInput,
    ) -> Call:
        dispatcher = await self._dispatcher()
        pairs = _header_pairs(headers)
        if json is not _MISSING:
            body = msgspec.json.encode(json)
            if not any(k.lower() == "content-type" for k, _ in pairs):
                pairs.append(("content-type", "application/json"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, bytearray | memoryview):
            body = bytes(body)
        if isinstance(body, bytes) and not any(k.lower() == "content-length" for k, _ in pairs):
            pairs.append(("content-length", str(len(body))))
        content_type = next((v for k, v in pairs if k.lower() == "content-type"), None)
        declared = next((v for k, v in pairs if k.lower() == "content-length"), None)
        upload = MemoryUpload(body if body is not None else b"")
        duplex = self.mode == "duplex"
        if not self.front.is_function_url:
            return await self._proxy_call(method, path, pairs, upload, content_type, declared)
        request_id, trace = str(uuid.uuid4()), new_trace_id()
        event = build_event(self._info(method, path, pairs, request_id, trace))
        buffered = not self.front.streaming  # a BUFFERED URL: the upload and answer whole
        invocation = Invocation(
            HttpStreamPayload(event, upload, content_type),
            request_id=request_id,
            function_arn=self.function_arn,
            trace_id=trace,
            response_limit=MAX_PAYLOAD if buffered else None,
        )
        if not duplex or buffered:  # as AWS: the body is read whole into the event, capped
            await buffer_event(invocation, upload, event, content_type, declared)
        if not invocation.settled:
            dispatcher.submit(invocation)
        return Call(invocation, upload, http=True, duplex=duplex, buffered=buffered)

    async def _proxy_call(
        self,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        upload: MemoryUpload,
        content_type: str | None,
        declared: str | None,
    ) -> Call:
        """A request through API Gateway or an ALB: read whole into that front's event, the
        answer read by the emulator's ``ProxyRelay``."""
        dispatcher = await self._dispatcher()
        spec = self.front
        rest = spec.kind is Front.REST_API
        front_id = str(uuid.uuid4()) if rest else gateway_request_id()
        trace = new_trace_id()
        info = self._info(method, path, pairs, front_id, trace)
        invocation = Invocation(
            BufferedPayload(b""),
            function_arn=self.function_arn,
            trace_id=trace,
            response_limit=None if spec.streaming else MAX_PAYLOAD,
        )
        stage = self._front_settings.stage
        if rest and stage_path(info.raw_path, stage) is None:
            invocation.reject(403, FORBIDDEN, f"{info.raw_path} is not under /{stage}")
        else:
            await buffer_proxy_event(
                invocation,
                upload,
                spec.kind,
                info,
                self._front_settings,
                content_type,
                declared,
                spec.request_limit,
            )
        if not invocation.settled:
            dispatcher.submit(invocation)
        return Call(
            invocation,
            upload,
            http=True,
            duplex=self.mode == "duplex",
            front=spec,
            front_id=front_id,
            timeout=self._integration_timeout,
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str = "/",
        *,
        body: Body = None,
        json: Any = _MISSING,
        headers: HeaderInput = None,
    ) -> AsyncIterator[HttpResponse]:
        """Send a request and get its response as it streams: status and headers on entry,
        then ``async for chunk in resp`` yields each chunk as the handler writes it.

        ``body`` may be an async iterable: in duplex mode the handler reads each piece as
        it is produced. Leaving the block before the end hangs up, as an HTTP client that
        closes its connection: the handler is cancelled (an ASGI app sees
        ``http.disconnect``).
        """
        call = await self._http_call(method, path, body, json, headers)
        try:
            response = HttpResponse(call)
            await call.head()
            yield response
        finally:
            await call.close()

    async def request(
        self,
        method: str,
        path: str = "/",
        *,
        body: Body = None,
        json: Any = _MISSING,
        headers: HeaderInput = None,
    ) -> HttpResponse:
        """Send a request through the function URL; the whole response once it has ended.

        Args:
            method: the HTTP method.
            path: path and query (``"/items?limit=2"``).
            body: bytes, text, or an async iterable of bytes (streamed in duplex mode).
            json: a value to send as JSON (sets ``content-type``).
            headers: request headers (a mapping, or pairs for repeated ones).
        """
        async with self.stream(method, path, body=body, json=json, headers=headers) as resp:
            await resp.aread()
        return resp

    async def get(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("DELETE", path, **kwargs)

    async def head(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("HEAD", path, **kwargs)

    async def options(self, path: str = "/", **kwargs: Any) -> HttpResponse:
        return await self.request("OPTIONS", path, **kwargs)

    # --- direct invocations (as the Invoke API) --------------------------------------------

    async def _invoke_call(
        self, event: Any, payload: bytes | None, content_type: str, client_context: Any
    ) -> Call:
        dispatcher = await self._dispatcher()
        data = payload if payload is not None else msgspec.json.encode(event)
        invocation = Invocation(
            BufferedPayload(data, content_type),
            function_arn=self.function_arn,
            trace_id=new_trace_id(),
            client_context=None
            if client_context is None
            else msgspec.json.encode(client_context).decode(),
        )
        dispatcher.submit(invocation)
        return Call(invocation, None, http=False, duplex=self.mode == "duplex")

    @contextlib.asynccontextmanager
    async def invoke_stream(
        self,
        event: Any = None,
        *,
        payload: bytes | None = None,
        content_type: str = "application/json",
        client_context: Any = None,
    ) -> AsyncIterator[InvokeResult]:
        """Invoke with ``event`` and read the result as it streams
        (``InvokeWithResponseStream``): ``async for chunk in result``."""
        call = await self._invoke_call(event, payload, content_type, client_context)
        try:
            result = InvokeResult(call)
            await call.head()
            yield result
        finally:
            await call.close()

    async def invoke(
        self,
        event: Any = None,
        *,
        payload: bytes | None = None,
        content_type: str = "application/json",
        client_context: Any = None,
    ) -> InvokeResult:
        """Invoke the function directly with ``event`` (JSON-encoded) or raw ``payload``.

        Returns the payload as the runtime sent it (an HTTP-style response keeps its
        prelude, as ``InvokeWithResponseStream`` passes it through); on failure ``error`` is
        set and the payload is the error JSON, as the Invoke API returns it.
        """
        async with self.invoke_stream(
            event, payload=payload, content_type=content_type, client_context=client_context
        ) as result:
            await result.aread()
        return result
