"""Shared pieces of the fault-injection tests: our runtime on the emulator in one loop, a
well-behaved invocation to run beside each fault, and how to find what the caller saw."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from duplexlambda.emulator import Emulator, EmulatorConfig, InvocationRecord
from duplexlambda.handler import Lifecycle
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime import Runtime, RuntimeConfig
from duplexlambda.streams import Request, Response

from ..integration.http_client import Reply, request

#: What the well-behaved invocation streams: 40 distinct pieces, so a lost, repeated or
#: foreign byte anywhere shows.
GOOD_PIECES = [b"%04d:" % i + bytes([65 + i % 26]) * (100 + i) + b"\n" for i in range(40)]
GOOD_BODY = b"".join(GOOD_PIECES)

Fault = Callable[[Request, Response], Awaitable[None]]


async def write_good(res: Response) -> None:
    """The well-behaved stream: one chunk per piece, with pauses so that it interleaves."""
    res.content_type = "text/plain"
    for piece in GOOD_PIECES:
        await res.write(piece)
        await asyncio.sleep(0.002)


def duplex_with(fault: Fault) -> Callable[[Request, Response], Awaitable[None]]:
    """A duplex handler: ``/good`` is well-behaved, every other path runs ``fault``."""

    async def handler(req: Request, res: Response) -> None:
        if req.path == "/good":
            await write_good(res)
        else:
            await fault(req, res)

    return handler


@dataclass
class Stack:
    emulator: Emulator
    runtime: Runtime
    task: asyncio.Task[int]

    @property
    def url(self) -> str:
        return self.emulator.url

    async def record(self, request_id: str | None, within: float = 5.0) -> InvocationRecord:
        """The emulator's record of the invocation ``request_id`` (others are skipped)."""
        assert request_id is not None

        async def find() -> InvocationRecord:
            while True:
                record = await self.emulator.records.get()
                if record.request_id == request_id:
                    return record

        return await asyncio.wait_for(find(), within)


@contextlib.asynccontextmanager
async def stack(
    handler: Callable[..., Any],
    *,
    concurrency: int = 2,
    deadline_margin: float = 0.2,
    **emulator: Any,
) -> AsyncIterator[Stack]:
    """The emulator on free 127.0.0.1 ports and our runtime polling it, in this loop."""
    emulator.setdefault("timeout", 10.0)
    config = EmulatorConfig(port=0, runtime_api_port=0, concurrency=concurrency, **emulator)
    async with Emulator(config) as emu:
        runtime = Runtime(
            handler,
            RuntimeConfig(
                RuntimeApiAddress.parse(emu.runtime_api),
                concurrency=concurrency,
                deadline_margin=deadline_margin,
            ),
            Lifecycle(),
        )
        task = asyncio.get_running_loop().create_task(runtime.serve())
        try:
            yield Stack(emu, runtime, task)
        finally:
            runtime.stop()
            await asyncio.wait_for(task, 10)


async def good_call(url: str) -> Reply:
    """Run the well-behaved invocation and check every byte of it."""
    reply = await request(url, path="/good")
    assert reply.status == 200, reply
    assert reply.complete, "the well-behaved invocation was cut"
    assert reply.body == GOOD_BODY, "bytes of the well-behaved invocation were lost or mixed"
    return reply


async def beside_good(url: str, faulty: Awaitable[Reply]) -> Reply:
    """Run a faulty invocation while a well-behaved one streams; return the faulty reply."""
    good = asyncio.ensure_future(good_call(url))
    try:
        return await faulty
    finally:
        await good


def open_fds() -> int:
    """File descriptors open in this process."""
    return len(os.listdir("/proc/self/fd"))
