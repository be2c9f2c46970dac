"""Runtime API request builders and the /next response, without a network."""

from __future__ import annotations

import base64

import msgspec
import pytest

from duplexlambda.errors import LocalProtocolError, RemoteProtocolError
from duplexlambda.protocol import runtime_api as wire
from duplexlambda.protocol.http1 import Headers
from duplexlambda.protocol.runtime_api import RuntimeApiAddress


@pytest.mark.parametrize(
    ("value", "host", "port", "prefix", "header"),
    [
        ("127.0.0.1:9001", "127.0.0.1", 9001, "", "127.0.0.1:9001"),
        ("localhost:80", "localhost", 80, "", "localhost:80"),
        ("http://127.0.0.1:9000/.rt/fn", "127.0.0.1", 9000, "/.rt/fn", "127.0.0.1:9000"),
        ("http://h:1/", "h", 1, "", "h:1"),
        ("[::1]:9001", "::1", 9001, "", "[::1]:9001"),
        # cargo-lambda's form (docs/runtime-api.md §1): a scheme and a /.rt/<function> prefix.
        ("http://[::1]:9000/.rt/my-fn_2", "::1", 9000, "/.rt/my-fn_2", "[::1]:9000"),
        ("http://127.0.0.1:9000/.rt/a%20b", "127.0.0.1", 9000, "/.rt/a%20b", "127.0.0.1:9000"),
        ("HTTP://Runtime.Local:9001", "runtime.local", 9001, "", "runtime.local:9001"),
        ("lambda_api:9001", "lambda_api", 9001, "", "lambda_api:9001"),  # a compose service
        ("  127.0.0.1:9001\n", "127.0.0.1", 9001, "", "127.0.0.1:9001"),  # $(cat file)
    ],
)
def test_address(value: str, host: str, port: int, prefix: str, header: str) -> None:
    addr = RuntimeApiAddress.parse(value)
    assert (addr.host, addr.port, addr.prefix, addr.host_header) == (host, port, prefix, header)
    assert addr.path("/runtime/invocation/next") == f"{prefix}/2018-06-01/runtime/invocation/next"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "is empty"),
        ("https://h:1", "scheme 'https' is not supported"),
        ("ftp://x", "scheme 'ftp' is not supported"),
        ("h:notaport", "bad port"),
        ("h:0", "bad port"),
        ("h:65536", "bad port"),
        ("h:1:2", "bad port"),
        ("127.0.0.1", "has no port"),
        ("garbage", "has no port"),
        ("h:", "has no port"),
        ("[::1]", "has no port"),
        ("http://h", "has no port"),
        ("!!!:9001", "bad host"),
        ("[::zz]:9001", "bad host"),
        ("[::1:9001", "bad host"),
        (":9001", "bad host"),
        ("http://127.0.0.1:9/a b", "has a space or a control character"),
        ("h:1\t2", "has a space or a control character"),
        ("http://h:1/a\rb", "has a space or a control character"),
        ("http://h:1/p?x=1", "has a query or a fragment"),
        ("http://h:1/p#f", "has a query or a fragment"),
        ("http://user@h:1", "has a user name"),
        ("http://h:1/caf\u00e9", "path prefix '/caf\u00e9' is not a plain URL path"),
        ("http://h:1/a<b", "path prefix '/a<b' is not a plain URL path"),
        ("http://h:1/%zz", "path prefix '/%zz' is not a plain URL path"),
    ],
)
def test_bad_address(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=r"^AWS_LAMBDA_RUNTIME_API ") as info:
        RuntimeApiAddress.parse(value)
    message = str(info.value)
    assert why in message
    assert "\n" not in message  # one line, whatever the value held
    if value.strip():
        assert repr(value) in message


ADDR = RuntimeApiAddress.parse("127.0.0.1:9001")
UA = b"User-Agent: " + wire.USER_AGENT.encode() + b"\r\n"


def test_next_request() -> None:
    assert wire.next_request(ADDR) == (
        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
        + UA
        + b"Accept: application/vnd.duplexlambda.http-request-stream, */*\r\n\r\n"
    )


def test_buffered_response_request() -> None:
    assert wire.response_request(ADDR, "id-1", 12, "application/json") == (
        b"POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
        + UA
        + b"Content-Type: application/json\r\nContent-Length: 12\r\n\r\n"
    )


