"""``Emulator``: both listeners of one emulated function, as an async context manager.

    async with Emulator(EmulatorConfig(port=0, runtime_api_port=0)) as emu:
        ...  # point a runtime at emu.runtime_api, a client at emu.url
        record = await emu.records.get()

No runtime process is started here: ``duplexlambda serve`` adds a supervisor for that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType

from duplexlambda.events.fronts import Front

from .config import EmulatorConfig, InvocationRecord
from .front import Front as FrontApp
from .hub import Hub
from .invocations import Dispatcher, Invocation
from .runtime_api import RuntimeApi
from .server import HttpServer

log = logging.getLogger("duplexlambda.emulator")

#: Unread records kept in ``Emulator.records``; older ones are dropped.
MAX_RECORDS = 1000


class Emulator:
    """The Lambda side of one function: function URL + Invoke API, and the Runtime API.

    Attributes:
        config: the settings it runs with.
        records: finished invocations, as ``InvocationRecord`` (the oldest unread are
            dropped beyond ``MAX_RECORDS``).
        hub: shared state (dispatcher, log tail) for embedders such as the supervisor.
    """

    def __init__(self, config: EmulatorConfig | None = None, *, front: bool = True) -> None:
        self.config = config or EmulatorConfig()
        self.records: asyncio.Queue[InvocationRecord] = asyncio.Queue()
        self._timeout_listeners: list[Callable[[Invocation], None]] = []
        self.dispatcher = Dispatcher(self.config.timeout, on_timeout=self._timed_out)
        self.hub = Hub(self.config, self.dispatcher, self._record)
        self._front = HttpServer(FrontApp(self.hub), "function url", half_close=True)
        self._runtime = HttpServer(
            RuntimeApi(self.dispatcher, throttle=self.config.throttle), "runtime api"
        )
        self._started = False
        #: False: only the Runtime API listens (``serve --template`` shares one front port
        #: between functions, ``duplexlambda.emulator.template``)
        self.serves_front = front

    async def start(self) -> None:
        """Bind both listeners."""
        await self._runtime.start(self.config.host, self.config.runtime_api_port)
        try:
            if self.serves_front:
                await self._front.start(self.config.host, self.config.port)
        except BaseException:
            await self._runtime.close()
            raise
        self._started = True

    async def close(self) -> None:
        """Fail what is pending, close every connection, stop listening."""
        if not self._started:
            return
        self._started = False
        self.dispatcher.close()
        await self._front.close()
        await self._runtime.close()
        await self.hub.close()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The function URL, e.g. ``http://127.0.0.1:9000/``."""
        host, port = self._front.address
        return f"http://{_url_host(host)}:{port}/"

    @property
    def front_url(self) -> str:
        """Where the front (``config.front``) serves: ``url``, plus the stage for a REST API
        (``http://127.0.0.1:9000/prod/``)."""
        if self.config.front_spec.kind is Front.REST_API:
            return f"{self.url}{self.config.stage}/"
        return self.url

    @property
    def inspector_url(self) -> str:
        """The inspector page (``/_duplexlambda/`` on the front port)."""
        return f"{self.url}_duplexlambda/"

    @property
    def runtime_api(self) -> str:
        """``host:port`` of the Runtime API: the runtime's ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._runtime.address
        return f"{_url_host(host)}:{port}"

    def on_timeout(self, listener: Callable[[Invocation], None]) -> None:
        """Call ``listener(invocation)`` when an invocation times out (to recycle the runtime)."""
        self._timeout_listeners.append(listener)

    def runtime_exited(self, message: str) -> None:
        """The runtime process died: what it was running fails with ``Runtime.ExitError``."""
        self.dispatcher.fail_in_flight("Runtime.ExitError", message)

    def _timed_out(self, invocation: Invocation) -> None:
        for listener in self._timeout_listeners:
            listener(invocation)

    def _record(self, record: InvocationRecord) -> None:
        ttfb = "-" if record.ttfb_ms is None else f"{record.ttfb_ms:.1f}ms"
        log.info(
            "%s %s status=%d error=%s in=%dB out=%dB duration=%.1fms ttfb=%s%s",
            record.kind,
            record.request_id,
            record.status,
            record.error_type or "-",
            record.bytes_in,
            record.bytes_out,
            record.duration_ms,
            ttfb,
            " truncated" if record.truncated else "",
        )
        if self.records.qsize() >= MAX_RECORDS:
            self.records.get_nowait()
        self.records.put_nowait(record)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
