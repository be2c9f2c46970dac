"""The runtime against a raw-socket Runtime API: every request it sends, byte for byte."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from duplexlambda.context import LambdaContext, trace_id
from duplexlambda.handler import Lifecycle, buffered
from duplexlambda.protocol.prelude import DELIMITER, HTTP_REQUEST_STREAM
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime import Runtime, RuntimeConfig, main_async
from duplexlambda.streams import Request, Response

from ..conftest import VECTORS
from ..support.fake_api import FakeRuntimeApi, Invocation

pytestmark = pytest.mark.asyncio

VECTOR_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"


def url_event(body: str = "", *, path: str = "/", method: str = "POST", b64: bool = False) -> bytes:
    """A function-URL (payload 2.0) event."""
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "a=1&a=2&b=x",
        "cookies": ["session=abc", "theme=dark"],
        "headers": {"content-type": "text/plain", "x-thing": "1"},
        "requestContext": {"http": {"method": method, "path": path}, "requestId": "r"},
        "body": body,
        "isBase64Encoded": b64,
    }
    return msgspec.json.encode(event)


@contextlib.asynccontextmanager
async def running(
    handler: Callable[..., Any], api: FakeRuntimeApi, **options: Any
) -> AsyncIterator[Runtime]:
    config = RuntimeConfig(address=RuntimeApiAddress.parse(api.address), **options)
    runtime = Runtime(handler, config, hooks=options.pop("hooks", None) or Lifecycle())
    task = asyncio.get_running_loop().create_task(runtime.serve())
    try:
        yield runtime
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 10)


def expected_vector(name: str, api: FakeRuntimeApi) -> bytes:
    return (VECTORS / name).read_bytes().replace(b"127.0.0.1:9001", api.address.encode())


async def test_streaming_response_is_the_vector_byte_for_byte(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        res.headers["Content-Type"] = "text/plain"
        await res.write(b"Hello")

    async with running(handler, api):
        api.add(Invocation(body=url_event(), request_id=VECTOR_ID))
        got = await api.result(VECTOR_ID)
    assert got.raw_head + got.raw_body == expected_vector("wire_ok.bin", api)


async def test_error_after_first_byte_ends_with_trailers(api: FakeRuntimeApi) -> None:
    class Error(Exception):
        pass

    async def handler(req: Request, res: Response) -> None:
        res.headers["Content-Type"] = "text/plain"
        await res.write(b"Hello")
        raise Error("boom")

    async with running(handler, api):
        api.add(Invocation(body=url_event(), request_id=VECTOR_ID))
        got = await api.result(VECTOR_ID)
    vector = expected_vector("wire_err.bin", api)
    # Same bytes up to the trailers; the error body is our (awslambdaric-style) JSON.
    assert got.raw_head + got.raw_body.split(b"0\r\n", 1)[0] == vector.split(b"0\r\nLambda")[0]
    assert [name for name, _ in got.trailers] == [
        b"Lambda-Runtime-Function-Error-Type",
        b"Lambda-Runtime-Function-Error-Body",
    ]
    assert got.trailers[0][1] == b"Error"
    payload = msgspec.json.decode(base64.b64decode(got.trailers[1][1]))
    assert payload["errorType"] == "Error"
    assert payload["errorMessage"] == "boom"
    assert payload["requestId"] == VECTOR_ID
    assert any("raise Error" in line for line in payload["stackTrace"])


async def test_empty_http_body_still_sends_the_prelude(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        res.status = 302
        res.headers["Location"] = "/elsewhere"
        res.set_cookie("a", "1", httponly=True)

    async with running(handler, api):
        inv = api.add(Invocation(body=url_event()))
        got = await api.result(inv.request_id)
    prelude = (
        b'{"statusCode":302,"headers":{"Location":"/elsewhere",'
        b'"content-type":"application/octet-stream"},"cookies":["a=1; HttpOnly; Path=/"]}'
    )
    assert got.raw_body == b"%x\r\n%s\r\n8\r\n%s\r\n0\r\n\r\n" % (len(prelude), prelude, DELIMITER)


async def test_plain_invocation_streams_raw_bytes(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        assert not req.is_http
        res.content_type = "text/plain"
        body = await req.read()
        await res.write(body.upper())
        await res.writelines([b"a", b"", "b"])

    async with running(handler, api):
        inv = api.add(Invocation(body=b'{"x": 1}'))
        got = await api.result(inv.request_id)
    assert got.header("Content-Type") == "text/plain"
    assert got.header("Lambda-Runtime-Function-Response-Mode") == "streaming"
    assert got.raw_body == b'8\r\n{"X": 1}\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n'


async def test_buffered_handler_posts_json(api: FakeRuntimeApi) -> None:
    seen: list[LambdaContext] = []

    def handler(event: Any, context: LambdaContext) -> Any:
        seen.append(context)
        return {"echo": event}

    async with running(handler, api):
        inv = api.add(Invocation(body=b'{"k": [1, 2]}'))
        got = await api.result(inv.request_id)
    body = b'{"echo":{"k":[1,2]}}'
    assert got.raw_head == (
        b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\n"
        b"Host: %s\r\nUser-Agent: duplexlambda/0.1.0\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (inv.request_id.encode(), api.address.encode(), len(body))
    )
    assert got.body == body
    ctx = seen[0]
    assert ctx.aws_request_id == inv.request_id
    assert ctx.invoked_function_arn.endswith(":function:f")
    assert 25_000 < ctx.get_remaining_time_in_millis() <= 30_000


async def test_buffered_bytes_pass_through(api: FakeRuntimeApi) -> None:
    @buffered
    async def handler(event: Any, context: LambdaContext) -> bytes:
        return b"\x00raw"

    async with running(handler, api):
        inv = api.add(Invocation(body=b"[]"))
        got = await api.result(inv.request_id)
    assert (got.header("content-type"), got.body) == ("application/unknown", b"\x00raw")


async def test_buffered_str_is_json_encoded(api: FakeRuntimeApi) -> None:
    # Unlike bytes, a str is not sent as it is: it is a JSON string (handler.py's docstring).
    @buffered
    async def handler(event: Any, context: LambdaContext) -> str:
        return 'say "hi"'

    async with running(handler, api):
        inv = api.add(Invocation(body=b"[]"))
        got = await api.result(inv.request_id)
    assert (got.header("content-type"), got.body) == ("application/json", b'"say \\"hi\\""')


async def test_error_before_first_byte_posts_error(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        if req.is_http:
            raise ValueError("nope")
        await res.write(b"fine")

    async with running(handler, api):
        inv = api.add(Invocation(body=url_event()))
        got = await api.result(inv.request_id)
        ok = api.add(Invocation(body=b"{}"))  # the runtime goes on
        assert (await api.result(ok.request_id)).path.endswith("/response")
    assert got.path == f"/2018-06-01/runtime/invocation/{inv.request_id}/error"
    assert got.raw_head.startswith(
        b"POST /2018-06-01/runtime/invocation/%s/error HTTP/1.1\r\n" % inv.request_id.encode()
    )
    assert got.header("Lambda-Runtime-Function-Error-Type") == "ValueError"
    assert got.header("Content-Type") == "application/json"
    payload = msgspec.json.decode(got.body)
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "nope")


async def test_request_fields_from_a_function_url_event(api: FakeRuntimeApi) -> None:
    seen: dict[str, Any] = {}

    async def handler(req: Request, res: Response) -> None:
        seen.update(
            method=req.method,
            path=req.path,
            query=req.query,
            cookies=req.cookies,
            header=req.headers["x-thing"],
            body=await req.read(),
        )

    async with running(handler, api):
        inv = api.add(
            Invocation(
                body=url_event(
                    base64.b64encode(b"\xff\x00").decode(), path="/up", method="PUT", b64=True
                )
            )
        )
        await api.result(inv.request_id)
    assert seen == {
        "method": "PUT",
        "path": "/up",
        "query": {"a": "1,2", "b": "x"},
        "cookies": {"session": "abc", "theme": "dark"},
        "header": "1",
        "body": b"\xff\x00",
    }


def stream_invocation(pieces: list[bytes], **kw: Any) -> Invocation:
    prelude = msgspec.json.decode(url_event())
    del prelude["body"], prelude["isBase64Encoded"]
    return Invocation(
        content_type=HTTP_REQUEST_STREAM,
        stream=[msgspec.json.encode(prelude), DELIMITER, *pieces],
        **kw,
    )


async def test_duplex_response_overtakes_the_upload(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        async for chunk in req:
            await res.write(chunk.upper())

    async with running(handler, api):
        # The fake sends prelude, NULs, one, two, three with 0.3 s between them: the upload
        # ends ~1.5 s after it starts; "one" is there at ~0.6 s.
        inv = api.add(stream_invocation([b"one", b"two", b"three"], stream_gap=0.3))
        started = time.monotonic()
        got = await api.result(inv.request_id)
    assert got.body[got.body.index(DELIMITER) + 8 :] == b"ONETWOTHREE"
    t_one = next(t for t, data in got.arrivals if b"ONE" in data) - started
    t_three = next(t for t, data in got.arrivals if b"THREE" in data) - started
    assert t_one < 1.0, "the first response chunk waited for the whole upload"
    assert t_three - t_one > 0.4, "response chunks were held back and sent together"


async def test_truncated_upload_is_a_broken_request(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        await req.read()

    async with running(handler, api):
        inv = api.add(stream_invocation([b"partial"], truncate=True))
        got = await api.result(inv.request_id)
    assert got.path.endswith("/error")
    assert got.header("Lambda-Runtime-Function-Error-Type") == "BrokenResourceError"


async def test_deadline_cancels_the_handler(api: FakeRuntimeApi) -> None:
    closed: list[str] = []

    async def handler(req: Request, res: Response) -> None:
        res.on_close(lambda: closed.append("closed"))
        await asyncio.sleep(30)

    async with running(handler, api, deadline_margin=0.1):
        inv = api.add(Invocation(deadline_ms=int(time.time() * 1000) + 400))
        started = time.monotonic()
        got = await api.result(inv.request_id)
        assert time.monotonic() - started < 2
    assert got.path.endswith("/error")
    assert got.header("Lambda-Runtime-Function-Error-Type") == "Function.Timeout"
    assert closed == ["closed"]


async def test_deadline_after_streaming_uses_trailers(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.write(b"partial")
        await asyncio.sleep(30)

    async with running(handler, api, deadline_margin=0.1):
        inv = api.add(Invocation(deadline_ms=int(time.time() * 1000) + 400))
        got = await api.result(inv.request_id)
    assert got.body == b"partial"
    assert dict(got.trailers)[b"Lambda-Runtime-Function-Error-Type"] == b"Function.Timeout"


async def test_413_is_not_followed_by_error(api: FakeRuntimeApi) -> None:
    def handler(event: Any, context: Any) -> str:
        return "x"

    async with running(handler, api):
        inv = api.add(Invocation())
        api.status_for[inv.request_id] = (413, b'{"errorType":"RequestEntityTooLarge"}\n')
        await api.result(inv.request_id)
        ok = api.add(Invocation())
        await api.result(ok.request_id)
    posts = [r.path for r in api.received if r.head.method == b"POST"]
    assert not any(p.endswith("/error") for p in posts)


async def test_api_500_makes_the_runtime_exit(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        return None

    api.next_status = 500
    runtime = Runtime(handler, RuntimeConfig(RuntimeApiAddress.parse(api.address)), Lifecycle())
    assert await asyncio.wait_for(runtime.serve(), 10) == 1


async def test_init_error_is_reported(api: FakeRuntimeApi) -> None:
    config = RuntimeConfig(RuntimeApiAddress.parse(api.address))
    assert await main_async("no_such_module_here.handler", config) == 1
    got = await api.result("init")
    assert got.path == "/2018-06-01/runtime/init/error"
    assert got.header("Lambda-Runtime-Function-Error-Type") == "Runtime.ImportModuleError"
    assert "no_such_module_here" in msgspec.json.decode(got.body)["errorMessage"]


async def test_concurrency_runs_invocations_side_by_side(api: FakeRuntimeApi) -> None:
    inside = 0
    peak = 0
    traces: list[str | None] = []

    async def handler(req: Request, res: Response) -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(0.2)
        traces.append(trace_id.get())
        inside -= 1
        await res.write(await req.read())

    async with running(handler, api, concurrency=4):
        invs = [api.add(Invocation(body=b'"%d"' % i)) for i in range(8)]
        results = [await api.result(i.request_id) for i in invs]
    assert peak == 4
    assert [r.body for r in results] == [b'"%d"' % i for i in range(8)]
    assert all(t and t.startswith("Root=") for t in traces)


async def test_client_gone_cancels_the_handler(api: FakeRuntimeApi) -> None:
    wrote = asyncio.Event()
    cancelled = asyncio.Event()
    closed: list[bool] = []

    async def handler(req: Request, res: Response) -> None:
        res.on_close(lambda: closed.append(True))
        if not req.is_http:
            await res.write(b"ok")
            return
        await res.write(b"first")
        wrote.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with running(handler, api):
        inv = api.add(Invocation(body=url_event()))
        await asyncio.wait_for(wrote.wait(), 5)
        await asyncio.sleep(0.05)
        for writer in list(api._writers):  # the platform cuts the /response connection
            writer.transport.abort()
        await asyncio.wait_for(cancelled.wait(), 5)
        ok = api.add(Invocation())
        assert (await api.result(ok.request_id)).body == b"ok"
    assert closed == [True, True]
    assert not any(r.path.endswith(f"{inv.request_id}/error") for r in api.received)


async def test_204_on_next_means_poll_again(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.write(b"served")

    api.idle_204 = 3
    async with running(handler, api):
        inv = api.add(Invocation())
        assert (await api.result(inv.request_id)).body == b"served"
    polls = [r for r in api.received if r.path.endswith("/invocation/next")]
    assert len(polls) >= 4
