"""Regression tests for the bugs the reliability work found (docs/reliability.md lists them).

The fault-injection tests that found the others are their regression tests:
``test_handler_never_reads_the_upload`` (the emulator's linger raced the upload relay),
``test_runtime_api_stalls_on_a_post`` (a Runtime API that never answered hung the runtime),
``test_slowloris_head_is_cut_after_the_head_timeout`` (no bound on a trickled head).
"""

from __future__ import annotations

import pathlib

import pytest

from duplexlambda.protocol.http1 import HeadReader, RequestHead, ResponseHead

from ..support.serve_process import Serve
from ..support.wire import Conn, running


@pytest.mark.parametrize(
    ("raw", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", False),
    ],
)
def test_connection_close_on_a_request_without_body(raw: bytes, keep_alive: bool) -> None:
    """llhttp resets its flags once a bodiless message completes: keep-alive read after
    ``feed_data`` said True for ``Connection: close`` (the emulator then never closed)."""
    head = HeadReader("request").feed(raw)
    assert isinstance(head, RequestHead)
    assert head.keep_alive is keep_alive


def test_connection_close_on_a_response_without_body() -> None:
    head = HeadReader("response").feed(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    assert isinstance(head, ResponseHead)
    assert head.keep_alive is False


@pytest.mark.asyncio
async def test_emulator_closes_after_answering_connection_close() -> None:
    async with running() as emu:
        conn = await Conn.open(emu.runtime_api)
        await conn.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = await conn.read_reply()
        assert reply.status == 404
        assert reply.header("connection") == "close"
        assert await conn.at_eof(2)
        await conn.close()


def test_serve_stops_cleanly_on_sigterm_right_after_its_banner(tmp_path: pathlib.Path) -> None:
    """The signal handlers were installed after the banner was printed: a SIGTERM sent as
    soon as the URLs were known killed ``serve`` outright (exit -15, no clean stop)."""
    (tmp_path / "app.py").write_text("async def handler(req, res):\n    await res.end()\n")
    srv = Serve(
        "app.handler", "--port", "0", "--runtime-api-port", "0", "--task-root", str(tmp_path)
    )
    srv.wait_for(r"Function URL: ", srv.out)
    assert srv.stop() == 0, "\n".join(srv.err)
