"""Each front end to end on real sockets: an HTTP client, the emulator playing API Gateway or
an ALB (``EmulatorConfig.front``), our runtime, and a handler that answers raw proxy JSON.

What the handler receives is the event that front builds; what the client gets back is that
front's reading of the answer, or the error that service sends when it cannot read it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.handler import buffered
from duplexlambda.streams import Response

from ..support.emulated import stack
from ..support.wire import Reply, request

pytestmark = pytest.mark.asyncio

BUFFERED_FRONTS = ["http-api", "http-api-v1", "rest", "alb", "alb-multi"]
PNG = b"\x89PNG\r\n\x1a\n\x00\xff"
REST_502 = {"message": "Internal server error"}
HTTP_API_500 = {"message": "Internal Server Error"}


def _request_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _path(event: dict[str, Any]) -> str:
    return str(event.get("rawPath") or event.get("path"))


def proxy(event: dict[str, Any], context: LambdaContext) -> Any:
    """``/event``: the event itself as a JSON body; ``/answer``: the request body (JSON) is
    the answer, returned as it is; ``/raise``: a function error; ``/bytes``: not JSON;
    ``/big``: a 1 MiB body."""
    path = _path(event)
    if path.endswith("/event"):
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "multiValueHeaders": {"content-type": ["application/json"]},
            "body": json.dumps(event),
        }
    if path.endswith("/answer"):
        return json.loads(_request_body(event))
    if path.endswith("/raise"):
        raise RuntimeError("boom")
    if path.endswith("/bytes"):
        return b"this is not JSON"
    if path.endswith("/big"):  # a body of 1 MiB: its JSON is over an ALB's cap
        return {"statusCode": 200, "body": "y" * (1024 * 1024)}
    return {"statusCode": 404, "body": path}


def url_of(function: Any, path: str) -> tuple[str, str]:
    """(URL, path) for ``path`` below the front (REST paths get the stage)."""
    base: str = function.front_url
    prefix = base.split("/", 3)[3] if base.count("/") > 3 else ""
    return function.url, "/" + prefix + path.lstrip("/")


async def ask(function: Any, path: str, **kwargs: Any) -> Reply:
    url, full = url_of(function, path)
    return await request(url, kwargs.pop("method", "POST"), full, **kwargs)


async def event_via(front: str, path: str = "/event", **kwargs: Any) -> dict[str, Any]:
    async with stack(proxy, front=front) as function:
        reply = await ask(function, path, **kwargs)
    assert reply.status == 200, reply.body
    value = reply.json()
    assert isinstance(value, dict)
    return value


# --- the events ----------------------------------------------------------------------------

HEADERS = [("X-Tag", "a"), ("X-Tag", "b"), ("Cookie", "s=1; t=2"), ("Content-Type", "image/png")]


async def test_http_api_v2_event() -> None:
    event = await event_via("http-api", "/event?tag=a&tag=b%20c", headers=HEADERS, body=PNG)
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/event"
    assert event["rawQueryString"] == "tag=a&tag=b%20c"
    assert event["queryStringParameters"] == {"tag": "a,b c"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["headers"]["x-tag"] == "a,b"
    assert "cookie" not in event["headers"]
    assert event["requestContext"]["domainName"].endswith(".execute-api.us-east-1.amazonaws.com")
    assert event["requestContext"]["stage"] == "$default"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == PNG


async def test_http_api_v1_event() -> None:
    event = await event_via("http-api-v1", "/event?tag=a&tag=b%20c", headers=HEADERS, body=b"")
    assert event["version"] == "1.0"
    assert event["resource"] == "$default"
    assert event["path"] == "/event"
    assert event["headers"]["X-Tag"] == "b"
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert event["headers"]["Cookie"] == "s=1; t=2"
    assert event["queryStringParameters"] == {"tag": "b c"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b c"]}
    assert event["requestContext"]["stage"] == "$default"
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


async def test_rest_event_has_the_stage_in_context_only() -> None:
    event = await event_via("rest", "/items/event?x=%2F", headers=HEADERS, body=b"hello")
    assert "version" not in event
    assert event["path"] == "/items/event"
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": "items/event"}
    assert event["requestContext"]["path"] == "/prod/items/event"
    assert event["requestContext"]["stage"] == "prod"
    assert event["requestContext"]["resourcePath"] == "/{proxy+}"
    assert event["queryStringParameters"] == {"x": "/"}
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    # a PNG content type but a UTF-8 body: still binary by the content type
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"hello"


async def test_rest_path_outside_the_stage_is_403() -> None:
    async with stack(proxy, front="rest") as function:
        reply = await request(function.url, "GET", "/event")
    assert reply.status == 403
    assert reply.json() == {"message": "Forbidden"}
    assert reply.header("x-amzn-ErrorType") == "ForbiddenException"


async def test_alb_event_keeps_the_query_encoded() -> None:
    event = await event_via("alb", "/event?tag=a&tag=b%20c", headers=HEADERS, body=b"")
    assert event["requestContext"]["elb"]["targetGroupArn"].startswith(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/function/"
    )
    assert event["queryStringParameters"] == {"tag": "b%20c"}
    assert event["headers"]["x-tag"] == "b"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert (event["body"], event["isBase64Encoded"]) == ("", False)
    assert "multiValueHeaders" not in event


async def test_alb_multi_event() -> None:
    event = await event_via("alb-multi", "/event?tag=a&tag=b%20c", headers=HEADERS, body=b"x")
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b%20c"]}
    assert event["multiValueHeaders"]["x-tag"] == ["a", "b"]
    assert "headers" not in event
    assert "queryStringParameters" not in event


# --- the answers ----------------------------------------------------------------------------

RICH = {
    "statusCode": 201,
    "statusDescription": "201 Created",
    "headers": {"x-single": "one", "content-type": "application/octet-stream"},
    "multiValueHeaders": {
        "x-multi": ["m1", "m2"],
        "content-type": ["application/octet-stream"],
        "set-cookie": ["mv=1", "mv=2"],
    },
    "cookies": ["c=1; Path=/", "d=2"],
    "body": base64.b64encode(PNG).decode(),
    "isBase64Encoded": True,
}
#: front -> (x-single, x-multi, Set-Cookie values) each front reads out of RICH
EXPECTED: dict[str, tuple[list[str], list[str], list[str]]] = {
    "http-api": (["one"], [], ["c=1; Path=/", "d=2"]),
    "http-api-v1": (["one"], ["m1", "m2"], ["mv=1", "mv=2"]),
    "rest": (["one"], ["m1", "m2"], ["mv=1", "mv=2"]),
    "alb": (["one"], [], []),
    "alb-multi": ([], ["m1", "m2"], ["mv=1", "mv=2"]),
}


@pytest.mark.parametrize("front", BUFFERED_FRONTS)
async def test_answer_mapped_back(front: str) -> None:
    async with stack(proxy, front=front) as function:
        reply = await ask(function, "/answer", body=json.dumps(RICH).encode())
    assert reply.status == 201
    single, multi, cookies = EXPECTED[front]
    assert reply.header_all("x-single") == single
    assert reply.header_all("x-multi") == multi
    assert reply.header_all("set-cookie") == cookies
    assert reply.header("content-type") == "application/octet-stream"
    assert reply.body == PNG


@pytest.mark.parametrize("front", BUFFERED_FRONTS)
async def test_empty_body(front: str) -> None:
    answer = {"statusCode": 204, "headers": {"x-a": "1"}, "multiValueHeaders": {"x-a": ["1"]}}
    async with stack(proxy, front=front) as function:
        reply = await ask(function, "/answer", body=json.dumps(answer).encode())
    assert reply.status == 204
    assert reply.body == b""
    assert reply.header("x-a") == "1"


async def test_gateway_request_ids() -> None:
    async with stack(proxy, front="rest") as function:
        rest = await ask(function, "/answer", body=b'{"statusCode": 200, "body": "ok"}')
    assert rest.header("x-amzn-RequestId")
    assert rest.header("content-type") == "application/json"  # REST's default
    async with stack(proxy, front="http-api") as function:
        http_api = await ask(function, "/answer", body=b'{"statusCode": 200, "body": "ok"}')
    assert http_api.header("apigw-requestid")


async def test_http_api_v2_infers_a_non_proxy_answer() -> None:
    async with stack(proxy, front="http-api") as function:
        text = await ask(function, "/answer", body=b'"a bare string"')
        value = await ask(function, "/answer", body=b'{"no": "status"}')
    assert (text.status, text.body) == (200, b"a bare string")
    assert (value.status, value.json()) == (200, {"no": "status"})
    for reply in (text, value):
        assert reply.header("content-type") == "application/json"


# --- what each service cannot read --------------------------------------------------------------

GARBAGE = [
    pytest.param("/bytes", None, id="not-json"),
    pytest.param("/answer", {"body": "no status"}, id="no-status"),
    pytest.param("/answer", {"statusCode": "OK"}, id="status-text"),
    pytest.param("/answer", {"statusCode": 200, "body": {"an": "object"}}, id="body-object"),
    pytest.param(
        "/answer",
        {"statusCode": 200, "headers": "x", "multiValueHeaders": "x"},
        id="headers-text",
    ),
    pytest.param("/raise", None, id="function-error"),
]


def assert_service_error(front: str, reply: Reply) -> None:
    if front in ("rest", "rest-stream"):
        assert reply.status == 502
        assert reply.json() == REST_502
        assert reply.header("x-amzn-ErrorType") == "InternalServerErrorException"
    elif front.startswith("http-api"):
        assert reply.status == 500
        assert reply.json() == HTTP_API_500
    else:
        assert reply.status == 502
        assert reply.header("server") == "awselb/2.0"
        assert reply.header("content-type") == "text/html"
        assert b"502 Bad Gateway" in reply.body


@pytest.mark.parametrize(("path", "answer"), GARBAGE)
@pytest.mark.parametrize("front", BUFFERED_FRONTS)
async def test_garbage_is_the_services_error(front: str, path: str, answer: Any) -> None:
    body = json.dumps(answer).encode() if answer is not None else b""
    async with stack(proxy, front=front) as function:
        reply = await ask(function, path, body=body)
    if front == "http-api" and answer is not None and "statusCode" not in answer:
        # payload 2.0 reads an answer without statusCode as the body of a 200
        assert (reply.status, reply.json()) == (200, answer)
    else:
        assert_service_error(front, reply)


# --- limits ---------------------------------------------------------------------------------


async def test_alb_request_over_1_mib_is_413() -> None:
    async with stack(proxy, front="alb") as function:
        reply = await ask(function, "/event", body=b"x" * (1024 * 1024 + 1))
        small = await ask(function, "/event", body=b"x" * (1024 * 1024 - 4096))
    assert reply.status == 413
    assert b"413 Request Entity Too Large" in reply.body
    assert small.status == 200


async def test_alb_answer_over_1_mib_is_502() -> None:
    async with stack(proxy, front="alb") as function:
        reply = await ask(function, "/big", method="GET")
    assert_service_error("alb", reply)
    async with stack(proxy, front="rest") as function:  # Lambda's 6 MB is REST's cap here
        assert (await ask(function, "/big", method="GET")).body == b"y" * (1024 * 1024)


@pytest.mark.parametrize(("front", "status"), [("http-api", 413), ("rest", 413)])
async def test_api_gateway_event_over_lambdas_6_mb_is_413(front: str, status: int) -> None:
    # Under API Gateway's 10 MB, but the event (base64: 4/3 larger) is over Lambda's 6 MB.
    body = b"\x00" * (5 * 1024 * 1024)
    headers = [("Content-Type", "application/octet-stream")]
    async with stack(proxy, front=front) as function:
        reply = await ask(function, "/event", headers=headers, body=body)
    assert reply.status == status
    assert "message" in reply.json()  # type: ignore[operator]


@buffered
async def slow(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    await asyncio.sleep(1.5)
    return {"statusCode": 200, "body": "late"}


@pytest.mark.parametrize(
    ("front", "status", "message"),
    [
        ("rest", 504, "Endpoint request timed out"),
        ("http-api", 503, "Service Unavailable"),
        ("rest-stream", 504, "Endpoint request timed out"),
    ],
)
async def test_integration_timeout(front: str, status: int, message: str) -> None:
    async with stack(slow, front=front, integration_timeout=0.3) as function:
        reply = await ask(function, "/slow", method="GET")
        record = await asyncio.wait_for(function.records.get(), 5)
    assert reply.status == status
    assert reply.json() == {"message": message}
    assert record.kind == front


# --- REST with a streaming integration -------------------------------------------------------


async def streamer(event: dict[str, Any], res: Response, context: LambdaContext) -> None:
    res.status = 202
    res.content_type = "text/plain"
    res.headers["x-a"] = "1"
    res.set_cookie("k", "v")
    for word in (b"one ", b"two ", b"three"):
        await res.write(word)
        await asyncio.sleep(0.05)


async def test_rest_stream_relays_the_metadata_then_the_body() -> None:
    async with stack(streamer, front="rest-stream") as function:
        reply = await ask(function, "/words", method="GET")
    assert reply.status == 202
    assert reply.header("content-type") == "text/plain"
    assert reply.header("x-a") == "1"
    assert reply.header_all("set-cookie") == ["k=v; Path=/"]
    assert reply.body == b"one two three"
    assert len(reply.chunks) >= 3  # streamed as written, not collected


async def test_rest_stream_without_the_delimiter_is_502() -> None:
    async with stack(proxy, front="rest-stream") as function:
        reply = await ask(function, "/answer", body=b'{"statusCode": 200, "body": "buffered"}')
    assert_service_error("rest-stream", reply)


async def test_rest_stream_metadata_over_16_kib_is_502() -> None:
    async def fat(event: dict[str, Any], res: Response, context: LambdaContext) -> None:
        res.headers["x-fat"] = "f" * (17 * 1024)
        await res.write(b"body")

    async with stack(fat, front="rest-stream") as function:
        reply = await ask(function, "/fat", method="GET")
    assert_service_error("rest-stream", reply)


async def test_rest_stream_function_error_is_502() -> None:
    async with stack(proxy, front="rest-stream") as function:
        reply = await ask(function, "/raise", method="GET")
    assert_service_error("rest-stream", reply)


# --- a BUFFERED function URL ---------------------------------------------------------------------


async def test_buffered_function_url_reads_a_proxy_answer_whole() -> None:
    async with stack(proxy, front="function-url-buffered") as function:
        reply = await request(function.url, "POST", "/answer", body=json.dumps(RICH).encode())
    assert reply.status == 201
    assert reply.body == PNG
    # the function URL's own rule (emulator/furl.py): multiValueHeaders too, then cookies
    assert reply.header_all("set-cookie") == ["mv=1", "mv=2", "c=1; Path=/", "d=2"]


async def test_buffered_function_url_does_not_read_a_prelude(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runtime that streams its prelude to a BUFFERED URL (told to, against the front's
    default): the answer is collected and sent whole, and the prelude is not read (the client
    sees it) — what the runtime's DUPLEXLAMBDA_STREAMING=none for this front avoids."""
    monkeypatch.setenv("DUPLEXLAMBDA_STREAMING", "function-url")
    async with stack(streamer, front="function-url-buffered") as function:
        reply = await request(function.url, "GET", "/words")
    assert reply.status == 200
    assert len(reply.chunks) == 1  # sent whole, with a Content-Length
    assert reply.body.endswith(b"\x00" * 8 + b"one two three")


async def test_buffered_function_url_gets_the_runtimes_proxy_answer() -> None:
    """Left to the front's default, the runtime answers a BUFFERED URL with proxy JSON."""
    async with stack(streamer, front="function-url-buffered") as function:
        reply = await request(function.url, "GET", "/words")
    assert reply.status == 202
    assert reply.body == b"one two three"
    assert reply.header("x-a") == "1"
