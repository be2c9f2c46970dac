"""Faults of the runtime process, through ``duplexlambda serve`` (a subprocess) with our
runtime as its child: the runtime is killed mid-invocation; a handler blocks the runtime's
event loop past the emulator's timeout. The emulator reports each, restarts the runtime, and
an invocation queued behind the fault gets every byte from the new one."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import time

from ..support.serve_process import Serve
from ..support.wire import Reply, request
from .harness import GOOD_BODY

APP = """
import asyncio
import os
import time

GOOD = [b"%04d:" % i + bytes([65 + i % 26]) * (100 + i) + b"\\n" for i in range(40)]


async def handler(req, res):
    if req.path == "/good":
        for piece in GOOD:
            await res.write(piece)
            await asyncio.sleep(0.002)
    elif req.path == "/pid":
        await res.end(str(os.getpid()))
    elif req.path == "/stream-then-hang":
        await res.write(b"first ")
        await asyncio.sleep(60)
    elif req.path == "/hang":
        await asyncio.sleep(60)
    elif req.path == "/block":
        time.sleep(4)  # blocks the event loop: the runtime cannot even notice its deadline
        await res.end(b"too late")
"""


def serve(tmp_path: pathlib.Path, *options: str) -> Serve:
    (tmp_path / "app.py").write_text(APP)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DUPLEXLAMBDA_RUNTIME_CMD", "AWS_LAMBDA_MAX_CONCURRENCY")
    }
    return Serve(
        "app.handler",
        "--port", "0",
        "--runtime-api-port", "0",
        "--task-root", str(tmp_path),
        *options,
        env=env,
    )  # fmt: skip


async def good(url: str) -> Reply:
    reply = await request(url, path="/good")
    assert (reply.status, reply.complete) == (200, True)
    assert reply.body == GOOD_BODY, "bytes of the queued invocation were lost or mixed"
    return reply


async def pid_of_runtime(url: str) -> int:
    return int((await request(url, path="/pid")).body)


def test_runtime_process_killed_mid_invocation(tmp_path: pathlib.Path) -> None:
    srv = serve(tmp_path, "--timeout", "20")
    try:
        url = srv.wait_for(r"Function URL: (http://\S+)", srv.out)[1]

        async def scenario() -> tuple[Reply, Reply, int, int]:
            first = await pid_of_runtime(url)
            # Mid-stream: the caller has bytes already; an invocation waits in the queue.
            host, port = url.split("//")[1].strip("/").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /stream-then-hang HTTP/1.1\r\nHost: x\r\n\r\n")
            await reader.readuntil(b"first ")
            queued = asyncio.ensure_future(good(url))
            await asyncio.sleep(0.1)
            os.kill(first, signal.SIGKILL)
            rest = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await writer.wait_closed()
            assert not rest.endswith(b"0\r\n\r\n"), "a killed stream must not look complete"
            await asyncio.wait_for(queued, 20)
            # Before the first byte: the caller gets a 502 naming the exit.
            second = await pid_of_runtime(url)
            hang = asyncio.ensure_future(request(url, path="/hang"))
            await asyncio.sleep(0.3)
            os.kill(second, signal.SIGKILL)
            before = await asyncio.wait_for(hang, 20)
            after = await good(url)
            return before, after, first, second

        before, _, first, second = asyncio.run(scenario())
        assert first != second
        assert before.status == 502
        assert json.loads(before.body)["errorType"] == "Runtime.ExitError"
        lines = "\n".join(srv.err)
        assert lines.count("runtime started (pid") >= 3
        assert "error=Runtime.ExitError" in lines
        assert " truncated" in lines  # the mid-stream one was cut for its caller
    finally:
        assert srv.stop() == 0


def test_handler_blocks_the_event_loop_past_the_timeout(tmp_path: pathlib.Path) -> None:
    srv = serve(tmp_path, "--timeout", "1.5")
    try:
        url = srv.wait_for(r"Function URL: (http://\S+)", srv.out)[1]

        async def scenario() -> tuple[Reply, float, int, int]:
            first = await pid_of_runtime(url)
            began = time.monotonic()
            reply = await asyncio.wait_for(request(url, path="/block"), 20)
            took = time.monotonic() - began
            # (An invocation queued behind it would share its fate: the emulator's timeout
            # counts from submission.) The next one is served by the new runtime.
            await asyncio.wait_for(good(url), 20)
            return reply, took, first, await pid_of_runtime(url)

        reply, took, first, second = asyncio.run(scenario())
        # The runtime could not cancel its handler (the loop was blocked): the emulator's
        # timeout answers with Sandbox.Timeout and recycles the environment.
        assert reply.status == 504
        assert json.loads(reply.body)["errorType"] == "Sandbox.Timeout"
        assert 1.4 < took < 3.5
        assert first != second
    finally:
        assert srv.stop() == 0
