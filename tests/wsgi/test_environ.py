"""The WSGI environ built from function-URL (2.0), HTTP API (2.0 with a stage) and API
Gateway REST (1.0) events, without any framework in the way; and the handler's shape."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from duplexlambda.events.request import parse_request
from duplexlambda.handler import Style, own_lifecycle, style_of
from duplexlambda.runtime.request import BytesSource, Request
from duplexlambda.wsgi import (
    ErrorStream,
    UnsupportedEvent,
    WSGIHandler,
    environ_of,
    split_path,
    wsgi,
)

from .apps import Journal, raw_app


def request_for(event: dict[str, Any]) -> Request:
    return Request(BytesSource(b""), event=event, http=parse_request(event))


V2: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/caf%C3%A9/a%20b",
    "rawQueryString": "q=caf%C3%A9&n=1&n=2&s=a+b",
    "cookies": ["sid=42", "theme=dark"],
    "headers": {
        "host": "abc.lambda-url.eu-west-1.on.aws",
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "accept": "text/html,application/json",
        "content-type": "application/json",
        "content-length": "17",
        "X-Mixed-Case": "kept",
        "x_underscored": "dropped",
    },
    "requestContext": {
        "http": {
            "method": "patch",
            "path": "/café/a b",
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9",
        },
        "stage": "$default",
    },
    "body": "hi",
    "isBase64Encoded": False,
}


def test_environ_of_a_function_url_event() -> None:
    env = environ_of(request_for(V2))
    assert env["REQUEST_METHOD"] == "PATCH"
    assert env["SCRIPT_NAME"] == ""
    # Decoded, as WSGI servers hand it over: the UTF-8 bytes of the path read as latin-1.
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a b"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a b"
    assert env["QUERY_STRING"] == "q=caf%C3%A9&n=1&n=2&s=a+b"  # raw, as sent
    assert env["RAW_URI"] == env["REQUEST_URI"] == "/caf%C3%A9/a%20b?q=caf%C3%A9&n=1&n=2&s=a+b"
    assert (env["CONTENT_TYPE"], env["CONTENT_LENGTH"]) == ("application/json", "17")
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("abc.lambda-url.eu-west-1.on.aws", "443")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["HTTP_ACCEPT"] == "text/html,application/json"
    assert env["HTTP_X_MIXED_CASE"] == "kept"
    assert env["HTTP_COOKIE"] == "sid=42; theme=dark"  # the cookies list, back in one header
    assert not any("UNDERSCORED" in key for key in env)  # could pose as x-underscored
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "https"
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"], env["wsgi.run_once"]) == (
        True,
        False,
        False,
    )
    assert env["wsgi.input_terminated"] is True
    for prefix in ("lambda", "aws", "awsgi"):
        assert env[f"{prefix}.event"] is V2
        assert f"{prefix}.context" in env
    # The streams are the handler's to add.
    assert "wsgi.input" not in env
    assert "wsgi.errors" not in env
    assert all(isinstance(k, str) for k in env)
    assert all(isinstance(v, str) for k, v in env.items() if k.isupper())


def test_environ_defaults_when_the_event_says_little() -> None:
    event = {
        "version": "2.0",
        "rawPath": "/",
        "headers": {"x-forwarded-proto": "http"},
        "requestContext": {"http": {"method": "GET", "protocol": "HTTP/2.0"}},
    }
    env = environ_of(request_for(event))
    assert env["wsgi.url_scheme"] == "http"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("localhost", "80")
    assert env["SERVER_PROTOCOL"] == "HTTP/2"
    assert env["QUERY_STRING"] == ""
    assert env["REQUEST_URI"] == "/"
    assert "REMOTE_ADDR" not in env
    assert "CONTENT_LENGTH" not in env
    assert "CONTENT_TYPE" not in env
    assert environ_of(request_for({**event, "headers": {}}))["wsgi.url_scheme"] == "https"


def test_environ_of_an_api_gateway_rest_event() -> None:
    event = {
        "resource": "/{proxy+}",
        "path": "/prod/orders/7",  # a resource that starts like the stage: kept whole
        "httpMethod": "DELETE",
        "headers": {"Host": "api.example.com:8443", "X-Forwarded-Proto": "https"},
        "multiValueHeaders": {
            "Host": ["api.example.com:8443"],
            "X-Forwarded-Proto": ["https"],
            "Accept": ["a/b", "c/d"],
            "Cookie": ["a=1", "b=2"],
        },
        "multiValueQueryStringParameters": {"id": ["1", "2"], "s": ["a b&c"]},
        "requestContext": {
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "path": "/prod/prod/orders/7",
            "identity": {"sourceIp": "198.51.100.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    env = environ_of(request_for(event))
    # The stage is the base path (requestContext.path = /prod + path): url_for keeps it.
    assert (env["REQUEST_METHOD"], env["SCRIPT_NAME"], env["PATH_INFO"]) == (
        "DELETE",
        "/prod",
        "/prod/orders/7",
    )
    assert env["QUERY_STRING"] == "id=1&id=2&s=a%20b%26c"
    assert env["HTTP_ACCEPT"] == "a/b,c/d"  # repeated values, comma-joined
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("api.example.com", "8443")
    assert env["REMOTE_ADDR"] == "198.51.100.1"


def http_api(raw_path: str, stage: str) -> Request:
    return request_for(
        {
            "version": "2.0",
            "rawPath": raw_path,
            "headers": {"host": "x.execute-api.eu-west-1.amazonaws.com"},
            "requestContext": {"http": {"method": "GET"}, "stage": stage},
        }
    )


@pytest.mark.parametrize(
    ("raw_path", "stage", "configured", "expected"),
    [
        ("/prod/items/3", "prod", "", ("/prod", "/items/3")),  # the stage in the path
        ("/prod", "prod", "", ("/prod", "")),
        ("/production/items", "prod", "", ("", "/production/items")),  # not a segment
        ("/items/3", "prod", "", ("", "/items/3")),  # a custom domain: no stage in the path
        ("/items/3", "$default", "", ("", "/items/3")),
        ("/api/v1/items", "$default", "/api", ("/api", "/v1/items")),
        ("/api/v1/items", "$default", "/api/", ("/api", "/v1/items")),
        ("/other", "$default", "/api", ("/api", "/other")),  # mounted there all the same
    ],
)
def test_split_path(raw_path: str, stage: str, configured: str, expected: tuple[str, str]) -> None:
    assert split_path(http_api(raw_path, stage), configured) == expected


def test_script_name_is_decoded_like_the_path() -> None:
    env = environ_of(http_api("/st%C3%A9/x%2Fy", "sté"), script_name="")
    # A stage that is not ASCII never matches its encoded form: nothing is stripped.
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/st\xc3\xa9/x/y")
    env = environ_of(http_api("/caf%C3%A9/x", "$default"), script_name="/caf%C3%A9")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/caf\xc3\xa9", "/x")


def test_a_plain_event_has_no_environ() -> None:
    with pytest.raises(UnsupportedEvent):
        environ_of(Request(BytesSource(b"{}"), event={"plain": True}))


def test_the_handler_is_duplex_with_no_lifecycle() -> None:
    handler = wsgi(raw_app(Journal()), script_name="/api/")
    assert isinstance(handler, WSGIHandler)
    assert handler.script_name == "/api"
    assert style_of(handler) is Style.DUPLEX
    assert own_lifecycle(handler) is None
    with pytest.raises(TypeError):
        wsgi("not an app")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="script_name"):
        wsgi(raw_app(Journal()), script_name="api")


def test_error_stream_logs_whole_lines(caplog: pytest.LogCaptureFixture) -> None:
    stream = ErrorStream()
    with caplog.at_level("ERROR", logger="duplexlambda.wsgi.errors"):
        assert stream.write("one\ntw") == 6
        stream.writelines(["o\r\n", "three"])
        assert [r.getMessage() for r in caplog.records] == ["one", "two"]
        stream.flush()
        stream.flush()
    assert [r.getMessage() for r in caplog.records] == ["one", "two", "three"]
    assert {r.levelname for r in caplog.records} == {"ERROR"}


def test_imports_stay_lean() -> None:
    # The runtime a bootstrap starts loads no bridge; the WSGI bridge loads no framework and
    # no emulator.
    code = (
        "import sys, duplexlambda.runtime;"
        "print(sorted(m for m in ('duplexlambda.wsgi', 'flask', 'werkzeug') if m in sys.modules));"
        "import duplexlambda.wsgi;"
        "print(sorted(m for m in ('duplexlambda.emulator', 'duplexlambda.testing', 'flask',"
        " 'werkzeug') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["[]", "[]"]


def test_wsgi_takes_the_streaming_fronts() -> None:
    from duplexlambda.handler import streaming_of

    handler = wsgi(raw_app(Journal()), streaming_fronts=["function-url", "rest-api"])
    assert streaming_of(handler) == ("function-url", "rest-api")
    assert streaming_of(wsgi(raw_app(Journal()))) is None
