"""HTTP details from function-URL (2.0) and API Gateway REST (1.0) events."""

from __future__ import annotations

from duplexlambda.streams import http_info


def test_http_info_v2_and_v1() -> None:
    v2 = http_info(
        {
            "rawPath": "/p",
            "rawQueryString": "x=1&x=2",
            "headers": {"Content-Type": "a"},
            "cookies": ["a=1; b=2"],
            "requestContext": {"http": {"method": "PUT"}},
        }
    )
    assert v2 is not None
    assert (v2.method, v2.path, v2.query, v2.headers, v2.cookies) == (
        "PUT",
        "/p",
        {"x": "1,2"},
        {"content-type": "a"},
        {"a": "1", "b": "2"},
    )
    v1 = http_info(
        {
            "httpMethod": "GET",
            "path": "/r",
            "headers": {"Cookie": "s=9"},
            "multiValueQueryStringParameters": {"q": ["a", "b"]},
            "requestContext": {},
        }
    )
    assert v1 is not None
    assert (v1.method, v1.path, v1.query, v1.cookies) == ("GET", "/r", {"q": "a,b"}, {"s": "9"})
    assert http_info({"key": "value"}) is None
    assert http_info([1]) is None
