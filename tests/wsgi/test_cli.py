"""``duplexlambda run module:app --wsgi`` (and ``DUPLEXLAMBDA_WSGI=1``) as a real process, and
``duplexlambda serve`` with a Flask app: a 64 MiB upload echoed through it while it arrives,
with the runtime's memory flat."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import sys
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from duplexlambda.protocol.prelude import DELIMITER

from ..integration.test_serve_duplex import echo_through, peak_rss_mib
from ..support.fake_api import FakeRuntimeApi, Invocation
from ..support.serve_process import Serve

APP = """
import os
from flask import Flask, Response, request

app = Flask(__name__)
STARTED = os.getpid()

@app.get("/<path:rest>")
def home(rest):
    return f"flask says hi at /{rest} ({request.environ['SERVER_PROTOCOL']})", 203

@app.post("/echo")
def echo():
    stream = request.stream

    def upper():
        while piece := stream.read(64 * 1024):
            yield piece.upper()

    return Response(upper(), mimetype="application/octet-stream")
"""

MiB = 1024 * 1024
#: streamed up and back down through the Flask app
UPLOAD = 64 * MiB


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


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["flag", "env"])
async def test_run_wsgi_app(api: FakeRuntimeApi, tmp_path: pathlib.Path, how: str) -> None:
    (tmp_path / "main.py").write_text(APP)
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_HANDLER": "main:app",
    }
    env.pop("DUPLEXLAMBDA_ASGI", None)
    argv = ["--wsgi"] if how == "flag" else []
    if how == "env":
        env["DUPLEXLAMBDA_WSGI"] = "1"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "duplexlambda", "run", *argv, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        for path in ("/one", "/two"):
            inv = api.add(Invocation(body=url_event(path)))
            got = await api.result(inv.request_id)
            prelude, _, body = got.body.partition(DELIMITER)
            assert json.loads(prelude)["statusCode"] == 203
            assert body == f"flask says hi at {path} (HTTP/1.1)".encode()
            assert got.complete
            assert not got.trailers
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()
    assert "handler main:app (wsgi)" in out.decode()


def test_asgi_and_wsgi_exclude_each_other(tmp_path: pathlib.Path) -> None:
    import subprocess

    env = {**os.environ, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "DUPLEXLAMBDA_WSGI": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "run", "main:app", "--asgi"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "exclude each other" in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_a_flask_app_with_flat_memory(tmp_path: pathlib.Path) -> None:
    # `duplexlambda serve` passes its environment to the runtime it starts.
    (tmp_path / "main.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_MAX_CONCURRENCY"}
    env.pop("DUPLEXLAMBDA_RUNTIME_CMD", None)
    env.pop("DUPLEXLAMBDA_ASGI", None)
    env["DUPLEXLAMBDA_WSGI"] = "1"
    serve = Serve(
        "main:app", "--port", "0", "--runtime-api-port", "0", "--task-root", str(tmp_path),
        env=env,
    )  # fmt: skip
    try:
        url = serve.wait_for(r"Function URL: (http://\S+)", serve.out)[1]
        runtime_pid = int(serve.wait_for(r"runtime started \(pid (\d+)\)", serve.err)[1])
        serve.wait_for(r"handler main:app \(wsgi\)", serve.err)
        echo_through(url, 4 * MiB)  # warm: Flask's first request, the thread's first stack
        before = peak_rss_mib(runtime_pid)
        started = time.monotonic()
        received, upper, ttfb = echo_through(url, UPLOAD)
        elapsed = time.monotonic() - started
        growth = peak_rss_mib(runtime_pid) - before
    finally:
        assert serve.stop() == 0
    assert received == UPLOAD
    assert upper
    assert ttfb < 5.0
    print(
        f"WSGI echo of {UPLOAD // MiB} MiB: {UPLOAD / MiB / elapsed:.0f} MiB/s each way, "
        f"first byte after {ttfb * 1000:.0f} ms, runtime peak RSS {before:.1f} MiB "
        f"+ {growth:.1f} MiB"
    )
    assert growth < 16, f"the runtime grew {growth:.1f} MiB for {UPLOAD // MiB} MiB"
