"""The invocation loop: next -> context -> handler(req, res) -> end / error.

One event loop for the life of the process (clients opened at init are reused by every warm
invocation); ``AWS_LAMBDA_MAX_CONCURRENCY`` loops poll ``/next`` side by side, each failure
isolated to its invocation. Errors follow runtime-api.md 3.3.4: before the first byte a
buffered ``/error``, after it the error trailers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import msgspec

from duplexlambda.api import RuntimeApiClient, RuntimeApiFatalError, RuntimeApiRejected
from duplexlambda.context import LambdaContext, request_id, trace_id
from duplexlambda.errors import (
    BrokenResourceError,
    DuplexLambdaError,
    HandlerTimeoutError,
    RemoteProtocolError,
)
from duplexlambda.handler import Lifecycle, Style, lifecycle, own_lifecycle, style_of
from duplexlambda.protocol.prelude import HTTP_REQUEST_STREAM, PreludeDecoder
from duplexlambda.protocol.runtime_api import InvocationHead, RuntimeApiAddress, error_payload
from duplexlambda.streams import BodySource, BytesSource, LiveSource, Request, Response, http_info
from duplexlambda.transport import ClientConnection

log = logging.getLogger("duplexlambda")

#: Seconds past its deadline an invocation may still wait for the Runtime API's answer.
STALL_GRACE = 2.0


class UnmarshalError(DuplexLambdaError):
    """The event is not the JSON its content type says."""

    error_type = "Runtime.UnmarshalError"


class MarshalError(DuplexLambdaError):
    """A buffered handler returned something that cannot be JSON-encoded."""

    error_type = "Runtime.MarshalError"


@dataclass
class RuntimeConfig:
    """How the runtime behaves; ``from_env`` reads Lambda's environment."""

    address: RuntimeApiAddress
    concurrency: int = 1
    #: the handler is cancelled this many seconds before the invocation deadline
    deadline_margin: float = 0.25
    #: "http" / "raw" force the response framing; None decides from the event's shape
    response_mode: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RuntimeConfig:
        """Read ``AWS_LAMBDA_RUNTIME_API``, ``AWS_LAMBDA_MAX_CONCURRENCY``,
        ``DUPLEXLAMBDA_DEADLINE_MARGIN_MS`` and ``DUPLEXLAMBDA_RESPONSE``.

        Raises:
            ValueError: a missing or malformed setting.
        """
        env = os.environ if environ is None else environ
        if "AWS_LAMBDA_RUNTIME_API" not in env:
            raise ValueError("AWS_LAMBDA_RUNTIME_API is not set: is this running on Lambda?")
        mode = env.get("DUPLEXLAMBDA_RESPONSE") or None
        if mode not in (None, "http", "raw"):
            raise ValueError(f"DUPLEXLAMBDA_RESPONSE must be http or raw, not {mode!r}")
        return cls(
            address=RuntimeApiAddress.parse(env["AWS_LAMBDA_RUNTIME_API"]),
            concurrency=max(1, int(env.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1)),
            deadline_margin=int(env.get("DUPLEXLAMBDA_DEADLINE_MARGIN_MS") or 250) / 1000,
            response_mode=mode,
        )


class _Cancelled(Exception):
    """Why the runtime cancelled a handler: the deadline, or the client went away."""


def _plain_body(event: Any) -> bytes:
    """The body of a function-URL / API Gateway event, base64-decoded when flagged."""
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else msgspec.json.encode(body)


