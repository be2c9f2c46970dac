"""The HTTP/1.1 server under both listeners: limits, keep-alive, pipelining, Expect, close."""

from __future__ import annotations

import asyncio
import random

import pytest

from ..support.wire import (
    API,
    Conn,
    call,
    chunk,
    next_invocation,
    post_response,
    request_bytes,
    running,
)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n", 431),
        (b"GET /" + b"u" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ],
    ids=["head-too-large", "too-many-headers", "url-too-long", "garbage", "two-lengths", "gzip"],
)
async def test_bad_heads_get_their_status_and_a_closed_connection(
    raw: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with running() as emu:
        for address in (emu.url, emu.runtime_api):
            conn = await Conn.open(address)
            await conn.send(raw)
            reply = await conn.read_reply()
            assert reply.status == status
            assert await conn.at_eof(5)
            await conn.close()
        assert any(str(status) in r.getMessage() for r in caplog.records)
        # ...and the server is still fine.
        assert (await call(emu.runtime_api, "GET", "/nope")).status == 404


@pytest.mark.asyncio
async def test_keep_alive_and_pipelining() -> None:
    async with running() as emu:
        conn = await Conn.open(emu.runtime_api)
        # Three requests in one write; answers come back in order on the same connection.
        await conn.send(
            request_bytes("GET", "/a")
            + request_bytes("POST", f"{API}/invocation/x/response", body=b"{}")
            + request_bytes("GET", "/c")
        )
        statuses = [(await conn.read_reply()).status for _ in range(3)]
        assert statuses == [404, 400, 404]
        await conn.send(request_bytes("GET", "/d"))
        assert (await conn.read_reply()).status == 404
        await conn.close()


@pytest.mark.asyncio
async def test_runtime_may_reuse_one_connection_for_next_and_response() -> None:
    async with running() as emu:
        caller = asyncio.ensure_future(
            call(emu.url, "POST", "/2015-03-31/functions/f/invocations", body=b"1")
        )
        conn = await Conn.open(emu.runtime_api)
        await conn.send(request_bytes("GET", f"{API}/invocation/next"))
        reply = await conn.read_reply()
        rid = reply.header("Lambda-Runtime-Aws-Request-Id")
        await conn.send(request_bytes("POST", f"{API}/invocation/{rid}/response", body=b"2"))
        assert (await conn.read_reply()).status == 202
        await conn.close()
        assert (await caller).body == b"2"


@pytest.mark.asyncio
async def test_expect_100_continue_is_answered_when_the_body_is_wanted() -> None:
    async with running() as emu:
        caller = asyncio.ensure_future(
            call(emu.url, "POST", "/2015-03-31/functions/f/invocations", body=b"1")
        )
        nxt = await next_invocation(emu.runtime_api)
        conn = await Conn.open(emu.runtime_api)
        await conn.send(
            request_bytes(
                "POST",
                f"{API}/invocation/{nxt.request_id}/response",
                [("Content-Length", "4"), ("Expect", "100-continue")],
            )
        )
        interim = await conn.read_head()
        assert interim.status == 100
        await conn.send(b"done")
        assert (await conn.read_reply()).status == 202
        await conn.close()
        assert (await caller).body == b"done"


@pytest.mark.asyncio
async def test_http_1_0_client_gets_a_close_delimited_body() -> None:
    async with running() as emu:
        client = await Conn.open(emu.url)
        await client.send(b"GET /old HTTP/1.0\r\n\r\n")
        nxt = await next_invocation(emu.runtime_api)
        await post_response(emu.runtime_api, nxt.request_id, b'{"statusCode":200,"body":"x"}')
        reply = await client.read_reply()
        assert (reply.status, reply.body) == (200, b"x")
        assert await client.at_eof(5)
        await client.close()


@pytest.mark.asyncio
async def test_close_with_open_connections_and_waiting_pollers() -> None:
    async with running() as emu:
        poll = await Conn.open(emu.runtime_api)
        await poll.send(request_bytes("GET", f"{API}/invocation/next"))
        client = await Conn.open(emu.url)
        await client.send(
            request_bytes("POST", "/", [("Transfer-Encoding", "chunked")]) + chunk(b"x")
        )
        await asyncio.sleep(0.05)
    # The emulator closed both connections and left no task behind (the fixture checks).
    assert await poll.at_eof(5)
    assert await client.at_eof(5)
    await poll.close()
    await client.close()


@pytest.mark.asyncio
async def test_garbage_never_takes_the_server_down() -> None:
    rng = random.Random(1234)
    heads = [
        b"",
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # a head that never ends
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /2018-06-01/runtime/invocation/next HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
    ]
    async with running() as emu:
        for i in range(24):
            conn = await Conn.open(emu.url if i % 2 else emu.runtime_api)
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
            await conn.send(heads[i % len(heads)] + noise)
            await asyncio.sleep(0.005)
            await conn.close()
        await asyncio.sleep(0.05)
        caller = asyncio.ensure_future(call(emu.url, "GET", "/still-fine"))
        nxt = await next_invocation(emu.runtime_api)
        await post_response(emu.runtime_api, nxt.request_id, b'"yes"')
        assert (await caller).body == b'"yes"'
