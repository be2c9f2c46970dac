"""``LambdaClient(front=...)``: the in-process test client meets the same front as
``serve --front`` (the emulator's event builders and ``ProxyRelay``, without sockets)."""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
from typing import Any

import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.handler import buffered, load_handler
from duplexlambda.streams import Response
from duplexlambda.testing import LambdaClient
from duplexlambda.testing.plugin import LambdaClientFactory

from .test_over_http import PNG, RICH, proxy

pytestmark = pytest.mark.asyncio
FRONTS_EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "fronts"


async def test_http_api_event_and_answer(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(proxy, front="http-api")
    resp = await client.post("/event?a=1&a=2", headers=[("Cookie", "s=1")], body="hi")
    event = resp.json()
    assert event["version"] == "2.0"
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["cookies"] == ["s=1"]
    assert event["requestContext"]["domainName"].endswith(".execute-api.us-east-1.amazonaws.com")
    assert event["body"] == "hi"
    assert resp.headers["apigw-requestid"]

    answer = await client.post("/answer", body=json.dumps(RICH))
    assert answer.status == 201
    assert answer.body == PNG
    assert answer.cookies == ["c=1; Path=/", "d=2"]


async def test_rest_stage_paths_and_errors(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(proxy, front="rest", stage="v2")
    event = (await client.get("/v2/items/event")).json()
    assert event["path"] == "/items/event"
    assert event["requestContext"]["path"] == "/v2/items/event"
    outside = await client.get("/items/event")
    assert outside.status == 403
    assert outside.json() == {"message": "Forbidden"}
    error = await client.get("/v2/raise")
    assert error.status == 502
    assert error.json() == {"message": "Internal server error"}
    assert error.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    garbage = await client.get("/v2/bytes")
    assert garbage.status == 502
    assert garbage.error is not None  # the test sees why


async def test_alb_multi_value(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(proxy, front="alb-multi")
    resp = await client.post("/event?q=a%20b", headers=[("X-A", "1"), ("X-A", "2")], body=PNG)
    event = resp.json()
    assert event["multiValueHeaders"]["x-a"] == ["1", "2"]
    assert event["multiValueQueryStringParameters"] == {"q": ["a%20b"]}
    assert base64.b64decode(event["body"]) == PNG
    answer = await client.post("/answer", body=json.dumps(RICH))
    assert answer.headers.get_all("x-multi") == ["m1", "m2"]
    assert answer.headers.get_all("x-single") == []
    too_large = await client.post("/event", body=b"x" * (1024 * 1024 + 1))
    assert too_large.status == 413
    assert "text/html" in too_large.headers["content-type"]


async def test_rest_stream_streams(lambda_client: LambdaClientFactory) -> None:
    async def handler(event: dict[str, Any], res: Response, context: LambdaContext) -> None:
        res.headers["x-path"] = event["path"]
        for word in ("a", "b", "c"):
            await res.write(word)

    client = await lambda_client(handler, front="rest-stream")
    resp = await client.get("/prod/words")
    assert resp.status == 200
    assert resp.headers["x-path"] == "/words"
    assert resp.chunks == [b"a", b"b", b"c"]


async def test_integration_timeout(lambda_client: LambdaClientFactory) -> None:
    @buffered
    async def slow(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        await asyncio.sleep(1.0)
        return {"statusCode": 200}

    client = await lambda_client(slow, front="http-api", integration_timeout=0.2)
    resp = await client.get("/")
    assert resp.status == 503
    assert resp.json() == {"message": "Service Unavailable"}


async def test_buffered_function_url_reads_the_upload_whole(
    lambda_client: LambdaClientFactory,
) -> None:
    client = await lambda_client(proxy, front="function-url-buffered")
    event = (await client.post("/event", body="whole")).json()
    assert event["body"] == "whole"  # in the event, though the client is in duplex mode
    assert event["requestContext"]["accountId"] == "anonymous"


async def test_unknown_front_is_refused() -> None:
    with pytest.raises(ValueError, match="front must be one of"):
        LambdaClient(proxy, front="soap")  # type: ignore[arg-type]


async def test_the_templates_asgi_app(lambda_client: LambdaClientFactory) -> None:
    """examples/fronts/asgi_web.py, the app template-http-api.yaml and template-alb.yaml
    deploy, through a function URL (behind the buffered fronts it needs the runtime to answer
    with proxy JSON: DUPLEXLAMBDA_STREAMING=none)."""
    client = await lambda_client(load_handler("asgi_web.handler", str(FRONTS_EXAMPLES)))
    assert (await client.get("/")).json() == {"hello": "world"}
    assert (await client.get("/items/7?a=b")).json() == {"item": "7", "query": {"a": "b"}}
    echo = await client.post("/echo", body=PNG, headers={"content-type": "image/png"})
    assert (echo.body, echo.headers["content-type"]) == (PNG, "image/png")
