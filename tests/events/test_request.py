"""Which front sent an event, and the HTTP request inside it, per front.

The events are written here from the shapes AWS documents for each front (function URLs,
HTTP API payload formats 2.0 and 1.0, REST API proxy integrations, ALB Lambda targets), in
their smallest useful form.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from duplexlambda.events import BadEventBody, Front, detect, parse_request
from duplexlambda.events.fronts import HttpRequest
from duplexlambda.events.request import is_function_url_domain, parse_cookies

from ..support.events import API_DOMAIN, URL_DOMAIN, alb, v1, v2


def parsed(event: dict[str, Any]) -> HttpRequest:
    request = parse_request(event)
    assert request is not None
    return request


# --- detect -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "front"),
    [
        (v2(), Front.FUNCTION_URL),
        (v2(API_DOMAIN), Front.HTTP_API_V2),
        (v2("api.example.com"), Front.HTTP_API_V2),  # an HTTP API on a custom domain
        (v1(rest=False), Front.HTTP_API_V1),
        (v1(rest=True), Front.REST_API),
        (alb(multi=False), Front.ALB),
        (alb(multi=True), Front.ALB_MULTI),
        ({"Records": [{"eventSource": "aws:s3"}]}, Front.NONE),
        ({"requestContext": {"connectionId": "c1", "eventType": "MESSAGE"}}, Front.NONE),
        ({"key": "value"}, Front.NONE),
        ([1, 2], Front.NONE),
        ("text", Front.NONE),
        (None, Front.NONE),
    ],
    ids=lambda v: v.value if isinstance(v, Front) else None,
)
def test_detect(event: Any, front: Front) -> None:
    assert detect(event) is front
    assert (parse_request(event) is None) is (front is Front.NONE)


def test_hand_written_events_keep_their_old_meaning() -> None:
    # Without a domain, a 2.0 event is a function URL's (answered streamed, as always), and
    # a bare 1.0 event a REST API's.
    assert detect({"rawPath": "/", "requestContext": {"http": {"method": "GET"}}}) is (
        Front.FUNCTION_URL
    )
    assert detect({"httpMethod": "GET", "path": "/", "requestContext": {}}) is Front.REST_API


@pytest.mark.parametrize(
    ("domain", "is_url"),
    [
        ("", True),
        (URL_DOMAIN, True),
        ("127.0.0.1:9000", True),  # the local emulator: its Host
        ("localhost:9000", True),
        ("localhost", True),
        ("dev.localhost", True),
        ("[::1]:9000", True),
        ("10.0.0.5", True),
        ("devbox:9000", True),
        ("devbox", True),
        (API_DOMAIN, False),
        ("api.example.com", False),
    ],
)
def test_function_url_domains(domain: str, is_url: bool) -> None:
    assert is_function_url_domain(domain) is is_url


def test_the_host_header_stands_in_for_a_missing_domain_name() -> None:
    event = v2(API_DOMAIN)
    del event["requestContext"]["domainName"]
    assert detect(event) is Front.HTTP_API_V2


# --- payload 2.0 --------------------------------------------------------------------------------


def test_function_url_request() -> None:
    event = v2(
        rawPath="/caf%C3%A9/a%2Fb",
        rawQueryString="q=a%2Bb&q=c%26d%3De&tag=x+y&empty=",
        cookies=["session=abc", "theme=dark"],
        headers={"host": URL_DOMAIN, "Accept": "a/b,c/d", "content-type": "text/plain"},
        body="hello",
    )
    event["requestContext"]["http"]["method"] = "post"
    req = parsed(event)
    assert req.front is Front.FUNCTION_URL
    assert req.method == "POST"
    assert (req.raw_path, req.path) == ("/caf%C3%A9/a%2Fb", "/café/a/b")
    assert req.raw_query == "q=a%2Bb&q=c%26d%3De&tag=x+y&empty="  # as sent
    assert req.query == {"q": ["a+b", "c&d=e"], "tag": ["x y"], "empty": [""]}
    assert req.headers["accept"] == ["a/b,c/d"]  # Lambda joined it: one value
    # The cookies come back as the Cookie header the client sent.
    assert req.headers["cookie"] == ["session=abc; theme=dark"]
    assert req.cookies == {"session": "abc", "theme": "dark"}
    assert req.body == b"hello"
    assert req.source_ip == "192.0.2.10"
    assert (req.base_path, req.domain) == ("", URL_DOMAIN)


def test_base64_body() -> None:
    raw = bytes(range(256))
    req = parsed(v2(body=base64.b64encode(raw).decode(), isBase64Encoded=True))
    assert req.body == raw
    with pytest.raises(BadEventBody):
        parse_request(v2(body="not base64!", isBase64Encoded=True))


def test_http_api_v2_named_stage_is_the_base_path() -> None:
    event = v2(API_DOMAIN, rawPath="/prod/items/7")
    event["requestContext"]["stage"] = "prod"
    req = parsed(event)
    assert req.front is Front.HTTP_API_V2
    assert (req.base_path, req.path, req.raw_path, req.stage) == (
        "/prod",
        "/items/7",
        "/prod/items/7",
        "prod",
    )
    # On a custom domain the API mapping replaced the stage: nothing to strip.
    custom = v2("api.example.com", rawPath="/prod/items/7")
    custom["requestContext"]["stage"] = "prod"
    assert (parsed(custom).base_path, parsed(custom).path) == ("", "/prod/items/7")


# --- payload 1.0: HTTP API and REST -------------------------------------------------------------


@pytest.mark.parametrize("rest", [True, False], ids=["rest", "http-api-v1"])
def test_1_0_query_values_are_decoded_and_encoded_again(rest: bool) -> None:
    req = parsed(
        v1(
            rest=rest,
            queryStringParameters={"q": "c&d=e", "s": "a b"},
            multiValueQueryStringParameters={"q": ["a+b", "c&d=e"], "s": ["a b"]},
        )
    )
    assert req.query == {"q": ["a+b", "c&d=e"], "s": ["a b"]}  # never split on & = +
    assert req.raw_query == "q=a%2Bb&q=c%26d%3De&s=a%20b"


def test_1_0_single_value_query_when_there_is_no_multi_value_map() -> None:
    req = parsed(v1(rest=True, queryStringParameters={"k": "v/w"}))
    assert (req.query, req.raw_query) == ({"k": ["v/w"]}, "k=v/w")


def test_1_0_headers_come_from_multi_value_headers() -> None:
    req = parsed(
        v1(
            rest=True,
            headers={"Accept": "c/d", "Cookie": "b=2"},
            multiValueHeaders={"Accept": ["a/b", "c/d"], "Cookie": ["a=1; b=2"]},
        )
    )
    assert req.headers == {"accept": ["a/b", "c/d"], "cookie": ["a=1; b=2"]}
    assert req.cookies == {"a": "1", "b": "2"}
    only_single = parsed(v1(rest=True, headers={"X-One": "1"}, multiValueHeaders=None))
    assert only_single.headers == {"x-one": ["1"]}


def test_1_0_null_maps_are_empty() -> None:
    req = parsed(v1(rest=True, headers=None, multiValueHeaders=None))
    assert (req.headers, req.query, req.cookies, req.body, req.raw_query) == ({}, {}, {}, b"", "")


def test_rest_stage_is_the_base_path() -> None:
    event = v1(rest=True)
    event["requestContext"].update(path="/prod/items/7", stage="prod")
    req = parsed(event)
    assert (req.path, req.base_path, req.raw_path, req.stage) == (
        "/items/7",
        "/prod",
        "/prod/items/7",
        "prod",
    )
    root = v1(rest=True, path="/")
    root["requestContext"].update(path="/prod/", stage="prod")
    assert (parsed(root).path, parsed(root).base_path) == ("/", "/prod")
    # A custom domain without a base path mapping: the client's path is the path.
    custom = v1(rest=True)
    custom["requestContext"].update(path="/items/7", stage="prod")
    assert parsed(custom).base_path == ""


def test_rest_path_is_encoded_for_raw_path() -> None:
    req = parsed(v1(rest=True, path="/files/a b"))
    assert (req.path, req.raw_path) == ("/files/a b", "/files/a%20b")


def test_rest_request_fields() -> None:
    req = parsed(
        v1(
            rest=True,
            httpMethod="PUT",
            body=base64.b64encode(b"\x00\xff").decode(),
            isBase64Encoded=True,
        )
    )
    assert (req.method, req.body, req.source_ip, req.domain) == (
        "PUT",
        b"\x00\xff",
        "198.51.100.7",
        API_DOMAIN,
    )


def test_http_api_v1_named_stage_in_its_path() -> None:
    event = v1(rest=False, path="/prod/items/7")
    event["requestContext"].update(path="/prod/items/7", stage="prod")
    req = parsed(event)
    assert (req.front, req.base_path, req.path) == (Front.HTTP_API_V1, "/prod", "/items/7")


# --- ALB ---------------------------------------------------------------------------------------


def test_alb_query_is_as_the_client_sent_it() -> None:
    req = parsed(
        alb(
            multi=False,
            queryStringParameters={"a": "b%20c", "p": "x+y", "k%26": "v%3D1"},
            headers={
                "host": "lb.example.com",
                "cookie": "a=1; b=2",
                "x-forwarded-for": "203.0.113.1, 198.51.100.2",
            },
        )
    )
    assert req.raw_query == "a=b%20c&p=x+y&k%26=v%3D1"  # never b%2520c
    assert req.query == {"a": ["b c"], "p": ["x y"], "k&": ["v=1"]}
    assert req.headers["host"] == ["lb.example.com"]
    assert req.cookies == {"a": "1", "b": "2"}
    assert req.source_ip == "198.51.100.2"  # the address the ALB saw: the last one
    assert req.domain == "lb.example.com"


def test_alb_multi_value_reads_only_the_multi_value_maps() -> None:
    req = parsed(
        alb(
            multi=True,
            multiValueQueryStringParameters={"a": ["b%20c", "d"]},
            multiValueHeaders={
                "host": ["lb.example.com"],
                "cookie": ["a=1", "b=2"],
                "x-thing": ["1", "2"],
            },
        )
    )
    assert req.front is Front.ALB_MULTI
    assert req.raw_query == "a=b%20c&a=d"
    assert req.query == {"a": ["b c", "d"]}
    assert req.headers == {
        "host": ["lb.example.com"],
        "cookie": ["a=1", "b=2"],
        "x-thing": ["1", "2"],
    }
    assert req.cookies == {"a": "1", "b": "2"}


def test_alb_path_and_body() -> None:
    req = parsed(
        alb(
            multi=False,
            path="/a%20b",
            httpMethod="POST",
            body=base64.b64encode(b"\x89PNG").decode(),
            isBase64Encoded=True,
        )
    )
    assert (req.method, req.raw_path, req.path, req.body) == ("POST", "/a%20b", "/a b", b"\x89PNG")


# --- cookies -----------------------------------------------------------------------------------


def test_cookie_parsing_is_lenient() -> None:
    assert parse_cookies(['a=1; b="two"; junk; =x; c=', "d=4;e=5"]) == {
        "a": "1",
        "b": "two",
        "c": "",
        "d": "4",
        "e": "5",
    }
