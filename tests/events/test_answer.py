"""A handler's answer in each front's format: the proxy JSON, the streamed prelude, the cap."""

from __future__ import annotations

import base64
import logging
from typing import Any

import msgspec
import pytest

from duplexlambda.errors import LocalProtocolError
from duplexlambda.events import (
    MAX_RESPONSE,
    BufferedAnswer,
    Front,
    HttpAnswer,
    PreludeTooLarge,
    ResponseTooLarge,
    buffered_response,
    streaming_prelude,
)
from duplexlambda.events.answer import json_escapes, status_description

HEADERS = [
    ("Content-Type", "text/plain"),
    ("X-Many", "1"),
    ("x-many", "2"),
    ("Set-Cookie", "c=3"),  # set as a header: it is a cookie all the same
]
ANSWER = HttpAnswer(201, HEADERS, ["a=1; Path=/", "b=2"], b"hello")


def decoded(front: Front, answer: HttpAnswer = ANSWER) -> dict[str, Any]:
    value = msgspec.json.decode(buffered_response(front, answer))
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize("front", [Front.FUNCTION_URL, Front.HTTP_API_V2])
def test_payload_2_0_answer(front: Front) -> None:
    assert decoded(front) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Many": "1, 2"},
        "cookies": ["a=1; Path=/", "b=2", "c=3"],
        "body": "hello",
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("front", [Front.HTTP_API_V1, Front.REST_API])
def test_payload_1_0_answer(front: Front) -> None:
    assert decoded(front) == {
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain"},
        "multiValueHeaders": {"X-Many": ["1", "2"], "Set-Cookie": ["a=1; Path=/", "b=2", "c=3"]},
        "body": "hello",
        "isBase64Encoded": False,
    }


def test_alb_answer_keeps_one_value_per_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="duplexlambda"):
        got = decoded(Front.ALB)
    assert got == {
        "statusCode": 201,
        "statusDescription": "201 Created",
        "headers": {"Content-Type": "text/plain", "X-Many": "1, 2", "Set-Cookie": "c=3"},
        "body": "hello",
        "isBase64Encoded": False,
    }
    assert "2 of 3 dropped" in caplog.text


def test_alb_answer_with_one_cookie_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="duplexlambda"):
        got = decoded(Front.ALB, HttpAnswer(200, [], ["only=1"], b""))
    assert got["headers"] == {"Set-Cookie": "only=1"}
    assert not caplog.records


def test_alb_multi_value_answer() -> None:
    assert decoded(Front.ALB_MULTI) == {
        "statusCode": 201,
        "statusDescription": "201 Created",
        "multiValueHeaders": {
            "Content-Type": ["text/plain"],
            "X-Many": ["1", "2"],
            "Set-Cookie": ["a=1; Path=/", "b=2", "c=3"],
        },
        "body": "hello",
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("front", [f for f in Front if f.is_http])
def test_empty_body_and_status_are_kept(front: Front) -> None:
    got = decoded(front, HttpAnswer(204, [("Content-Type", "application/octet-stream")], [], b""))
    assert (got["statusCode"], got["body"], got["isBase64Encoded"]) == (204, "", False)


@pytest.mark.parametrize("front", [f for f in Front if f.is_http])
def test_binary_body_is_base64(front: Front) -> None:
    body = b"\x89PNG\r\n\x1a\n\x00\xff"
    got = decoded(front, HttpAnswer(200, [("Content-Type", "image/png")], [], body))
    assert got["isBase64Encoded"] is True
    assert base64.b64decode(got["body"]) == body


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/html; charset=utf-8", "héllo".encode(), True),
        ("application/json", b'{"a":1}', True),
        ("application/vnd.api+json", b"{}", True),
        ("application/xml", b"<a/>", True),
        ("application/javascript", b"f()", True),
        ("application/x-www-form-urlencoded", b"a=1", True),
        ("text/plain", b"\xff\xfe", False),  # text-like but not UTF-8
        ("application/octet-stream", b"abc", False),
    ],
)
def test_text_or_base64(content_type: str, body: bytes, text: bool) -> None:
    got = decoded(Front.HTTP_API_V2, HttpAnswer(200, [("content-type", content_type)], [], body))
    assert got["isBase64Encoded"] is (not text)


def test_unsendable_headers_are_refused() -> None:
    for headers in ([("X-Bad", "a\r\nb")], [("Bad Name", "v")], [("", "v")]):
        with pytest.raises(LocalProtocolError):
            buffered_response(Front.REST_API, HttpAnswer(200, headers, [], b""))
    with pytest.raises(LocalProtocolError):
        streaming_prelude(Front.FUNCTION_URL, 200, [], ["a=1\nb"])


def test_not_an_http_front() -> None:
    with pytest.raises(ValueError, match="not an HTTP front"):
        buffered_response(Front.NONE, ANSWER)


