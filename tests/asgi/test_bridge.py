"""The ASGI bridge with real Starlette and FastAPI apps, driven in-process by ``LambdaClient``
(the real runtime and the emulator's Runtime API, joined by memory pipes)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from duplexlambda.asgi import asgi
from duplexlambda.testing import InitError, LambdaClient
from duplexlambda.testing.plugin import LambdaClientFactory

from ..support.emulated import paced
from .apps import Journal, fastapi_app, multipart, raw_app, recording, starlette_app

pytestmark = pytest.mark.asyncio


@pytest.fixture
def journal() -> Journal:
    return Journal()


# --- routes, parameters, headers ---------------------------------------------------------------


async def test_json_route_and_head(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"hello": "world", "method": "GET"}
    assert resp.error is None
    assert resp.complete
    head = await client.head("/")
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-type"] == "application/json"
    # The function URL frames the body itself: the app's content-length is not passed on.
    assert "content-length" not in resp.headers


async def test_path_and_query_parameters(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    resp = await client.get("/items/42?tag=a&tag=b%20c&x=")
    assert resp.json() == {
        "id": 42,
        "query": [["tag", "a"], ["tag", "b c"], ["x", ""]],
        "url": "https://testserver.lambda-url.us-east-1.on.aws/items/42?tag=a&tag=b%20c&x=",
        "client": "127.0.0.1",
    }
    assert (await client.get("/items/not-a-number")).status == 404


async def test_request_headers_and_cookies(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    resp = await client.get("/headers", headers={"X-One": "1", "Cookie": "a=1; b=two"})
    # The 2.0 event moves cookies out of the headers; the bridge puts them back.
    assert resp.json() == {"x-one": "1", "cookies": {"a": "1", "b": "two"}, "scheme": "https"}


async def test_response_cookies_and_repeated_headers(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    resp = await client.get("/cookies")
    assert resp.status == 201
    assert resp.text == "cookies set"
    assert len(resp.cookies) == 2
    sid, theme = sorted(resp.cookies)
    assert sid.startswith("sid=42;")
    assert "httponly" in sid.lower()
    assert theme.startswith("theme=dark;")
    assert resp.headers["vary"] == "accept, cookie"


async def test_fastapi_models_status_and_validation(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(fastapi_app(journal)))
    created = await client.post("/items", json={"name": "kettle", "price": 9.5, "tags": ["tea"]})
    assert created.status == 201
    assert created.json() == {"id": 1, "name": "kettle", "price": 9.5, "tags": ["tea"]}
    read = await client.get("/items/1?verbose=true")
    assert read.json() == {"id": 1, "name": "kettle", "tags": ["tea"]}
    missing = await client.get("/items/7")
    assert (missing.status, missing.json()) == (404, {"detail": "no item 7"})
    invalid = await client.post("/items", json={"name": "no price"})
    assert invalid.status == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "price"]


async def test_root_path(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(asgi(starlette_app(journal), root_path="/prod"))
    resp = await client.get("/prod/items/3")
    assert resp.json()["id"] == 3
    assert resp.json()["url"].endswith("/prod/items/3")


# --- streaming both ways -----------------------------------------------------------------------


async def test_streaming_response_chunks_arrive_as_yielded(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal, tick=0.1)))
    async with client.stream("GET", "/stream?n=4") as resp:
        assert resp.status == 200
        assert resp.headers["content-type"] == "text/plain; charset=utf-8"
        received = [chunk async for chunk in resp]
    assert received == [b"tick %d\n" % i for i in range(4)]  # one chunk per body message
    assert resp.complete
    gaps = [b - a for a, b in itertools.pairwise(resp.arrivals)]
    assert all(gap > 0.07 for gap in gaps), gaps  # none held back and merged
    # Each chunk reached the client right after the app yielded it.
    yields = [t for t, _ in journal.named("yield")]
    lags = [arrived - yielded for arrived, yielded in zip(resp.arrivals, yields, strict=True)]
    assert max(lags) < 0.05, lags


async def test_fastapi_server_sent_events(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(fastapi_app(journal)))
    async with client.stream("GET", "/events?n=3") as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        events = [chunk async for chunk in resp]
    assert events == [b'event: tick\ndata: {"i": %d}\nid: %d\n\n' % (i, i) for i in range(3)]
    gaps = [b - a for a, b in itertools.pairwise(resp.arrivals)]
    assert all(gap > 0.07 for gap in gaps), gaps


async def test_upload_is_read_while_it_is_sent(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    pieces = [b"alpha ", b"beta ", b"gamma ", b"delta"]
    async with client.stream(
        "POST", "/upload-echo", body=paced(pieces, 0.15, pause_after_last=True)
    ) as resp:
        first = await anext(resp)
        first_at = time.monotonic()
        assert resp.upload_finished_at is None  # the upload is still going on
        rest = [chunk async for chunk in resp]
    assert first == b"ALPHA "
    assert [first, *rest] == [p.upper() for p in pieces]
    assert resp.upload_finished_at is not None
    assert resp.upload_finished_at - first_at > 0.4  # answered ~0.45 s before the upload ended


async def test_multipart_form_upload(lambda_client: LambdaClientFactory, journal: Journal) -> None:
    client = await lambda_client(asgi(recording(starlette_app(journal), journal)))
    content = bytes(range(256)) * 2048  # 512 KiB of binary data
    ctype, body = multipart("holiday", "photo.bin", content)
    pieces = [body[i : i + 128 * 1024] for i in range(0, len(body), 128 * 1024)]
    resp = await client.post(
        "/form", body=paced(pieces, 0.05, pause_after_last=True), headers={"content-type": ctype}
    )
    assert resp.status == 200, resp.body
    assert resp.json() == {
        "field": "holiday",
        "filename": "photo.bin",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    received = journal.named("received")
    assert sum(size for _, size in received) == len(body)
    assert len(received) >= len(pieces)  # fed to the parser piece by piece, not whole


async def test_binary_upload_in_lambda_mode(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    # As on AWS: the upload is buffered into the event, base64 since it is binary.
    client = await lambda_client(asgi(starlette_app(journal)), mode="lambda")
    content = bytes(range(256)) * 1024
    ctype, body = multipart("scan", "scan.bin", content)
    resp = await client.post("/form", body=body, headers={"content-type": ctype})
    assert resp.json()["sha256"] == hashlib.sha256(content).hexdigest()


# --- errors ------------------------------------------------------------------------------------


async def test_exception_in_a_route_is_a_500(
    lambda_client: LambdaClientFactory, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    with caplog.at_level(logging.ERROR, logger="duplexlambda.asgi"):
        resp = await client.get("/boom")
        assert (resp.status, resp.text) == (500, "Internal Server Error")
        assert resp.error is None  # the invocation itself succeeded: the app answered 500
        # The next request is served (and, one at a time, only once the first has ended).
        assert (await client.get("/")).status == 200
    # Starlette sent its 500 page, then re-raised for the server to log it: logged with the
    # traceback (the client had its answer before that).
    assert any(r.exc_info and "boom in a route" in str(r.exc_info[1]) for r in caplog.records), (
        caplog.records
    )
    fastapi = await lambda_client(asgi(fastapi_app(journal)))
    crash = await fastapi.get("/crash")
    assert (crash.status, crash.text) == (500, "Internal Server Error")


async def test_failure_before_the_first_chunk_is_still_a_500(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    # StreamingResponse sends http.response.start, then its generator fails: the head was
    # held back, so the client gets a clean 500 rather than a cut 200.
    client = await lambda_client(asgi(starlette_app(journal)))
    resp = await client.get("/boom-first")
    assert (resp.status, resp.text) == (500, "Internal Server Error")
    assert resp.complete


async def test_mid_stream_failure_cuts_the_response(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    resp = await client.get("/boom-midway")
    assert resp.status == 200
    assert resp.chunks == [b"first part;", b"second part;"]
    assert not resp.complete  # no end of body: the client can tell
    assert resp.error is not None
    assert (resp.error.error_type, resp.error.message) == ("ValueError", "failed half way")
    assert any("chunks" in line for line in resp.error.trace)
    assert (await client.get("/")).status == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/raise-first", 500),
        ("/no-response", 500),
        ("/body-before-start", 500),
        ("/cancel-itself", 500),
    ],
)
async def test_raw_app_failures_before_any_byte(
    lambda_client: LambdaClientFactory, path: str, status: int
) -> None:
    client = await lambda_client(asgi(raw_app))
    resp = await client.get(path)
    assert (resp.status, resp.text, resp.error) == (status, "Internal Server Error", None)
    assert (await client.get("/nowhere")).status == 404  # the runtime serves on


async def test_raw_app_that_returns_mid_response(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(asgi(raw_app))
    resp = await client.get("/unfinished")
    assert (resp.status, resp.body, resp.complete) == (200, b"partial", False)
    assert resp.error is not None
    assert resp.error.error_type == "Runtime.ASGIProtocolError"


async def test_a_plain_invocation_is_not_an_http_request(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    result = await client.invoke({"not": "http"})
    assert result.error is not None
    assert result.error.error_type == "Runtime.UnsupportedEvent"


# --- lifespan, state, the event loop -----------------------------------------------------------


async def test_lifespan_runs_once_and_its_state_is_shared(journal: Journal) -> None:
    handler = asgi(starlette_app(journal))
    async with LambdaClient(handler) as client:
        assert [n for n, _, _ in journal.events] == ["startup"]  # at init, before any request
        first = await client.get("/hits")
        second = await client.get("/hits")
        loops = {(await client.get("/loop")).json()["loop"] for _ in range(3)}
        assert [n for n, _, _ in journal.events] == ["startup"]
    assert [n for n, _, _ in journal.events] == ["startup", "shutdown"]  # at "SIGTERM"
    assert (first.json(), second.json()) == ({"hits": 1, "uses": 1}, {"hits": 2, "uses": 2})
    # One loop for every invocation: the runtime's, where the startup client was opened.
    assert loops == {id(asyncio.get_running_loop())}


async def test_one_handler_serves_one_environment_after_another(journal: Journal) -> None:
    handler = asgi(starlette_app(journal))
    for _ in range(2):
        async with LambdaClient(handler) as client:
            assert (await client.get("/hits")).json() == {"hits": 1, "uses": 1}
    assert [n for n, _, _ in journal.events] == ["startup", "shutdown"] * 2


async def test_lifespan_startup_failure_is_an_init_error() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise ConnectionRefusedError("database unreachable")
        yield

    with pytest.raises(InitError) as failed:
        async with LambdaClient(asgi(Starlette(lifespan=lifespan))):
            pass
    assert failed.value.error_type == "Runtime.LifespanError"
    assert "database unreachable" in failed.value.message


async def test_app_without_lifespan_support(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(asgi(raw_app))  # "auto": raw_app raises on lifespan
    assert (await client.get("/nowhere")).status == 404
    with pytest.raises(InitError) as failed:
        await lambda_client(asgi(raw_app, lifespan="on"))
    assert failed.value.error_type == "Runtime.LifespanError"
    off = await lambda_client(asgi(raw_app, lifespan="off"))
    assert (await off.get("/nowhere")).status == 404


# --- background tasks, disconnects, deadlines --------------------------------------------------


async def test_background_task_runs_after_the_response_ended(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(fastapi_app(journal, background_delay=0.3)))
    resp = await client.post("/jobs")
    answered = time.monotonic()
    assert (resp.status, resp.json(), resp.complete) == (202, {"status": "queued"}, True)
    assert not journal.named("background done")  # the client did not wait for it
    done, _ = await journal.wait_for("background done")
    started, _ = journal.named("background started")[0]
    assert started <= answered + 0.05
    assert done - answered > 0.2


async def test_client_hang_up_is_http_disconnect(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    client = await lambda_client(asgi(starlette_app(journal)))
    async with client.stream("GET", "/watch") as resp:
        assert await anext(resp) == b"watching\n"
        left = time.monotonic()
    # Leaving the block hangs up: the runtime cancels the handler, the app's receive()
    # returns http.disconnect and its next send() raises an OSError.
    at, _ = await journal.wait_for("http.disconnect")
    assert at - left < 0.5
    _, raised = await journal.wait_for("send raised")
    assert raised == "ClientDisconnected"
    assert (await client.get("/")).status == 200


async def test_upload_cut_short_is_http_disconnect(
    lambda_client: LambdaClientFactory, journal: Journal
) -> None:
    async def failing_upload() -> AsyncIterator[bytes]:
        yield b"first piece"
        await asyncio.sleep(0.05)
        raise ConnectionResetError("the uploading client went away")

    client = await lambda_client(asgi(recording(starlette_app(journal), journal)))
    resp = await client.post("/upload", body=failing_upload())
    # Starlette's request.stream() got http.disconnect (ClientDisconnect): the app never
    # answered, and nobody is left to answer.
    assert [size for _, size in journal.named("received")] == [len(b"first piece")]
    assert resp.error is not None
    assert resp.error.error_type == "ClientDisconnected"
    assert (await client.get("/")).status == 200


async def test_deadline_cancels_the_app(journal: Journal) -> None:
    async with LambdaClient(asgi(starlette_app(journal)), timeout=1.0) as client:
        started = time.monotonic()
        resp = await client.get("/slow")
        elapsed = time.monotonic() - started
    assert resp.status == 502
    assert resp.error is not None
    assert resp.error.error_type == "Function.Timeout"
    assert json.loads(resp.body)["errorType"] == "Function.Timeout"
    assert journal.named("slow cancelled")
    assert 0.6 < elapsed < 1.0  # cancelled deadline_margin (0.25 s) before the 1 s timeout


async def test_requests_run_concurrently(journal: Journal) -> None:
    async with LambdaClient(asgi(starlette_app(journal, tick=0.1)), concurrency=3) as client:
        started = time.monotonic()
        replies: list[Any] = await asyncio.gather(*(client.get("/stream?n=3") for _ in range(3)))
        elapsed = time.monotonic() - started
    assert [r.body for r in replies] == [b"tick 0\ntick 1\ntick 2\n"] * 3
    assert elapsed < 0.55  # three 0.3 s streams side by side, not one after another
