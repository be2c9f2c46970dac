"""Streamed ``/response`` connections are kept alive, as Node's keep-alive agent keeps them
(docs/runtime-api.md §3.3.2), and only when the stream ended cleanly: a stream that was cut,
refused or never answered closes its connection, so no later invocation inherits it."""

from __future__ import annotations

import asyncio
import time

import pytest

from duplexlambda.protocol.prelude import DELIMITER
from duplexlambda.protocol.runtime_api import RuntimeApiAddress
from duplexlambda.runtime import loop
from duplexlambda.runtime.client import RuntimeApiClient
from duplexlambda.runtime.connection import ClientConnection
from duplexlambda.streams import Request, Response

from ..support.fake_api import FakeRuntimeApi, Invocation, Received
from .test_runtime_wire import running, stream_invocation

pytestmark = pytest.mark.asyncio


def streams(api: FakeRuntimeApi) -> list[Received]:
    return [r for r in api.received if r.header("Lambda-Runtime-Function-Response-Mode")]


async def echo(req: Request, res: Response) -> None:
    await res.write(await req.read())
    await res.end()


async def test_streamed_responses_share_one_connection(api: FakeRuntimeApi) -> None:
    async with running(echo, api):
        for i in range(4):
            inv = api.add(Invocation(body=b"%d" % i))
            assert (await api.result(inv.request_id)).body == b"%d" % i
    assert len(streams(api)) == 4
    assert len({r.connection for r in streams(api)}) == 1
    # A plain event is read whole before the handler runs, so /next and the streams take
    # turns on a single connection.
    assert api.connections == 1


async def test_streams_with_error_trailers_keep_their_connection(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        await res.write(b"partial")
        if await req.read() == b"fail":
            raise ValueError("mid-stream")

    async with running(handler, api):
        failed = api.add(Invocation(body=b"fail"))
        got = await api.result(failed.request_id)
        assert dict(got.trailers)[b"Lambda-Runtime-Function-Error-Type"] == b"ValueError"
        ok = api.add(Invocation(body=b"ok"))
        await api.result(ok.request_id)
    first, second = streams(api)
    assert first.connection == second.connection  # the body ended cleanly, trailers and all


async def test_refused_stream_closes_its_connection(api: FakeRuntimeApi) -> None:
    async with running(echo, api):
        refused = api.add(Invocation(body=b"big"))
        api.status_for[refused.request_id] = (413, b'{"errorType":"RequestEntityTooLarge"}')
        await api.result(refused.request_id)
        ok = api.add(Invocation(body=b"ok"))
        assert (await api.result(ok.request_id)).body == b"ok"
    first, second = streams(api)
    assert first.connection != second.connection


async def test_stalled_stream_closes_its_connection(
    api: FakeRuntimeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API never answers the first stream: the runtime drops it past the deadline, and the
    # next stream must not be written after the unanswered one on the same connection.
    monkeypatch.setattr(loop, "STALL_GRACE", 0.2)
    async with running(echo, api, deadline_margin=0.05):
        stalled = api.add(Invocation(body=b"1", deadline_ms=int(time.time() * 1000) + 300))
        api.never_answer.add(stalled.request_id)
        await asyncio.wait_for(stalled.handed_out.wait(), 5)
        ok = api.add(Invocation(body=b"2"))
        assert (await api.result(ok.request_id)).body == b"2"
    first, second = streams(api)
    assert (first.body, second.body) == (b"1", b"2")
    assert first.connection != second.connection


async def test_cut_stream_is_not_reused(api: FakeRuntimeApi) -> None:
    # The platform cuts the stream mid-body (the caller went away): the runtime gets a new
    # connection for the next one.
    wrote = asyncio.Event()

    async def handler(req: Request, res: Response) -> None:
        await res.write(b"first")
        if await req.read() == b"hold":
            wrote.set()
            await asyncio.sleep(30)

    async with running(handler, api):
        cut = api.add(Invocation(body=b"hold"))
        await asyncio.wait_for(wrote.wait(), 5)
        await asyncio.sleep(0.05)
        for writer in list(api._writers):
            writer.transport.abort()
        ok = api.add(Invocation(body=b"ok"))
        await api.result(ok.request_id)
    first, second = streams(api)
    assert not first.complete
    assert first.path.endswith(f"{cut.request_id}/response")
    assert second.complete
    assert second.connection != first.connection


@pytest.mark.parametrize("upload", [[b"up", b"load"], []], ids=["upload", "no-upload"])
async def test_a_request_stream_read_to_its_end_lends_its_connection(
    api: FakeRuntimeApi, upload: list[bytes]
) -> None:
    # The /next body is handed back once read to its end (or at once when it has no
    # upload), so the response stream and the next poll reuse it: one connection in all.
    async with running(echo, api):
        for _ in range(3):
            inv = api.add(stream_invocation(upload))
            got = await api.result(inv.request_id)
            assert got.body.endswith(b"".join(upload) or DELIMITER)
    assert api.connections == 1


async def test_a_late_read_after_the_end_is_still_the_end(api: FakeRuntimeApi) -> None:
    async def handler(req: Request, res: Response) -> None:
        body = await req.read()
        assert await req.read() == b""
        await res.end(body + await Request(req._source).read())  # a second reader, at the end

    async with running(handler, api):
        inv = api.add(stream_invocation([b"abc"]))
        got = await api.result(inv.request_id)
    assert got.body.endswith(b"abc")


class _Transport:
    def __init__(self) -> None:
        self.sent = b""
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: bytes) -> None:
        self.sent += bytes(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> None:
        return None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass


ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize("answer_first", [False, True])
async def test_an_answer_before_the_end_of_the_body_closes_the_stream(answer_first: bool) -> None:
    # A server that answered before our body ended may not have read all of it: the
    # connection could hold the rest, so it is never pooled.
    transport = _Transport()
    conn = ClientConnection()
    conn.connection_made(transport)  # type: ignore[arg-type]

    async def connector(address: RuntimeApiAddress) -> ClientConnection:
        return conn

    client = RuntimeApiClient(RuntimeApiAddress.parse("127.0.0.1:9001"), connector=connector)
    stream = await client.open_stream("rid", "text/plain")
    if answer_first:
        conn.data_received(ACCEPTED)
    conn.end_request(b"0\r\n\r\n")
    if not answer_first:
        conn.data_received(ACCEPTED)
    await client.finish_stream(stream)
    assert transport.closed is answer_first
    assert (client._idle == [conn]) is not answer_first
