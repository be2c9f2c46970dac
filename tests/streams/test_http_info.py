"""``req``'s HTTP details, whatever front sent the event (docs/fronts.md#request), and the
older joined view ``http_info`` that ``duplexlambda.streams`` still exports."""

from __future__ import annotations

from typing import Any

from duplexlambda.events import Front, parse_request
from duplexlambda.runtime.request import BytesSource
from duplexlambda.streams import HttpInfo, Request, http_info

V2 = {
    "rawPath": "/p%20q",
    "rawQueryString": "x=1&x=2&y=a%2Bb",
    "headers": {"Content-Type": "a"},
    "cookies": ["a=1; b=2"],
    "requestContext": {"http": {"method": "PUT"}},
}
REST = {
    "httpMethod": "GET",
    "path": "/r",
    "headers": {"Cookie": "s=9", "Accept": "c/d"},
    "multiValueHeaders": {"Cookie": ["s=9"], "Accept": ["a/b", "c/d"]},
    "multiValueQueryStringParameters": {"q": ["a+b", "c&d=e"]},
    "requestContext": {},
}


def request_for(event: Any) -> Request:
    return Request(BytesSource(b""), event=event, http=parse_request(event))


def test_payload_2_0() -> None:
    req = request_for(V2)
    assert (req.front, req.method, req.path, req.raw_query) == (
        Front.FUNCTION_URL,
        "PUT",
        "/p q",
        "x=1&x=2&y=a%2Bb",
    )
    assert req.query == {"x": "1,2", "y": "a+b"}
    assert req.query_list("x") == ["1", "2"]
    assert req.headers == {"content-type": "a", "cookie": "a=1; b=2"}
    assert req.header_list("Content-Type") == ["a"]
    assert req.cookies == {"a": "1", "b": "2"}
    assert req.is_http
    assert req.http is not None
    assert req.http.raw_path == "/p%20q"


def test_payload_1_0_keeps_every_value() -> None:
    req = request_for(REST)
    assert req.front is Front.REST_API
    # q=["a+b", "c&d=e"] was read as {'q': 'a b,c', 'd': 'e'} when 1.0 values were joined
    # into a query string unencoded and parsed again.
    assert req.query == {"q": "a+b,c&d=e"}
    assert req.query_list("q") == ["a+b", "c&d=e"]
    assert req.raw_query == "q=a%2Bb&q=c%26d%3De"
    assert req.headers["accept"] == "a/b,c/d"
    assert req.header_list("accept") == ["a/b", "c/d"]
    assert req.cookies == {"s": "9"}


def test_a_plain_invocation_has_no_http_details() -> None:
    req = request_for({"key": "value"})
    assert (req.is_http, req.front, req.method, req.path) == (False, Front.NONE, "POST", "/")
    assert (req.headers, req.query, req.cookies, req.raw_query) == ({}, {}, {}, "")
    assert (req.header_list("x"), req.query_list("x")) == ([], [])


def test_http_info_is_the_joined_view() -> None:
    info = http_info(REST)
    assert info == HttpInfo(
        method="GET",
        path="/r",
        headers={"cookie": "s=9", "accept": "a/b,c/d"},
        query={"q": "a+b,c&d=e"},
        cookies={"s": "9"},
        raw_query="q=a%2Bb&q=c%26d%3De",
    )
    assert http_info({"key": "value"}) is None
    assert http_info([1]) is None
