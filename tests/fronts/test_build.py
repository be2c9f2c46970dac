"""events/build.py: the event each front makes of one HTTP request (sans-I/O).

The expected shapes are written from AWS's documentation of each event (HTTP API payload
formats 2.0 and 1.0, REST proxy integration input, ALB Lambda target events), field by field.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from duplexlambda.events.build import (
    DEFAULT_API_ID,
    FrontSettings,
    HttpRequestInfo,
    alb_event,
    build_event,
    encode_event,
    http_api_event,
    http_api_v1_event,
    rest_event,
    stage_path,
)
from duplexlambda.events.fronts import Front
from duplexlambda.protocol.http1 import Headers

SETTINGS = FrontSettings(stage="prod", target_group="orders")
NOW = 1764694316000  # 02/Dec/2025:16:51:56 +0000
DOMAIN = f"{DEFAULT_API_ID}.execute-api.us-east-1.amazonaws.com"


def info(
    path: str = "/items/7",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    method: str = "POST",
) -> HttpRequestInfo:
    fields = headers if headers is not None else []
    return HttpRequestInfo(
        method=method,
        raw_path=path,
        raw_query=query,
        headers=Headers(
            [(b"Host", b"127.0.0.1:9000"), (b"User-Agent", b"probe/1")]
            + [(k.encode("latin-1"), v.encode("utf-8")) for k, v in fields]
        ),
        source_ip="192.0.2.10",
        request_id="req-1",
        now_ms=NOW,
        extra_headers={"x-forwarded-for": "192.0.2.10", "x-amzn-trace-id": "Root=1-abc"},
    )


REPEATS = [("X-Tag", "a"), ("x-tag", "b"), ("Cookie", "s=1; t=2")]
QUERY = "tag=a&tag=b%20c&q=x%2By&empty="


# --- HTTP API, payload 2.0 -------------------------------------------------------------------


def test_http_api_v2_event() -> None:
    event = http_api_event(info(query=QUERY, headers=REPEATS), b"hi", "text/plain", SETTINGS)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/items/7"
    assert event["rawQueryString"] == QUERY  # as sent
    assert event["cookies"] == ["s=1", "t=2"]
    headers = event["headers"]
    assert "cookie" not in headers
    assert headers["x-tag"] == "a,b"  # names lower-cased, repeats comma-joined
    assert headers["host"] == "127.0.0.1:9000"
    assert headers["x-forwarded-for"] == "192.0.2.10"
    assert event["queryStringParameters"] == {"tag": "a,b c", "q": "x+y", "empty": ""}
    context = event["requestContext"]
    assert context["domainName"] == DOMAIN
    assert context["domainPrefix"] == context["apiId"] == DEFAULT_API_ID
    assert context["stage"] == "$default"
    assert context["routeKey"] == "$default"
    assert context["accountId"] == "123456789012"
    assert context["requestId"] == "req-1"
    assert context["http"] == {
        "method": "POST",
        "path": "/items/7",
        "protocol": "HTTP/1.1",
        "sourceIp": "192.0.2.10",
        "userAgent": "probe/1",
    }
    assert context["time"] == "02/Dec/2025:16:51:56 +0000"
    assert context["timeEpoch"] == NOW
    assert (event["body"], event["isBase64Encoded"]) == ("hi", False)


def test_http_api_v2_leaves_out_what_is_empty() -> None:
    event = http_api_event(info(method="GET"), b"", None, SETTINGS)
    assert "cookies" not in event
    assert "queryStringParameters" not in event
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    assert event["rawQueryString"] == ""


# --- payload 1.0: HTTP API 1.0 and REST ------------------------------------------------------


def test_http_api_v1_event() -> None:
    event = http_api_v1_event(info(query=QUERY, headers=REPEATS), b"", None, SETTINGS)
    assert event["version"] == "1.0"
    assert event["resource"] == "$default"
    assert event["path"] == "/items/7"
    assert event["httpMethod"] == "POST"
    # names as the client spelled them (the first spelling of a repeat), last value alone
    assert event["headers"]["X-Tag"] == "b"
    assert event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert event["headers"]["Cookie"] == "s=1; t=2"  # kept as a header in 1.0
    assert event["headers"]["X-Forwarded-For"] == "192.0.2.10"  # the API's own, title-cased
    assert event["headers"]["X-Amzn-Trace-Id"] == "Root=1-abc"
    assert event["queryStringParameters"] == {"tag": "b c", "q": "x+y", "empty": ""}
    assert event["multiValueQueryStringParameters"] == {
        "tag": ["a", "b c"],
        "q": ["x+y"],
        "empty": [""],
    }
    context = event["requestContext"]
    assert (context["resourceId"], context["resourcePath"]) == ("$default", "$default")
    assert context["stage"] == "$default"
    assert context["path"] == "/items/7"
    assert context["domainName"] == DOMAIN
    assert context["identity"]["sourceIp"] == "192.0.2.10"
    assert context["identity"]["userAgent"] == "probe/1"
    assert context["requestTime"] == "02/Dec/2025:16:51:56 +0000"
    assert context["requestTimeEpoch"] == NOW
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False


def test_v1_query_absent_is_null() -> None:
    event = http_api_v1_event(info(), b"", None, SETTINGS)
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_rest_event_strips_the_stage() -> None:
    event = rest_event(info(path="/prod/items/a%20b", query="x=1&x=2"), b"{}", None, SETTINGS)
    assert "version" not in event
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/items/a%20b"
    assert event["pathParameters"] == {"proxy": "items/a b"}
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
    context = event["requestContext"]
    assert context["path"] == "/prod/items/a%20b"
    assert context["stage"] == "prod"
    assert context["resourcePath"] == "/{proxy+}"
    assert context["resourceId"] == SETTINGS.resource_id
    assert context["httpMethod"] == "POST"
    assert len(context["extendedRequestId"]) == 16
    assert event["body"] == "{}"


def test_rest_root_of_the_stage() -> None:
    event = rest_event(info(path="/prod"), b"", None, SETTINGS)
    assert (event["resource"], event["path"]) == ("/", "/")
    assert event["pathParameters"] is None
    assert event["requestContext"]["resourcePath"] == "/"


@pytest.mark.parametrize(
    ("path", "below"),
    [("/prod", "/"), ("/prod/", "/"), ("/prod/a/b", "/a/b"), ("/production", None), ("/", None)],
)
def test_stage_path(path: str, below: str | None) -> None:
    assert stage_path(path, "prod") == below


def test_rest_outside_the_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="stage"):
        rest_event(info(path="/items"), b"", None, SETTINGS)


# --- ALB ----------------------------------------------------------------------------------------


def test_alb_event_single_value() -> None:
    event = alb_event(info(query=QUERY, headers=REPEATS), b"", None, SETTINGS)
    arn = event["requestContext"]["elb"]["targetGroupArn"]
    assert arn.startswith("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/")
    assert len(arn.rsplit("/", 1)[1]) == 16
    assert event["httpMethod"] == "POST"
    assert event["path"] == "/items/7"
    # percent-encoding kept, last value of a repeat
    assert event["queryStringParameters"] == {"tag": "b%20c", "q": "x%2By", "empty": ""}
    assert event["headers"]["x-tag"] == "b"
    assert event["headers"]["cookie"] == "s=1; t=2"
    assert event["headers"]["x-forwarded-for"] == "192.0.2.10"
    assert "multiValueHeaders" not in event
    assert "multiValueQueryStringParameters" not in event
    assert (event["body"], event["isBase64Encoded"]) == ("", False)


def test_alb_event_multi_value() -> None:
    event = alb_event(info(query=QUERY, headers=REPEATS), b"", None, SETTINGS, multi_value=True)
    assert "headers" not in event
    assert "queryStringParameters" not in event
    assert event["multiValueHeaders"]["x-tag"] == ["a", "b"]
    assert event["multiValueQueryStringParameters"] == {
        "tag": ["a", "b%20c"],
        "q": ["x%2By"],
        "empty": [""],
    }


def test_alb_no_query_is_an_empty_object() -> None:
    assert alb_event(info(), b"", None, SETTINGS)["queryStringParameters"] == {}


# --- bodies, and the dispatcher ---------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x01"


@pytest.mark.parametrize("front", [f for f in Front if f not in (Front.FUNCTION_URL, Front.NONE)])
def test_binary_body_is_base64_for_every_front(front: Front) -> None:
    path = "/prod/x" if front is Front.REST_API else "/x"
    event: dict[str, Any] = build_event(front, info(path=path), PNG, "image/png", SETTINGS)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == PNG
    text = build_event(front, info(path=path), "é".encode(), "text/plain", SETTINGS)
    assert (text["body"], text["isBase64Encoded"]) == ("é", False)
    assert encode_event(event).startswith(b"{")


def test_no_builder_for_the_function_url() -> None:
    with pytest.raises(ValueError, match="function-url"):
        build_event(Front.FUNCTION_URL, info(), b"", None, SETTINGS)
