"""Shared pieces of the fault-injection tests: our runtime on the emulator in one loop, and a
well-behaved invocation to run beside each fault."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable

from duplexlambda.emulator import InvocationRecord
from duplexlambda.streams import Request, Response
from duplexlambda.testing import EmulatedFunction

from ..support import emulated
from ..support.wire import Reply, request

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


#: The shared stack as these tests run it: two invocations at once (a fault beside a
#: well-behaved one) and a 10 s function timeout, unless a test says otherwise.
stack = functools.partial(emulated.stack, concurrency=2, timeout=10.0)


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


async def fault_beside_good(
    function: EmulatedFunction, faulty: Awaitable[Reply] | None = None
) -> tuple[Reply, InvocationRecord]:
    """Run a faulty call (``GET /fault`` unless given) while a well-behaved invocation
    streams, then one more well-behaved one; the faulty reply and the emulator's record."""
    reply = await beside_good(function.url, faulty or request(function.url, path="/fault"))
    record = await emulated.record_of(function, reply.header("x-amzn-RequestId"))
    await good_call(function.url)
    return reply, record


def open_fds() -> int:
    """File descriptors open in this process."""
    return len(os.listdir("/proc/self/fd"))