def test_error_requests() -> None:
    assert wire.error_request(ADDR, "id-1", "ValueError", 5) == (
        b"POST /2018-06-01/runtime/invocation/id-1/error HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
        + UA
        + b"Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: ValueError"
        b"\r\nContent-Length: 5\r\n\r\n"
    )
    init = wire.error_request(ADDR, None, "Runtime.ImportModuleError", 2, b'{"x":1}')
    assert init.startswith(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n")
    assert b'Lambda-Runtime-Function-XRay-Error-Cause: {"x":1}\r\n' in init
    big = wire.error_request(ADDR, None, "E", 2, b"x" * 70000)
    assert b"XRay" not in big  # over Lambda's 64 KiB cap: dropped, as the AWS clients do


@pytest.mark.parametrize("rid", ["a/b", "a b", "a?b", "", "a\r\nX: y", "%2e%2e"])
def test_request_id_cannot_change_the_path(rid: str) -> None:
    with pytest.raises(LocalProtocolError):
        wire.response_request(ADDR, rid, 0, "x")


def test_error_payload_and_trailers() -> None:
    try:
        raise KeyError("k")
    except KeyError as exc:
        payload = wire.error_payload(exc, "rid")
    assert (payload.errorType, payload.errorMessage, payload.requestId) == (
        "KeyError",
        "'k'",
        "rid",
    )
    assert payload.stackTrace
    assert "raise KeyError" in payload.stackTrace[-1]
    (type_name, type_value), (body_name, body_value) = wire.error_trailers(payload)
    assert (type_name, type_value) == ("Lambda-Runtime-Function-Error-Type", "KeyError")
    assert body_name == "Lambda-Runtime-Function-Error-Body"
    assert "\n" not in body_value
    assert msgspec.json.decode(base64.b64decode(body_value))["errorMessage"] == "'k'"


def test_parse_next() -> None:
    headers = Headers(
        [
            (b"lambda-runtime-aws-request-id", b"rid"),
            (b"Lambda-Runtime-Deadline-Ms", b"1700000000000"),
            (b"Lambda-Runtime-Invoked-Function-Arn", b"arn:aws:lambda:r:1:function:f"),
            (b"Lambda-Runtime-Trace-Id", b"Root=1-2-3"),
            (b"Lambda-Runtime-Client-Context", b'{"custom":{"a":1}}'),
            (b"Lambda-Runtime-Aws-Tenant-Id", b"t1"),
            (b"Content-Type", b"application/json"),
        ]
    )
    head = wire.parse_next(headers, now_ms=1)
    assert head.request_id == "rid"
    assert head.deadline_ms == 1700000000000
    assert head.trace_id == "Root=1-2-3"
    assert head.client_context == '{"custom":{"a":1}}'
    assert head.tenant_id == "t1"
    assert head.cognito_identity is None


def test_parse_next_relative_deadline_and_missing_id() -> None:
    # cargo-lambda sends a constant 600000, not an epoch (docs/runtime-api.md P3).
    head = wire.parse_next(
        Headers([(wire.H_REQUEST_ID.encode(), b"r"), (wire.H_DEADLINE.encode(), b"600000")]),
        now_ms=1000,
    )
    assert head.deadline_ms == 601000
    assert head.content_type == "application/json"
    with pytest.raises(RemoteProtocolError, match="Request-Id"):
        wire.parse_next(Headers([]), now_ms=0)


@pytest.mark.parametrize(
    "address",
    [ADDR, RuntimeApiAddress.parse("http://[::1]:8080/.rt/fn"), RuntimeApiAddress.parse("h:1")],
)
def test_request_heads_are_the_builders_bytes(address: RuntimeApiAddress) -> None:
    heads = wire.RequestHeads(address)
    assert heads.next == wire.next_request(address)
    for rid, size, ctype in [("id-1", 12, "application/json"), ("x", 0, "text/plain; a=b")]:
        assert heads.response(rid, size, ctype) == wire.response_request(address, rid, size, ctype)
        assert heads.streaming_response(rid, ctype) == wire.streaming_response_request(
            address, rid, ctype
        )
        assert heads.error(rid, "ValueError", size) == wire.error_request(
            address, rid, "ValueError", size
        )
    assert heads.error(None, "E", 2, b'{"x":1}') == wire.error_request(
        address, None, "E", 2, b'{"x":1}'
    )
    assert heads.error("r", "E", 2, b'{"x":1}') == wire.error_request(
        address, "r", "E", 2, b'{"x":1}'
    )


@pytest.mark.parametrize("rid", ["a/b", "a b", "a?b", "", "a\r\nX: y", "%2e%2e"])
def test_request_heads_check_the_request_id(rid: str) -> None:
    heads = wire.RequestHeads(ADDR)
    with pytest.raises(LocalProtocolError):
        heads.response(rid, 0, "x")
    with pytest.raises(LocalProtocolError):
        heads.streaming_response(rid, "x")


@pytest.mark.parametrize("value", ["a\r\nX: y", "a\x00", "caf\u00e9\u20ac"])
def test_request_heads_check_repeated_values(value: str) -> None:
    heads = wire.RequestHeads(ADDR)
    for _ in range(2):  # the second time from the cache of checked values
        with pytest.raises((LocalProtocolError, UnicodeEncodeError)):
            heads.streaming_response("r", value)
        with pytest.raises((LocalProtocolError, UnicodeEncodeError)):
            heads.error("r", value, 1)


def test_parse_next_keeps_the_first_of_repeated_fields() -> None:
    headers = Headers(
        [
            (b"Lambda-Runtime-Aws-Request-Id", b"first"),
            (b"LAMBDA-RUNTIME-AWS-REQUEST-ID", b"second"),
            (b"content-type", b"text/plain"),
            (b"Content-Type", b"application/json"),
        ]
    )
    head = wire.parse_next(headers, now_ms=0)
    assert (head.request_id, head.content_type) == ("first", "text/plain")
