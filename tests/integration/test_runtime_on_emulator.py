"""The runtime end to end against the emulator: an HTTP client, the function URL, the
Runtime API, the handler, and back — in one event loop, on real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.streams import Request, Response

from ..support.emulated import paced, stack
from ..support.wire import request

pytestmark = pytest.mark.asyncio


async def test_duplex_answers_while_the_upload_arrives() -> None:
    async def handler(req: Request, res: Response) -> None:
        res.content_type = "text/plain"
        async for chunk in req:
            await res.write(chunk.upper())

    pieces = [b"alpha ", b"beta ", b"gamma ", b"delta"]
    async with stack(handler) as emu:
        reply = await request(
            emu.url, "POST", "/up", body=paced(pieces, 0.25, pause_after_last=True)
        )
    assert reply.status == 200
    assert reply.header("content-type") == "text/plain"
    assert reply.body == b"ALPHA BETA GAMMA DELTA"
    assert reply.complete
    # The upload took ~1 s; the first answer came back well before it ended.
    first = reply.chunks[0][0] - reply.started
    assert first < 0.6
    assert reply.chunks[-1][0] - reply.chunks[0][0] > 0.5


async def test_each_write_reaches_the_client_before_the_next() -> None:
    async def handler(req: Request, res: Response) -> None:
        for i in range(5):
            await res.write(b"tick %d\n" % i)
            await asyncio.sleep(0.1)

    async with stack(handler) as emu:
        reply = await request(emu.url)
    assert [c for _, c in reply.chunks] == [b"tick %d\n" % i for i in range(5)]
    times = [t for t, _ in reply.chunks]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap > 0.05 for gap in gaps), gaps  # none were held back and coalesced


async def test_status_headers_and_cookies_reach_the_client() -> None:
    async def handler(req: Request, res: Response) -> None:
        res.status = 201
        res.headers["X-Query"] = req.query.get("q", "")
        res.set_cookie("sid", "42", httponly=True)
        res.set_cookie("theme", "dark")
        await res.end(b"made")

    async with stack(handler) as emu:
        reply = await request(emu.url, path="/things?q=hi")
    assert reply.status == 201
    assert reply.header("x-query") == "hi"
    assert sorted(reply.header_all("set-cookie")) == [
        "sid=42; HttpOnly; Path=/",
        "theme=dark; Path=/",
    ]
    assert reply.body == b"made"


async def test_empty_body_keeps_the_redirect() -> None:
    async def handler(req: Request, res: Response) -> None:
        res.status = 302
        res.headers["Location"] = "/login"

    async with stack(handler) as emu:
        reply = await request(emu.url)
    assert (reply.status, reply.header("location"), reply.body) == (302, "/login", b"")


async def test_error_before_streaming_is_a_502_and_the_next_works() -> None:
    async def handler(req: Request, res: Response) -> None:
        if req.path == "/fail":
            raise RuntimeError("before any byte")
        await res.write(b"ok")

    async with stack(handler) as emu:
        bad = await request(emu.url, path="/fail")
        good = await request(emu.url, path="/fine")
    assert bad.status == 502
    assert json.loads(bad.body)["errorType"] == "RuntimeError"
    assert (good.status, good.body) == (200, b"ok")


async def test_error_mid_stream_truncates_the_response() -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.write(b"partial")
        raise ValueError("mid-stream")

    async with stack(handler) as emu:
        reply = await request(emu.url)
        record = await asyncio.wait_for(emu.records.get(), 5)
    assert reply.status == 200
    assert reply.body == b"partial"
    assert not reply.complete  # no terminating chunk: the client can tell it failed
    assert record.error_type == "ValueError"


async def test_deadline_cancels_and_reports() -> None:
    async def handler(req: Request, res: Response) -> None:
        await asyncio.sleep(30)

    async with stack(handler, timeout=1.0) as emu:
        reply = await request(emu.url)
        record = await asyncio.wait_for(emu.records.get(), 5)
    assert reply.status == 502
    assert json.loads(reply.body)["errorType"] == "Function.Timeout"
    assert record.duration_ms < 1500


async def test_buffered_style_through_the_function_url() -> None:
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return {
            "statusCode": 418,
            "headers": {"content-type": "text/plain"},
            "body": f"{event['requestContext']['http']['method']} {event['body']}",
        }

    async with stack(handler) as emu:
        reply = await request(emu.url, "PUT", body=b"tea")
    assert (reply.status, reply.body) == (418, b"PUT tea")


async def test_streaming_style_gets_the_whole_event() -> None:
    async def handler(event: dict[str, Any], res: Response, context: LambdaContext) -> None:
        res.content_type = "application/json"
        await res.write(json.dumps({"len": len(event["body"])}).encode())

    async with stack(handler) as emu:
        reply = await request(
            emu.url, "POST", body=paced([b"x" * 1000] * 5, 0.01, pause_after_last=True)
        )
    assert json.loads(reply.body) == {"len": 5000}


async def test_concurrent_invocations_interleave() -> None:
    running = 0
    peak = 0

    async def handler(req: Request, res: Response) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await res.write(b"start " + req.path.encode())
        await asyncio.sleep(0.3)
        running -= 1
        await res.write(b" end")

    async with stack(handler, concurrency=4) as emu:
        replies = await asyncio.gather(*(request(emu.url, path=f"/{i}") for i in range(4)))
    assert peak == 4
    assert [r.body for r in replies] == [b"start /%d end" % i for i in range(4)]


async def test_client_that_hangs_up_cancels_the_handler() -> None:
    cancelled = asyncio.Event()
    closed = asyncio.Event()

    async def handler(req: Request, res: Response) -> None:
        res.on_close(closed.set)
        await res.write(b"hello")
        if req.path == "/quick":
            return
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with stack(handler) as emu:
        host, port = emu.url.split("//")[1].strip("/").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"hello")
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(cancelled.wait(), 5)
        await asyncio.wait_for(closed.wait(), 5)
        after = await request(emu.url, path="/quick")
    assert after.body == b"hello"
