"""``LambdaClient``: every handler style through the real runtime, in-process, no sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.handler import Lifecycle, buffered
from duplexlambda.streams import Request, Response
from duplexlambda.testing import InitError, InvocationError, LambdaClient
from duplexlambda.testing.plugin import LambdaClientFactory

from ..support.emulated import paced

pytestmark = pytest.mark.asyncio


# --- handler styles ----------------------------------------------------------------------------


async def test_duplex_handler(lambda_client: LambdaClientFactory) -> None:
    async def handler(req: Request, res: Response) -> None:
        res.status = 201
        res.headers["X-Path"] = req.path
        res.set_cookie("sid", "7", httponly=True)
        res.set_cookie("theme", "dark")
        body = await req.json()
        await res.end(json.dumps({"got": body, "q": req.query, "method": req.method}))

    client = await lambda_client(handler)
    resp = await client.put("/things?a=1", json={"x": [1, 2]}, headers={"X-Trace": "t"})
    assert resp.status == 201
    assert resp.headers["x-path"] == "/things"
    assert resp.cookies == ["sid=7; HttpOnly; Path=/", "theme=dark; Path=/"]
    assert resp.json() == {"got": {"x": [1, 2]}, "q": {"a": "1"}, "method": "PUT"}
    assert resp.error is None
    assert resp.complete


async def test_streaming_style_handler(lambda_client: LambdaClientFactory) -> None:
    async def handler(event: dict[str, Any], res: Response, context: LambdaContext) -> None:
        res.content_type = "text/plain"
        await res.write(f"{event['requestContext']['http']['method']} ")
        await res.write(event["body"])
        await res.write(f" ({context.function_name or 'fn'})")

    client = await lambda_client(handler)
    resp = await client.post("/", body="whole body")
    assert resp.chunks == [b"POST ", b"whole body", b" (fn)"]


async def test_buffered_handlers(lambda_client: LambdaClientFactory) -> None:
    def classic(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return {
            "statusCode": 418,
            "headers": {"content-type": "text/plain"},
            "cookies": ["a=1"],
            "body": f"{event['rawPath']} {event.get('body', '')}",
        }

    @buffered
    async def plain_json(event: dict[str, Any], context: LambdaContext) -> Any:
        return [event["rawQueryString"], context.aws_request_id]

    resp = await (await lambda_client(classic)).post("/tea", body="pot")
    assert (resp.status, resp.text, resp.cookies) == (418, "/tea pot", ["a=1"])
    assert resp.headers["content-type"] == "text/plain"
    got = await (await lambda_client(plain_json)).get("/?k=v")
    # A result without statusCode is sent as JSON, as function URLs do.
    assert got.headers["content-type"] == "application/json"
    assert got.json() == ["k=v", got.request_id]


async def test_handler_by_name(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client("tests.testing.handlers.shout")
    assert (await client.post("/", body=b"quiet")).body == b"QUIET"


async def test_plain_invocations(lambda_client: LambdaClientFactory) -> None:
    async def duplex(req: Request, res: Response) -> None:
        event = await req.json()
        assert not req.is_http
        await res.write(b"sum=")
        await res.write(str(sum(event["numbers"])))

    def classic(event: Any, context: LambdaContext) -> Any:
        custom = context.client_context.custom if context.client_context else None
        return {"echo": event.decode() if isinstance(event, bytes) else event, "context": custom}

    result = await (await lambda_client(duplex)).invoke({"numbers": [1, 2, 3]})
    assert (result.payload, result.chunks, result.error) == (b"sum=6", [b"sum=", b"6"], None)
    classic_client = await lambda_client(classic)
    result = await classic_client.invoke([1, "a"], client_context={"custom": {"tenant": "t1"}})
    assert result.content_type == "application/json"
    assert result.json() == {"echo": [1, "a"], "context": {"tenant": "t1"}}
    raw = await classic_client.invoke(payload=b"not json", content_type="text/plain")
    assert raw.json()["echo"] == "not json"


# --- streaming both ways, with timing ----------------------------------------------------------


async def test_chunks_arrive_as_the_handler_writes_them(
    lambda_client: LambdaClientFactory,
) -> None:
    written: list[float] = []

    async def handler(req: Request, res: Response) -> None:
        for i in range(5):
            written.append(time.monotonic())
            await res.write(b"part %d;" % i)
            await asyncio.sleep(0.08)

    client = await lambda_client(handler)
    async with client.stream("GET", "/") as resp:
        assert resp.status == 200
        received = [(time.monotonic(), chunk) async for chunk in resp]
    assert [c for _, c in received] == [b"part %d;" % i for i in range(5)]
    lags = [at - w for (at, _), w in zip(received, written, strict=True)]
    assert max(lags) < 0.03, lags  # each one on its own, right away
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(received)]
    assert min(gaps) > 0.05, gaps


async def test_upload_streams_into_a_duplex_handler(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client("tests.testing.handlers.shout")
    pieces = [b"one ", b"two ", b"three ", b"four"]
    async with client.stream("POST", "/", body=paced(pieces, 0.12, pause_after_last=True)) as resp:
        first = await anext(resp)
        assert resp.upload_finished_at is None
        first_at = time.monotonic()
        await resp.aread()
    assert first == b"ONE "
    assert resp.body == b"ONE TWO THREE FOUR"
    assert resp.upload_finished_at is not None
    assert resp.upload_finished_at - first_at > 0.3


async def test_lambda_mode_buffers_the_upload(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client("tests.testing.handlers.shout", mode="lambda")
    async with client.stream(
        "POST", "/", body=paced([b"a", b"b", b"c"], 0.1, pause_after_last=True)
    ) as resp:
        first = await anext(resp)
        first_at = time.monotonic()
        await resp.aread()
    # As on AWS: the handler only starts with the whole event, so nothing came back early.
    assert first == b"ABC"
    assert resp.upload_finished_at is not None
    assert first_at >= resp.upload_finished_at


async def test_slow_reader_holds_the_handler_back(lambda_client: LambdaClientFactory) -> None:
    chunk = b"x" * 64 * 1024
    written = 0

    async def handler(req: Request, res: Response) -> None:
        nonlocal written
        for _ in range(128):  # 8 MiB
            await res.write(chunk)
            written += 1

    client = await lambda_client(handler)
    async with client.stream("GET", "/") as resp:
        await anext(resp)
        await asyncio.sleep(0.2)
        held = written
        total = len(await resp.aread())
    assert total == 128 * len(chunk)
    assert held < 48, held  # ~1 MiB relay buffer + pipe buffers, not the whole 8 MiB


# --- errors, deadlines, hang-ups ---------------------------------------------------------------


async def test_error_before_the_first_byte(lambda_client: LambdaClientFactory) -> None:
    async def handler(req: Request, res: Response) -> None:
        raise PermissionError("no entry")

    client = await lambda_client(handler)
    resp = await client.get("/")
    assert resp.status == 502  # what a function URL answers
    assert resp.error is not None
    assert (resp.error.error_type, resp.error.message) == ("PermissionError", "no entry")
    assert any("raise PermissionError" in line for line in resp.error.trace)
    assert resp.json()["errorType"] == "PermissionError"
    with pytest.raises(InvocationError, match="PermissionError: no entry"):
        resp.raise_for_error()
    result = await client.invoke({})
    assert result.error is not None
    assert result.json()["errorMessage"] == "no entry"


async def test_error_mid_stream(lambda_client: LambdaClientFactory) -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.write(b"half")
        raise ValueError("then it broke")

    client = await lambda_client(handler)
    async with client.stream("GET", "/") as resp:
        assert resp.status == 200
        chunks = [c async for c in resp]
    assert chunks == [b"half"]
    assert not resp.complete
    assert resp.error is not None
    assert (resp.error.error_type, resp.error.message) == ("ValueError", "then it broke")
    with pytest.raises(InvocationError):
        resp.raise_for_error()


async def test_deadline(lambda_client: LambdaClientFactory) -> None:
    cancelled = asyncio.Event()

    async def handler(req: Request, res: Response) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = await lambda_client(handler, timeout=0.8, deadline_margin=0.2)
    started = time.monotonic()
    resp = await client.get("/")
    elapsed = time.monotonic() - started
    assert resp.error is not None
    assert resp.error.error_type == "Function.Timeout"
    assert cancelled.is_set()
    assert 0.5 < elapsed < 0.75


async def test_leaving_the_stream_hangs_up(lambda_client: LambdaClientFactory) -> None:
    cancelled = asyncio.Event()
    closed = asyncio.Event()

    async def handler(req: Request, res: Response) -> None:
        res.on_close(closed.set)
        await res.write(b"first")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client = await lambda_client(handler)
    async with client.stream("GET", "/") as resp:
        assert await anext(resp) == b"first"
    await asyncio.wait_for(cancelled.wait(), 2)
    await asyncio.wait_for(closed.wait(), 2)


async def test_init_hooks_and_errors() -> None:
    calls: list[str] = []

    async def opened() -> None:
        calls.append("init")

    async def closed() -> None:
        calls.append("shutdown")

    async def handler(req: Request, res: Response) -> None:
        await res.write(",".join(calls))

    client = LambdaClient(handler, lifecycle=Lifecycle(init=[opened], shutdown=[closed]))
    assert (await client.get("/")).text == "init"  # the first request starts it
    await client.aclose()
    assert calls == ["init", "shutdown"]

    async def broken() -> None:
        raise ConnectionError("cache unreachable")

    with pytest.raises(InitError) as failed:
        async with LambdaClient(handler, lifecycle=Lifecycle(init=[broken])):
            pass
    assert (failed.value.error_type, failed.value.message) == (
        "ConnectionError",
        "cache unreachable",
    )


async def test_concurrency(lambda_client: LambdaClientFactory) -> None:
    async def handler(req: Request, res: Response) -> None:
        await asyncio.sleep(0.3)
        await res.write(req.path)

    client = await lambda_client(handler, concurrency=4)
    started = time.monotonic()
    replies = await asyncio.gather(*(client.get(f"/{i}") for i in range(4)))
    assert [r.text for r in replies] == [f"/{i}" for i in range(4)]
    assert time.monotonic() - started < 0.55
