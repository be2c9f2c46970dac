"""The function-URL front, from a raw HTTP client over a socket, with a raw-socket runtime."""

from __future__ import annotations

import asyncio
import base64
import socket

import msgspec
import pytest

from duplexlambda.emulator import Emulator
from duplexlambda.protocol.chunked import ChunkDecoder

from ..support.wire import (
    API,
    NUL8,
    Conn,
    call,
    chunk,
    next_invocation,
    open_stream,
    post_response,
    prelude,
    request_bytes,
    running,
)

LIMIT = 6 * 1024 * 1024 + 100
#: The caller's 413 body, whichever way the upload was buffered (the front, or a /next
#: runtime that did not ask for the request stream): the Invoke API's words.
TOO_LARGE = {
    "errorMessage": f"Request must be smaller than {LIMIT} bytes for the InvokeFunction operation",
    "errorType": "RequestTooLargeException",
}


def event_of(body: bytes) -> dict[str, object]:
    value = msgspec.json.decode(body)
    assert isinstance(value, dict)
    return value


async def stream_reply(
    emu: Emulator, request_id: str, pieces: list[bytes], content_type: str = "text/plain"
) -> None:
    conn = await open_stream(emu.runtime_api, request_id, content_type)
    await conn.send(b"".join(chunk(p) for p in pieces) + b"0\r\n\r\n")
    assert (await conn.read_reply()).status == 202
    await conn.close()


@pytest.mark.asyncio
async def test_each_runtime_chunk_reaches_the_client_before_the_next_is_sent() -> None:
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(request_bytes("GET", "/stream"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id)
        await runtime.send(chunk(prelude(200, {"content-type": "text/plain"})) + chunk(NUL8))
        head = await client.read_head()
        assert head.status == 200
        pieces = client.body_pieces(head)
        for word in (b"one", b"two", b"three"):
            # Lockstep: the next chunk is written only once the client has read this one,
            # so a server that held chunks back would make this time out.
            await runtime.send(chunk(word))
            assert await asyncio.wait_for(pieces.__anext__(), 2) == word
        await runtime.send(b"0\r\n\r\n")
        assert (await runtime.read_reply()).status == 202
        assert [p async for p in pieces] == []
        await runtime.close()
        await client.close()


@pytest.mark.asyncio
async def test_duplex_response_bytes_reach_the_client_before_the_upload_ends() -> None:
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(
            request_bytes(
                "PUT",
                "/echo?x=1",
                [("Transfer-Encoding", "chunked"), ("Content-Type", "application/octet-stream")],
            )
            + chunk(b"first")
        )
        nxt = await next_invocation(emu.runtime_api, stream=True, read_body=False)
        assert nxt.header("Content-Type") == "application/vnd.duplexlambda.http-request-stream"
        assert nxt.header("Transfer-Encoding") == "chunked"
        upload = nxt.conn.body_pieces(nxt.head)
        event = event_of(await upload.__anext__())
        assert await upload.__anext__() == NUL8  # a chunk of its own
        assert "body" not in event
        assert "isBase64Encoded" not in event
        assert event["rawPath"] == "/echo"
        assert event["rawQueryString"] == "x=1"
        assert await upload.__anext__() == b"first"

        runtime = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await runtime.send(chunk(b"got first"))
        head = await client.read_head()
        reply = client.body_pieces(head)
        assert await asyncio.wait_for(reply.__anext__(), 2) == b"got first"

        await client.send(chunk(b"second") + b"0\r\n\r\n")  # the upload ends only now
        assert await upload.__anext__() == b"second"
        assert [p async for p in upload] == []
        await nxt.conn.close()
        await runtime.send(chunk(b"got second") + b"0\r\n\r\n")
        assert (await runtime.read_reply()).status == 202
        assert [p async for p in reply] == [b"got second"]
        await runtime.close()
        await client.close()


@pytest.mark.asyncio
async def test_request_stream_wire_bytes() -> None:
    """JSON chunk, then an 8-NUL chunk, then the upload, then 0 CRLF CRLF (docs/runtime-api.md
    §11.2)."""
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "POST", "/up", body=b"abc"))
        nxt = await next_invocation(emu.runtime_api, stream=True, read_body=False)
        raw = b""
        while not raw.endswith(b"0\r\n\r\n"):
            raw += await nxt.conn._recv(5)
        size_line, rest = raw.split(b"\r\n", 1)
        size = int(size_line, 16)
        event_of(rest[:size])
        assert rest[size:] == b"\r\n8\r\n" + NUL8 + b"\r\n3\r\nabc\r\n0\r\n\r\n"
        await nxt.conn.close()
        await stream_reply(emu, nxt.request_id, [b"ok"])
        assert (await client).body == b"ok"


