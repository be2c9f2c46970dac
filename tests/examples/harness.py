"""Running a handler end to end in one event loop: an HTTP client, the emulator's function
URL and Runtime API, and our runtime — on real loopback sockets (as tests/integration does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from duplexlambda.emulator import Emulator, EmulatorConfig
from duplexlambda.handler import Lifecycle, load_handler
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime import Runtime, RuntimeConfig


def example(name: str) -> Callable[..., Any]:
    """The ``handler`` of ``examples/<name>.py``, loaded the way the runtime loads it."""
    return load_handler(f"examples.{name}.handler")


@contextlib.asynccontextmanager
async def stack(handler: Callable[..., Any], **emulator: Any) -> AsyncIterator[Emulator]:
    """An emulator on free ports with our runtime serving ``handler``; both stop on exit."""
    config = EmulatorConfig(port=0, runtime_api_port=0, **emulator)
    async with Emulator(config) as emu:
        runtime = Runtime(
            handler,
            RuntimeConfig(RuntimeApiAddress.parse(emu.runtime_api), deadline_margin=0.2),
            Lifecycle(),
        )
        task = asyncio.get_running_loop().create_task(runtime.serve())
        try:
            yield emu
        finally:
            runtime.stop()
            await asyncio.wait_for(task, 10)


async def paced(pieces: list[bytes], gap: float) -> AsyncIterator[bytes]:
    """An upload that sends ``pieces`` with ``gap`` seconds between them."""
    for index, piece in enumerate(pieces):
        if index:
            await asyncio.sleep(gap)
        yield piece


def cut(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of ``size`` bytes."""
    return [data[i : i + size] for i in range(0, len(data), size)]
