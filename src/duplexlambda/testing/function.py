"""``EmulatedFunction``: ``duplexlambda serve`` in-process, for tests with a real HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from duplexlambda.emulator.app import Emulator
from duplexlambda.emulator.config import EmulatorConfig, FrontName, InvocationRecord, Mode
from duplexlambda.handler import Lifecycle
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime.loop import RuntimeConfig

from .runner import RuntimeHost, runtime_streaming


class EmulatedFunction(RuntimeHost):
    """``duplexlambda serve`` in-process: the ``Emulator`` on free ports of 127.0.0.1 and this
    process's runtime serving ``handler`` on the same event loop.

    ``front`` picks the service that invokes ``handler`` (``EmulatorConfig.front``:
    ``"function-url"``, ``"http-api"``, ``"rest"``, ``"alb"``...).

    Attributes:
        url: the function URL (``http://127.0.0.1:PORT/``).
        front_url: where the front serves (``url``, plus ``stage/`` for a REST API).
        invoke_url / stream_invoke_url: the Invoke API endpoints (boto3 ``endpoint_url`` is
            ``url``).
        runtime_api: ``host:port`` of the Runtime API.
        records: finished invocations (``emulator.InvocationRecord``).
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
        response_limit: int | None = None,
        throttle: bool = False,
        function_name: str = "function",
        front: FrontName = "function-url",
        stage: str = "prod",
        integration_timeout: float | None = None,
        inspector: bool = True,
    ) -> None:
        super().__init__(
            handler,
            timeout=timeout,
            concurrency=concurrency,
            deadline_margin=deadline_margin,
            lifecycle=lifecycle,
        )
        self.config = EmulatorConfig(
            host="127.0.0.1",
            port=0,
            runtime_api_port=0,
            mode=mode,
            timeout=timeout,
            concurrency=concurrency,
            response_limit=response_limit,
            throttle=throttle,
            function_name=function_name,
            front=front,
            stage=stage,
            integration_timeout=integration_timeout,
            inspector=inspector,
        )
        self.emulator = Emulator(self.config)

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def front_url(self) -> str:
        """Where the front serves (``url``, plus the stage for a REST API)."""
        return self.emulator.front_url

    @property
    def runtime_api(self) -> str:
        return self.emulator.runtime_api

    @property
    def invoke_url(self) -> str:
        return f"{self.url}2015-03-31/functions/{self.config.function_name}/invocations"

    @property
    def stream_invoke_url(self) -> str:
        name = self.config.function_name
        return f"{self.url}2021-11-15/functions/{name}/response-streaming-invocations"

    @property
    def records(self) -> asyncio.Queue[InvocationRecord]:
        return self.emulator.records

    async def start(self) -> None:
        """Listen, start the runtime, wait for its init hooks.

        Raises:
            InitError: an init hook failed (the runtime reported it and exited).
        """
        await self.emulator.start()
        config = RuntimeConfig(
            RuntimeApiAddress.parse(self.emulator.runtime_api),
            concurrency=self.concurrency,
            deadline_margin=self.deadline_margin,
            streaming=runtime_streaming(self.emulator.config.front_spec.streaming_env),
        )
        await self._serve(config, self.emulator.dispatcher, "duplexlambda-emulated-runtime")

    async def _close_lambda_side(self) -> None:
        await self.emulator.close()
