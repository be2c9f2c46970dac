"""Starlette and FastAPI apps end to end on real sockets: an HTTP client, the emulator's
function URL (duplex mode), its Runtime API, the runtime and the ASGI bridge, all on one
event loop so that the client's and the app's timestamps compare."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator

import pytest

from duplexlambda.asgi import asgi
from duplexlambda.testing.plugin import EmulatorFactory

from ..support.wire import request
from .apps import Journal, fastapi_app, multipart, recording, starlette_app

pytestmark = pytest.mark.asyncio


class Upload:
    """A request body sent piece by piece with pauses; remembers when it finished."""

    def __init__(self, pieces: list[bytes], gap: float) -> None:
        self.pieces = pieces
        self.gap = gap
        self.finished_at = 0.0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, piece in enumerate(self.pieces):
            if i:
                await asyncio.sleep(self.gap)
            yield piece
        self.finished_at = time.monotonic()


@pytest.fixture
def journal() -> Journal:
    return Journal()


async def test_app_reads_the_upload_while_it_is_sent(
    emulator: EmulatorFactory, journal: Journal
) -> None:
    fn = await emulator(asgi(starlette_app(journal)))
    upload = Upload([b"x" * 64 * 1024] * 5, gap=0.15)
    reply = await request(fn.url, "POST", "/upload", body=upload.__aiter__())
    assert reply.status == 200
    assert json.loads(reply.body) == {"pieces": len(journal.named("piece")), "bytes": 5 * 65536}
    pieces = journal.named("piece")
    # request.stream() gave the app its first bytes ~0.6 s before the client was done.
    assert upload.finished_at - pieces[0][0] > 0.45, (upload.finished_at, pieces)
    assert pieces[-1][0] > pieces[0][0] + 0.45  # and the rest as they came


async def test_upload_answered_while_it_is_sent(
    emulator: EmulatorFactory, journal: Journal
) -> None:
    fn = await emulator(asgi(starlette_app(journal)))
    upload = Upload([b"alpha ", b"beta ", b"gamma ", b"delta"], gap=0.15)
    reply = await request(fn.url, "POST", "/upload-echo", body=upload.__aiter__())
    assert reply.body == b"ALPHA BETA GAMMA DELTA"
    assert reply.complete
    assert upload.finished_at - reply.chunks[0][0] > 0.35  # first answer long before the end


async def test_multipart_upload_is_parsed_as_it_arrives(
    emulator: EmulatorFactory, journal: Journal
) -> None:
    fn = await emulator(asgi(recording(starlette_app(journal), journal)))
    content = hashlib.sha256(b"seed").digest() * 16384  # 512 KiB
    ctype, body = multipart("report", "data.bin", content)
    upload = Upload([body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024)], 0.05)
    reply = await request(
        fn.url, "POST", "/form", headers=[("Content-Type", ctype)], body=upload.__aiter__()
    )
    assert reply.status == 200, reply.body
    assert json.loads(reply.body) == {
        "field": "report",
        "filename": "data.bin",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    received = journal.named("received")
    assert sum(size for _, size in received) == len(body)
    # The form parser was fed while the client was still sending (9 pieces, 0.4 s).
    assert upload.finished_at - received[0][0] > 0.3


async def test_streaming_response_one_chunk_per_message(
    emulator: EmulatorFactory, journal: Journal
) -> None:
    fn = await emulator(asgi(starlette_app(journal, tick=0.1)))
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
    assert max(lags) < 0.05, lags  # each tick reached the client as it was yielded


async def test_server_sent_events(emulator: EmulatorFactory, journal: Journal) -> None:
    fn = await emulator(asgi(fastapi_app(journal)))
    reply = await request(fn.url, "GET", "/events?n=3", headers=[("Accept", "text/event-stream")])
    assert reply.status == 200
    assert (reply.header("content-type") or "").startswith("text/event-stream")
    events = [c for _, c in reply.chunks]
    assert [json.loads(e.split(b"data: ")[1].split(b"\n")[0]) for e in events] == [
        {"i": 0},
        {"i": 1},
        {"i": 2},
    ]
    assert all(e.startswith(b"event: tick\n") and e.endswith(b"\n\n") for e in events)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(reply.chunks)]
    assert all(gap > 0.07 for gap in gaps), gaps


async def test_json_routes_and_cookies(emulator: EmulatorFactory, journal: Journal) -> None:
    fn = await emulator(asgi(fastapi_app(journal)))
    created = await request(
        fn.url,
        "POST",
        "/items",
        headers=[("Content-Type", "application/json")],
        body=json.dumps({"name": "lamp", "price": 12}).encode(),
    )
    assert created.status == 201
    assert json.loads(created.body) == {"id": 1, "name": "lamp", "price": 12.0, "tags": []}
    read = await request(fn.url, "GET", "/items/1")
    assert json.loads(read.body) == {"id": 1, "name": "lamp"}
    star = await emulator(asgi(starlette_app(journal)))
    cookies = await request(star.url, "GET", "/cookies")
    assert cookies.status == 201
    assert sorted(c.split(";")[0] for c in cookies.header_all("set-cookie")) == [
        "sid=42",
        "theme=dark",
    ]


async def test_errors_reach_http_clients(emulator: EmulatorFactory, journal: Journal) -> None:
    fn = await emulator(asgi(starlette_app(journal)))
    boom = await request(fn.url, "GET", "/boom")
    assert (boom.status, boom.body, boom.complete) == (500, b"Internal Server Error", True)
    midway = await request(fn.url, "GET", "/boom-midway")
    assert midway.status == 200
    assert midway.body == b"first part;second part;"
    assert not midway.complete  # the function URL cut it: no terminating chunk
    records = [await asyncio.wait_for(fn.records.get(), 5) for _ in range(2)]
    assert [r.error_type for r in records] == [None, "ValueError"]
    assert records[1].truncated


async def test_lifespan_state_across_invocations(
    emulator: EmulatorFactory, journal: Journal
) -> None:
    fn = await emulator(asgi(starlette_app(journal)))
    assert [n for n, _, _ in journal.events] == ["startup"]
    hits = [json.loads((await request(fn.url, "GET", "/hits")).body) for _ in range(3)]
    assert hits == [{"hits": i, "uses": i} for i in (1, 2, 3)]
    loop = json.loads((await request(fn.url, "GET", "/loop")).body)["loop"]
    assert loop == id(asyncio.get_running_loop())
    await fn.aclose()
    assert [n for n, _, _ in journal.events] == ["startup", "shutdown"]


async def test_background_task_after_the_response(
    emulator: EmulatorFactory, journal: Journal
) -> None:
    fn = await emulator(asgi(fastapi_app(journal, background_delay=0.4)))
    reply = await request(fn.url, "POST", "/jobs")
    answered = reply.chunks[-1][0]
    assert (reply.status, json.loads(reply.body), reply.complete) == (
        202,
        {"status": "queued"},
        True,
    )
    done, _ = await journal.wait_for("background done")
    assert done - answered > 0.3  # the client had its whole answer before the task ended


async def test_client_hang_up_reaches_the_app(emulator: EmulatorFactory, journal: Journal) -> None:
    fn = await emulator(asgi(starlette_app(journal)))
    host, port = fn.url.split("//")[1].strip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"watching\n")
    writer.close()
    await writer.wait_closed()
    left = time.monotonic()
    at, _ = await journal.wait_for("http.disconnect")
    assert at - left < 0.5
    assert (await journal.wait_for("send raised"))[1] == "ClientDisconnected"
    after = await request(fn.url, "GET", "/")
    assert json.loads(after.body) == {"hello": "world", "method": "GET"}
