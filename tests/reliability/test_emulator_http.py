"""HTTP/1.1 framing of the emulator's main port, from raw sockets (issue #13 items 5-11).

Each test names the fault: what a client sends (or a function answers) that once broke a
keep-alive connection, leaked into the function, or went unanswered, and what the client
must see instead. Our runtime serves the function unless a test plays the runtime by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from duplexlambda.emulator import server as http_server
from duplexlambda.errors import BrokenResourceError
from duplexlambda.protocol.http1 import HeadReader, ResponseHead
from duplexlambda.streams import Request, Response

from ..support.wire import INVOKE, Conn, request, request_bytes
from .harness import stack

pytestmark = pytest.mark.asyncio

CLOSE = ("Connection", "close")


@contextlib.asynccontextmanager
async def connected(address: str) -> AsyncIterator[Conn]:
    """A raw client connection, closed on the way out whatever happened."""
    conn = await Conn.open(address)
    try:
        yield conn
    finally:
        await conn.close()


async def read_to_close(conn: Conn, within: float = 10.0) -> bytes:
    """Every byte the server sends until it closes the connection."""
    return await asyncio.wait_for(conn.reader.read(), within)


# --- item 5: statuses without a body ----------------------------------------------------------


async def _status_handler(req: Request, res: Response) -> None:
    status = int(req.path.strip("/") or 200)
    res.status = status
    res.headers["etag"] = '"v1"'
    await res.end(b"a body the status cannot carry")


def _buffered_status_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    status = int(event["rawPath"].strip("/") or 200)
    return {"statusCode": status, "headers": {"etag": '"v1"'}, "body": "a body, dropped"}


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("style", ["streamed", "buffered"])
async def test_bodiless_status_keeps_the_connection_in_step(status: int, style: str) -> None:
    """A 204 or 304 carries no body and no framing header (RFC 9110 15.3.5/15.4.5, RFC 9112
    6.3): a chunked 204 ends with ``0\\r\\n\\r\\n`` that the client reads as the start of
    its next response, so the second request on the connection must parse."""
    handler = _status_handler if style == "streamed" else _buffered_status_handler
    async with stack(handler) as s, connected(s.url) as conn:
        # Pipelined, the second asking to close: all bytes up to the close are both answers.
        await conn.send(request_bytes("GET", f"/{status}") + request_bytes("GET", "/200", [CLOSE]))
        raw = await read_to_close(conn)
    heads = HeadReader("response")
    first = heads.feed(raw)
    assert isinstance(first, ResponseHead)
    assert first.status == status
    assert first.headers.get("etag") == b'"v1"'
    assert first.headers.get("transfer-encoding") is None
    assert first.headers.get("content-length") is None
    # Nothing between the two answers: no last-chunk, no body.
    assert heads.rest.startswith(b"HTTP/1.1 200 OK\r\n"), heads.rest[:40]
    assert b"a body" in heads.rest  # the second answer is whole


@pytest.mark.parametrize("status", [100, 101, 103, 199])
@pytest.mark.parametrize("style", ["streamed", "buffered"])
async def test_informational_status_from_the_function_is_a_502(status: int, style: str) -> None:
    """A 1xx is interim: a client reads on for the final answer, which would be the answer
    to its next request. The function cannot send one, so the caller gets 502
    ``Runtime.InvalidResponse``, as for any answer the URL cannot map, and the connection
    stays in step."""
    handler = _status_handler if style == "streamed" else _buffered_status_handler
    async with stack(handler) as s, connected(s.url) as conn:
        await conn.send(request_bytes("GET", f"/{status}"))
        first = await conn.read_reply()
        await conn.send(request_bytes("GET", "/200"))
        second = await conn.read_reply(5)
    assert first.status == 502
    assert first.json() == {"errorMessage": f"invalid statusCode {status}",
                            "errorType": "Runtime.InvalidResponse"}  # fmt: skip
    assert second.status == 200


# --- item 6: header values HTTP cannot carry --------------------------------------------------

UNSENDABLE: dict[str, dict[str, Any]] = {
    "value": {"headers": {"x-snow": "snow \u2603"}},
    "array-value": {"headers": {"x-snow": ["fine", "snow \u2603"]}},
    "name": {"headers": {"x-sn\u00f6w": "v"}},
    "cookie": {"cookies": ["snow=\u2603"]},
}


def _unsendable_handler(kind: str) -> Any:
    async def streamed(req: Request, res: Response) -> None:
        meta = UNSENDABLE.get(req.path.strip("/"), {})
        for name, value in meta.get("headers", {}).items():
            res.headers[name] = value if isinstance(value, str) else value[-1]
        for cookie in meta.get("cookies", []):
            res.add_set_cookie(cookie)
        await res.end(b"body")

    def buffered(event: dict[str, Any], context: object) -> dict[str, Any]:
        if event["rawPath"] == "/ok":
            return {"statusCode": 200, "body": "ok"}
        return {"statusCode": 200, "body": "body", **UNSENDABLE[event["rawPath"].strip("/")]}

    return streamed if kind == "streamed" else buffered


@pytest.mark.parametrize("how", list(UNSENDABLE))
@pytest.mark.parametrize("style", ["streamed", "buffered"])
async def test_header_outside_latin1_from_the_function_is_a_clean_502(how: str, style: str) -> None:
    """A JSON prelude or result can hold any character; an HTTP field only Latin-1 (RFC 9110
    5.5). The caller gets 502 ``Runtime.InvalidResponse`` whose Content-Length is its body's
    (it was a 500 from an exception, with a length that disagreed), and the connection goes on."""
    async with stack(_unsendable_handler(style)) as s, connected(s.url) as conn:
        await conn.send(request_bytes("GET", f"/{how}"))
        first = await conn.read_reply()
        await conn.send(request_bytes("GET", "/ok"))
        second = await conn.read_reply(5)
    assert first.status == 502, first
    assert first.header("content-length") == str(len(first.body))
    error = first.json()
    assert isinstance(error, dict)
    assert error["errorType"] == "Runtime.InvalidResponse"
    assert "snow" not in (first.header("x-snow") or "")
    assert second.status == 200


# --- item 7: a malformed chunked upload is the client's error -------------------------------

BAD_FRAMING = {
    "plus-sign": b"+3\r\nabc\r\n0\r\n\r\n",
    "leading-space": b" 3\r\nabc\r\n0\r\n\r\n",
    "0x-prefix": b"0x3\r\nabc\r\n0\r\n\r\n",
    "100KB-extension": b"3;" + b"e" * 100_000 + b"\r\nabc\r\n0\r\n\r\n",
}
CHUNKED_UPLOAD = [("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")]


@pytest.mark.parametrize("framing", list(BAD_FRAMING))
@pytest.mark.parametrize("mode", ["duplex", "lambda"])
async def test_malformed_chunked_upload_is_a_400_and_never_reaches_the_function(
    framing: str, mode: str
) -> None:
    """It was relayed to the function as a cut stream, and came back as a 502 with the
    runtime's stack trace. The framing is the client's error: 400, the function never runs,
    and the connection (whose framing is lost) is closed."""
    calls: list[str] = []

    async def handler(req: Request, res: Response) -> None:
        calls.append(req.path)
        await res.end(await req.read())

    async with stack(handler, mode=mode) as s:
        async with connected(s.url) as conn:
            await conn.send(request_bytes("POST", "/up", CHUNKED_UPLOAD) + BAD_FRAMING[framing])
            reply = await conn.read_reply()
            assert await conn.at_eof(5)
        after = await request(s.url, "POST", "/after", body=b"fine")
    assert reply.status == 400, reply
    error = reply.json()
    assert isinstance(error, dict)
    assert error["errorType"] == "InvalidRequestContentException"
    assert "stackTrace" not in error
    assert calls == ["/after"]
    assert after.body == b"fine"


@pytest.mark.parametrize("answer", ["raises", "answers-anyway"])
async def test_malformed_chunk_after_streaming_began_cuts_the_function_and_is_a_400(
    answer: str,
) -> None:
    """Duplex: the function already reads the upload when a bad chunk comes. Its request
    stream is cut (``BrokenResourceError``), and the client, which had no response yet, gets
    400 whatever the function then does."""
    first = asyncio.Event()
    seen: list[object] = []

    async def handler(req: Request, res: Response) -> None:
        if req.path == "/after":
            await res.end(b"fine")
            return
        seen.append(await req.readexactly(5))
        first.set()
        try:
            seen.append(await req.read())
        except BrokenResourceError as exc:
            seen.append(type(exc))
            if answer == "raises":
                raise
        await res.end(b"an answer the client must not get")

    async with stack(handler) as s:
        async with connected(s.url) as conn:
            await conn.send(request_bytes("POST", "/up", CHUNKED_UPLOAD) + b"5\r\nfirst\r\n")
            await asyncio.wait_for(first.wait(), 5)
            await conn.send(b"+3\r\nabc\r\n0\r\n\r\n")
            reply = await conn.read_reply()
            assert await conn.at_eof(5)
        after = await request(s.url, "POST", "/after", body=b"x")
    assert reply.status == 400, reply
    assert reply.json()["errorType"] == "InvalidRequestContentException"  # type: ignore[index]
    assert seen == [b"first", BrokenResourceError]
    assert after.body == b"fine"


# --- item 8: a client that half-closes after its request ---------------------------------------


@pytest.mark.parametrize("body", [None, b"uploaded"], ids=["no-body", "body"])
@pytest.mark.parametrize("mode", ["duplex", "lambda"])
async def test_request_then_half_close_is_answered_then_closed(
    body: bytes | None, mode: str
) -> None:
    """``shutdown(SHUT_WR)`` after a whole request (``nc -N``, ``curl`` with some proxies)
    says "nothing more to send", not "gone": the answer still comes, marked
    ``Connection: close``, then the server closes. It got no answer at all, in either mode."""

    async def handler(req: Request, res: Response) -> None:
        data = await req.read()
        await asyncio.sleep(0.05)  # answer after the EOF has surely arrived
        await res.end(b"answer to " + data)

    async with stack(handler, mode=mode) as s, connected(s.url) as conn:
        await conn.send(request_bytes("POST", "/", body=body or b""))
        conn.writer.write_eof()
        reply = await conn.read_reply(5)
        assert await conn.at_eof(5)
    assert (reply.status, reply.body) == (200, b"answer to " + (body or b""))
    assert reply.header("connection") == "close"


# --- item 9: request targets and Host, as RFC 9112 3.2 wants them -----------------------------

BAD_HOSTS = {"space": b"a b", "slash": b"x/admin", "userinfo": b"u@x", "bad-port": b"x:80a"}
REFUSED_HEADS = {
    # A function URL is an origin, not a proxy: another authority is never forwarded.
    "absolute-form": (b"GET http://other/admin HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "absolute-form-same-host": (b"GET http://x/admin HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "options-asterisk": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    # (the Runtime API has no such path: 404)
    "connect": (b"CONNECT other:443 HTTP/1.1\r\nHost: other:443\r\n\r\n", 405),
    "no-host": (b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    **{f"host-{k}": (b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % v, 400) for k, v in BAD_HOSTS.items()},
    "bare-lf": (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    "bare-lf-mixed": (b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),
}


@pytest.mark.parametrize("how", list(REFUSED_HEADS))
async def test_bad_target_or_host_is_refused_promptly_and_never_reaches_the_function(
    how: str,
) -> None:
    """Absolute-form targets reached the function as its path, ``OPTIONS *`` and ``CONNECT``
    were forwarded, a missing, repeated or invalid ``Host`` was accepted, and a bare-LF head
    waited 10 s for the 408. Each is refused at once, on both listeners (the function never
    runs); the connection closes, and the next request is served."""
    raw, status = REFUSED_HEADS[how]
    calls: list[str] = []

    async def handler(req: Request, res: Response) -> None:
        calls.append(req.path)
        await res.end(b"served")

    async with stack(handler) as s:
        for address in (s.emulator.url, s.emulator.runtime_api):
            if how == "connect" and address == s.emulator.runtime_api:
                status = 404
            async with connected(address) as conn:
                await conn.send(raw)
                reply = await conn.read_reply(1.5)  # well before the 10 s head timeout
                assert reply.status == status, (address, reply)
                if status == 405:
                    assert reply.header("allow")
                if status != 404:
                    assert await conn.at_eof(2)
        after = await request(s.url, path="/after")
    assert calls == ["/after"]
    assert after.body == b"served"


@pytest.mark.parametrize(
    ("host", "served"),
    [(b"x", True), (b"", True), (b"127.0.0.1:9000", True), (b"[::1]:9000", True),
     (b"a-b.example.com:", True), (b"%41.example", True)],
)  # fmt: skip
async def test_valid_host_values_are_served(host: bytes, served: bool) -> None:
    async def handler(event: dict[str, Any], context: object) -> str:
        return str(event["headers"].get("host"))

    async with stack(handler) as s, connected(s.url) as conn:
        await conn.send(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        reply = await conn.read_reply()
    assert reply.status == 200
    assert reply.json() == host.decode()


@pytest.mark.parametrize("mode", ["duplex", "lambda"])
async def test_utf8_header_values_reach_the_function_as_sent(mode: str) -> None:
    """``café`` sent as UTF-8 reached the function as ``cafÃ©`` (the bytes read as Latin-1).
    Valid UTF-8 is decoded as UTF-8; other bytes stay Latin-1 (``caf\\xe9`` is ``café`` too)."""

    async def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        headers = event["headers"]
        return {
            "utf8": headers["x-utf8"],
            "latin1": headers["x-latin1"],
            "cookies": event.get("cookies"),
            "userAgent": event["requestContext"]["http"]["userAgent"],
        }

    async with stack(handler, mode=mode) as s, connected(s.url) as conn:
        await conn.send(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Utf8: caf\xc3\xa9 \xe2\x98\x83\r\n"
            b"X-Latin1: caf\xe9\r\nCookie: name=\xc3\xa9t\xc3\xa9\r\n"
            b"User-Agent: na\xc3\xafve/1.0\r\n\r\n"
        )
        reply = await conn.read_reply()
    assert reply.json() == {
        "utf8": "caf\u00e9 \u2603",
        "latin1": "caf\u00e9",
        "cookies": ["name=\u00e9t\u00e9"],
        "userAgent": "na\u00efve/1.0",
    }


# --- item 10: an event lambda mode serves, duplex mode serves too -----------------------------

BIG_HEADS = {
    # The User-Agent appears twice in the event: 80 KB of JSON from a 40 KB head.
    "40KB-user-agent": [("User-Agent", "u" * 40_000)],
    # Near the 64 KiB head cap, made to grow in JSON: the Host four times (headers, domainName,
    # apiId, domainPrefix), quotes escaped to two bytes, the User-Agent twice.
    "largest-head": [("Host", "h" * 20_000), ("User-Agent", '"' * 20_000), ("X-Q", '"' * 15_000)],
}


@pytest.mark.parametrize("style", ["duplex", "buffered"])
@pytest.mark.parametrize("mode", ["duplex", "lambda"])
@pytest.mark.parametrize("how", list(BIG_HEADS))
async def test_event_over_64KiB_is_served_the_same_in_both_modes(
    how: str, mode: str, style: str
) -> None:
    """The request-stream wire capped its event JSON at the response prelude's 64 KiB: a
    40 KB User-Agent was a 502 in duplex mode that lambda mode served. Its cap is now the
    event cap of lambda mode (6 MiB + 100 B), which any head the emulator accepts fits in."""

    async def duplex(req: Request, res: Response) -> None:
        assert isinstance(req.event, dict)
        await res.end(b"%d %s" % (len(req.event["headers"]["user-agent"]), await req.read()))

    def buffered(event: dict[str, Any], context: object) -> str:
        return f"{len(event['headers']['user-agent'])} {event.get('body')}"

    headers = BIG_HEADS[how]
    host = [] if any(name == "Host" for name, _ in headers) else [("Host", "x")]
    lines = [b"POST /" + b"p" * 10_000 + b" HTTP/1.1", b"Content-Length: 4"]
    lines += [f"{name}: {value}".encode() for name, value in host + headers]
    handler = duplex if style == "duplex" else buffered
    async with stack(handler, mode=mode) as s, connected(s.url) as conn:
        await conn.send(b"\r\n".join(lines) + b"\r\n\r\nbody")
        reply = await conn.read_reply()
    size = len(dict(headers)["User-Agent"])
    assert reply.status == 200, reply.body[:300]
    assert reply.body in (b"%d body" % size, b'"%d body"' % size)


# --- item 11: the upload phase is bounded; a closing error says so ----------------------------

CAP = 6 * 1024 * 1024 + 100


async def _trickle(conn: Conn, count: int, every: float) -> None:
    """Send ``count`` body bytes one at a time (stops quietly once the server has closed)."""
    for _ in range(count):
        if conn.writer.is_closing() or conn.writer.transport.is_closing():
            return  # the server closed: uvloop raises RuntimeError on a write past that point
        try:
            await conn.send(b"x")
        except ConnectionError:
            return
        await asyncio.sleep(every)


@pytest.mark.parametrize(
    ("mode", "path"),
    [("lambda", "/upload"), ("lambda", INVOKE), ("duplex", INVOKE)],
    ids=["url-lambda", "invoke-lambda", "invoke-duplex"],
)
async def test_trickled_upload_is_cut_with_a_408_at_the_timeout(
    mode: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body read whole before the function runs (lambda-mode URL, Invoke API) arrived at
    1 byte/s without end: the upload phase is bounded by the function's timeout, then 408,
    ``Connection: close``, and the connection closes (after a bounded linger)."""
    monkeypatch.setattr(http_server, "LINGER_SECONDS", 0.3)
    calls: list[str] = []

    async def handler(req: Request, res: Response) -> None:
        calls.append(req.path)
        await res.end(b"served")

    async with stack(handler, mode=mode, timeout=0.5) as s, connected(s.url) as conn:
        await conn.send(request_bytes("POST", path, [("Content-Length", "1000")]))
        trickling = asyncio.ensure_future(_trickle(conn, 100, 0.05))
        began = asyncio.get_running_loop().time()
        try:
            reply = await conn.read_reply(3)
            took = asyncio.get_running_loop().time() - began
            assert await conn.at_eof(3)
        finally:
            await trickling
    assert reply.status == 408, reply
    assert reply.header("connection") == "close"
    assert 0.4 < took < 2.0
    assert calls == []


@pytest.mark.parametrize(("mode", "path"), [("lambda", "/upload"), ("duplex", INVOKE)])
async def test_413_says_connection_close_before_it_closes(mode: str, path: str) -> None:
    """A 413 was sent as if the connection stayed open, then the server closed it after
    draining the body, dropping a pipelined request the client thought was queued."""
    async with stack(lambda event, context: "ok", mode=mode) as s, connected(s.url) as conn:
        body = b"x" * (CAP + 1)
        await conn.send(request_bytes("POST", path, body=body) + request_bytes("GET", "/next"))
        reply = await conn.read_reply()
        assert await conn.at_eof(5)
    assert reply.status == 413
    assert reply.header("connection") == "close"


@pytest.mark.parametrize("mode", ["duplex", "lambda"])
async def test_malformed_upload_400_says_connection_close(mode: str) -> None:
    async with stack(lambda event, context: "ok", mode=mode) as s, connected(s.url) as conn:
        await conn.send(request_bytes("POST", "/up", CHUNKED_UPLOAD) + b"+3\r\nabc\r\n")
        reply = await conn.read_reply()
        assert await conn.at_eof(5)
    assert reply.status == 400
    assert reply.header("connection") == "close"
