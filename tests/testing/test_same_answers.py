"""The in-process client answers exactly as the emulator's function URL does over a socket:
both run the emulator's own mapping of a runtime's answer (``emulator.front.UrlRelay``)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from duplexlambda.context import LambdaContext
from duplexlambda.emulator.config import Mode
from duplexlambda.streams import Request, Response
from duplexlambda.testing.plugin import EmulatorFactory, LambdaClientFactory

from ..support.wire import request

pytestmark = pytest.mark.asyncio

#: Headers that depend on the transport or on the request, not on the mapping.
_PER_TRANSPORT = {"content-length", "transfer-encoding", "connection", "x-amzn-requestid"}


async def duplex(req: Request, res: Response) -> None:
    res.status = 201
    res.headers["X-Kind"] = "duplex"
    res.set_cookie("sid", "7", httponly=True)
    await res.write(b"one ")
    await res.write(await req.read() or b"-")


async def raises_before(req: Request, res: Response) -> None:
    raise PermissionError("no entry")


async def raises_mid_stream(req: Request, res: Response) -> None:
    await res.write(b"half")
    raise ValueError("then it broke")


def returning(value: Any) -> Callable[[Any, LambdaContext], Any]:
    def classic(event: Any, context: LambdaContext) -> Any:
        return value

    return classic


HANDLERS = {
    "duplex": duplex,
    "raises-before": raises_before,
    "raises-mid-stream": raises_mid_stream,
    "result-object": returning(
        {
            "statusCode": 418,
            "headers": {"content-type": "text/plain", "x-many": ["a", "b"]},
            "cookies": ["a=1", "b=2; Secure"],
            "body": "tea",
        }
    ),
    "plain-json": returning([1, "two"]),
    "base64-body": returning(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\xff").decode(), "isBase64Encoded": True}
    ),
    "invalid-status": returning({"statusCode": 700}),
    "invalid-header": returning({"statusCode": 200, "headers": {"x-bad": {"nested": 1}}}),
    "redirect": returning({"statusCode": 302, "headers": {"Location": "/login"}}),
}


def mapped(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in _PER_TRANSPORT]


def same(body: bytes) -> object:
    """``body``, but an error JSON without its ``requestId`` (each request has its own)."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body
    if isinstance(value, dict) and "errorType" in value:
        value.pop("requestId", None)
        return value
    return body


@pytest.mark.parametrize("mode", ["duplex", "lambda"])
@pytest.mark.parametrize("name", list(HANDLERS))
async def test_in_process_and_over_http_agree(
    name: str, mode: Mode, lambda_client: LambdaClientFactory, emulator: EmulatorFactory
) -> None:
    handler = HANDLERS[name]
    client = await lambda_client(handler, mode=mode)
    function = await emulator(handler, mode=mode, timeout=10.0)
    resp = await client.post("/path?q=1", body=b"hi")
    reply = await request(function.url, "POST", "/path?q=1", body=b"hi")

    over_http = [(k.decode(), v.decode()) for k, v in reply.headers.raw]
    assert (resp.status, mapped(resp.headers.pairs), same(resp.body), resp.complete) == (
        reply.status,
        mapped(over_http),
        same(reply.body),
        reply.complete,
    )
    assert resp.headers["x-amzn-RequestId"] == resp.request_id
    if resp.status >= 500:
        assert resp.error is not None
        assert resp.json()["errorType"] == resp.error.error_type