def test_status_description() -> None:
    assert status_description(200) == "200 OK"
    assert status_description(418) == "418 I'm a Teapot"
    assert status_description(299) == "299"


# --- the streamed prelude ----------------------------------------------------------------------


def test_function_url_prelude() -> None:
    assert streaming_prelude(Front.FUNCTION_URL, 302, HEADERS, ["a=1"]) == {
        "statusCode": 302,
        "headers": {"Content-Type": "text/plain", "X-Many": "1, 2"},
        "cookies": ["a=1", "c=3"],
    }
    assert streaming_prelude(Front.FUNCTION_URL, 200, [], []) == {
        "statusCode": 200,
        "headers": {},
        "cookies": [],
    }


def test_rest_prelude_puts_repeats_and_cookies_in_multi_value_headers() -> None:
    assert streaming_prelude(Front.REST_API, 200, HEADERS, ["a=1"]) == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "multiValueHeaders": {"X-Many": ["1", "2"], "Set-Cookie": ["a=1", "c=3"]},
    }


def test_rest_prelude_must_fit_in_16_kb() -> None:
    fits = [("X-Big", "v" * 16_000)]
    assert len(msgspec.json.encode(streaming_prelude(Front.REST_API, 200, fits, []))) < 16_384
    with pytest.raises(PreludeTooLarge, match="16376 a rest-api reads"):
        streaming_prelude(Front.REST_API, 200, [("X-Big", "v" * 16_400)], [])
    # The same metadata is fine for a function URL (up to 64 KiB).
    streaming_prelude(Front.FUNCTION_URL, 200, [("X-Big", "v" * 16_400)], [])
    with pytest.raises(PreludeTooLarge):
        streaming_prelude(Front.FUNCTION_URL, 200, [("X-Big", "v" * 70_000)], [])


@pytest.mark.parametrize("front", [Front.HTTP_API_V2, Front.HTTP_API_V1, Front.ALB, Front.NONE])
def test_fronts_that_cannot_stream(front: Front) -> None:
    with pytest.raises(ValueError, match="cannot take a streamed answer"):
        streaming_prelude(front, 200, [], [])


# --- gathering under the cap ---------------------------------------------------------------------


def test_json_escapes_match_the_encoder() -> None:
    text = bytes(range(0x80)) + "é\u2028".encode() + b'"\\' * 3
    assert len(msgspec.json.encode(text.decode())) - 2 - len(text) == json_escapes(text)
    assert json_escapes(b"") == 0


@pytest.mark.parametrize("front", [f for f in Front if f.is_http])
@pytest.mark.parametrize(
    ("content_type", "piece"),
    [("text/plain", b'line "quoted"\n\x01'), ("application/octet-stream", b"\x00\x01\x02\x03\x04")],
)
def test_buffered_answer_knows_its_size(front: Front, content_type: str, piece: bytes) -> None:
    gathered = BufferedAnswer(front, 200, [("Content-Type", content_type)], ["a=1"])
    for _ in range(7):
        gathered.add(piece)
        whole = buffered_response(
            front, HttpAnswer(200, [("Content-Type", content_type)], ["a=1"], bytes(gathered._body))
        )
        assert gathered.size == len(whole)
    assert gathered.finish() == whole


@pytest.mark.parametrize(("content_type", "fit"), [("text/plain", 5), ("image/png", 4)])
def test_the_write_that_crosses_the_cap_raises(content_type: str, fit: int) -> None:
    gathered = BufferedAnswer(Front.HTTP_API_V2, 200, [("Content-Type", content_type)], [])
    mib = b"x" * (1024 * 1024)
    for _ in range(fit):  # base64 weighs 4/3: four MiB of binary fit, five of text
        gathered.add(mib)
    size = gathered.size
    with pytest.raises(ResponseTooLarge, match=r"maximum allowed payload size \(6291556 bytes\)"):
        gathered.add(mib)
    assert gathered.size == size  # the refused write left nothing behind
    assert len(gathered.finish()) == size
    assert ResponseTooLarge.error_type == "Function.ResponseSizeTooLarge"


def test_exactly_the_cap() -> None:
    gathered = BufferedAnswer(Front.REST_API, 200, [("Content-Type", "text/plain")], [])
    gathered.add(b"x" * (MAX_RESPONSE - gathered.size))
    assert len(gathered.finish()) == MAX_RESPONSE
    with pytest.raises(ResponseTooLarge):
        gathered.add(b"x")


def test_a_text_body_that_is_not_utf8_is_checked_again_at_the_end() -> None:
    gathered = BufferedAnswer(Front.HTTP_API_V2, 200, [("Content-Type", "text/plain")], [])
    gathered.add(b"\xff" * (MAX_RESPONSE - gathered.size - 10))  # fits as text, not as base64
    with pytest.raises(ResponseTooLarge):
        gathered.finish()
