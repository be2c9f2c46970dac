"""The ASGI scope built from function-URL (2.0) and API Gateway REST (1.0) events, and the
bridge's message rules, without any app framework in the way."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from duplexlambda.asgi import ASGIHandler, UnsupportedEvent, asgi, http_scope
from duplexlambda.events import parse_request
from duplexlambda.handler import Style, own_lifecycle, style_of
from duplexlambda.runtime.request import BytesSource, Request
from duplexlambda.testing.plugin import LambdaClientFactory

from .apps import raw_app


def request_for(event: dict[str, Any]) -> Request:
    return Request(BytesSource(b""), event=event, http=parse_request(event))


V2 = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/caf%C3%A9/a%2Fb",
    "rawQueryString": "q=caf%C3%A9&n=1&n=2",
    "cookies": ["sid=42", "theme=dark"],
    "headers": {
        "host": "abc.lambda-url.eu-west-1.on.aws",
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "accept": "text/html,application/json",
        "X-Mixed-Case": "kept",
    },
    "requestContext": {
        "http": {
            "method": "PATCH",
            "path": "/café/a/b",
            "protocol": "HTTP/2.0",
            "sourceIp": "203.0.113.9",
        }
    },
    "body": "hi",
    "isBase64Encoded": False,
}


def test_scope_of_a_function_url_event() -> None:
    scope = http_scope(request_for(V2))
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "2"
    assert scope["method"] == "PATCH"
    assert scope["scheme"] == "https"
    assert scope["path"] == "/café/a/b"  # decoded, as ASGI wants it
    assert scope["raw_path"] == b"/caf%C3%A9/a%2Fb"  # as sent
    assert scope["query_string"] == b"q=caf%C3%A9&n=1&n=2"
    assert scope["root_path"] == ""
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["server"] == ("abc.lambda-url.eu-west-1.on.aws", 443)
    headers = scope["headers"]
    assert all(isinstance(k, bytes) and k == k.lower() for k, _ in headers)
    assert (b"x-mixed-case", b"kept") in headers
    assert (b"cookie", b"sid=42; theme=dark") in headers  # cookies back in one header
    assert scope["aws.event"] is V2


def test_scope_defaults_when_the_event_says_little() -> None:
    event = {
        "version": "2.0",
        "rawPath": "/",
        "headers": {"host": "localhost:9000"},
        "requestContext": {"http": {"method": "GET"}},
    }
    scope = http_scope(request_for(event), root_path="/stage")
    assert scope["scheme"] == "https"  # function URLs are HTTPS-only
    assert scope["http_version"] == "1.1"
    assert scope["server"] == ("localhost", 9000)
    assert scope["client"] is None
    assert scope["query_string"] == b""
    assert scope["root_path"] == "/stage"


def test_scope_of_an_api_gateway_rest_event() -> None:
    event = {
        "resource": "/{proxy+}",
        "path": "/orders/7",
        "httpMethod": "DELETE",
        "headers": {"Host": "api.example.com", "X-Forwarded-Proto": "https"},
        "multiValueHeaders": {
            "Host": ["api.example.com"],
            "X-Forwarded-Proto": ["https"],
            "Accept": ["a/b", "c/d"],
        },
        "queryStringParameters": {"id": "2"},
        "multiValueQueryStringParameters": {"id": ["1", "2"], "s": ["a b"]},
        "requestContext": {"protocol": "HTTP/1.1", "identity": {"sourceIp": "198.51.100.1"}},
        "body": None,
        "isBase64Encoded": False,
    }
    scope = http_scope(request_for(event))
    assert (scope["method"], scope["path"], scope["raw_path"]) == (
        "DELETE",
        "/orders/7",
        b"/orders/7",
    )
    assert scope["query_string"] == b"id=1&id=2&s=a%20b"  # decoded values, encoded once
    assert [v for k, v in scope["headers"] if k == b"accept"] == [b"a/b", b"c/d"]
    assert scope["client"] == ("198.51.100.1", 0)
    assert scope["server"] == ("api.example.com", 443)


def test_a_plain_event_has_no_scope() -> None:
    with pytest.raises(UnsupportedEvent):
        http_scope(Request(BytesSource(b"{}"), event={"plain": True}))


def test_the_handler_is_duplex_and_brings_its_lifespan_hooks() -> None:
    handler = asgi(raw_app)
    assert isinstance(handler, ASGIHandler)
    assert style_of(handler) is Style.DUPLEX
    hooks = own_lifecycle(handler)
    assert hooks is not None
    assert (hooks.init, hooks.shutdown) == ([handler.startup], [handler.shutdown])
    with pytest.raises(TypeError):
        asgi("not an app")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lifespan"):
        asgi(raw_app, lifespan="sometimes")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_the_scope_the_app_sees(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(asgi(raw_app))
    resp = await client.post(
        "/scope?x=1&y=%20",
        body=b"the body",
        headers=[("X-Repeat", "1"), ("X-Repeat", "2"), ("Content-Type", "text/plain")],
    )
    seen = json.loads(resp.body)
    assert seen["method"] == "POST"
    assert (seen["path"], seen["raw_path"], seen["query_string"]) == (
        "/scope",
        "/scope",
        "x=1&y=%20",
    )
    assert seen["scheme"] == "https"
    assert seen["http_version"] == "1.1"
    assert seen["server"] == ["testserver.lambda-url.us-east-1.on.aws", 443]
    assert seen["client"] == ["127.0.0.1", 0]
    assert seen["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert seen["has_event"]
    headers = dict(seen["headers"])
    assert headers["x-repeat"] == "1,2"  # as Lambda joins repeated fields
    assert headers["content-type"] == "text/plain"
    assert headers["x-forwarded-proto"] == "https"
    assert seen["body"] == "the body"


def test_imports_stay_lean() -> None:
    # The runtime a bootstrap starts loads neither the bridge nor any framework; the bridge
    # loads no framework and no emulator.
    code = (
        "import sys, duplexlambda.runtime;"
        "print(sorted(m for m in ('duplexlambda.asgi', 'duplexlambda.testing', 'starlette')"
        " if m in sys.modules));"
        "import duplexlambda.asgi;"
        "print(sorted(m for m in ('duplexlambda.emulator', 'starlette', 'fastapi')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["[]", "[]"]


def test_scope_of_a_rest_event_on_its_stage() -> None:
    event = {
        "path": "/orders/7",
        "httpMethod": "GET",
        "headers": {"Host": "k9.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"Host": ["k9.execute-api.eu-west-1.amazonaws.com"]},
        "requestContext": {"path": "/prod/orders/7", "stage": "prod", "resourceId": "r1"},
    }
    scope = http_scope(request_for(event))
    # ASGI's convention: path is the whole path, root_path its mount point; frameworks route
    # on the rest (Starlette: /orders/7) and build URLs with /prod.
    assert (scope["path"], scope["raw_path"], scope["root_path"]) == (
        "/prod/orders/7",
        b"/prod/orders/7",
        "/prod",
    )
    assert http_scope(request_for(event), root_path="")["root_path"] == ""


def test_scope_of_an_alb_event_is_not_encoded_twice() -> None:
    event = {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:tg"}},
        "httpMethod": "GET",
        "path": "/a%20b",
        "multiValueQueryStringParameters": {"q": ["b%20c", "d"]},
        "multiValueHeaders": {
            "host": ["lb.example.com"],
            "x-forwarded-proto": ["http"],
            "x-forwarded-port": ["80"],
            "x-forwarded-for": ["203.0.113.4"],
            "accept": ["a/b", "c/d"],
        },
        "body": "",
        "isBase64Encoded": False,
    }
    scope = http_scope(request_for(event))
    assert scope["query_string"] == b"q=b%20c&q=d"  # never b%2520c
    assert (scope["path"], scope["raw_path"]) == ("/a b", b"/a%20b")
    assert [v for k, v in scope["headers"] if k == b"accept"] == [b"a/b", b"c/d"]
    assert (scope["scheme"], scope["server"], scope["client"]) == (
        "http",
        ("lb.example.com", 80),
        ("203.0.113.4", 0),
    )
