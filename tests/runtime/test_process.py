"""``python -m duplexlambda run`` as a real process: environment, logging, hooks, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ..support.fake_api import FakeRuntimeApi, Invocation

pytestmark = pytest.mark.asyncio

HANDLER = """
import asyncio, logging, os, pathlib
from duplexlambda.handler import on_init, on_shutdown

MARKS = pathlib.Path(os.environ["MARKS"])
state = {}

@on_init
async def opened():
    state["client"] = "opened once"
    (MARKS / "init").write_text("1")

@on_shutdown
async def closed():
    (MARKS / "shutdown").write_text(state["client"])

async def handler(req, res):
    logging.getLogger("app").info("handling %s", req.path)
    body = await req.read()
    if body == b"slow":
        await asyncio.sleep(0.5)
    await res.write(state["client"].encode() + b" " + body)
"""


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeRuntimeApi]:
    async with FakeRuntimeApi() as fake:
        yield fake


async def start(
    api: FakeRuntimeApi, tmp_path: pathlib.Path, *extra: str, **env: str
) -> asyncio.subprocess.Process:
    (tmp_path / "app.py").write_text(HANDLER)
    environ = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_HANDLER": "app.handler",
        "MARKS": str(tmp_path),
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        **env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "duplexlambda",
        "run",
        *extra,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.parametrize("loop_flag", [[], ["--no-uvloop"]], ids=["uvloop", "asyncio"])
async def test_sigterm_lets_the_invocation_finish(
    api: FakeRuntimeApi, tmp_path: pathlib.Path, loop_flag: list[str]
) -> None:
    proc = await start(api, tmp_path, *loop_flag, AWS_LAMBDA_LOG_FORMAT="JSON")
    try:
        first = api.add(Invocation(body=b'"fast"'))
        assert (await api.result(first.request_id)).body == b'opened once "fast"'
        slow = api.add(Invocation(body=b"slow", content_type="application/octet-stream"))
        await asyncio.wait_for(slow.handed_out.wait(), 10)
        await asyncio.sleep(0.1)  # the handler is now sleeping inside the invocation
        proc.send_signal(signal.SIGTERM)
        assert (await api.result(slow.request_id)).body == b"opened once slow"
        code, out = await finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, out
    assert (tmp_path / "init").read_text() == "1"
    assert (tmp_path / "shutdown").read_text() == "opened once"
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    handled = [r for r in records if r["message"].startswith("handling")]
    assert [r["requestId"] for r in handled] == [first.request_id, slow.request_id]
    started = next(r for r in records if "duplexlambda runtime" in r["message"])["message"]
    assert "handler app.handler (duplex)" in started
    assert ("loop asyncio" if loop_flag else "loop uvloop") in started


async def test_import_error_goes_to_init_error(api: FakeRuntimeApi, tmp_path: pathlib.Path) -> None:
    proc = await start(api, tmp_path, _HANDLER="missing_module.handler")
    code, out = await finish(proc)
    assert code == 1
    got = await api.result("init")
    assert got.header("Lambda-Runtime-Function-Error-Type") == "Runtime.ImportModuleError"
    assert "[ERROR]" in out  # Text log format by default


async def test_unreachable_api_exits_non_zero(tmp_path: pathlib.Path) -> None:
    (tmp_path / "app.py").write_text("async def handler(req, res): pass\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "duplexlambda",
        "run",
        "app.handler",
        env={
            **os.environ,
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1",
            "LAMBDA_TASK_ROOT": str(tmp_path),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    code, out = await finish(proc)
    assert code == 1
    assert "unreachable" in out


async def test_missing_environment_is_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_RUNTIME_API"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "duplexlambda",
        "run",
        "app.handler",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    code, out = await finish(proc)
    assert code == 2
    assert "AWS_LAMBDA_RUNTIME_API is not set" in out
