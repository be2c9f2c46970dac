"""Testing handlers: an in-process client that needs no sockets, and the emulator on free ports.

``LambdaClient`` runs the real runtime (``Runtime``: event reading, handler styles, the
response streams, error reports, deadline cancellation, init/shutdown hooks) against the
emulator's Runtime API (``emulator.runtime_api.RuntimeApi`` and its ``Dispatcher``), joined by
in-memory pipes instead of TCP: every byte still goes through the same HTTP/1.1 and chunked
framing, only the sockets are gone. Requests are built as a function URL builds them
(payload format 2.0, uploads streamed in duplex mode) and answers are mapped by the
emulator's own function-URL relay (prelude -> status/headers/cookies, one handler write ->
one chunk, a failure -> 502, a mid-stream failure -> a cut-short body)::

    async with LambdaClient(handler) as client:
        resp = await client.post("/items", json={"name": "x"})
        assert resp.status == 201

        async with client.stream("POST", "/upload", body=chunks()) as resp:
            async for chunk in resp:  # as the handler writes them
                ...

        result = await client.invoke({"plain": "event"})

``EmulatedFunction`` is ``duplexlambda serve`` in-process: the ``Emulator`` on free
127.0.0.1 ports and this process's runtime serving the handler on the same event loop.

The pytest plugin (``duplexlambda.testing.plugin``) offers both as fixtures.

Modules: ``client`` (``LambdaClient``), ``function`` (``EmulatedFunction``), ``results``
(what a test gets back), ``call`` (one request in flight, answered through the emulator's
relay), ``memory`` (in-memory connections, upload and response), ``runner`` (the runtime
task both hosts run), ``plugin``. The names below load on first use, so that pytest loading
the plugin does not load the runtime and the emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import DEFAULT_BASE_URL, LambdaClient
    from .function import EmulatedFunction
    from .memory import InMemoryRuntimeApi, MemoryTransport, memory_pipe
    from .results import HeaderMap, HttpResponse, InitError, InvocationError, InvokeResult

_WHERE = {
    "DEFAULT_BASE_URL": "client",
    "LambdaClient": "client",
    "EmulatedFunction": "function",
    "InMemoryRuntimeApi": "memory",
    "MemoryTransport": "memory",
    "memory_pipe": "memory",
    "HeaderMap": "results",
    "HttpResponse": "results",
    "InitError": "results",
    "InvocationError": "results",
    "InvokeResult": "results",
}

__all__ = [
    "DEFAULT_BASE_URL",
    "EmulatedFunction",
    "HeaderMap",
    "HttpResponse",
    "InMemoryRuntimeApi",
    "InitError",
    "InvocationError",
    "InvokeResult",
    "LambdaClient",
    "MemoryTransport",
    "memory_pipe",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