class Invocation:
    """One invocation being served: its request, response and handler task."""

    def __init__(self, runtime: Runtime, head: InvocationHead, conn: ClientConnection) -> None:
        self.runtime = runtime
        self.head = head
        self.conn = conn
        self._conn_released = False
        self.context: LambdaContext | None = None
        self.event: Any = None
        self.http = False
        self.source: BodySource = BytesSource(b"")
        self.res: Response | None = None
        self._task: asyncio.Task[Any] | None = None
        self._why: str | None = None

    def release_conn(self) -> None:
        """Hand the ``/next`` connection back (once: another loop may be using it next)."""
        if not self._conn_released:
            self._conn_released = True
            self.runtime.client.release(self.conn)

    # --- reading the event -----------------------------------------------------------------

    async def read_event(self, style: Style) -> None:
        """Read the event off the ``/next`` body (the prelude only, for a live stream)."""
        if self.head.content_type.startswith(HTTP_REQUEST_STREAM):
            await self._read_stream_prelude()
            if style is not Style.DUPLEX:
                await self._buffer_stream_body()
            return
        payload = await self.conn.read_all()
        self.release_conn()
        is_json = self.head.content_type.startswith("application/json")
        try:
            self.event = msgspec.json.decode(payload) if is_json else payload
        except msgspec.DecodeError as exc:
            if style is not Style.DUPLEX:
                raise UnmarshalError(f"Unable to unmarshal input: {exc}") from None
            self.event = None  # a duplex handler reads the raw bytes instead
        info = http_info(self.event)
        self.http = info is not None
        self.source = BytesSource(_plain_body(self.event) if info else payload)

    async def _read_stream_prelude(self) -> None:
        decoder = PreludeDecoder()
        first: list[memoryview] = []
        while not decoder.complete:
            piece = await self.conn.read()
            if not piece:
                decoder.eof()
            first = decoder.feed(piece)
        self.event = decoder.prelude
        self.http = http_info(self.event) is not None
        self.source = LiveSource(self.conn, first)

    async def _buffer_stream_body(self) -> None:
        """Give a buffered/streaming-style handler the whole event, body included."""
        body = await Request(self.source).read()
        self.release_conn()
        assert isinstance(self.event, dict)
        try:
            self.event["body"] = body.decode("utf-8")
            self.event["isBase64Encoded"] = False
        except UnicodeDecodeError:
            self.event["body"] = base64.b64encode(body).decode("ascii")
            self.event["isBase64Encoded"] = True
        self.source = BytesSource(body)

    # --- running the handler ---------------------------------------------------------------

    def response(self) -> Response:
        """The invocation's response stream (created on first use)."""
        if self.res is None:
            mode = self.runtime.config.response_mode
            http = self.http if mode is None else mode == "http"
            self.res = Response(
                self.runtime.client,
                self.head.request_id,
                http=http,
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
            _Cancelled: the runtime cancelled it (deadline or disconnect).
        """
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(coro)
        remaining = self.head.deadline_ms / 1000 - time.time()
        delay = remaining - self.runtime.config.deadline_margin
        timer = loop.call_later(max(delay, 0.0), self.cancel, "deadline")
        try:
            return await self._task
        except asyncio.CancelledError:
            if self._why is None or not self._task.cancelled():
                raise  # the runtime itself is being cancelled
            raise _Cancelled(self._why) from None
        finally:
            timer.cancel()


class Runtime:
    """Serves invocations from the Runtime API to one handler until told to stop."""

    def __init__(
        self,
        handler: Callable[..., Any],
        config: RuntimeConfig,
        hooks: Lifecycle | None = None,
        *,
        client: RuntimeApiClient | None = None,
    ) -> None:
        self.handler = handler
        self.style = style_of(handler)
        self.config = config
        self.client = client if client is not None else RuntimeApiClient(config.address)
        self.hooks = hooks if hooks is not None else lifecycle
        self._stopping = False
        self._polls: set[asyncio.Task[Any]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self.exit_code = 0
        self.invocations = 0
        #: set once the init hooks have run and the loops poll ``/next``
        self.ready = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> int:
        """Run init hooks, serve until ``stop()``, run shutdown hooks; return the exit code."""
        # A handler object may bring its own hooks (the ASGI bridge's lifespan): they run
        # after the module's at init, and before them at shutdown.
        own = own_lifecycle(self.handler) or Lifecycle()
        try:
            for hook in [*self.hooks.init, *own.init]:
                await hook()
        except Exception as exc:
            log.exception("init hook failed")
            await report_init_error(self.client, exc)
            return 1
        self._workers = [
            asyncio.get_running_loop().create_task(self._worker(), name=f"duplexlambda-loop-{i}")
            for i in range(self.config.concurrency)
        ]
        self.ready.set()
        try:
            await asyncio.gather(*self._workers)
        finally:
            self.client.close()
            for hook in [*own.shutdown, *self.hooks.shutdown]:
                try:
                    await hook()
                except Exception:
                    log.exception("shutdown hook %r failed", hook)
        return self.exit_code

    def stop(self) -> None:
        """Stop polling; in-flight invocations finish first (SIGTERM)."""
        self._stopping = True
        for poll in list(self._polls):
            poll.cancel()

    def _fatal(self, why: str) -> None:
        log.error("%s: the runtime exits", why)
        self.exit_code = 1
        self._stopping = True
        current = asyncio.current_task()
        for task in [*self._polls, *self._workers]:
            if task is not current:
                task.cancel()

    async def _worker(self) -> None:
        while not self._stopping:
            poll = asyncio.get_running_loop().create_task(self.client.next())
            self._polls.add(poll)
            try:
                head, conn = await poll
            except asyncio.CancelledError:
                if self._stopping:
                    return
                raise
            except RuntimeApiFatalError as exc:
                self._fatal(str(exc))
                return
            except OSError as exc:
                self._fatal(f"Runtime API unreachable: {exc}")
                return
            except (RemoteProtocolError, RuntimeApiRejected, BrokenResourceError) as exc:
                log.error("bad /next answer: %s", exc)
                await asyncio.sleep(0.1)
                continue
            finally:
                self._polls.discard(poll)
            await self._serve_one(head, conn)

    # --- one invocation --------------------------------------------------------------------

    async def _serve_one(self, head: InvocationHead, conn: ClientConnection) -> None:
        rid_token = request_id.set(head.request_id)
        trace_token = trace_id.set(head.trace_id)
        single = self.config.concurrency == 1
        if single:  # the env var is only safe when one invocation runs at a time
            if head.trace_id:
                os.environ["_X_AMZN_TRACE_ID"] = head.trace_id
            else:
                os.environ.pop("_X_AMZN_TRACE_ID", None)
        started = time.monotonic()
        self.invocations += 1
        inv = Invocation(self, head, conn)
        try:
            # By its deadline Lambda has cut the invocation off: a Runtime API that never
            # answers its post must not keep this loop from the next one.
            async with asyncio.timeout(head.deadline_ms / 1000 - time.time() + STALL_GRACE):
                await self._invoke(inv)
        except TimeoutError:
            log.error(
                "invocation %s: no Runtime API answer %.0f s past the deadline; dropped",
                head.request_id,
                STALL_GRACE,
            )
            if inv.res is not None:
                inv.res.abort()
        except RuntimeApiFatalError as exc:
            self._fatal(str(exc))
        except Exception:
            log.exception("invocation %s failed inside the runtime", head.request_id)
        finally:
            # Back to the pool when its body was read; else closed (an unread upload).
            inv.release_conn()
            log.debug(
                "invocation %s done in %.1f ms",
                head.request_id,
                (time.monotonic() - started) * 1000,
            )
            request_id.reset(rid_token)
            trace_id.reset(trace_token)

    async def _invoke(self, inv: Invocation) -> None:
        head = inv.head
        try:
            inv.context = LambdaContext.from_invocation(head)
            await inv.read_event(self.style)
            await self._dispatch(inv)
        except _Cancelled as why:
            await self._report(
                head,
                inv,
                HandlerTimeoutError(
                    f"Task timed out: cancelled {self.config.deadline_margin * 1000:.0f} ms "
                    "before the invocation deadline"
                )
                if str(why) == "deadline"
                else None,
            )
        except BrokenResourceError as exc:
            if inv.res is not None and inv.res.broken:
                # The response connection broke (the client went away, or the platform cut
                # us off at the deadline): nobody is left to tell.
                log.warning("invocation %s: %s", head.request_id, exc)
                inv.res.abort()
            else:  # e.g. the upload was cut short: the handler failed, say so
                log.error("invocation %s failed: %s", head.request_id, exc)
                await self._report(head, inv, exc)
        except RuntimeApiRejected as exc:
            log.error("invocation %s: %s", head.request_id, exc)  # e.g. 413: no /error (P6)
        except RuntimeApiFatalError:
            raise
        except Exception as exc:
            log.error(
                "invocation %s failed: %s: %s",
                head.request_id,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            await self._report(head, inv, exc)
        finally:
            if inv.res is not None:
                await inv.res.run_on_close()

    async def _report(
        self, head: InvocationHead, inv: Invocation | None, exc: BaseException | None
    ) -> None:
        """Tell the Runtime API about a failed invocation, the way its state allows."""
        res = inv.res if inv is not None else None
        if exc is None:  # cancelled because the client left: drop the stream
            if res is not None:
                res.abort()
            return
        payload = error_payload(exc, head.request_id)
        try:
            if res is not None and res.started:
                await res.fail(payload)
            else:
                if res is not None:
                    res.abort()
                await self.client.post_error(head.request_id, payload)
        except RuntimeApiRejected as rejected:
            log.error("error report for %s refused: %s", head.request_id, rejected)
        except (BrokenResourceError, RemoteProtocolError, OSError) as broken:
            log.error("could not report the error of %s: %s", head.request_id, broken)

    async def _dispatch(self, inv: Invocation) -> None:
        if self.style is Style.DUPLEX:
            req = Request(
                inv.source, event=inv.event, context=inv.context, http=http_info(inv.event)
            )
            res = inv.response()
            await inv.run(self.handler(req, res))
            await res.end()
        elif self.style is Style.STREAMING:
            res = inv.response()
            await inv.run(self.handler(inv.event, res, inv.context))
            await res.end()
        else:
            result = await inv.run(self._call_buffered(inv))
            body, content_type = _marshal(result)
            await self.client.post_response(inv.head.request_id, body, content_type)

    def _call_buffered(self, inv: Invocation) -> Coroutine[Any, Any, Any]:
        if asyncio.iscoroutinefunction(self.handler):
            coro: Coroutine[Any, Any, Any] = self.handler(inv.event, inv.context)
            return coro
        # A blocking handler must not stall other invocations or the deadline timer.
        return asyncio.to_thread(self.handler, inv.event, inv.context)


def _marshal(result: Any) -> tuple[bytes, str]:
    """A buffered handler's return value as awslambdaric sends it."""
    if isinstance(result, bytes | bytearray | memoryview):
        return bytes(result), "application/unknown"
    try:
        return msgspec.json.encode(result), "application/json"
    except (TypeError, msgspec.EncodeError) as exc:
        raise MarshalError(f"Unable to marshal response: {exc}") from None


def install_signal_handlers(runtime: Runtime) -> None:
    """SIGTERM / SIGINT: stop polling and let in-flight invocations finish."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, runtime.stop)


async def report_init_error(client: RuntimeApiClient, exc: BaseException) -> None:
    """``POST /runtime/init/error``; the process exits after it (awslambdaric exits 1)."""
    try:
        await client.post_error(None, error_payload(exc))
    except (DuplexLambdaError, OSError) as failed:
        log.error("could not report the init error: %s", failed)


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return type(loop).__module__.split(".")[0]


async def main_async(spec: str, config: RuntimeConfig, *, asgi: bool = False) -> int:
    """Load the handler, then serve; an init failure is reported and gives exit code 1.

    With ``asgi`` the object named by ``spec`` is an ASGI app, served through
    ``duplexlambda.asgi.asgi`` (its lifespan runs at init and at SIGTERM).
    """
    from duplexlambda.handler import load_handler
    from duplexlambda.protocol import chunked

    client = RuntimeApiClient(config.address)
    try:
        handler = load_handler(spec)
        if asgi:
            from duplexlambda.asgi import asgi as asgi_handler

            handler = asgi_handler(handler)
        style = style_of(handler)
    except Exception as exc:
        log.error("init failed: %s: %s", error_payload(exc).errorType, exc)
        await report_init_error(client, exc)
        client.close()
        return 1
    client.close()
    log.info(
        "duplexlambda runtime: handler %s (%s), codec %s, loop %s, concurrency %d",
        spec,
        "asgi" if asgi else style.value,
        chunked.IMPL,
        _loop_name(),
        config.concurrency,
    )
    runtime = Runtime(handler, config)
    install_signal_handlers(runtime)
    return await runtime.serve()


def run(spec: str, *, use_uvloop: bool = True, asgi: bool = False) -> int:
    """``python -m duplexlambda run HANDLER``: the process a ``bootstrap`` starts.

    ``asgi`` (``--asgi``, or ``DUPLEXLAMBDA_ASGI=1`` in the environment) serves ``HANDLER``
    as an ASGI app.
    """
    from duplexlambda.log import setup_logging

    setup_logging()
    try:
        config = RuntimeConfig.from_env()
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if use_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    asgi = asgi or os.environ.get("DUPLEXLAMBDA_ASGI", "") in ("1", "true")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main_async(spec, config, asgi=asgi))
