"""AWS's own runtime client, ``awslambdaric``, runs unchanged against the emulator.

It never asks for the request stream, so even in the default duplex mode it gets ordinary
buffered events: any runtime works.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest

from ..support.wire import INVOKE, Reply, call, running

pytest.importorskip("awslambdaric")

HANDLER = """
def handler(event, context):
    if event.get("fail") or event.get("rawPath") == "/fail":
        raise ValueError("boom")
    if "rawPath" in event:
        return {
            "statusCode": 201,
            "headers": {"content-type": "text/plain"},
            "cookies": ["k=v"],
            "body": "path=" + event["rawPath"] + " body=" + event.get("body", ""),
        }
    return {"echo": event, "id": context.aws_request_id, "fn": context.function_name}
"""


def lambda_env(runtime_api: str, task_root: pathlib.Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_MAX_CONCURRENCY"}
    env.update(
        AWS_LAMBDA_RUNTIME_API=runtime_api,
        _HANDLER="app.handler",
        LAMBDA_TASK_ROOT=str(task_root),
        AWS_LAMBDA_FUNCTION_NAME="function",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_REGION="us-east-1",
    )
    return env


@asynccontextmanager
async def awslambdaric(runtime_api: str, task_root: pathlib.Path) -> AsyncIterator[None]:
    """``python -m awslambdaric app.handler``, killed (by its pid) on exit."""
    (task_root / "app.py").write_text(HANDLER)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "awslambdaric",
        "app.handler",
        cwd=task_root,
        env=lambda_env(runtime_api, task_root),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.communicate(), 10)


def json_of(reply: Reply) -> dict[str, object]:
    value = msgspec.json.decode(reply.body)
    assert isinstance(value, dict)
    return value


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["duplex", "lambda"])
async def test_awslambdaric_through_invoke_api_and_function_url(
    tmp_path: pathlib.Path, mode: str
) -> None:
    async with running(mode=mode, timeout=30) as emu, awslambdaric(emu.runtime_api, tmp_path):
        ok = await call(emu.url, "POST", INVOKE, body=b'{"n": 1}', within=20)
        assert ok.status == 200
        value = json_of(ok)
        assert value["echo"] == {"n": 1}
        assert value["fn"] == "function"
        assert value["id"] == ok.header("x-amzn-RequestId")

        failed = await call(emu.url, "POST", INVOKE, body=b'{"fail": true}')
        assert (failed.status, failed.header("X-Amz-Function-Error")) == (200, "Unhandled")
        error = json_of(failed)
        assert (error["errorType"], error["errorMessage"]) == ("ValueError", "boom")

        url = await call(emu.url, "POST", "/hello?q=1", [("Content-Type", "text/plain")], b"hi")
        assert (url.status, url.header("content-type"), url.body) == (
            201,
            "text/plain",
            b"path=/hello body=hi",
        )
        assert url.headers.get_all("Set-Cookie") == [b"k=v"]

        url_fail = await call(emu.url, "GET", "/fail")
        assert url_fail.status == 502
        assert json_of(url_fail)["errorType"] == "ValueError"

        kinds = []
        while not emu.records.empty():
            record = emu.records.get_nowait()
            kinds.append((record.kind, record.status, record.error_type))
        assert kinds == [
            ("invoke", 200, None),
            ("invoke", 200, "ValueError"),
            ("function-url", 201, None),
            ("function-url", 502, "ValueError"),
        ]
