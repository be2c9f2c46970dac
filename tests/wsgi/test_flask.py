"""The WSGI bridge with a real Flask app, driven in-process by ``LambdaClient`` (the real
runtime and the emulator's Runtime API, joined by memory pipes). The app runs in worker
threads; its journal stamps what it did with ``time.monotonic()``, like the client."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest

from duplexlambda.testing import LambdaClient
from duplexlambda.testing.plugin import LambdaClientFactory
from duplexlambda.wsgi import wsgi

from ..support.emulated import paced
from .apps import Journal, flask_app, multipart

pytestmark = pytest.mark.asyncio


@pytest.fixture
def journal() -> Journal:
    return Journal()


# --- routes, queries, bodies, cookies ----------------------------------------------------------


async def test_json_route_head_and_404(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    resp = await client.get("/")
    assert (resp.status, resp.json(), resp.error, resp.complete) == (
        200,
        {"hello": "world", "method": "GET"},
        None,
        True,
    )
    assert resp.headers["content-type"] == "application/json"
    # The function URL frames the body itself: Flask's Content-Length is not passed on.
    assert "content-length" not in resp.headers
    head = await client.head("/")
    assert (head.status, head.body, head.headers["content-type"]) == (
        200,
        b"",
        "application/json",
    )
    missing = await client.get("/nowhere")
    assert missing.status == 404
    assert b"Not Found" in missing.body
    assert missing.error is None


async def test_query_strings_with_repeats_and_encoded_chars(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    resp = await client.get("/query/caf%C3%A9/a%20b?tag=a&tag=b%20c&x=&e=%26%3D%23&u=%C3%BC+v")
    assert resp.json() == {
        "rest": "café/a b",
        "path": "/query/café/a b",
        "args": [["tag", "a"], ["tag", "b c"], ["x", ""], ["e", "&=#"], ["u", "ü v"]],
        "raw": "tag=a&tag=b%20c&x=&e=%26%3D%23&u=%C3%BC+v",  # as sent
        # Werkzeug's request.url is an IRI: safe characters shown decoded.
        "url": "https://testserver.lambda-url.us-east-1.on.aws/query/café/a%20b"
        "?tag=a&tag=b%20c&x=&e=%26%3D%23&u=ü+v",
        "script_root": "",
    }


async def test_script_name(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(flask_app(journal), script_name="/api"))
    resp = await client.get("/api/query/x?y=1")
    assert resp.json()["path"] == "/query/x"
    assert resp.json()["script_root"] == "/api"
    assert resp.json()["url"] == "https://testserver.lambda-url.us-east-1.on.aws/api/query/x?y=1"


async def test_form_bodies(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    urlencoded = await client.post(
        "/form",
        body="name=J%C3%B6rg&tag=a&tag=b+c",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert urlencoded.json() == {
        "form": [["name", "Jörg"], ["tag", "a"], ["tag", "b c"]],
        "files": {},
    }
    content = bytes(range(256)) * 2048  # 512 KiB of binary
    ctype, body = multipart({"title": "holiday"}, {"photo": ("photo.bin", content)})
    pieces = [body[i : i + 128 * 1024] for i in range(0, len(body), 128 * 1024)]
    # Streamed in (no Content-Length): Werkzeug reads it since wsgi.input_terminated is set.
    uploaded = await client.post("/form", body=paced(pieces, 0.02), headers={"content-type": ctype})
    assert uploaded.status == 200, uploaded.body
    assert uploaded.json() == {
        "form": [["title", "holiday"]],
        "files": {
            "photo": {
                "filename": "photo.bin",
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        },
    }
    whole = await client.post("/form", body=body, headers={"content-type": ctype})
    assert whole.json() == uploaded.json()


async def test_json_body(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    resp = await client.post("/json", json={"name": "kettle", "tags": ["tea", "ü"]})
    assert resp.json() == {
        "got": {"name": "kettle", "tags": ["tea", "ü"]},
        "type": "application/json",
    }
    bad = await client.post(
        "/json", body=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status == 400


async def test_binary_form_in_lambda_mode(journal: Journal) -> None:
    # As on AWS: the upload is buffered into the event, base64 since it is binary.
    content = bytes(range(256)) * 512
    ctype, body = multipart({"title": "scan"}, {"scan": ("scan.bin", content)})
    async with LambdaClient(wsgi(flask_app(journal)), mode="lambda") as client:
        resp = await client.post("/form", body=body, headers={"content-type": ctype})
    assert resp.json()["files"]["scan"]["sha256"] == hashlib.sha256(content).hexdigest()


async def test_cookies_set_and_read(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    resp = await client.get("/cookies")
    assert resp.status == 201
    assert sorted(resp.cookies) == ["sid=42; HttpOnly; Path=/", "theme=dark; Path=/"]
    assert resp.headers["vary"] == "Accept, Cookie"  # repeated fields joined
    read = await client.get("/whoami", headers={"Cookie": "sid=42; theme=dark"})
    assert read.json() == {
        "cookies": {"sid": "42", "theme": "dark"},
        "scheme": "https",
        "host": "testserver.lambda-url.us-east-1.on.aws",
    }


async def test_redirects(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    moved = await client.get("/moved")
    assert (moved.status, moved.headers["location"], moved.body, moved.complete) == (
        302,
        "/elsewhere?x=1",
        b"",
        True,
    )
    flask_redirect = await client.get("/redirect")
    assert (flask_redirect.status, flask_redirect.headers["location"]) == (302, "/target")
    assert b"/target" in flask_redirect.body  # Flask's own little page


async def test_flask_500_page(
    lambda_client: LambdaClientFactory, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/boom")
    # Flask caught it and answered its 500 page: the invocation itself succeeded.
    assert (resp.status, resp.error, resp.complete) == (500, None, True)
    assert b"Internal Server Error" in resp.body
    assert any(r.exc_info and "boom in a view" in str(r.exc_info[1]) for r in caplog.records)
    assert (await client.get("/")).status == 200


async def test_environ_seen_by_flask(
    lambda_client: LambdaClientFactory, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    with caplog.at_level(logging.ERROR, logger="duplexlambda.wsgi.errors"):
        resp = await client.get("/environ?a=1", headers=[("X-Repeat", "1"), ("X-Repeat", "2")])
    env = resp.json()
    assert env["REQUEST_METHOD"] == "GET"
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["SCRIPT_NAME"]) == ("/environ", "a=1", "")
    assert env["HTTP_X_REPEAT"] == "1,2"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (
        "testserver.lambda-url.us-east-1.on.aws",
        "443",
    )
    assert env["wsgi.url_scheme"] == "https"
    assert env["wsgi.multithread"] is True
    assert env["has_event"] is True
    assert env["function_name"] == ""
    # wsgi.errors: one ERROR record per line, with the request id like every runtime line.
    lines = [r for r in caplog.records if r.name == "duplexlambda.wsgi.errors"]
    assert [r.getMessage() for r in lines] == ["a line for wsgi.errors", "and half"]


# --- streaming both ways -----------------------------------------------------------------------


async def test_generator_items_arrive_as_separate_chunks_over_time(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(flask_app(journal, tick=0.1)))
    async with client.stream("GET", "/stream?n=5") as resp:
        assert resp.status == 200
        assert resp.headers["content-type"] == "text/plain; charset=utf-8"
        received = [chunk async for chunk in resp]
    assert received == [b"tick %d\n" % i for i in range(5)]  # one chunk per item
    assert resp.complete
    gaps = [b - a for a, b in itertools.pairwise(resp.arrivals)]
    assert all(gap > 0.07 for gap in gaps), gaps  # none held back and merged
    yields = [t for t, _ in journal.named("yield")]
    lags = [arrived - yielded for arrived, yielded in zip(resp.arrivals, yields, strict=True)]
    print(
        f"gaps {[round(g * 1000) for g in gaps]} ms, lags {[round(g * 1000, 1) for g in lags]} ms"
    )
    assert max(lags) < 0.05, lags  # each item reached the client right after its yield


async def test_request_stream_answered_while_the_upload_arrives(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    lines = [b"alpha\n", b"beta\n", b"gamma\n", b"delta\n"]
    async with client.stream(
        "POST", "/echo-lines", body=paced(lines, 0.15, pause_after_last=True)
    ) as resp:
        first = await anext(resp)
        first_at = time.monotonic()
        assert resp.upload_finished_at is None  # the upload is still going on
        rest = [chunk async for chunk in resp]
    assert [first, *rest] == [line.upper() for line in lines]
    assert resp.upload_finished_at is not None
    print(f"first answer {resp.upload_finished_at - first_at:.3f} s before the upload ended")
    assert resp.upload_finished_at - first_at > 0.4  # answered ~0.6 s before the upload ended


async def test_request_stream_read_as_it_arrives(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    pieces = [b"x" * 64 * 1024] * 5
    resp = await client.post("/upload", body=paced(pieces, 0.1, pause_after_last=True))
    assert resp.json() == {"pieces": 5, "bytes": 5 * 64 * 1024}
    stamps = [t for t, _ in journal.named("piece")]
    assert resp.upload_finished_at is not None
    assert resp.upload_finished_at - stamps[0] > 0.35  # the first read long before the end
    assert all(b - a > 0.07 for a, b in itertools.pairwise(stamps))  # each as it came


async def test_echo_with_read1(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    async with client.stream("POST", "/echo", body=paced([b"ab", b"cd", b"ef"], 0.1)) as resp:
        chunks = [chunk async for chunk in resp]
    assert chunks == [b"AB", b"CD", b"EF"]  # read1 hands over each piece as it comes


# --- failures, disconnects, deadlines ----------------------------------------------------------


async def test_exception_in_the_generator_cuts_the_stream(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    resp = await client.get("/boom-midway")
    assert resp.status == 200
    assert resp.chunks == [b"first part;", b"second part;"]
    assert not resp.complete  # no end of body: the client can tell
    assert resp.error is not None
    assert (resp.error.error_type, resp.error.message) == ("ValueError", "failed half way")
    assert any("parts" in line for line in resp.error.trace)
    assert (await client.get("/")).status == 200  # the runtime serves on


async def test_client_disconnect_stops_the_generator(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(wsgi(flask_app(journal)))
    async with client.stream("GET", "/watch") as resp:
        assert await anext(resp) == b"watching 0\n"
        assert await anext(resp) == b"watching 1\n"
        left = time.monotonic()
    # Leaving the block hangs up: the runtime cancels the handler, the thread's next write
    # raises ClientDisconnected and the bridge closes the iterable: GeneratorExit at the yield.
    closed, _ = await journal.wait_for("closed")
    assert journal.named("generator exit")
    print(f"generator closed {closed - left:.3f} s after the hang-up")
    assert closed - left < 0.3
    assert (await client.get("/")).status == 200


async def test_deadline_stops_the_app(journal: Journal) -> None:
    async with LambdaClient(wsgi(flask_app(journal)), timeout=1.0) as client:
        started = time.monotonic()
        resp = await client.get("/slow")
        elapsed = time.monotonic() - started
        assert resp.status == 502
        assert resp.error is not None
        assert resp.error.error_type == "Function.Timeout"
        assert 0.6 < elapsed < 1.0  # cancelled deadline_margin before the timeout
        # The thread cannot be killed: it stops at its first write after the deadline.
        await journal.wait_for("closed")
        assert (await client.get("/")).status == 200


async def test_requests_run_in_threads_side_by_side(journal: Journal) -> None:
    async with LambdaClient(wsgi(flask_app(journal)), concurrency=3) as client:
        ticks = 0

        async def count() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        counter = asyncio.ensure_future(count())
        started = time.monotonic()
        replies = await asyncio.gather(*(client.get("/sleep?s=0.3") for _ in range(3)))
        elapsed = time.monotonic() - started
        counter.cancel()
        await asyncio.gather(counter, return_exceptions=True)
    threads = {r.json()["thread"] for r in replies}
    assert len(threads) == 3  # one worker thread per request
    assert elapsed < 0.55, elapsed  # three 0.3 s sleeps side by side, not one after another
    assert ticks > 15  # the event loop stayed free while the apps blocked


async def test_upload_cut_short_reaches_the_app(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    async def failing_upload() -> AsyncIterator[bytes]:
        yield b"x" * 64 * 1024
        await asyncio.sleep(0.05)
        raise ConnectionResetError("the uploading client went away")

    client = await lambda_client(wsgi(flask_app(journal)))
    resp = await client.post("/sha256", body=failing_upload())
    # The read raised ClientDisconnected (an OSError) in the app; Flask made it a 500 page,
    # which had nobody to go to: its write raised ClientDisconnected too.
    assert resp.error is not None
    assert resp.error.error_type == "ClientDisconnected"
    assert (await client.get("/")).status == 200
    assert json.loads((await client.get("/")).body) == {"hello": "world", "method": "GET"}
