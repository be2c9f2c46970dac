"""This process's runtime serving a handler as a task: what the in-process client and the
emulated function share (handler loading, init, stop as at SIGTERM, ``async with``)."""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from duplexlambda.emulator.invocations import Dispatcher
from duplexlambda.events.fronts import Front
from duplexlambda.events.settings import STREAMING_ENV, parse_streaming
from duplexlambda.handler import Lifecycle, load_handler, style_of
from duplexlambda.runtime.client import RuntimeApiClient
from duplexlambda.runtime.loop import Runtime, RuntimeConfig

from .results import InitError, InvocationError


class RuntimeHost(abc.ABC):
    """A handler served by a ``Runtime`` on the running loop, against some Lambda side.

    ``start()`` returns once the init hooks ran (``InitError`` if they failed);
    ``aclose()`` stops the runtime as SIGTERM does (in-flight invocations finish, then the
    shutdown hooks run, bounded by the function timeout), then the Lambda side.
    """

    def __init__(
        self,
        handler: Callable[..., Any] | str,
        *,
        timeout: float,
        concurrency: int,
        deadline_margin: float,
        lifecycle: Lifecycle | None,
    ) -> None:
        self.handler = load_handler(handler) if isinstance(handler, str) else handler
        style_of(self.handler)  # a bad signature fails here, not inside the runtime task
        self.timeout = timeout
        self.concurrency = concurrency
        self.deadline_margin = deadline_margin
        self.lifecycle = lifecycle
        self.runtime: Runtime | None = None
        self._task: asyncio.Task[int] | None = None

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the Lambda side and the runtime; wait for the init hooks."""

    @abc.abstractmethod
    async def _close_lambda_side(self) -> None:
        """Fail what is pending on the Lambda side and close it."""

    async def aclose(self) -> None:
        """Stop the runtime as SIGTERM does, then the Lambda side."""
        await self._shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _serve(
        self,
        config: RuntimeConfig,
        dispatcher: Dispatcher,
        name: str,
        client: RuntimeApiClient | None = None,
    ) -> None:
        """Run the runtime as a task and wait for its init hooks.

        Raises:
            InitError: the runtime exited during init (with the error it reported, if any).
        """
        self.runtime = runtime = Runtime(self.handler, config, self.lifecycle, client=client)
        self._task = task = asyncio.get_running_loop().create_task(runtime.serve(), name=name)
        ready = asyncio.ensure_future(runtime.ready.wait())
        try:
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            await asyncio.wait({ready})
        if not task.done():
            return
        failure = dispatcher.init_error
        await self._shutdown()  # an unexpected crash of the runtime itself raises here
        if failure is None:
            raise InitError("Runtime.ExitError", "the runtime exited during init")
        error = InvocationError.from_payload(failure.error_type, failure.payload)
        raise InitError(error.error_type, error.message, error.trace, error.payload)

    async def _shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None and self.runtime is not None:
            self.runtime.stop()
            await asyncio.wait({task}, timeout=self.timeout + 5)
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        await self._close_lambda_side()
        if task is not None and not task.cancelled():
            task.result()


def runtime_streaming(front_default: str) -> frozenset[Front]:
    """The fronts an in-process runtime streams: ``DUPLEXLAMBDA_STREAMING`` when the user set
    it, else what the emulated front needs (as ``serve`` gives its runtime child)."""
    return parse_streaming(os.environ.get(STREAMING_ENV) or front_default)