@pytest.mark.asyncio
async def test_client_hanging_up_mid_upload_truncates_the_runtimes_request() -> None:
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(
            request_bytes("POST", "/", [("Content-Length", "100")]) + b"only 20 bytes here.."
        )
        nxt = await next_invocation(emu.runtime_api, stream=True, read_body=False)
        await client.close()
        decoder = ChunkDecoder()
        data = b""
        while True:
            more = await nxt.conn._recv(5)
            if not more:
                break
            data += b"".join(bytes(p) for p in decoder.feed(more))
        assert data.endswith(b"only 20 bytes here..")
        assert not decoder.done  # no last-chunk: the runtime sees a truncated request
        await nxt.conn.close()


@pytest.mark.asyncio
async def test_duplex_client_hanging_up_cuts_the_runtimes_response() -> None:
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(request_bytes("GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await runtime.send(chunk(b"hello"))
        await client.read_head()
        await client.close()
        for _ in range(50):  # the emulator notices on its next write to the client at the latest
            await runtime.send(chunk(b"more"))
            await asyncio.sleep(0.02)
            if runtime.reader.at_eof():
                break
        assert await runtime.at_eof(2)
        await runtime.close()
        record = await asyncio.wait_for(emu.records.get(), 5)
        assert record.truncated or record.status == 200


@pytest.mark.asyncio
async def test_lambda_mode_keeps_consuming_after_the_client_left() -> None:
    async with running(mode="lambda") as emu:
        client = await Conn.open(emu.url)
        await client.send(request_bytes("GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await runtime.send(chunk(b"hello"))
        await client.read_head()
        await client.close()
        for _ in range(5):
            await runtime.send(chunk(b"more"))
            await asyncio.sleep(0.02)
        await runtime.send(b"0\r\n\r\n")
        assert (
            await runtime.read_reply()
        ).status == 202  # docs/runtime-api.md P14: AWS keeps running
        await runtime.close()


@pytest.mark.asyncio
async def test_error_before_any_byte_is_502_with_the_error_json() -> None:
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        error = b'{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}'
        await call(emu.runtime_api, "POST", f"{API}/invocation/{nxt.request_id}/error", body=error)
        reply = await client
        assert (reply.status, reply.header("Content-Type"), reply.body) == (
            502,
            "application/json",
            error,
        )
        # Node style: a streaming POST with an empty body and error trailers (3.3.4).
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id)
        await runtime.send(
            b"0\r\nLambda-Runtime-Function-Error-Type: Error\r\n"
            b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(error) + b"\r\n\r\n"
        )
        assert (await runtime.read_reply()).status == 202
        await runtime.close()
        assert (await client).status == 502


@pytest.mark.asyncio
async def test_timeout_is_504_before_any_byte_and_truncation_after() -> None:
    async with running(timeout=0.3) as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        reply = await client
        assert reply.status == 504
        assert event_of(reply.body)["errorType"] == "Sandbox.Timeout"

        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await runtime.send(chunk(b"started"))
        reply = await client
        assert (reply.status, reply.body, reply.truncated) == (200, b"started", True)
        assert await runtime.at_eof(5)
        await runtime.close()


@pytest.mark.asyncio
async def test_no_runtime_within_the_timeout_is_504() -> None:
    async with running(timeout=0.2) as emu:
        reply = await call(emu.url, "GET", "/")
        assert reply.status == 504


@pytest.mark.asyncio
async def test_lambda_mode_413_above_the_cap() -> None:
    async with running(mode="lambda") as emu:
        # Declared too large with Expect: refused before a byte of the body is sent.
        conn = await Conn.open(emu.url)
        await conn.send(
            request_bytes(
                "POST", "/", [("Content-Length", str(LIMIT + 1)), ("Expect", "100-continue")]
            )
        )
        reply = await conn.read_reply()
        assert reply.status == 413
        await conn.close()
        # Chunked, no length: read up to the cap, then refused.
        conn = await Conn.open(emu.url)
        await conn.send(request_bytes("POST", "/", [("Transfer-Encoding", "chunked")]))
        piece = chunk(b"z" * 65536)
        for _ in range(LIMIT // 65536 + 2):
            await conn.send(piece)
        await conn.send(b"0\r\n\r\n")
        reply = await conn.read_reply()
        assert reply.status == 413
        assert event_of(reply.body) == TOO_LARGE
        await conn.close()
        record = await asyncio.wait_for(emu.records.get(), 5)
        assert record.status == 413


@pytest.mark.asyncio
async def test_duplex_runtime_without_stream_accept_gets_the_buffered_event_with_a_cap() -> None:
    async with running() as emu:
        client = asyncio.ensure_future(
            call(emu.url, "POST", "/p", [("Content-Type", "text/plain")], b"hi there")
        )
        nxt = await next_invocation(emu.runtime_api)  # no Accept: like awslambdaric
        assert nxt.header("Content-Type") == "application/json"
        event = event_of(nxt.body)
        assert (event["body"], event["isBase64Encoded"]) == ("hi there", False)
        await post_response(emu.runtime_api, nxt.request_id, b'{"statusCode":201,"body":"x"}')
        reply = await client
        assert (reply.status, reply.body) == (201, b"x")

        waiting = asyncio.ensure_future(next_invocation(emu.runtime_api))
        big = b"a" * (LIMIT + 1)
        reply = await call(emu.url, "POST", "/", [("Content-Type", "text/plain")], big)
        assert (reply.status, event_of(reply.body)) == (413, TOO_LARGE)
        assert not waiting.done()  # the runtime never saw that request
        client = asyncio.ensure_future(call(emu.url, "GET", "/after"))
        nxt = await waiting
        assert event_of(nxt.body)["rawPath"] == "/after"
        await post_response(emu.runtime_api, nxt.request_id, b'"ok"')
        assert (await client).body == b'"ok"'


@pytest.mark.asyncio
async def test_lambda_mode_event_payload_format_2() -> None:
    async with running(mode="lambda") as emu:
        binary = bytes(range(256))
        client = asyncio.ensure_future(
            call(
                emu.url,
                "POST",
                "/a/b?x=1&y=2&x=3&empty=",
                [
                    ("Content-Type", "application/octet-stream"),
                    ("Cookie", "c1=v1; c2=v2"),
                    ("X-Multi", "one"),
                    ("x-multi", "two"),
                    ("User-Agent", "tester/1"),
                ],
                binary,
            )
        )
        nxt = await next_invocation(emu.runtime_api, stream=True)  # lambda mode: never a stream
        assert nxt.header("Content-Type") == "application/json"
        event = event_of(nxt.body)
        assert event["version"] == "2.0"
        assert event["routeKey"] == "$default"
        assert event["rawPath"] == "/a/b"
        assert event["rawQueryString"] == "x=1&y=2&x=3&empty="
        assert event["queryStringParameters"] == {"x": "1,3", "y": "2", "empty": ""}
        assert event["cookies"] == ["c1=v1", "c2=v2"]
        headers = event["headers"]
        assert isinstance(headers, dict)
        assert headers["x-multi"] == "one,two"
        assert "cookie" not in headers
        assert all(name == name.lower() for name in headers)
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(str(event["body"])) == binary
        context = event["requestContext"]
        assert isinstance(context, dict)
        http = context["http"]
        assert isinstance(http, dict)
        assert http["method"] == "POST"
        assert http["sourceIp"] == "127.0.0.1"
        assert http["userAgent"] == "tester/1"
        assert isinstance(context["timeEpoch"], int)
        assert context["timeEpoch"] > 1_600_000_000_000  # milliseconds
        await post_response(emu.runtime_api, nxt.request_id, b'{"plain": "json"}')
        reply = await client
        assert (reply.status, reply.header("Content-Type"), reply.body) == (
            200,
            "application/json",
            b'{"plain": "json"}',
        )

        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        event = event_of((await next_invocation(emu.runtime_api)).body)
        assert event["rawQueryString"] == ""
        assert "queryStringParameters" not in event
        assert "cookies" not in event
        assert "body" not in event
        assert event["isBase64Encoded"] is False
        client.cancel()
        await asyncio.gather(client, return_exceptions=True)


@pytest.mark.asyncio
async def test_buffered_result_object_mapping() -> None:
    async with running(mode="lambda") as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        result = {
            "statusCode": 418,
            "headers": {"X-One": "1", "Content-Length": "99"},
            "cookies": ["a=1", "b=2; Secure"],
            "body": base64.b64encode(b"\x00\xff").decode(),
            "isBase64Encoded": True,
        }
        await post_response(emu.runtime_api, nxt.request_id, msgspec.json.encode(result))
        reply = await client
        assert reply.status == 418
        assert reply.body == b"\x00\xff"
        assert reply.header("X-One") == "1"
        assert reply.header("x-amzn-remapped-content-length") == "99"
        assert reply.headers.get_all("set-cookie") == [b"a=1", b"b=2; Secure"]
        assert reply.header("x-amzn-RequestId") == nxt.request_id


@pytest.mark.asyncio
async def test_prelude_status_headers_cookies_and_arrays() -> None:
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        meta = prelude(
            202,
            {"content-type": "text/csv", "x-many": ["a", "b"], "content-length": "5"},
            cookies=["s=1; HttpOnly", "t=2"],
        )
        runtime = await open_stream(emu.runtime_api, nxt.request_id)
        # The prelude split at awkward places: inside the JSON, and inside the NUL run.
        await runtime.send(chunk(meta[:10]))
        await runtime.send(chunk(meta[10:] + b"\x00\x00\x00"))
        await runtime.send(chunk(b"\x00\x00\x00\x00\x00a,b\n"))
        await runtime.send(b"0\r\n\r\n")
        assert (await runtime.read_reply()).status == 202
        await runtime.close()
        reply = await client
        assert reply.status == 202
        assert reply.header("Content-Type") == "text/csv"
        assert reply.headers.get_all("x-many") == [b"a", b"b"]
        assert reply.headers.get_all("Set-Cookie") == [b"s=1; HttpOnly", b"t=2"]
        assert reply.header("x-amzn-remapped-content-length") == "5"
        assert reply.header("Transfer-Encoding") == "chunked"
        assert reply.body == b"a,b\n"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "bad",
    [b"not json", b"[1,2]", b'{"statusCode": 99}', b'{"headers": {"x": "a\\r\\nb"}}'],
    ids=["not-json", "not-object", "bad-status", "header-injection"],
)
async def test_bad_prelude_is_502(bad: bytes) -> None:
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id)
        await runtime.send(chunk(bad) + chunk(NUL8) + chunk(b"body"))
        reply = await client
        assert reply.status == 502
        assert event_of(reply.body)["errorType"] == "Runtime.InvalidResponse"
        await runtime.close()


@pytest.mark.asyncio
async def test_prelude_never_written_is_a_plain_200() -> None:
    """Node's pitfall (docs/runtime-api.md P1): the content type announces a prelude, the body is
    empty."""
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        await stream_reply(
            emu, nxt.request_id, [], "application/vnd.awslambda.http-integration-response"
        )
        reply = await client
        assert (reply.status, reply.body) == (200, b"")


@pytest.mark.asyncio
async def test_plain_stream_keeps_the_runtimes_content_type() -> None:
    async with running() as emu:
        client = asyncio.ensure_future(call(emu.url, "GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        await stream_reply(emu, nxt.request_id, [b"a", b"b"], "application/x-ndjson")
        reply = await client
        assert (reply.status, reply.header("Content-Type"), reply.body) == (
            200,
            "application/x-ndjson",
            b"ab",
        )


@pytest.mark.asyncio
async def test_function_url_sockets_are_tcp_nodelay() -> None:
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(request_bytes("GET", "/"))
        await asyncio.sleep(0.05)
        conns = list(emu._front.connections)
        assert conns
        for conn in conns:
            sock = conn._transport.get_extra_info("socket") if conn._transport else None
            assert sock is not None
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await client.close()


@pytest.mark.asyncio
async def test_throttle_streams_6_mib_then_2_mib_per_second() -> None:
    block = b"t" * (256 * 1024)
    count = 28  # 7 MiB
    async with running(throttle=True) as emu:
        client = await Conn.open(emu.url)
        await client.send(request_bytes("GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id, "application/octet-stream")
        loop = asyncio.get_running_loop()

        async def receive() -> list[tuple[float, int]]:
            head = await client.read_head()
            arrivals, total = [], 0
            async for piece in client.body_pieces(head, 10):
                total += len(piece)
                arrivals.append((loop.time(), total))
                if total == count * len(block):
                    break
            return arrivals

        arrivals, _ = await asyncio.gather(
            receive(), runtime.send(b"".join(chunk(block) for _ in range(count)))
        )
        burst_done = next(t for t, n in arrivals if n >= 6 * 1024 * 1024)
        # The 7th MiB comes at 2 MiB/s: about half a second after the 6 MiB burst.
        assert arrivals[-1][0] - burst_done >= 0.35
        await runtime.send(b"0\r\n\r\n")
        assert (await runtime.read_reply()).status == 202
        await runtime.close()
        await client.close()


@pytest.mark.asyncio
async def test_duplex_request_whose_client_left_while_queued_is_cut_at_its_first_write() -> None:
    """An EOF after a whole request may be a half-close, which is answered (#13 item 8): a
    client that closed while its request was queued cannot be told from one, so the request
    still reaches the runtime. Its first write to the gone client fails, and the runtime's
    stream is then cut (duplex mode), so the next request is served."""
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(request_bytes("GET", "/gone"))
        await asyncio.sleep(0.05)
        await client.close()
        nxt = await next_invocation(emu.runtime_api)
        assert event_of(nxt.body)["rawPath"] == "/gone"
        runtime = await open_stream(emu.runtime_api, nxt.request_id)
        await runtime.send(chunk(prelude(200)) + chunk(NUL8))
        for _ in range(200):  # bounded: the emulator cuts the stream within a few writes
            try:
                await runtime.send(chunk(b"to nobody"))
            except ConnectionError:
                break
            if runtime.reader.at_eof():
                break
            await asyncio.sleep(0.01)
        assert await runtime.at_eof(5)
        await runtime.close()
        record = await asyncio.wait_for(emu.records.get(), 5)
        assert record.truncated
        later = asyncio.ensure_future(call(emu.url, "GET", "/later"))
        nxt = await next_invocation(emu.runtime_api)
        assert event_of(nxt.body)["rawPath"] == "/later"
        await post_response(emu.runtime_api, nxt.request_id, b'"ok"')
        assert (await later).body == b'"ok"'


@pytest.mark.asyncio
async def test_an_event_buffered_for_a_runtime_that_left_reaches_the_next_one_whole() -> None:
    """The upload is read once: if the runtime it was buffered for has gone, the invocation
    goes back in the queue with its event, body and all (not with an upload now drained)."""
    async with running() as emu:
        first = await Conn.open(emu.runtime_api)
        await first.send(request_bytes("GET", f"{API}/invocation/next"))  # no Accept
        client = await Conn.open(emu.url)
        head = [("Content-Type", "text/plain"), ("Content-Length", "10")]
        await client.send(request_bytes("POST", "/up", [*head, ("Expect", "100-continue")]))
        # 100 Continue: the emulator has started reading the upload into the event.
        assert (await client.read_head()).status == 100
        await client.send(b"hello")
        await first.close()  # the runtime leaves while its event is being buffered
        await asyncio.sleep(0.2)
        await client.send(b"world")
        nxt = await next_invocation(emu.runtime_api)
        assert event_of(nxt.body)["body"] == "helloworld"
        await post_response(emu.runtime_api, nxt.request_id, b'"ok"')
        assert (await client.read_reply()).body == b'"ok"'
        await client.close()


@pytest.mark.asyncio
async def test_chunks_that_arrive_together_stay_one_client_chunk_each() -> None:
    # The relay takes every piece of one read at once and the connection sends them in one
    # writev: still one chunk per runtime chunk, framed as such, and a 64 KiB one intact.
    big = bytes(range(256)) * 256
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(request_bytes("GET", "/"))
        nxt = await next_invocation(emu.runtime_api)
        runtime = await open_stream(emu.runtime_api, nxt.request_id, "text/plain")
        await runtime.send(chunk(b"one") + chunk(b"two") + chunk(big) + chunk(b"three"))
        head = await client.read_head()
        assert head.status == 200
        raw = b""
        expected = b"3\r\none\r\n3\r\ntwo\r\n10000\r\n" + big + b"\r\n5\r\nthree\r\n"
        while len(raw) < len(expected):
            data = await client._recv(5)
            assert data, raw
            raw += data
        assert raw == expected  # nothing more: the end has not been sent yet
        await runtime.send(b"0\r\n\r\n")
        assert (await runtime.read_reply(method=b"POST")).status == 202
        tail = b""
        while not tail.endswith(b"0\r\n\r\n"):
            data = await client._recv(5)
            assert data, tail
            tail += data
        assert tail == b"0\r\n\r\n"
        await runtime.close()
        await client.close()
