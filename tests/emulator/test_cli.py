"""``duplexlambda serve`` as a real subprocess, with awslambdaric as its runtime.

It prints its URLs, serves invocations, restarts a runtime that dies (failing what it was
running with ``Runtime.ExitError``), recycles it after a timeout, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest

from ..support.serve_process import Serve
from .test_awslambdaric import lambda_env

pytest.importorskip("awslambdaric")

HANDLER = """
import time

def handler(event, context):
    if "sleep" in event:
        time.sleep(event["sleep"])
    return {"ok": True, "id": context.aws_request_id}
"""


@pytest.fixture
def serve_env(tmp_path: pathlib.Path) -> dict[str, str]:
    (tmp_path / "app.py").write_text(HANDLER)
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_MAX_CONCURRENCY"}
    env["DUPLEXLAMBDA_RUNTIME_CMD"] = f"{sys.executable} -m awslambdaric"
    return env


def invoke(url: str, payload: bytes, timeout: float = 20) -> tuple[int, dict[str, str], object]:
    request = urllib.request.Request(
        url + "2015-03-31/functions/function/invocations", data=payload, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), msgspec.json.decode(response.read())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_runs_restarts_recycles_and_stops(
    tmp_path: pathlib.Path, serve_env: dict[str, str]
) -> None:
    serve = Serve(
        "app.handler",
        "--port", "0",
        "--runtime-api-port", "0",
        "--task-root", str(tmp_path),
        "--timeout", "2",
        env=serve_env,
    )  # fmt: skip
    try:
        url = serve.wait_for(r"Function URL: (http://\S+)", serve.out)[1]
        serve.wait_for(
            r"Invoke API: +http://\S+/2015-03-31/functions/function/invocations", serve.out
        )
        serve.wait_for(r"AWS_LAMBDA_RUNTIME_API=127\.0\.0\.1:\d+", serve.out)
        serve.wait_for(r"curl ", serve.out)
        first = int(serve.wait_for(r"runtime started \(pid (\d+)\)", serve.err)[1])

        status, headers, body = invoke(url, b"{}")
        assert status == 200
        assert isinstance(body, dict)
        assert body["ok"] is True
        rid = headers["x-amzn-RequestId"]
        line = serve.wait_for(rf"invoke {rid} status=200 .*in=2B .*duration=.*ttfb=", serve.err)
        assert "error=-" in line[0]

        # The runtime dies mid-invocation: that invocation fails, a new runtime starts.
        seen = len(serve.err)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(invoke, url, b'{"sleep": 1.5}')
            time.sleep(0.5)
            os.kill(first, signal.SIGKILL)
            status, headers, body = pending.result(20)
        assert (status, headers.get("X-Amz-Function-Error")) == (200, "Unhandled")
        assert isinstance(body, dict)
        assert body["errorType"] == "Runtime.ExitError"
        second = int(serve.wait_for(r"runtime started \(pid (\d+)\)", serve.err, after=seen)[1])
        assert second != first
        assert invoke(url, b"{}")[0] == 200

        # Past --timeout: Sandbox.Timeout, and the environment is recycled.
        seen = len(serve.err)
        status, headers, body = invoke(url, b'{"sleep": 10}')
        assert isinstance(body, dict)
        assert body["errorType"] == "Sandbox.Timeout"
        third = int(serve.wait_for(r"runtime started \(pid (\d+)\)", serve.err, after=seen)[1])
        assert third != second
        assert invoke(url, b"{}")[0] == 200
    finally:
        code = serve.stop()
    assert code == 0, "\n".join(serve.err)
    assert "stopping" in "\n".join(serve.err)
    assert not pid_alive(third)


def test_serve_no_runtime_with_awslambdaric(
    tmp_path: pathlib.Path, serve_env: dict[str, str]
) -> None:
    serve = Serve("--no-runtime", "--port", "0", "--runtime-api-port", "0", env=serve_env)
    runtime = None
    try:
        url = serve.wait_for(r"Function URL: (http://\S+)", serve.out)[1]
        api = serve.wait_for(r"AWS_LAMBDA_RUNTIME_API=(\S+)", serve.out)[1]
        runtime = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", "app.handler"],
            cwd=tmp_path,
            env=lambda_env(api, tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert invoke(url, b'{"a": 1}')[0] == 200
        with urllib.request.urlopen(url + "some/path", timeout=20) as response:
            assert response.status == 200
            assert b'"ok": true' in response.read()
    finally:
        if runtime is not None:
            runtime.kill()
            runtime.wait(10)
        assert serve.stop() == 0


def test_serve_reports_bad_usage_without_a_traceback(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "duplexlambda", "serve"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "HANDLER is required" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "duplexlambda", "serve", "--no-runtime", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
