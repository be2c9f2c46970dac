"""Faults of the connections around an invocation, our runtime against the emulator.

Each test is named after its fault and checks what the caller sees, that a well-behaved
invocation streaming at the same time keeps every byte, and that the next invocation works.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from duplexlambda.errors import BrokenResourceError
from duplexlambda.streams import Request, Response

from ..support.emulated import record_of
from ..support.wire import request
from .harness import beside_good, duplex_with, good_call, open_fds, stack

pytestmark = pytest.mark.asyncio


async def test_emulator_cuts_the_response_connection_mid_body() -> None:
    wrote = asyncio.Event()
    cancelled = asyncio.Event()
    closed = asyncio.Event()
    ids: list[str] = []

    async def fault(req: Request, res: Response) -> None:
        assert req.context is not None
        ids.append(req.context.aws_request_id)
        res.on_close(closed.set)
        await res.write(b"before the cut")
        wrote.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with stack(duplex_with(fault)) as s:
        faulty = asyncio.ensure_future(beside_good(s.url, request(s.url, path="/fault")))
        await asyncio.wait_for(wrote.wait(), 5)
        # The platform side drops the runtime's /response connection (what Lambda does on a
        # reset), while the invocation is still open.
        inv = s.emulator.dispatcher.get(ids[0])
        assert inv is not None
        # The runtime has sent the stream; wait until the emulator relays it (and so can
        # cut it): the bytes cross a socket first.
        await _settle(lambda: inv.response_bytes > 0)
        inv.close_runtime_connections()
        reply = await faulty
        record = await record_of(s, inv.request_id)
        await asyncio.wait_for(cancelled.wait(), 5)  # the runtime cancelled the handler
        await asyncio.wait_for(closed.wait(), 5)  # ... and ran its on_close callbacks
        await good_call(s.url)
    # What was relayed stays relayed; the caller's stream is cut (no last chunk).
    assert (reply.status, reply.body, reply.complete) == (200, b"before the cut", False)
    assert (record.error_type, record.truncated) == ("Runtime.TruncatedResponse", True)


async def test_client_disconnects_mid_stream() -> None:
    """The handler is stopped, ``on_close`` runs, and nothing leaks: the process's open
    file descriptors and asyncio tasks come back to what they were, after 20 hang-ups.

    "Stopped" is a cancellation, or ``BrokenResourceError`` from a ``write()`` that ran
    between the connection breaking and the cancellation landing (streams.py contract).
    """
    cancelled = 0
    broken = 0
    closed = 0
    streaming = asyncio.Event()

    async def fault(req: Request, res: Response) -> None:
        nonlocal cancelled, broken

        def on_close() -> None:
            nonlocal closed
            closed += 1

        res.on_close(on_close)
        try:
            for i in range(10_000):
                await res.write(b"tick %d\n" % i)
                streaming.set()
                await asyncio.sleep(0.002)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        except BrokenResourceError:
            broken += 1
            raise

    async def hang_up(host: str, port: int) -> None:
        streaming.clear()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /fault HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"tick 3\n")
        writer.close()
        await writer.wait_closed()

    async with stack(duplex_with(fault)) as s:
        host, port = s.url.split("//")[1].strip("/").split(":")
        await good_call(s.url)  # warm: pooled connections and lazily made objects exist
        await hang_up(host, int(port))
        await _settle(lambda: closed == 1)
        fds, tasks = open_fds(), len(asyncio.all_tasks())
        good = asyncio.ensure_future(good_call(s.url))
        for _ in range(20):
            await hang_up(host, int(port))
        await good
        await _settle(lambda: closed == 21)
        await good_call(s.url)
        # Give closing transports their last callbacks, then compare.
        await _settle(lambda: open_fds() <= fds and len(asyncio.all_tasks()) <= tasks)
        assert (cancelled + broken, closed) == (21, 21)
        assert cancelled, "no hang-up cancelled its handler"
        assert open_fds() <= fds, "file descriptors leaked"
        assert len(asyncio.all_tasks()) <= tasks, asyncio.all_tasks()


async def _settle(done: object, seconds: float = 5.0) -> None:
    """Wait (bounded) until ``done()`` holds; the caller asserts afterwards."""
    assert callable(done)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not done() and loop.time() < end:
        gc.collect()
        await asyncio.sleep(0.02)
