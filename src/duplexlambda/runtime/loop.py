"""The invocation loop: next -> context -> handler(req, res) -> end / error.

One event loop for the life of the process (clients opened at init are reused by every warm
invocation); ``AWS_LAMBDA_MAX_CONCURRENCY`` loops poll ``/next`` side by side, each failure
isolated to its invocation. Errors follow docs/runtime-api.md §3.3.4: before the first byte a
buffered ``/error``, after it the error trailers. Which HTTP fronts get a streamed answer
(``DUPLEXLAMBDA_STREAMING``, or the handler's ``@streaming_fronts``) is settled once, at
init (docs/fronts.md#streaming).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from duplexlambda.context import LambdaContext, request_id, trace_id
from duplexlambda.errors import (
    BrokenResourceError,
    DuplexLambdaError,
    HandlerTimeoutError,
    RemoteProtocolError,
)
from duplexlambda.events import DEFAULT_STREAMING, Front, parse_streaming
from duplexlambda.events.settings import streaming_from_env
from duplexlambda.handler import (
    Lifecycle,
    Style,
    lifecycle,
    own_lifecycle,
    streaming_of,
    style_of,
)
from duplexlambda.protocol.runtime_api import (
    InvocationHead,
    RuntimeApiAddress,
    error_payload,
    xray_cause,
)
from duplexlambda.runtime.client import RuntimeApiClient, RuntimeApiFatalError, RuntimeApiRejected
from duplexlambda.runtime.connection import ClientConnection
from duplexlambda.runtime.invocation import (
    Cancelled,
    HandlerFault,
    HandlerThreads,
    ServedInvocation,
)
from duplexlambda.runtime.marshal import MarshalError as MarshalError
from duplexlambda.runtime.marshal import marshal
from duplexlambda.runtime.request import Request

log = logging.getLogger("duplexlambda")

#: Where the runtime's own frames live: error stack traces start after them (as awslambdaric
#: drops its bootstrap.py frames), so CloudWatch and X-Ray show the user's code first.
INTERNAL_PATHS = (
    *(
        os.path.dirname(module.__file__ or "") + os.sep
        for module in (importlib.import_module("duplexlambda"), asyncio, concurrent.futures)
    ),
    threading.__file__,
)

#: How much of an error message the runtime's own log line repeats (the report has more).
LOGGED_MESSAGE = 4096

#: The variables ``LambdaContext`` reads (context.py), read once at start.
CONTEXT_ENV = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
)

#: Seconds past its deadline an invocation may still wait for the Runtime API's answer.
STALL_GRACE = 2.0


@dataclass
class RuntimeConfig:
    """How the runtime behaves; ``from_env`` reads Lambda's environment."""

    address: RuntimeApiAddress
    concurrency: int = 1
    #: the handler is cancelled this many seconds before the invocation deadline
    deadline_margin: float = 0.25
    #: "http" / "raw" force the response framing; None decides from the event's shape
    response_mode: str | None = None
    #: the fronts whose answers are streamed (``DUPLEXLAMBDA_STREAMING``); the other HTTP
    #: fronts get one proxy response JSON (docs/fronts.md#streaming)
    streaming: frozenset[Front] = DEFAULT_STREAMING

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RuntimeConfig:
        """Read ``AWS_LAMBDA_RUNTIME_API``, ``AWS_LAMBDA_MAX_CONCURRENCY``,
        ``DUPLEXLAMBDA_DEADLINE_MARGIN_MS``, ``DUPLEXLAMBDA_RESPONSE`` and
        ``DUPLEXLAMBDA_STREAMING`` (once, at startup).

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
            streaming=streaming_from_env(env),
        )


def streaming_for(handler: Callable[..., Any], config: RuntimeConfig) -> frozenset[Front]:
    """The fronts streamed for ``handler``: its own ``@streaming_fronts`` (or a bridge's
    ``streaming_fronts=``), else ``DUPLEXLAMBDA_STREAMING``.

    Raises:
        ValueError: the handler names an unknown front, or one that cannot stream.
    """
    names = streaming_of(handler)
    return config.streaming if names is None else parse_streaming(names)


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
        self.streaming = streaming_for(handler, config)
        self.client = client if client is not None else RuntimeApiClient(config.address)
        self.hooks = hooks if hooks is not None else lifecycle
        self._stopping = False
        #: the workers now waiting on ``/next`` (only those are cancelled by ``stop()``)
        self._polling: set[asyncio.Task[Any]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._single = config.concurrency == 1
        self._is_async = asyncio.iscoroutinefunction(handler)  # inspect once, not per call
        self._threads = HandlerThreads()
        #: the context's fields from the environment, read once: Lambda sets them at start
        self._context_env = {name: os.environ[name] for name in CONTEXT_ENV if name in os.environ}
        self.exit_code = 0
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
            self._threads.close()
            for hook in [*own.shutdown, *self.hooks.shutdown]:
                try:
                    await hook()
                except Exception:
                    log.exception("shutdown hook %r failed", hook)
        return self.exit_code

    def stop(self) -> None:
        """Stop polling; in-flight invocations finish first (SIGTERM)."""
        self._stopping = True
        for worker in list(self._polling):
            worker.cancel()

    def _fatal(self, why: str) -> None:
        log.error("%s: the runtime exits", why)
        self.exit_code = 1
        self._stopping = True
        current = asyncio.current_task()
        for task in self._workers:
            if task is not current:
                task.cancel()

    async def _worker(self) -> None:
        # The poll is awaited here, not in a task of its own (a task per poll cost an event-loop
        # pass and ~10 µs); ``stop()`` cancels this worker while it is in ``_polling``.
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping:
            self._polling.add(me)
            try:
                head, conn = await self.client.next()
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
                self._polling.discard(me)
            await self._serve_one(head, conn)

    # --- one invocation --------------------------------------------------------------------

    async def _serve_one(self, head: InvocationHead, conn: ClientConnection) -> None:
        rid_token = request_id.set(head.request_id)
        trace_token = trace_id.set(head.trace_id)
        if self._single:  # the env var is only safe when one invocation runs at a time
            if head.trace_id:
                os.environ["_X_AMZN_TRACE_ID"] = head.trace_id
            else:
                os.environ.pop("_X_AMZN_TRACE_ID", None)
        started = time.monotonic()
        inv = ServedInvocation(self, head, conn)
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
            # The /next connection goes back to the pool when its body was read, else it is
            # closed; either way this invocation's req can no longer reach it.
            inv.finish()
            log.debug(
                "invocation %s done in %.1f ms",
                head.request_id,
                (time.monotonic() - started) * 1000,
            )
            request_id.reset(rid_token)
            trace_id.reset(trace_token)

    async def _invoke(self, inv: ServedInvocation) -> None:
        head = inv.head
        try:
            inv.context = LambdaContext.from_invocation(head, self._context_env)
            await inv.read_event(self.style)
            await self._dispatch(inv)
        except Cancelled as why:
            await self._report(
                inv,
                HandlerTimeoutError(
                    f"Task timed out: cancelled {self.config.deadline_margin * 1000:.0f} ms "
                    "before the invocation deadline"
                )
                if str(why) == "deadline"
                else None,
            )
        except RuntimeApiRejected as exc:
            log.error(
                "invocation %s: %s", head.request_id, exc
            )  # e.g. 413: no /error (docs/runtime-api.md P6)
        except RuntimeApiFatalError:
            raise
        except Exception as exc:
            # Includes a broken response connection (the client went away, or the platform
            # cut us off at the deadline), which the response drops instead of reporting.
            await self._report(inv, exc)
        finally:
            if inv.res is not None and inv.res.has_on_close:
                await inv.res.run_on_close()

    async def _report(self, inv: ServedInvocation, exc: BaseException | None) -> None:
        """Tell the Runtime API about a failed invocation; the response decides how."""
        if exc is None:  # the client went away: nobody to tell
            await inv.response().fail(None)
            return
        if isinstance(exc, HandlerFault):
            exc = exc.original
        payload = error_payload(exc, inv.head.request_id, internal=INTERNAL_PATHS)
        log.error(
            "invocation %s failed: %s: %s",
            inv.head.request_id,
            payload.errorType,
            payload.errorMessage[:LOGGED_MESSAGE],
            exc_info=exc,
        )
        cause = xray_cause(exc, os.getcwd(), INTERNAL_PATHS)
        await inv.response().fail(payload, cause)

    async def _dispatch(self, inv: ServedInvocation) -> None:
        if self.style is Style.DUPLEX:
            req = Request(inv.source, event=inv.event, context=inv.context, http=inv.request)
            res = inv.response()
            await inv.run(self.handler(req, res), then=res.end)
        elif self.style is Style.STREAMING:
            res = inv.response()
            await inv.run(self.handler(inv.event, res, inv.context), then=res.end)
        else:
            # Awaited in this worker, not in a task of its own: a buffered handler's context
            # then carries over to this loop's next invocation, as in awslambdaric, which
            # calls every handler in its one thread.
            result = await inv.run_inline(self._call_buffered(inv))
            body, content_type = marshal(result)
            await self.client.post_response(inv.head.request_id, body, content_type)

    def _call_buffered(self, inv: ServedInvocation) -> Coroutine[Any, Any, Any]:
        if self._is_async:
            coro: Coroutine[Any, Any, Any] = self.handler(inv.event, inv.context)
            return coro
        # A blocking handler must not stall other invocations or the deadline timer.
        return self._threads.call(self.handler, inv.event, inv.context)


def install_signal_handlers(runtime: Runtime) -> None:
    """SIGTERM / SIGINT: stop polling and let in-flight invocations finish."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, runtime.stop)


