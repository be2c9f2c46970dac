"""events/reply.py: the HTTP response each front makes of a function's answer (sans-I/O), and
the error each service sends when it cannot read one."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest

from duplexlambda.errors import PreludeError
from duplexlambda.events.fronts import Front
from duplexlambda.events.reply import (
    Problem,
    read_answer,
    read_stream_metadata,
    response_fields,
    service_error,
)

PROXY_FRONTS = [Front.HTTP_API_V2, Front.HTTP_API_V1, Front.REST_API, Front.ALB, Front.ALB_MULTI]


def answer_of(front: Front, value: Any) -> Any:
    return read_answer(front, msgspec.json.encode(value))


# --- HTTP API 2.0 ------------------------------------------------------------------------------


def test_v2_proxy_answer_with_cookies_and_comma_joined_header() -> None:
    answer = answer_of(
        Front.HTTP_API_V2,
        {
            "statusCode": 201,
            "headers": {"content-type": "text/plain", "x-list": "a,b", "x-n": 5},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "made",
        },
    )
    assert answer.status == 201
    assert answer.headers == [("content-type", "text/plain"), ("x-list", "a,b"), ("x-n", "5")]
    assert answer.cookies == ["a=1; Path=/", "b=2"]
    assert answer.body == b"made"
    assert response_fields(answer)[-2:] == [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2")]


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        (b'"Hello from Lambda"', b"Hello from Lambda"),  # a string: its text
        (b'{"message": "no status here"}', b'{"message": "no status here"}'),  # as sent
        (b"[1, 2]", b"[1, 2]"),
        (b"42", b"42"),
    ],
)
def test_v2_infers_a_non_proxy_answer(payload: bytes, body: bytes) -> None:
    answer = read_answer(Front.HTTP_API_V2, payload)
    assert answer.status == 200
    assert answer.headers == [("content-type", "application/json")]
    assert answer.body == body


def test_v2_ignores_multi_value_headers() -> None:
    answer = answer_of(
        Front.HTTP_API_V2, {"statusCode": 200, "multiValueHeaders": {"x-a": ["1", "2"]}}
    )
    assert answer.headers == []


# --- payload 1.0 ------------------------------------------------------------------------------


@pytest.mark.parametrize("front", [Front.HTTP_API_V1, Front.REST_API])
def test_v1_merges_headers_and_multi_value_headers(front: Front) -> None:
    answer = answer_of(
        front,
        {
            "statusCode": 200,
            "headers": {"X-Single": "s", "X-Both": "from-headers"},
            "multiValueHeaders": {
                "x-both": ["m1", "m2"],
                "Set-Cookie": ["c1=blue", "c2=red"],
            },
            "body": base64.b64encode(b"\x00\xff").decode(),
            "isBase64Encoded": True,
        },
    )
    assert answer.headers == [("X-Single", "s"), ("x-both", "m1"), ("x-both", "m2")]
    assert answer.cookies == ["c1=blue", "c2=red"]
    assert answer.body == b"\x00\xff"


@pytest.mark.parametrize("front", [Front.HTTP_API_V1, Front.REST_API, Front.ALB, Front.ALB_MULTI])
def test_status_code_is_required_outside_v2(front: Front) -> None:
    with pytest.raises(PreludeError, match="statusCode"):
        answer_of(front, {"body": "hi"})
    with pytest.raises(PreludeError, match="JSON object"):
        answer_of(front, "hi")


def test_empty_body_and_numeric_string_status() -> None:
    answer = answer_of(Front.REST_API, {"statusCode": "204"})
    assert (answer.status, answer.body) == (204, b"")


def test_framing_headers_are_remapped_by_api_gateway_and_dropped_by_the_alb() -> None:
    meta = {"statusCode": 200, "headers": {"Content-Length": "3", "Connection": "close"}}
    assert answer_of(Front.REST_API, meta).headers == [
        ("x-amzn-Remapped-Content-Length", "3"),
        ("x-amzn-Remapped-Connection", "close"),
    ]
    assert answer_of(Front.ALB, meta).headers == []


# --- ALB --------------------------------------------------------------------------------------


def test_alb_single_reads_headers_only() -> None:
    meta = {
        "statusCode": 200,
        "statusDescription": "200 OK",
        "headers": {"X-One": "1"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "body": "ok",
    }
    assert answer_of(Front.ALB, meta).headers == [("X-One", "1")]
    assert answer_of(Front.ALB_MULTI, meta).headers == [("X-Many", "a"), ("X-Many", "b")]


def test_alb_status_description_must_be_a_string() -> None:
    with pytest.raises(PreludeError, match="statusDescription"):
        answer_of(Front.ALB, {"statusCode": 200, "statusDescription": 200})


# --- what no front can read -------------------------------------------------------------------

BAD_ANSWERS = [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b'{"statusCode": "two hundred"}', id="status-text"),
    pytest.param(b'{"statusCode": 99}', id="status-low"),
    pytest.param(b'{"statusCode": 600}', id="status-high"),
    pytest.param(b'{"statusCode": true}', id="status-bool"),
    pytest.param(b'{"statusCode": 200, "body": {"a": 1}}', id="body-object"),
    pytest.param(b'{"statusCode": 200, "body": "%%", "isBase64Encoded": true}', id="bad-base64"),
    pytest.param(b'{"statusCode": 200, "isBase64Encoded": "yes"}', id="base64-flag-text"),
]
#: Header troubles, each given as the front's header field reads it.
BAD_HEADERS = [
    pytest.param(["a"], id="headers-array"),
    pytest.param({"x": {"y": 1}}, id="header-object"),
    pytest.param({"x": "a\r\nb: c"}, id="header-crlf"),
    pytest.param({"a b": "c"}, id="header-name"),
    pytest.param({"x": "\u2603"}, id="header-not-latin1"),
]


@pytest.mark.parametrize("payload", BAD_ANSWERS)
@pytest.mark.parametrize("front", PROXY_FRONTS)
def test_malformed_answers(front: Front, payload: bytes) -> None:
    with pytest.raises(PreludeError):
        read_answer(front, payload)


@pytest.mark.parametrize("headers", BAD_HEADERS)
@pytest.mark.parametrize("front", PROXY_FRONTS)
def test_malformed_headers(front: Front, headers: Any) -> None:
    if front is Front.ALB_MULTI:  # it reads multiValueHeaders alone, values in arrays
        field = "multiValueHeaders"
        if isinstance(headers, dict):
            headers = {name: [value] for name, value in headers.items()}
    else:
        field = "headers"
    with pytest.raises(PreludeError):
        answer_of(front, {"statusCode": 200, field: headers})


def test_wrong_cookie_types() -> None:
    with pytest.raises(PreludeError, match="cookies"):
        answer_of(Front.HTTP_API_V2, {"statusCode": 200, "cookies": "a=1"})
    with pytest.raises(PreludeError, match="cookie"):
        answer_of(Front.HTTP_API_V2, {"statusCode": 200, "cookies": [1]})


def test_multi_value_header_must_be_a_list() -> None:
    with pytest.raises(PreludeError, match="array"):
        answer_of(Front.REST_API, {"statusCode": 200, "multiValueHeaders": {"x": "a"}})


def test_no_proxy_reading_for_the_function_url() -> None:
    with pytest.raises(ValueError, match="function-url"):
        read_answer(Front.FUNCTION_URL, b"{}")


# --- REST streaming metadata -------------------------------------------------------------------


def test_stream_metadata() -> None:
    answer = read_stream_metadata(
        {
            "statusCode": 206,
            "headers": {"content-type": "text/plain"},
            "multiValueHeaders": {"x-mv": ["hello", "world"]},
            "cookies": ["c=1"],
        }
    )
    assert answer.status == 206
    assert answer.headers == [("content-type", "text/plain"), ("x-mv", "hello"), ("x-mv", "world")]
    assert answer.cookies == ["c=1"]
    assert read_stream_metadata({}).status == 200
    with pytest.raises(PreludeError):
        read_stream_metadata({"statusCode": "x"})


# --- the services' own errors ------------------------------------------------------------------


def test_rest_errors() -> None:
    error = service_error(Front.REST_API, Problem.INTEGRATION, "rid")
    assert error.status == 502
    assert msgspec.json.decode(error.body) == {"message": "Internal server error"}
    assert ("x-amzn-ErrorType", "InternalServerErrorException") in error.headers
    assert ("x-amzn-RequestId", "rid") in error.headers
    assert service_error(Front.REST_API, Problem.TIMEOUT).status == 504
    assert service_error(Front.REST_API, Problem.TOO_LARGE).status == 413
    forbidden = service_error(Front.REST_API, Problem.FORBIDDEN)
    assert (forbidden.status, forbidden.body) == (403, b'{"message":"Forbidden"}')


@pytest.mark.parametrize("front", [Front.HTTP_API_V2, Front.HTTP_API_V1])
def test_http_api_errors(front: Front) -> None:
    error = service_error(front, Problem.INTEGRATION, "abc=")
    assert error.status == 500
    assert msgspec.json.decode(error.body) == {"message": "Internal Server Error"}
    assert ("apigw-requestid", "abc=") in error.headers
    assert service_error(front, Problem.TIMEOUT).status == 503
    assert service_error(front, Problem.TOO_LARGE).status == 413


@pytest.mark.parametrize("front", [Front.ALB, Front.ALB_MULTI])
def test_alb_errors(front: Front) -> None:
    error = service_error(front, Problem.INTEGRATION)
    assert error.status == 502
    assert ("Server", "awselb/2.0") in error.headers
    assert ("Content-Type", "text/html") in error.headers
    assert b"<title>502 Bad Gateway</title>" in error.body
    assert service_error(front, Problem.TIMEOUT).status == 502
    too_large = service_error(front, Problem.TOO_LARGE)
    assert too_large.status == 413
    assert b"413 Request Entity Too Large" in too_large.body
