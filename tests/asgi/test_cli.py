"""``duplexlambda run module:app --asgi`` as a real process: lifespan startup at init, requests
through the Runtime API, lifespan shutdown at SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import signal
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from duplexlambda.protocol.prelude import DELIMITER

from ..support.fake_api import FakeRuntimeApi, Invocation
from ..support.wire import request

pytestmark = pytest.mark.asyncio

APP = """
import contextlib, os, pathlib
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

MARKS = pathlib.Path(os.environ["MARKS"])

@contextlib.asynccontextmanager
async def lifespan(app):
    (MARKS / "startup").write_text("1")
    yield {"greeting": "hello from the lifespan"}
    (MARKS / "shutdown").write_text("1")

async def home(request):
    return PlainTextResponse(f"{request.state.greeting} at {request.url.path}", status_code=203)

app = Starlette(routes=[Route("/{rest:path}", home)], lifespan=lifespan)
"""


def url_event(path: str) -> bytes:
    return json.dumps(
        {
            "version": "2.0",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"host": "fn.lambda-url.us-east-1.on.aws"},
            "requestContext": {"http": {"method": "GET", "path": path, "sourceIp": "1.2.3.4"}},
            "isBase64Encoded": False,
        }
    ).encode()


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeRuntimeApi]:
    async with FakeRuntimeApi() as fake:
        yield fake


@pytest.mark.parametrize("how", ["flag", "env"])
async def test_run_asgi_app(api: FakeRuntimeApi, tmp_path: pathlib.Path, how: str) -> None:
    (tmp_path / "main.py").write_text(APP)
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "MARKS": str(tmp_path),
        "_HANDLER": "main:app",
    }
    argv = ["--asgi"] if how == "flag" else []
    if how == "env":
        env["DUPLEXLAMBDA_ASGI"] = "1"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "duplexlambda",
        "run",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        first = api.add(Invocation(body=url_event("/one")))
        got = await api.result(first.request_id)
        assert (tmp_path / "startup").exists()
        assert not (tmp_path / "shutdown").exists()
        prelude, _, body = got.body.partition(DELIMITER)
        assert json.loads(prelude)["statusCode"] == 203
        assert body == b"hello from the lifespan at /one"
        assert got.complete
        assert not got.trailers
        second = api.add(Invocation(body=url_event("/two")))
        assert (await api.result(second.request_id)).body.endswith(b"lifespan at /two")
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()
    assert (tmp_path / "shutdown").exists()
    assert "handler main:app (asgi)" in out.decode()


async def _line(stream: asyncio.StreamReader, pattern: str) -> re.Match[str]:
    regex = re.compile(pattern)
    async with asyncio.timeout(20):
        while line := (await stream.readline()).decode():
            if m := regex.search(line):
                return m
    raise AssertionError(f"{pattern!r} never printed")


async def test_serve_an_asgi_app(tmp_path: pathlib.Path) -> None:
    # `duplexlambda serve` passes its environment to the runtime it starts.
    (tmp_path / "main.py").write_text(APP)
    env = {**os.environ, "DUPLEXLAMBDA_ASGI": "1", "MARKS": str(tmp_path)}
    args = ["--port", "0", "--runtime-api-port", "0", "--task-root", str(tmp_path)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "duplexlambda",
        "serve",
        "main:app",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        url = (await _line(proc.stdout, r"Function URL: (http://\S+)"))[1]
        await _line(proc.stderr, r"handler main:app \(asgi\)")
        reply = await request(url, "GET", "/over/http")
        assert (reply.status, reply.body) == (203, b"hello from the lifespan at /over/http")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (tmp_path / "startup").exists()
    assert (tmp_path / "shutdown").exists()  # the runtime got SIGTERM: lifespan shutdown