async def report_init_error(client: RuntimeApiClient, exc: BaseException) -> None:
    """``POST /runtime/init/error``; the process exits after it (awslambdaric exits 1)."""
    try:
        await client.post_error(None, error_payload(exc, internal=INTERNAL_PATHS))
    except (DuplexLambdaError, OSError) as failed:
        log.error("could not report the init error: %s", failed)


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return type(loop).__module__.split(".")[0]


async def main_async(
    spec: str, config: RuntimeConfig, *, wrap: Callable[[Any], Any] | None = None
) -> int:
    """Load the handler, then serve on this loop; an init failure is reported and gives exit
    code 1 (``run`` does the same before it picks an engine; this is the in-process form).

    ``wrap`` turns the object named by ``spec`` into a handler (the command line passes the
    ASGI bridge for ``--asgi``); it runs at init, so its failures are init errors.
    """
    from duplexlambda.handler import load_handler

    client = RuntimeApiClient(config.address)
    try:
        handler = load_handler(spec)
        if wrap is not None:
            handler = wrap(handler)
        style = style_of(handler)
        streaming_for(handler, config)  # a bad front name is an init error
    except Exception as exc:
        log.error("init failed: %s: %s", error_payload(exc).errorType, exc)
        await report_init_error(client, exc)
        client.close()
        return 1
    client.close()
    label = getattr(wrap, "__name__", style.value) if wrap is not None else style.value
    return await serve_handler(handler, config, spec=spec, label=label)


async def serve_handler(
    handler: Callable[..., Any], config: RuntimeConfig, *, spec: str, label: str
) -> int:
    """Serve a loaded handler on the asyncio engine until SIGTERM; return the exit code."""
    from duplexlambda.protocol import chunked

    log.info(
        "duplexlambda runtime: handler %s (%s), codec %s, loop %s, concurrency %d",
        spec,
        label,
        chunked.IMPL,
        _loop_name(),
        config.concurrency,
    )
    runtime = Runtime(handler, config)
    install_signal_handlers(runtime)
    return await runtime.serve()


def run_asyncio(
    handler: Callable[..., Any],
    config: RuntimeConfig,
    *,
    spec: str,
    label: str,
    use_uvloop: bool = True,
) -> int:
    """The asyncio engine for a loaded handler (``runtime/start.py`` picks it)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if use_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve_handler(handler, config, spec=spec, label=label))


def run(spec: str, *, use_uvloop: bool = True, wrap: Callable[[Any], Any] | None = None) -> int:
    """``python -m duplexlambda run HANDLER`` (kept here for imports of old; see start.run)."""
    from duplexlambda.runtime.start import run as start_run

    return start_run(spec, use_uvloop=use_uvloop, wrap=wrap)
