"""Each front answered in its own format, on the wire (docs/fronts.md): a raw-socket Runtime
API records what the runtime posts for the same handler behind every front."""

from __future__ import annotations

import asyncio
import base64
import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from fastapi import FastAPI
from starlette.requests import Request as StarletteRequest
from starlette.responses import StreamingResponse

from duplexlambda.asgi import asgi
from duplexlambda.context import LambdaContext
from duplexlambda.events import Front, parse_streaming
from duplexlambda.handler import streaming, streaming_fronts
from duplexlambda.protocol.prelude import DELIMITER
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime import RuntimeConfig, main_async
from duplexlambda.streams import Request, Response

from ..support.events import API_DOMAIN, alb, v1, v2
from ..support.fake_api import FakeRuntimeApi, Invocation, Received
from .test_runtime_wire import running

pytestmark = pytest.mark.asyncio


#: The same request, as each front sends it.
EVENTS: dict[Front, dict[str, Any]] = {
    Front.FUNCTION_URL: v2(),
    Front.HTTP_API_V2: v2(API_DOMAIN),
    Front.HTTP_API_V1: v1(rest=False),
    Front.REST_API: v1(rest=True),
    Front.ALB: alb(multi=False),
    Front.ALB_MULTI: alb(multi=True),
}


def invocation(front: Front, **fields: Any) -> Invocation:
    return Invocation(body=msgspec.json.encode({**EVENTS[front], **fields}))


async def answer(req: Request, res: Response) -> None:
    await write_answer(res)


async def write_answer(res: Response) -> None:
    """A status, a repeated header, two cookies and a body in two writes."""
    res.status = 201
    res.headers["Content-Type"] = "text/plain"
    res.headers.add("X-Many", "1")
    res.headers.add("X-Many", "2")
    res.set_cookie("a", "1")
    res.set_cookie("b", "2", path=None)
    await res.write(b"hel")
    await res.write(b"lo")


def buffered(got: Received) -> dict[str, Any]:
    """The proxy JSON of a buffered ``/response`` (and that it is one)."""
    assert got.path.endswith("/response")
    assert got.header("Content-Type") == "application/json"
    assert got.header("Lambda-Runtime-Function-Response-Mode") is None
    assert got.header("Content-Length") == str(len(got.body))
    assert DELIMITER not in got.body
    value = msgspec.json.decode(got.body)
    assert isinstance(value, dict)
    return value


def chunks(raw_body: bytes) -> list[bytes]:
    """The data of each chunk of a chunked body, in order (the last, empty, one left out)."""
    out: list[bytes] = []
    rest = raw_body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return out
        out.append(rest[:size])
        rest = rest[size + 2 :]


BODY = {"body": "hello", "isBase64Encoded": False}
EXPECTED: dict[Front, dict[str, Any]] = {
    Front.HTTP_API_V2: {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Many": "1, 2"},
        "cookies": ["a=1; Path=/", "b=2"],
        **BODY,
    },
    Front.HTTP_API_V1: {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain"},
        "multiValueHeaders": {"X-Many": ["1", "2"], "Set-Cookie": ["a=1; Path=/", "b=2"]},
        **BODY,
    },
    Front.ALB: {
        "statusCode": 201,
        "statusDescription": "201 Created",
        "headers": {"Content-Type": "text/plain", "X-Many": "1, 2", "Set-Cookie": "b=2"},
        **BODY,
    },
    Front.ALB_MULTI: {
        "statusCode": 201,
        "statusDescription": "201 Created",
        "multiValueHeaders": {
            "Content-Type": ["text/plain"],
            "X-Many": ["1", "2"],
            "Set-Cookie": ["a=1; Path=/", "b=2"],
        },
        **BODY,
    },
}
EXPECTED[Front.REST_API] = EXPECTED[Front.HTTP_API_V1]


@pytest.mark.parametrize("front", list(EXPECTED), ids=lambda f: f.value)
async def test_buffered_fronts_get_their_proxy_json(api: FakeRuntimeApi, front: Front) -> None:
    async with running(answer, api):
        inv = api.add(invocation(front))
        got = await api.result(inv.request_id)
    assert buffered(got) == EXPECTED[front]


