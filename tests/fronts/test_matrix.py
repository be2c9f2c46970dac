"""Every front x every kind of handler, end to end (issue #12's matrix).

A duplex handler, a FastAPI app with a ``StreamingResponse`` (ASGI bridge), a Flask app with a
generator response (WSGI bridge) and a buffered ``def handler(event, context)`` answer the
same request behind each front the emulator plays: through the in-process test client, and
over real HTTP through ``duplexlambda serve --front`` with the runtime as a child process.
Each reports the request as it parsed it; the test checks that and the answer the client
gets from the front (status, repeated headers, cookies, body; one chunk per write where the
front streams, never a prelude where it does not).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, get_args

import pytest

from duplexlambda.emulator.config import FrontName
from duplexlambda.testing import LambdaClient

from ..support.serve_process import Serve
from ..support.wire import request
from . import matrix_apps

ROOT = Path(__file__).resolve().parents[2]

FRONTS = list(get_args(FrontName))
KINDS = {"duplex": "duplex", "asgi": "asgi_app", "wsgi": "wsgi_app", "buffered": "buffered"}
STREAMING_FRONTS = {"function-url", "rest-stream"}

TARGET = "/items/caf%C3%A9?q=a%2Bb&q=c%26d%3De&x=b%20c"
HEADERS = [
    ("X-Multi", "1"),
    ("X-Multi", "2"),
    ("Cookie", "a=1; b=2"),
    ("Content-Type", "text/plain"),
]
BODY = b"hello body"


def target(front: str) -> str:
    return ("/prod" if front.startswith("rest") else "") + TARGET


def expected_report(kind: str, front: str) -> dict[str, Any]:
    single_alb = front == "alb"  # one value per name: the last one the client sent
    # The bridges see the path the client used (the stage is their root path / SCRIPT_NAME).
    stage = "/prod" if front.startswith("rest") and kind in ("asgi", "wsgi") else ""
    return {
        "kind": kind,
        "method": "POST",
        "path": stage + "/items/café",
        "query": {"q": ["c&d=e"] if single_alb else ["a+b", "c&d=e"], "x": ["b c"]},
        "x-multi": "2" if single_alb else "1,2",
        "cookies": {"a": "1", "b": "2"},
        "body": "hello body",
    }


def expected_cookies(front: str) -> list[str]:
    return matrix_apps.COOKIES[-1:] if front == "alb" else matrix_apps.COOKIES


def joined(values: list[str]) -> str:
    return ",".join(v.strip() for value in values for v in value.split(","))


def check_answer(
    kind: str,
    front: str,
    status: int,
    header_all: Any,
    body: bytes,
    pieces: int,
    *,
    over_http: bool,
) -> None:
    if kind == "buffered" and front == "rest-stream":
        # A buffered function cannot answer a streaming integration: no metadata, no NULs.
        assert status == 502
        assert json.loads(body) == {"message": "Internal server error"}
        return
    assert status == 201, body[:300]
    assert b"\x00" not in body  # never a prelude, whatever the front
    assert json.loads(body) == expected_report(kind, front)
    assert joined(header_all("x-rep")) == "a,b"
    assert header_all("set-cookie") == expected_cookies(front)
    if kind != "buffered" and front in STREAMING_FRONTS:
        assert pieces >= 3  # each write its own chunk
    elif front not in STREAMING_FRONTS and over_http:
        assert header_all("content-length") == [str(len(body))]  # sent whole


@pytest.mark.asyncio
@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize("kind", list(KINDS))
async def test_through_the_test_client(kind: str, front: str) -> None:
    handler = getattr(matrix_apps, KINDS[kind])
    async with LambdaClient(handler, front=front) as client:  # type: ignore[arg-type]
        reply = await client.post(target(front), body=BODY, headers=HEADERS)
    check_answer(
        kind,
        front,
        reply.status,
        reply.headers.get_all,
        reply.body,
        len(reply.chunks),
        over_http=False,
    )
    if kind != "buffered" and front in STREAMING_FRONTS:
        assert len(reply.chunks) == 3


def serve(front: str, kind: str) -> Serve:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUPLEXLAMBDA_")}
    env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
    return Serve(
        f"tests.fronts.matrix_apps.{KINDS[kind]}", "--front", front, "--port", "0",
        "--runtime-api-port", "0", "--task-root", str(ROOT), env=env,
    )  # fmt: skip


@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_over_http_through_serve(kind: str, front: str) -> None:
    server = serve(front, kind)
    try:
        base = server.front_url.rstrip("/")
        if front.startswith("rest"):
            base = base.rsplit("/prod", 1)[0]
        reply = asyncio.run(request(base, "POST", target(front), HEADERS, BODY))
    finally:
        assert server.stop() == 0
    check_answer(
        kind, front, reply.status, reply.header_all, reply.body, len(reply.chunks), over_http=True
    )


BINARY = bytes(range(256)) * 4


@pytest.mark.asyncio
@pytest.mark.parametrize("front", FRONTS)
async def test_binary_bodies_both_ways_through_the_test_client(front: str) -> None:
    async with LambdaClient(matrix_apps.binary_echo, front=front) as client:  # type: ignore[arg-type]
        reply = await client.post(
            target(front), body=BINARY, headers=[("Content-Type", "application/octet-stream")]
        )
    assert reply.status == 200
    assert reply.body == BINARY


@pytest.mark.parametrize("front", ["http-api", "rest", "alb-multi"])
def test_binary_bodies_both_ways_over_http(front: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUPLEXLAMBDA_")}
    server = Serve(
        "tests.fronts.matrix_apps.binary_echo", "--front", front, "--port", "0",
        "--runtime-api-port", "0", "--task-root", str(ROOT), env=env,
    )  # fmt: skip
    try:
        base = server.front_url.rstrip("/")
        if front.startswith("rest"):
            base = base.rsplit("/prod", 1)[0]
        headers = [("Content-Type", "application/octet-stream")]
        reply = asyncio.run(request(base, "POST", target(front), headers, BINARY))
    finally:
        assert server.stop() == 0
    assert reply.status == 200
    assert reply.body == BINARY
