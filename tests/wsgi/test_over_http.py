"""A Flask app end to end on real sockets: an HTTP client, the emulator's function URL (duplex
mode), its Runtime API, the runtime and the WSGI bridge, all in one process so that the
client's and the app's timestamps compare (the app stamps them in its worker thread)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator

import pytest

from duplexlambda.wsgi import wsgi

from ..support.emulated import cut, paced, record_of, stack
from ..support.wire import call, request
from .apps import Journal, flask_app, multipart

pytestmark = pytest.mark.asyncio


@pytest.fixture
def journal() -> Journal:
    return Journal()


async def test_generator_items_arrive_as_separate_chunks(journal: Journal) -> None:
    async with stack(wsgi(flask_app(journal, tick=0.1))) as fn:
        reply = await request(fn.url, "GET", "/stream?n=5")
    assert reply.status == 200
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert reply.header("content-length") is None
    assert [c for _, c in reply.chunks] == [b"tick %d\n" % i for i in range(5)]
    assert reply.complete
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(reply.chunks)]
    assert all(gap > 0.07 for gap in gaps), gaps
    yields = [t for t, _ in journal.named("yield")]
    lags = [at - yielded for (at, _), yielded in zip(reply.chunks, yields, strict=True)]
    print(
        f"over HTTP: gaps {[round(g * 1000) for g in gaps]} ms, lags "
        f"{[round(g * 1000, 1) for g in lags]} ms"
    )
    assert max(lags) < 0.05, lags  # each item reached the client as it was yielded


async def test_app_reads_the_upload_while_it_is_sent(journal: Journal) -> None:
    upload_done: list[float] = []

    async def upload() -> AsyncIterator[bytes]:
        async for piece in paced([b"x" * 64 * 1024] * 5, 0.15):
            yield piece
        upload_done.append(time.monotonic())

    async with stack(wsgi(flask_app(journal))) as fn:
        reply = await request(fn.url, "POST", "/upload", body=upload())
    assert reply.status == 200
    assert json.loads(reply.body) == {"pieces": 5, "bytes": 5 * 65536}
    pieces = journal.named("piece")
    # request.stream gave the app its first 64 KiB ~0.6 s before the client was done.
    assert upload_done[0] - pieces[0][0] > 0.45, (upload_done, pieces)
    assert pieces[-1][0] > pieces[0][0] + 0.45  # and the rest as they came


async def test_upload_answered_while_it_is_sent(journal: Journal) -> None:
    lines = [b"alpha\n", b"beta\n", b"gamma\n", b"delta\n"]
    async with stack(wsgi(flask_app(journal))) as fn:
        reply = await request(
            fn.url, "POST", "/echo-lines", body=paced(lines, 0.15, pause_after_last=True)
        )
    assert reply.body == b"ALPHA\nBETA\nGAMMA\nDELTA\n"
    assert reply.complete
    # The first line came back ~0.6 s before the upload ended (4 pieces, 0.15 s apart, then
    # a 0.15 s pause): the answer was streaming while the client still sent.
    first = reply.chunks[0][0] - reply.started
    print(f"over HTTP: first answer {first:.3f} s after the request started")
    assert first < 0.2
    assert reply.chunks[-1][0] - reply.chunks[0][0] > 0.4


async def test_multipart_form_streamed_in(journal: Journal) -> None:
    content = bytes(range(256)) * 1024
    ctype, body = multipart({"title": "report"}, {"data": ("data.bin", content)})
    async with stack(wsgi(flask_app(journal))) as fn:
        reply = await request(
            fn.url, "POST", "/form", headers=[("Content-Type", ctype)],
            body=paced(cut(body, 64 * 1024), 0.02),
        )  # fmt: skip
        whole = await request(fn.url, "POST", "/form", headers=[("Content-Type", ctype)], body=body)
    assert reply.status == 200, reply.body
    got = reply.json()
    assert isinstance(got, dict)
    assert got["form"] == [["title", "report"]]
    assert got["files"]["data"]["size"] == len(content)
    assert whole.json() == got


async def test_cookies_redirects_and_json(journal: Journal) -> None:
    async with stack(wsgi(flask_app(journal))) as fn:
        cookies = await request(fn.url, "GET", "/cookies")
        who = await request(fn.url, "GET", "/whoami", headers=[("Cookie", "sid=42; theme=dark")])
        moved = await request(fn.url, "GET", "/moved")
        posted = await request(
            fn.url, "POST", "/json", headers=[("Content-Type", "application/json")],
            body=b'{"n": [1, 2]}',
        )  # fmt: skip
        query = await request(fn.url, "GET", "/query/caf%C3%A9?a=1&a=%202")
        host = fn.url.split("//")[1].strip("/")
    assert cookies.status == 201
    assert sorted(cookies.header_all("set-cookie")) == [
        "sid=42; HttpOnly; Path=/",
        "theme=dark; Path=/",
    ]
    assert who.json() == {
        "cookies": {"sid": "42", "theme": "dark"},
        "scheme": "http",  # the emulator's x-forwarded-proto
        "host": host,
    }
    assert (moved.status, moved.header("location"), moved.body) == (302, "/elsewhere?x=1", b"")
    assert posted.json() == {"got": {"n": [1, 2]}, "type": "application/json"}
    got = query.json()
    assert isinstance(got, dict)
    assert (got["path"], got["args"], got["raw"]) == (
        "/query/café",
        [["a", "1"], ["a", " 2"]],
        "a=1&a=%202",
    )


async def test_errors_reach_http_clients(journal: Journal) -> None:
    async with stack(wsgi(flask_app(journal))) as fn:
        missing = await request(fn.url, "GET", "/nowhere")
        boom = await request(fn.url, "GET", "/boom")
        midway = await call(fn.url, "GET", "/boom-midway")
        record = await record_of(fn, midway.header("x-amzn-requestid"))
    assert (missing.status, missing.complete) == (404, True)
    assert (boom.status, boom.complete) == (500, True)
    assert b"Internal Server Error" in boom.body
    assert midway.status == 200
    assert midway.body == b"first part;second part;"
    assert not midway.complete  # the function URL cut it: no terminating chunk
    assert record.error_type == "ValueError"
    assert record.truncated


async def test_client_hang_up_stops_the_generator(journal: Journal) -> None:
    async with stack(wsgi(flask_app(journal))) as fn:
        host, port = fn.url.split("//")[1].strip("/").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"watching 1\n")
        writer.close()
        await writer.wait_closed()
        left = time.monotonic()
        closed, _ = await journal.wait_for("closed")
        assert journal.named("generator exit")
        print(f"over HTTP: generator closed {closed - left:.3f} s after the hang-up")
        assert closed - left < 0.5
        after = await request(fn.url, "GET", "/")
    assert json.loads(after.body) == {"hello": "world", "method": "GET"}