async def test_function_url_still_streams_each_write_as_a_chunk(api: FakeRuntimeApi) -> None:
    async with running(answer, api):
        inv = api.add(invocation(Front.FUNCTION_URL))
        got = await api.result(inv.request_id)
    assert got.header("Lambda-Runtime-Function-Response-Mode") == "streaming"
    assert got.header("Content-Type") == "application/vnd.awslambda.http-integration-response"
    prelude, nuls, *body = chunks(got.raw_body)
    assert msgspec.json.decode(prelude) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Many": "1, 2"},
        "cookies": ["a=1; Path=/", "b=2"],
    }
    assert (nuls, body) == (DELIMITER, [b"hel", b"lo"])


async def test_rest_api_streams_when_the_setting_names_it(api: FakeRuntimeApi) -> None:
    streamed = parse_streaming("function-url,rest-api")
    async with running(answer, api, streaming=streamed):
        rest = api.add(invocation(Front.REST_API))
        got = await api.result(rest.request_id)
        http_api = api.add(invocation(Front.HTTP_API_V1))  # same payload, cannot stream
        assert buffered(await api.result(http_api.request_id)) == EXPECTED[Front.HTTP_API_V1]
    assert got.header("Lambda-Runtime-Function-Response-Mode") == "streaming"
    prelude, nuls, *body = chunks(got.raw_body)
    assert msgspec.json.decode(prelude) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain"},
        "multiValueHeaders": {"X-Many": ["1", "2"], "Set-Cookie": ["a=1; Path=/", "b=2"]},
    }
    assert (nuls, body) == (DELIMITER, [b"hel", b"lo"])


async def test_none_makes_the_function_url_buffered(api: FakeRuntimeApi) -> None:
    async with running(answer, api, streaming=parse_streaming("none")):
        inv = api.add(invocation(Front.FUNCTION_URL))
        got = await api.result(inv.request_id)
    assert buffered(got) == EXPECTED[Front.HTTP_API_V2]


async def test_the_handler_says_which_fronts_stream(api: FakeRuntimeApi) -> None:
    @streaming_fronts("rest-api")
    async def handler(req: Request, res: Response) -> None:
        await answer(req, res)

    async with running(handler, api):  # the default would stream the function URL only
        url = api.add(invocation(Front.FUNCTION_URL))
        assert buffered(await api.result(url.request_id)) == EXPECTED[Front.HTTP_API_V2]
        rest = api.add(invocation(Front.REST_API))
        got = await api.result(rest.request_id)
    assert got.header("Lambda-Runtime-Function-Response-Mode") == "streaming"


async def test_a_bad_front_name_is_an_init_error(api: FakeRuntimeApi) -> None:
    config = RuntimeConfig(RuntimeApiAddress.parse(api.address))
    module = types.ModuleType("fronts_bad_name")

    @streaming_fronts("http-api-v2")
    async def handler(req: Request, res: Response) -> None:
        return None

    module.handler = handler  # type: ignore[attr-defined]
    sys.modules["fronts_bad_name"] = module
    try:
        assert await main_async("fronts_bad_name.handler", config) == 1
    finally:
        del sys.modules["fronts_bad_name"]
    got = await api.result("init")
    assert got.header("Lambda-Runtime-Function-Error-Type") == "ValueError"
    assert "http-api-v2 cannot stream" in msgspec.json.decode(got.body)["errorMessage"]


# --- what a buffered answer holds ----------------------------------------------------------------


async def test_binary_body_is_base64(api: FakeRuntimeApi) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

    async def handler(req: Request, res: Response) -> None:
        res.content_type = "image/png"
        await res.write(png[:100])
        await res.end(png[100:])

    async with running(handler, api):
        inv = api.add(invocation(Front.HTTP_API_V2))
        got = buffered(await api.result(inv.request_id))
    assert got["isBase64Encoded"] is True
    assert base64.b64decode(got["body"]) == png


