"""Faults of the handler, our runtime against the emulator (one loop, real sockets).

Each test is named after its fault. Each checks what the caller sees (docs/runtime-api.md §3.3.3,
3.3.4, README "Errors, deadlines, cancellation"), that a well-behaved invocation streaming
at the same time gets every byte and only its bytes, and that the next invocation works.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.errors import ClosedResourceError
from duplexlambda.streams import Request, Response

from ..support.emulated import record_of
from ..support.wire import request
from .harness import GOOD_BODY, beside_good, duplex_with, fault_beside_good, good_call, stack

pytestmark = pytest.mark.asyncio


async def test_handler_raises_before_writing() -> None:
    async def fault(req: Request, res: Response) -> None:
        raise RuntimeError("before any byte")

    async with stack(duplex_with(fault)) as s:
        reply, record = await fault_beside_good(s)
    # Nothing was streamed: a buffered /error, which the function URL turns into a 502.
    assert reply.status == 502
    error = json.loads(reply.body)
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "before any byte"
    assert record.error_type == "RuntimeError"


async def test_handler_raises_after_some_chunks() -> None:
    async def fault(req: Request, res: Response) -> None:
        await res.write(b"one,")
        await res.write(b"two,")
        raise ValueError("mid-stream")

    async with stack(duplex_with(fault)) as s:
        reply, record = await fault_beside_good(s)
    # The bytes already sent stay delivered; the error trailers fail the invocation and the
    # client's response ends without its last chunk.
    assert reply.status == 200
    assert reply.body == b"one,two,"
    assert not reply.complete
    assert (record.error_type, record.truncated) == ("ValueError", True)


async def test_handler_raises_after_end() -> None:
    async def fault(req: Request, res: Response) -> None:
        await res.end(b"all of it")
        raise KeyError("too late to matter")

    async with stack(duplex_with(fault)) as s:
        reply, record = await fault_beside_good(s)
    # The response was complete and accepted (202) before the error: the caller has it all;
    # the error is only logged by the runtime.
    assert (reply.status, reply.body, reply.complete) == (200, b"all of it", True)
    assert record.error_type is None


async def test_handler_writes_after_end() -> None:
    seen: list[BaseException] = []

    async def fault(req: Request, res: Response) -> None:
        await res.write(b"first ")
        await res.end(b"last")
        try:
            await res.write(b"after the end")
        except ClosedResourceError as exc:
            seen.append(exc)
            raise

    async with stack(duplex_with(fault)) as s:
        reply, record = await fault_beside_good(s)
    assert len(seen) == 1  # the late write raised ClosedResourceError in the handler
    assert (reply.status, reply.body, reply.complete) == (200, b"first last", True)
    assert record.error_type is None


async def test_handler_never_reads_the_upload() -> None:
    async def fault(req: Request, res: Response) -> None:
        await res.end(b"did not read it")

    async def upload() -> Any:
        for _ in range(64):
            yield b"u" * 16384
            await asyncio.sleep(0.001)

    async with stack(duplex_with(fault)) as s:
        faulty = request(s.url, "POST", "/fault", body=upload())
        reply, record = await fault_beside_good(s, faulty)
        # The unread request stream cost the runtime its /next connection, nothing more.
        again = await request(s.url, "POST", "/fault", body=b"small")
    assert (reply.status, reply.body, reply.complete) == (200, b"did not read it", True)
    assert record.error_type is None
    assert (again.status, again.body) == (200, b"did not read it")


async def test_handler_blocks_past_the_deadline() -> None:
    cancelled = asyncio.Event()

    async def fault(req: Request, res: Response) -> None:
        await res.write(b"started ")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with stack(duplex_with(fault), timeout=1.5, deadline_margin=0.3) as s:
        began = time.monotonic()
        reply = await beside_good(s.url, request(s.url, path="/fault"))
        took = time.monotonic() - began
        record = await record_of(s, reply.header("x-amzn-RequestId"))
        await good_call(s.url)
    assert cancelled.is_set()
    # Streaming had begun: the runtime ends the stream with Function.Timeout trailers before
    # the emulator's own timeout (Sandbox.Timeout) would have cut it.
    assert (reply.status, reply.body, reply.complete) == (200, b"started ", False)
    assert record.error_type == "Function.Timeout"
    assert 1.0 < took < 1.45


async def test_handler_blocks_past_the_deadline_before_writing() -> None:
    async def fault(req: Request, res: Response) -> None:
        await asyncio.sleep(30)

    async with stack(duplex_with(fault), timeout=1.0) as s:
        reply = await beside_good(s.url, request(s.url, path="/fault"))
        await good_call(s.url)
    assert reply.status == 502
    assert json.loads(reply.body)["errorType"] == "Function.Timeout"


async def test_sync_buffered_handler_blocks_past_the_deadline() -> None:
    release = threading.Event()
    calls: list[str] = []

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        path = event["rawPath"]
        calls.append(path)
        if path == "/fault":
            release.wait(5)  # a blocking call: it runs in a thread, the loop stays free
        return {"statusCode": 200, "body": f"done {path}"}

    async with stack(handler, timeout=1.0) as s:
        faulty = asyncio.ensure_future(request(s.url, path="/fault"))
        await asyncio.sleep(0.2)
        # While the thread blocks, another invocation on the same runtime is served.
        beside = await request(s.url, path="/beside")
        reply = await faulty
        release.set()  # let the abandoned thread end (Python cannot kill a thread)
        after = await request(s.url, path="/after")
    assert (beside.status, beside.body) == (200, b"done /beside")
    assert reply.status == 502
    assert json.loads(reply.body)["errorType"] == "Function.Timeout"
    assert (after.status, after.body) == (200, b"done /after")


async def test_well_behaved_body_is_exact_under_concurrency() -> None:
    """The reference the other tests lean on: four good invocations at once, none mixed."""

    async def fault(req: Request, res: Response) -> None:
        raise AssertionError("not called")

    async with stack(duplex_with(fault), concurrency=4) as s:
        replies = await asyncio.gather(*(good_call(s.url) for _ in range(4)))
    assert all(r.body == GOOD_BODY for r in replies)
