"""PEP 3333 rules, on bare WSGI apps without a framework in the way: ``start_response`` and
``exc_info``, the ``write()`` callable, ``close()``, Content-Length, empty bodies, header
checks, what the runtime reports for each failure, and every read style of ``wsgi.input``."""

from __future__ import annotations

import json
import time

import pytest

from duplexlambda.testing.plugin import LambdaClientFactory
from duplexlambda.wsgi import wsgi

from ..support.emulated import paced
from .apps import Journal, raw_app

pytestmark = pytest.mark.asyncio


@pytest.fixture
def journal() -> Journal:
    return Journal()


async def test_exc_info_replaces_the_head_before_the_body(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get("/replace-head")
    assert (resp.status, resp.body, resp.complete, resp.error) == (503, b"replaced", True, None)
    assert "x-first" not in resp.headers  # the first head never went out


async def test_exc_info_after_the_head_is_raised_again(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get("/exc-after-head")
    # The head had gone out with the first write: start_response re-raised exc_info, so
    # the stream ends with the error trailers and the client's response is cut.
    assert (resp.status, resp.chunks, resp.complete) == (200, [b"sent;"], False)
    assert resp.error is not None
    assert (resp.error.error_type, resp.error.message) == (
        "LookupError",
        "failed after the head went out",
    )


async def test_the_write_callable(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get("/write")
    assert resp.status == 201
    # write() calls and the iterable's items, in order, one chunk each (empty ones: none).
    assert resp.chunks == [b"one;", b"two;", b"three;", b"four"]
    assert resp.complete
    assert len(journal.named("close")) == 1


async def test_write_sends_the_head_at_once(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    async with client.stream("GET", "/write-head-only") as resp:
        head_at = time.monotonic()
        assert (resp.status, resp.headers["x-early"]) == (202, "yes")
        body = [chunk async for chunk in resp]
    assert body == [b"later"]
    assert resp.arrivals[0] - head_at > 0.15  # the head came ~0.2 s before the body


async def test_content_length_caps_the_body(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get("/length-long")
    # Never more than announced: the rest of the item is dropped, iteration stops, close().
    assert (resp.body, resp.complete, resp.error) == (b"hello", True, None)
    assert "content-length" not in resp.headers  # the function URL frames the body
    assert len(journal.named("close")) == 1


async def test_a_body_shorter_than_its_content_length_is_cut(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get("/length-short")
    assert (resp.status, resp.body, resp.complete) == (200, b"short", False)
    assert resp.error is not None
    assert resp.error.error_type == "Runtime.WSGIProtocolError"
    assert "5 of its Content-Length 10" in resp.error.message


async def test_empty_bodies(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    empty = await client.get("/empty")
    assert (empty.status, empty.body, empty.complete, empty.error) == (204, b"", True, None)
    assert empty.headers["x-empty"] == "yes"
    items = await client.get("/empty-items")
    assert (items.status, items.body, items.complete, items.error) == (200, b"", True, None)
    assert items.headers["content-type"] == "text/plain"
    started = await client.get("/returns-none-started")
    assert (started.status, started.body, started.complete) == (200, b"", True)
    assert len(journal.named("close")) == 2


async def test_head_requests_send_no_body(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.head("/write")
    assert (resp.status, resp.body, resp.complete) == (201, b"", True)
    assert len(journal.named("close")) == 1


@pytest.mark.parametrize(
    ("path", "error_type", "message"),
    [
        ("/raise-first", "KeyError", "raised before start_response"),
        ("/raise-before-body", "ValueError", "failed before the first byte"),
        ("/no-start", "Runtime.WSGIProtocolError", "before calling start_response"),
        ("/twice", "Runtime.WSGIProtocolError", "called again without exc_info"),
        ("/bad-status", "Runtime.WSGIProtocolError", "malformed status 'OK'"),
        ("/bad-header", "Runtime.WSGIProtocolError", "invalid value for header 'X-Bad'"),
        ("/str-body", "Runtime.WSGIProtocolError", "must be bytes, not str"),
    ],
)
async def test_failures_before_the_first_byte_are_reported(
    lambda_client: LambdaClientFactory, journal: Journal, path: str, error_type: str, message: str
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get(path)
    # The handler raised: the runtime reported it to /error, a 502 on the function URL.
    assert resp.status == 502
    assert resp.error is not None
    assert resp.error.error_type == error_type
    assert message in resp.error.message
    assert json.loads(resp.body)["errorType"] == error_type
    assert (await client.get("/nowhere")).status == 404  # the runtime serves on


async def test_response_headers_mapped_onto_res(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get("/hop-by-hop")
    assert (resp.status, resp.body) == (200, b"ok")
    for name in ("connection", "keep-alive", "transfer-encoding", "upgrade"):
        assert name not in resp.headers
    assert resp.headers["x-kept"] == "1"
    assert resp.headers["x-multi"] == "a, b"
    assert resp.cookies == ["a=1; Path=/", "b=2; Secure"]


async def test_close_that_raises_fails_the_invocation(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.get("/close-raises")
    assert (resp.body, resp.complete) == (b"body", False)
    assert resp.error is not None
    assert (resp.error.error_type, resp.error.message) == ("OSError", "close failed")


async def test_a_plain_invocation_is_not_an_http_request(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    result = await client.invoke({"not": "http"})
    assert result.error is not None
    assert result.error.error_type == "Runtime.UnsupportedEvent"


async def test_every_read_style_of_wsgi_input(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    pieces = [b"abcdef\nghij", b"kl\nmn\n", b"op\nqr\nst"]
    resp = await client.post("/input", body=paced(pieces, 0.05))
    assert resp.text.splitlines() == [
        "b'abc'",  # read(3) waited for the first piece
        "b'def\\n'",  # readline()
        "b'ghij'",  # readline(4): the limit, without waiting for the line's end
        "b'kl\\nmn\\n'",  # read1(100): the next piece as it came, not 100 bytes
        "b'op\\n'",  # readlines(1): lines until they hold 1 byte
        "b'qr\\n|st'",  # iteration: the lines left, the last without its \n
        "b''",  # read() at the end
        "b''",  # read(10) at the end
    ]


async def test_wsgi_input_stops_at_content_length(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(raw_app(journal)))
    resp = await client.post("/input-all", body=b"0123456789", headers={"Content-Length": "4"})
    assert resp.body == b"4:0123"
    chunked = await client.post("/input-all", body=paced([b"0123", b"4567", b"89"], 0.01))
    assert chunked.body == b"10:0123456789"  # no Content-Length: up to the body's end