async def test_status_without_body(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        res.status = 204

    async with running(handler, api):
        inv = api.add(invocation(Front.REST_API))
        got = buffered(await api.result(inv.request_id))
    assert got == {
        "statusCode": 204,
        "headers": {"content-type": "application/octet-stream"},
        "multiValueHeaders": {},
        "body": "",
        "isBase64Encoded": False,
    }


async def test_request_body_and_fields_reach_the_handler(api: FakeRuntimeApi) -> None:
    seen: dict[str, Any] = {}

    async def handler(req: Request, res: Response) -> None:
        seen.update(
            front=req.front,
            query=req.query_list("q"),
            raw_query=req.raw_query,
            body=await req.read(),
        )
        await res.end(b"ok")

    event = {
        "multiValueQueryStringParameters": {"q": ["a+b", "c&d=e"]},
        "body": base64.b64encode(b"\x00up").decode(),
        "isBase64Encoded": True,
    }
    async with running(handler, api):
        inv = api.add(invocation(Front.REST_API, **event))
        await api.result(inv.request_id)
    assert seen == {
        "front": Front.REST_API,
        "query": ["a+b", "c&d=e"],
        "raw_query": "q=a%2Bb&q=c%26d%3De",
        "body": b"\x00up",
    }


# --- the 6 MB cap, and errors before end() --------------------------------------------------------


async def test_the_write_that_crosses_6_mb_raises(api: FakeRuntimeApi) -> None:
    writes: list[int] = []
    mib = b"x" * (1024 * 1024)

    async def handler(req: Request, res: Response) -> None:
        res.content_type = "text/plain"
        for n in range(10):
            await res.write(mib)
            writes.append(n)

    async with running(handler, api):
        inv = api.add(invocation(Front.HTTP_API_V2))
        got = await api.result(inv.request_id)
    assert writes == [0, 1, 2, 3, 4]  # the sixth MiB would take the JSON past 6,291,556 bytes
    assert got.path.endswith("/error")
    assert got.header("Lambda-Runtime-Function-Error-Type") == "Function.ResponseSizeTooLarge"
    assert "6291556" in msgspec.json.decode(got.body)["errorMessage"]
    assert not any(r.path.endswith("/response") for r in api.received)


async def test_just_under_the_cap_is_posted_whole(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        res.content_type = "text/plain"
        for _ in range(5):
            await res.write(b"y" * (1024 * 1024))

    async with running(handler, api):
        inv = api.add(invocation(Front.ALB))
        got = buffered(await api.result(inv.request_id))
    assert got["body"] == "y" * (5 * 1024 * 1024)


async def test_an_error_after_writes_is_still_a_clean_error(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.write(b"partial")
        raise RuntimeError("boom")

    async with running(handler, api):
        inv = api.add(invocation(Front.HTTP_API_V1))
        got = await api.result(inv.request_id)
    # Nothing was sent: /error, not a proxy JSON cut short or error trailers.
    assert got.path.endswith(f"{inv.request_id}/error")
    assert got.header("Lambda-Runtime-Function-Error-Type") == "RuntimeError"


async def test_rest_prelude_over_16_kb_is_an_error_before_anything_is_sent(
    api: FakeRuntimeApi,
) -> None:
    async def handler(req: Request, res: Response) -> None:
        res.headers["X-Big"] = "v" * 17_000
        await res.write(b"never sent")

    async with running(handler, api, streaming=parse_streaming("rest-api")):
        inv = api.add(invocation(Front.REST_API))
        got = await api.result(inv.request_id)
    assert got.path.endswith("/error")
    assert got.header("Lambda-Runtime-Function-Error-Type") == "PreludeTooLarge"


# --- other handler styles, and DUPLEXLAMBDA_RESPONSE ----------------------------------------------


async def test_streaming_style_handlers_answer_the_same_way(api: FakeRuntimeApi) -> None:
    @streaming
    async def handler(event: Any, res: Response, context: LambdaContext) -> None:
        await write_answer(res)

    async with running(handler, api):
        inv = api.add(invocation(Front.ALB_MULTI))
        got = buffered(await api.result(inv.request_id))
    assert got == EXPECTED[Front.ALB_MULTI]


async def test_buffered_handlers_results_pass_through(api: FakeRuntimeApi) -> None:
    result = {"statusCode": 200, "headers": {"x": "y"}, "body": "as returned"}

    def handler(event: Any, context: LambdaContext) -> Any:
        return result

    async with running(handler, api):
        inv = api.add(invocation(Front.HTTP_API_V2))
        got = await api.result(inv.request_id)
    assert got.body == msgspec.json.encode(result)


async def test_raw_response_mode_wins(api: FakeRuntimeApi) -> None:
    async with running(answer, api, response_mode="raw"):
        inv = api.add(invocation(Front.HTTP_API_V2))
        got = await api.result(inv.request_id)
    assert got.header("Content-Type") == "application/octet-stream"
    assert chunks(got.raw_body) == [b"hel", b"lo"]


async def test_http_response_mode_gives_plain_events_the_prelude(api: FakeRuntimeApi) -> None:
    async with running(answer, api, response_mode="http", streaming=parse_streaming("none")):
        inv = api.add(Invocation(body=b'{"plain": true}'))
        got = await api.result(inv.request_id)
    assert chunks(got.raw_body)[1:] == [DELIMITER, b"hel", b"lo"]


# --- the ASGI bridge ------------------------------------------------------------------------------


def streaming_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/7")
    async def items() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for n in range(3):
                await asyncio.sleep(0)
                yield f"part{n};".encode()

        response = StreamingResponse(parts(), media_type="text/plain")
        response.set_cookie("s", "1")
        response.set_cookie("t", "2")
        return response

    return app


async def test_fastapi_streaming_response_behind_http_api_is_one_json(
    api: FakeRuntimeApi,
) -> None:
    async with running(asgi(streaming_app(), lifespan="off"), api):
        inv = api.add(invocation(Front.HTTP_API_V2))
        got = buffered(await api.result(inv.request_id))
    assert got["statusCode"] == 200
    assert got["body"] == "part0;part1;part2;"
    assert got["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert [c.split(";")[0] for c in got["cookies"]] == ["s=1", "t=2"]


async def test_fastapi_streaming_response_behind_a_function_url_streams(
    api: FakeRuntimeApi,
) -> None:
    async with running(asgi(streaming_app(), lifespan="off"), api):
        inv = api.add(invocation(Front.FUNCTION_URL))
        got = await api.result(inv.request_id)
    assert chunks(got.raw_body)[1:] == [DELIMITER, b"part0;", b"part1;", b"part2;"]


async def test_asgi_bridge_streaming_fronts_keyword(api: FakeRuntimeApi) -> None:
    handler = asgi(streaming_app(), lifespan="off", streaming_fronts=["rest-api"])
    async with running(handler, api):
        inv = api.add(invocation(Front.REST_API))
        got = await api.result(inv.request_id)
    prelude, nuls, *body = chunks(got.raw_body)
    cookies = msgspec.json.decode(prelude)["multiValueHeaders"]["Set-Cookie"]
    assert [c.split(";")[0] for c in cookies] == ["s=1", "t=2"]
    assert (nuls, body) == (DELIMITER, [b"part0;", b"part1;", b"part2;"])


async def test_an_app_behind_a_rest_stage_routes_without_it(api: FakeRuntimeApi) -> None:
    app = FastAPI()

    @app.get("/orders/{order}")
    async def order(order: int, request: StarletteRequest) -> dict[str, Any]:
        return {"order": order, "url": str(request.url), "q": request.query_params.getlist("q")}

    event = {
        "path": "/orders/7",
        "multiValueQueryStringParameters": {"q": ["a+b", "c&d=e"]},
        "requestContext": {**EVENTS[Front.REST_API]["requestContext"], "path": "/prod/orders/7"},
    }
    async with running(asgi(app, lifespan="off"), api):
        inv = api.add(invocation(Front.REST_API, **event))
        got = buffered(await api.result(inv.request_id))
    assert got["statusCode"] == 200
    assert msgspec.json.decode(got["body"]) == {
        "order": 7,
        "url": f"https://{API_DOMAIN}/prod/orders/7?q=a%2Bb&q=c%26d%3De",
        "q": ["a+b", "c&d=e"],
    }
